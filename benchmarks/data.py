"""Benchmark data: deterministic, image-like calcium-imaging recordings written as split datasets.

The array is ``split_dataset.tools.synthetic``'s uint16 ``(T, Z, Y, X)`` recording (the one
``split-dataset demo`` writes too): per plane a smooth "anatomy", a few hundred cells with
sparse transients, Poisson shot noise and a camera offset, compressing about 1.7-1.8x with
PyTables' default blosc like real light-sheet recordings, and one pure-noise time point
(``T // 2``) whose chunks blosc stores raw.

Block files are written exactly the way users' files are written: PyTables ``CArray`` through
``create_carray(root, "stack_4D", obj=block, filters=Filters(complevel=9, complib=..., shuffle=True))``
with PyTables' own chunk shapes (what ``flammkuchen.save`` does), or ``create_array`` for the
uncompressed (contiguous) variant. The metadata JSON is written here too. The ``writer`` variant
is the same array saved by this package's own ``save_to_split_dataset`` (defaults).

Everything is cached outside the repository, under ``$SPLIT_DATASET_BENCH_DIR`` (default
``/tmp/split_dataset_bench``), keyed by shape, seed and generator version.

Sizes: ``SPLIT_DATASET_BENCH_SIZE=small`` (default, for smoke runs: (12, 4, 128, 128)) or
``full`` ((100, 20, 512, 512), 1 GB).

    python benchmarks/data.py [--size small|full] [--variants blosc,lz4,zlib,raw,writer]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from split_dataset.tools.synthetic import noise_time_point, synthetic_recording

GENERATOR_VERSION = 2
SEED = 20240611
SIZES = {"small": (12, 4, 128, 128), "full": (100, 20, 512, 512)}
TIME_POINTS_PER_FILE = (1, 10)

# name -> (PyTables complib or None for uncompressed/contiguous, description)
VARIANTS = {
    "blosc": ("blosc", "PyTables default: blosc:blosclz level 9 + shuffle (flammkuchen.save)"),
    "lz4": ("blosc:lz4", "blosc:lz4 level 9 + shuffle"),
    "zlib": ("zlib", "zlib (deflate) level 9 + HDF5 shuffle"),
    "raw": (None, "uncompressed, contiguous (create_array)"),
    "writer": ("writer", "this package's writer, defaults (blosc:blosclz level 9 + shuffle, "
                         "~128 KiB row-band chunks)"),
}
DEFAULT_VARIANTS = {"small": ("blosc", "lz4", "zlib", "raw", "writer"),
                    "full": ("blosc", "lz4", "raw")}


def bench_size(size: str | None = None) -> str:
    size = size or os.environ.get("SPLIT_DATASET_BENCH_SIZE", "small")
    if size not in SIZES:
        raise ValueError(f"SPLIT_DATASET_BENCH_SIZE must be one of {sorted(SIZES)}, got {size!r}")
    return size


def cache_root() -> Path:
    return Path(os.environ.get("SPLIT_DATASET_BENCH_DIR", "/tmp/split_dataset_bench"))


def cache_dir(shape: tuple[int, ...], seed: int = SEED) -> Path:
    key = "x".join(str(s) for s in shape)
    return cache_root() / f"{key}_seed{seed}_gen{GENERATOR_VERSION}"


def load_array(shape: tuple[int, ...], seed: int = SEED) -> np.ndarray:
    """The array, generated once and cached as ``array.npy`` next to the datasets."""
    folder = cache_dir(shape, seed)
    path = folder / "array.npy"
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        array = synthetic_recording(shape, seed)
        tmp = folder / f"array.{os.getpid()}.tmp.npy"
        np.save(tmp, array)
        os.replace(tmp, path)
        return array
    return np.load(path)


# --- writing split datasets ------------------------------------------------------------------


def write_split_dataset(folder: Path, array: np.ndarray, time_points_per_file: int,
                        variant: str) -> Path:
    """Split ``array`` along time into ``0000.h5``... the way flammkuchen/PyTables write them."""
    import tables

    complib = VARIANTS[variant][0]
    folder = Path(folder)
    T = array.shape[0]
    block_shape = (time_points_per_file,) + tuple(array.shape[1:])
    if complib == "writer":
        from split_dataset import save_to_split_dataset

        save_to_split_dataset(array, folder, block_size=block_shape,
                              resolution=[1.0, 1.0, 0.6, 0.6][-array.ndim:])
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    for i, t0 in enumerate(range(0, T, time_points_per_file)):
        block = np.ascontiguousarray(array[t0 : t0 + time_points_per_file])
        with tables.open_file(str(folder / f"{i:04d}.h5"), mode="w") as handle:
            if complib is None:
                handle.create_array(handle.root, "stack_4D", obj=block)
            else:
                filters = tables.Filters(complevel=9, complib=complib, shuffle=True)
                handle.create_carray(handle.root, "stack_4D", obj=block, filters=filters)
    ndim = array.ndim
    metadata = dict(
        shape_full=list(array.shape),
        shape_block=list(block_shape),
        crop_start=[0] * ndim,
        crop_end=[0] * ndim,
        padding=[0] * ndim,
        resolution=[1.0, 1.0, 0.6, 0.6][-ndim:],
        axis_order="tzyx"[-ndim:],
    )
    (folder / "stack_metadata.json").write_text(json.dumps(metadata))
    return folder


def dataset_path(shape: tuple[int, ...], variant: str, time_points_per_file: int,
                 seed: int = SEED, array: np.ndarray | None = None) -> Path:
    """The cached split dataset folder, written on first use."""
    folder = cache_dir(shape, seed) / f"{variant}_tpf{time_points_per_file}"
    if (folder / ".complete").is_file():
        return folder
    if array is None:
        array = load_array(shape, seed)
    tmp = folder.with_name(folder.name + f".{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    write_split_dataset(tmp, array, time_points_per_file, variant)
    for path in tmp.iterdir():  # flush so that cold-cache runs can drop the pages
        with open(path, "rb+") as handle:
            os.fsync(handle.fileno())
    (tmp / ".complete").write_text("")
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)
    return folder


def block_files(folder: Path) -> list[Path]:
    return sorted(p for p in Path(folder).glob("[0-9]*.h5"))


def stored_bytes(folder: Path) -> tuple[int, int]:
    """(stored chunk bytes, decoded bytes) over all block files, from the HDF5 chunk index."""
    import h5py

    stored = decoded = 0
    for path in block_files(folder):
        with h5py.File(path, "r") as handle:
            dset = handle["stack_4D"]
            decoded += dset.size * dset.dtype.itemsize
            if dset.chunks is None:
                stored += dset.size * dset.dtype.itemsize
            else:
                sizes = []
                dset.id.chunk_iter(lambda info: sizes.append(info.size))
                stored += sum(sizes)
    return stored, decoded


def compression_summary(shape: tuple[int, ...], folder: Path, seed: int = SEED) -> dict:
    """Compression ratio of the whole dataset and of the image-like part (noise volume excluded)."""
    import h5py

    stored, decoded = stored_bytes(folder)
    noise_t = noise_time_point(shape)
    image_stored = image_decoded = 0
    for path in block_files(folder):
        with h5py.File(path, "r") as handle:
            dset = handle["stack_4D"]
            if dset.chunks is None:
                continue
            infos = []
            dset.id.chunk_iter(lambda info: infos.append((info.chunk_offset, info.size)))
            tpf = json.loads((folder / "stack_metadata.json").read_text())["shape_block"][0]
            t_base = int(path.stem) * tpf
            chunk_bytes = int(np.prod(dset.chunks)) * dset.dtype.itemsize
            for origin, size in infos:
                t_lo, t_hi = t_base + origin[0], t_base + origin[0] + dset.chunks[0]
                if t_lo <= noise_t < t_hi:
                    continue
                image_stored += size
                image_decoded += chunk_bytes
    return dict(
        stored=stored,
        decoded=decoded,
        ratio=decoded / stored if stored else float("nan"),
        image_ratio=image_decoded / image_stored if image_stored else 1.0,
    )


def prepare(size: str | None = None, variants=None, tpfs=TIME_POINTS_PER_FILE, seed: int = SEED,
            verbose: bool = True) -> tuple[np.ndarray, dict[tuple[str, int], Path]]:
    """Generate (or reuse) the array and every requested dataset variant."""
    size = bench_size(size)
    shape = SIZES[size]
    variants = tuple(variants or DEFAULT_VARIANTS[size])
    start = time.perf_counter()
    array = load_array(shape, seed)
    paths = {}
    for variant in variants:
        for tpf in tpfs:
            paths[(variant, tpf)] = dataset_path(shape, variant, tpf, seed, array)
    if verbose:
        print(f"data: shape {shape} ({array.nbytes / 1e9:.2f} GB) in {cache_dir(shape, seed)} "
              f"ready in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    return array, paths


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", choices=sorted(SIZES), default=None)
    parser.add_argument("--variants", default=None, help="comma-separated: " + ",".join(VARIANTS))
    args = parser.parse_args(argv)
    size = bench_size(args.size)
    variants = args.variants.split(",") if args.variants else None
    array, paths = prepare(size, variants)
    shape = SIZES[size]
    print(f"shape {shape}, {array.nbytes / 1e6:.1f} MB, noise volume at t={noise_time_point(shape)}")
    for (variant, tpf), folder in paths.items():
        summary = compression_summary(shape, folder)
        print(f"{variant:6s} tpf={tpf:<3d} stored {summary['stored'] / 1e6:8.1f} MB  "
              f"ratio {summary['ratio']:.2f}x (image-like part {summary['image_ratio']:.2f}x)  "
              f"{folder}")


if __name__ == "__main__":
    main()
