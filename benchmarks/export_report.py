"""Exporting a recording to OME-Zarr against ``da.from_array(ds).to_zarr()``, in one run.

    python benchmarks/export_report.py --size full --out benchmarks/RESULTS_export.md

The recording is the benchmarks' blosc variant (PyTables' default, 1 time point per file), its
files in the page cache (read once before timing). Ways, interleaved repetition by repetition:

- ``export(ds, "x.ome.zarr")``: NGFF 0.5, chunks of one plane, blosc zstd level 1 + shuffle,
  the default threads; ``durable=False`` (like every other way: no fsync) and, beside it, the
  default ``durable=True`` (every chunk file fsynced before the rename that publishes it);
- ``da.from_array(ds).to_zarr(...)``: what users wrote by hand, dask's and zarr's defaults
  (dask chunks = the dataset's blocks, zarr 3's default zstd codec), no metadata at all;
- the same with our chunks and codec (``chunks=(1, 1, Y, X)``, blosc zstd 1 + shuffle): the
  difference that is not the codec's;
- ``export(..., pyramid=2)``, and ``.npy`` against ``np.save(path, ds[:])``, fewer repetitions.

Logged per way: wall time (median, min), MB/s of raw data, the ratio to ``export``, process
CPU time / wall time (at most the cores), the bytes stored. Every output is checked once
against the array, untimed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import data  # noqa: E402
from machine import machine_info  # noqa: E402

from split_dataset import SplitDataset, export  # noqa: E402


def folder_bytes(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def run(size: str, reps: int, few: int, workdir: Path) -> list[str]:
    import dask
    import dask.array as da
    import zarr
    from zarr.codecs import BloscCodec, BloscShuffle

    array, paths = data.prepare(size, variants=("blosc",), tpfs=(1,))
    ds = SplitDataset(paths[("blosc", 1)])
    ds[:]  # files indexed, page cache hot
    plane = (1,) * (ds.ndim - 2) + ds.shape[-2:]
    ours_codec = BloscCodec(cname="zstd", clevel=1, shuffle=BloscShuffle.shuffle)

    def fresh(name: str) -> Path:
        target = workdir / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
        return target

    ways = {
        "export(ds, 'x.ome.zarr'), durable=False": (
            lambda: export(ds, fresh("a.ome.zarr"), durable=False), "a.ome.zarr", reps),
        "da.from_array(ds).to_zarr() (dask and zarr defaults)": (
            lambda: da.from_array(ds).to_zarr(str(fresh("b.zarr"))), "b.zarr", reps),
        "export(ds, 'x.ome.zarr'), durable=True (default)": (
            lambda: export(ds, fresh("c.ome.zarr")), "c.ome.zarr", reps),
        "da.from_array(ds, chunks=plane).to_zarr(blosc zstd 1)": (
            lambda: da.from_array(ds, chunks=plane).to_zarr(
                str(fresh("d.zarr")), compressors=ours_codec), "d.zarr", reps),
        "export(ds, 'x.ome.zarr', pyramid=2), durable=False": (
            lambda: export(ds, fresh("e.ome.zarr"), pyramid=2, durable=False), "e.ome.zarr",
            few),
        "export(ds, 'x.npy'), durable=False": (
            lambda: export(ds, fresh("f.npy"), durable=False), "f.npy", few),
        "np.save('x.npy', ds[:])": (lambda: np.save(fresh("g.npy"), ds[:]), "g.npy", few),
    }
    for name, (function, output, _) in ways.items():  # checked once, untimed
        function()
        target = workdir / output
        if output.endswith(".npy"):
            read = np.load(target, mmap_mode="r")
        else:
            read = zarr.open_array(target / "0" if output.endswith("ome.zarr") else target)
        for t in range(0, ds.shape[0], 10):
            np.testing.assert_array_equal(read[t : t + 10], array[t : t + 10], err_msg=name)
    stored = {name: folder_bytes(workdir / output) for name, (_, output, _) in ways.items()}
    del array
    walls: dict[str, list[float]] = {name: [] for name in ways}
    cpus: dict[str, list[float]] = {name: [] for name in ways}
    for rep in range(reps):
        for name, (function, _, count) in ways.items():
            if rep >= count:
                continue
            cpu0, wall0 = time.process_time(), time.perf_counter()
            function()
            walls[name].append(time.perf_counter() - wall0)
            cpus[name].append(time.process_time() - cpu0)
    info = machine_info()
    base = float(np.median(walls["export(ds, 'x.ome.zarr'), durable=False"]))
    raw = ds.nbytes
    lines = [
        "# Export to OME-Zarr",
        "",
        f"`benchmarks/export_report.py --size {size} --reps {reps} --few {few}`; "
        f"{info['date']}; {info['cpu']}, {info['affinity']} cores (shared: load average "
        f"{os.getloadavg()[0]:.2f} at the end), default threads {info['default_threads']}; "
        f"Python {info['python']}, numpy {info['numpy']}, zarr {zarr.__version__}, "
        f"dask {dask.__version__}.",
        "",
        f"Recording: {ds.shape} {ds.dtype} ({raw / 1e9:.2f} GB), blosc (PyTables' default), 1 "
        f"time point per file, page cache hot; outputs written to {workdir.parent} (the page "
        f"cache absorbs them unless durable). `da.from_array(ds)` chunks: "
        f"{tuple(c[0] for c in da.from_array(ds).chunks)}; export chunks: {plane}.",
        "",
        "| way | reps | median s | min s | MB/s | vs export | CPU / wall | stored MB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in ways:
        median, low = float(np.median(walls[name])), float(min(walls[name]))
        lines.append(
            f"| {name} | {len(walls[name])} | {median:.2f} | {low:.2f} | "
            f"{raw / 1e6 / median:.0f} | {median / base:.2f}x | "
            f"{sum(cpus[name]) / sum(walls[name]):.2f} | {stored[name] / 1e6:.0f} |"
        )
    default = float(np.median(walls["da.from_array(ds).to_zarr() (dask and zarr defaults)"]))
    same = float(np.median(walls["da.from_array(ds, chunks=plane).to_zarr(blosc zstd 1)"]))
    lines += [
        "",
        f"`da.from_array(ds).to_zarr()` takes {default / base:.2f}x the time of `export` "
        f"(and writes no metadata); with export's chunks and codec {same / base:.2f}x. "
        f"Ratios are of medians measured in the same run; CPU / wall above 1 is parallel work.",
    ]
    return lines


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", choices=sorted(data.SIZES), default="small")
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--few", type=int, default=3, help="repetitions of the side ways")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="export_bench_", dir=data.cache_root()) as tmp:
        lines = run(args.size, args.reps, args.few, Path(tmp))
    text = "\n".join(lines) + "\n"
    if args.out:
        Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
