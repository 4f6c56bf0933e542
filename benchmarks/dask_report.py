"""The mean over time of a recording through dask, against reading it whole, in one run.

    python benchmarks/dask_report.py --size full --out benchmarks/RESULTS_dask.md

Every way computes ``mean(axis=0)`` of the same blosc recording (1 time point per file, the
page cache hot), ``--reps`` times each, interleaved:

- ``ds[:].mean(0)``: the whole array read at once (all cores decode), then NumPy's mean;
- ``ds.to_dask().mean(0)`` on dask's threaded scheduler (chunks = whole blocks grouped up to
  dask's chunk size, one reader thread per task);
- ``da.from_array(ds).mean(0)`` with dask's default chunks (what users wrote by hand);
- ``ds.to_dask().mean(0)`` on a ``LocalCluster`` of 2 worker processes with 1 thread each.

Logged per way: wall time (median, min), the ratio to ``ds[:].mean(0)``, and CPU time / wall
time summed over the processes that did the work (at most the number of cores: no
oversubscription). Targets: ``to_dask`` on threads within 1.3x of ``ds[:].mean(0)``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import data  # noqa: E402
from machine import machine_info  # noqa: E402

from split_dataset import SplitDataset  # noqa: E402


def _cpu_seconds() -> float:
    return time.process_time()


def timed(function, reps: int, cpu=_cpu_seconds) -> dict:
    walls, cpus = [], []
    for _ in range(reps):
        cpu0, wall0 = cpu(), time.perf_counter()
        result = function()
        walls.append(time.perf_counter() - wall0)
        cpus.append(cpu() - cpu0)
        del result
    return dict(median=float(np.median(walls)), min=float(min(walls)),
                cpu_per_wall=float(np.sum(cpus) / np.sum(walls)))


def run(size: str, reps: int) -> list[str]:
    import dask
    import dask.array as da
    from distributed import Client, LocalCluster

    array, paths = data.prepare(size, variants=("blosc",), tpfs=(1,))
    folder = paths[("blosc", 1)]
    ds = SplitDataset(folder)
    expected = array.mean(axis=0)
    del array
    ds[:]  # files indexed, page cache hot

    ways = {
        "ds[:].mean(0)": lambda: ds[:].mean(axis=0),
        "ds.to_dask().mean(0), threads": lambda: ds.to_dask().mean(axis=0).compute(
            scheduler="threads"),
        "da.from_array(ds).mean(0), threads": lambda: da.from_array(ds).mean(axis=0).compute(
            scheduler="threads"),
    }
    results = {}
    for name, function in ways.items():
        np.testing.assert_allclose(function(), expected, rtol=1e-6)  # checked once, untimed
        results[name] = timed(function, reps)
    chunks = da.from_array(ds).chunks
    ours = ds.to_dask().chunks
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:

        def cluster_cpu() -> float:
            return sum(client.run(time.process_time).values()) + time.process_time()

        def on_cluster():
            return ds.to_dask().mean(axis=0).compute()

        np.testing.assert_allclose(on_cluster(), expected, rtol=1e-6)
        results["ds.to_dask().mean(0), LocalCluster 2 processes"] = timed(
            on_cluster, reps, cpu=cluster_cpu)
    base = results["ds[:].mean(0)"]["median"]
    info = machine_info()
    lines = [
        "# Mean over time through dask",
        "",
        f"`benchmarks/dask_report.py --size {size} --reps {reps}`; {info['date']}; "
        f"{info['cpu']}, {info['affinity']} cores, load average {os.getloadavg()[0]:.2f}; "
        f"Python {info['python']}, numpy {info['numpy']}, dask {dask.__version__}.",
        "",
        f"Recording: {ds.shape} {ds.dtype} ({ds.nbytes / 1e9:.2f} GB), blosc (PyTables' "
        f"default), 1 time point per file, page cache hot. `da.from_array(ds)` chose chunks "
        f"{tuple(c[0] for c in chunks)}; `to_dask()` chose {tuple(c[0] for c in ours)} (whole "
        f"blocks of {ds.shape_block} grouped up to dask's chunk size).",
        "",
        "| way | median s | min s | vs ds[:].mean(0) | CPU / wall |",
        "|---|---|---|---|---|",
    ]
    for name, r in results.items():
        lines.append(f"| {name} | {r['median']:.3f} | {r['min']:.3f} | "
                     f"{r['median'] / base:.2f}x | {r['cpu_per_wall']:.2f} |")
    lines += ["", f"Target: `to_dask()` on threads within 1.3x of `ds[:].mean(0)`: "
              f"{results['ds.to_dask().mean(0), threads']['median'] / base:.2f}x; CPU / wall "
              f"at most {info['affinity']} (cores) for every way."]
    return lines


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", choices=sorted(data.SIZES), default="small")
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    lines = run(args.size, args.reps)
    text = "\n".join(lines) + "\n"
    if args.out:
        Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
