"""Write split datasets for tests with plain h5py, choosing chunking and filters freely.

Independent of the package's own writer, so reader tests do not depend on it.
"""

from __future__ import annotations

import json
from itertools import product
from pathlib import Path

import h5py
import hdf5plugin
import numpy as np

COMPRESSIONS = ("blosc", "blosc:lz4", "blosc:zstd", "zlib", "gzip", "raw", "contiguous", "lzf")


def _filter_kwargs(compression: str, dtype: np.dtype) -> dict:
    if compression.startswith("blosc"):
        cname = compression.split(":")[1] if ":" in compression else "blosclz"
        return dict(hdf5plugin.Blosc(cname=cname, clevel=5, shuffle=hdf5plugin.Blosc.SHUFFLE))
    if compression == "zlib":
        return dict(compression="gzip", compression_opts=9, shuffle=True)
    if compression == "gzip":
        return dict(compression="gzip", compression_opts=4)
    if compression == "lzf":
        return dict(compression="lzf")
    return {}


def write_split_dataset(
    folder: Path,
    array: np.ndarray,
    block_shape: tuple[int, ...],
    chunk_shape: tuple[int, ...] | None = None,
    compression: str = "blosc",
    key: str | None = None,
    metadata_extra: dict | None = None,
    padding: tuple[int, ...] | None = None,
) -> Path:
    """``array`` split into blocks of ``block_shape`` (last ones truncated), files 0000.h5...

    With ``padding``, each file also holds up to ``padding`` elements after its block (the
    0.4.x overlap): ``ceil((size - padding) / block)`` blocks along an axis, the last one
    holding everything to the end. (The rule is written out here, independently of the
    package's ``blocks`` module, so that a mistake there cannot hide in both.)
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    key = key or f"stack_{array.ndim}D"
    padding = tuple(padding) if padding is not None else (0,) * array.ndim
    grid = [max(1, -(-(s - p) // b)) for s, b, p in zip(array.shape, block_shape, padding)]
    for linear, index in enumerate(product(*(range(n) for n in grid))):
        region = tuple(
            slice(i * b, i * b + b + p) for i, b, p in zip(index, block_shape, padding)
        )
        block = np.ascontiguousarray(array[region])
        with h5py.File(folder / f"{linear:04d}.h5", "w") as handle:
            if compression == "contiguous" or block.size == 0:
                handle.create_dataset(key, data=block)
            else:
                chunks = None
                if chunk_shape is not None:
                    chunks = tuple(max(1, min(c, s)) if s else 1 for c, s in zip(chunk_shape, block.shape))
                handle.create_dataset(
                    key, data=block, chunks=chunks or True, **_filter_kwargs(compression, block.dtype)
                )
    metadata = dict(
        shape_full=list(array.shape),
        shape_block=list(block_shape),
        crop_start=[0] * array.ndim,
        crop_end=[0] * array.ndim,
        padding=list(padding),
    )
    metadata.update(metadata_extra or {})
    (folder / "stack_metadata.json").write_text(json.dumps(metadata))
    return folder


def check_reads_from_threads(ds, array, random_key, n_threads: int, reads: int,
                             threads: int | None = None) -> None:
    """``n_threads`` Python threads read ``reads`` seeded random keys (``random_key(rng)``) from
    ``ds`` at once, each with ``threads`` reader threads; every result must equal NumPy's."""
    import threading

    errors: list[AssertionError] = []

    def worker(seed: int) -> None:
        rng = np.random.default_rng(seed)
        try:
            for _ in range(reads):
                key = random_key(rng)
                np.testing.assert_array_equal(ds.read(key, threads=threads), array[key])
        except AssertionError as error:  # reported below, in the test's thread
            errors.append(error)

    workers = [threading.Thread(target=worker, args=(seed,)) for seed in range(n_threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    assert not errors, errors[0]
