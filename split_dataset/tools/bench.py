"""``split-dataset bench PATH``: the playback and bulk workloads on a user's own dataset.

Every figure is measured in the same run as what it is compared with: plain h5py (files kept
open, ``dset[sel]`` per file, a NumPy copy into the output) and the machine's ceiling for the
very chunks each workload reads (read and decode them with the same decoder on 1 and on all
threads, copying nothing). Selections rotate so that no cache (ours, HDF5's chunk cache)
serves a repetition; "cold" drops the files from the page cache before every read.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from ..dataset import SplitDataset
from ..reader import read_orthogonal
from ..selection import normalize


@dataclass
class Workload:
    name: str
    label: str
    selections: list[Any]


def _distinct(
    rng: np.random.Generator, sizes: tuple[int, ...], count: int
) -> list[tuple[int, ...]]:
    """``count`` index tuples over ``sizes``, without repeats while there are enough."""
    total = int(np.prod(sizes)) if sizes else 1
    flat = rng.permutation(total)[:count] if total >= count else rng.integers(total, size=count)
    return [tuple(int(i) for i in np.unravel_index(f, sizes)) for f in flat]


def workloads(ds: SplitDataset, samples: int, seed: int = 0) -> list[Workload]:
    """Plane and volume latency, a plane over time, a small ROI over time, a stride, a vector.

    Selections never repeat (while the dataset is large enough), so that no chunk cache - HDF5
    keeps 8 MiB per open dataset - serves a repetition. Hot and cold runs take different ones.
    """
    rng = np.random.default_rng(seed)
    shape = ds.shape
    t_count, inner = shape[0], shape[1:-2]
    y, x = shape[-2], shape[-1]
    height, width = max(1, y // 8), max(1, x // 8)
    bulk = max(3, samples // 20)
    picked = min(t_count, 10)
    rois = [
        (slice(None),) + z + (slice(y0, y0 + height), slice(x0, x0 + width))
        for z, (y0, x0) in zip(
            _distinct(rng, inner, 2 * bulk),
            _distinct(rng, (y - height + 1, x - width + 1), 2 * bulk),
        )
    ]
    return [
        Workload("plane", "ds[t, z] (random)", _distinct(rng, (t_count,) + inner, 2 * samples)),
        Workload("volume", "ds[t] (random)", _distinct(rng, (t_count,), 2 * bulk)),
        Workload("zcol", "ds[:, z]", [(slice(None),) + z for z in _distinct(rng, inner, 2 * bulk)]),
        Workload("roi", "ds[:, z, y0:y1, x0:x1]", rois),
        Workload(
            "stride",
            "ds[s::5]",
            [(slice(int(s), None, 5),) for s in rng.permutation(10)[: 2 * bulk] % 5],
        ),
        Workload(
            "fancy",
            f"ds[{picked} unsorted t]",
            [(rng.permutation(t_count)[:picked].tolist(),) for _ in range(2 * bulk)],
        ),
    ]


def drop_page_cache(ds: SplitDataset) -> None:
    for path in ds.files.ravel():
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def _timed(function: Callable[[Any], Any], selections: list[Any], before: Callable[[], None]):
    times, nbytes = [], 0
    for key in selections:
        before()
        started = time.perf_counter()
        result = function(key)
        times.append(time.perf_counter() - started)
        nbytes += np.asarray(result).nbytes
    return np.asarray(times), nbytes


class H5pyBaseline:
    """The plain way: h5py + hdf5plugin, files kept open, one ``dset[sel]`` per file."""

    def __init__(self, ds: SplitDataset) -> None:
        import h5py
        import hdf5plugin  # noqa: F401

        self.ds = ds
        self.handles = [h5py.File(p, "r") for p in ds.files.ravel()]
        self.datasets = [h[ds.data_key] for h in self.handles]

    def read(self, key: Any) -> np.ndarray:
        """Only selections along whole blocks of the first axis, as the workloads make them."""
        ds, block = self.ds, self.ds.shape_block[0]
        index = key[0]
        times = (
            range(*index.indices(ds.shape[0]))
            if isinstance(index, slice)
            else (index if isinstance(index, list) else [index])
        )
        rest = key[1:]
        per_file = int(np.prod(ds.blocks_grid[1:]))
        parts = []
        for t in times:
            if per_file != 1:
                raise NotImplementedError(
                    "the h5py baseline handles datasets split along time only"
                )
            parts.append(self.datasets[t // block][(t % block,) + rest])
        out = np.stack(parts)
        return out if isinstance(index, (slice, list)) else out[0]

    def close(self) -> None:
        for handle in self.handles:
            handle.close()


def ceiling_seconds(ds: SplitDataset, key: Any, threads: int) -> float:
    """Time to read and decode the chunks of ``key`` with nothing copied: the decode ceiling."""
    selection = normalize(key, ds.shape)
    shape = selection.orthogonal_shape
    # decode-only reads write nothing: a zero-strided output of the right shape will do
    nowhere = np.lib.stride_tricks.as_strided(
        np.empty(1, dtype=ds.dtype), shape=shape, strides=(0,) * len(shape)
    )
    started = time.perf_counter()
    read_orthogonal(ds._grid, ds._cache, selection.terms, nowhere, threads, decode_only=True)
    return time.perf_counter() - started


def run_bench(path: str, samples: int = 300, cold: bool = True) -> list[str]:
    ds = SplitDataset(path)
    cores = os.cpu_count() or 1
    thread_counts = sorted({1, cores})
    baseline = H5pyBaseline(ds) if int(np.prod(ds.blocks_grid[1:])) == 1 else None
    lines = [
        f"{ds}",
        f"{cores} cores; load average {os.getloadavg()[0]:.2f}; medians (plane: p50/p99 over "
        f"{samples} distinct planes); ratios measured in this run",
        f"{'workload':<10}{'cache':<6}{'h5py ms':>9}"
        + "".join(f"{f'ours t={n} ms':>13}" for n in thread_counts)
        + f"{'GB/s':>7}{'vs h5py':>9}"
        f"{'% ceiling':>10}",
    ]
    best_threads: dict[int, int] = dict.fromkeys(thread_counts, 0)
    caches = ["hot", "cold"] if cold else ["hot"]
    try:
        for workload in workloads(ds, samples):
            ds.read(workload.selections[0])  # files indexed
            half = len(workload.selections) // 2
            for cache in caches:
                before = (lambda: drop_page_cache(ds)) if cache == "cold" else (lambda: None)
                if cache == "hot":
                    selections = workload.selections[:half]
                else:  # fresh selections, fewer for planes: each cold read costs a disk read
                    selections = workload.selections[half:][: max(20, half // 5)]
                ours = {}
                for n in thread_counts:
                    times, nbytes = _timed(partial(ds.read, threads=n), selections, before)
                    ours[n] = (times, nbytes)
                fastest = min(thread_counts, key=lambda n: np.median(ours[n][0]))
                best_threads[fastest] += 1
                times, nbytes = ours[fastest]
                h5 = None
                if baseline is not None:
                    h5, _ = _timed(baseline.read, selections, before)
                ceiling = []
                for key in selections[: min(len(selections), 30)]:
                    before()
                    ceiling.append(min(ceiling_seconds(ds, key, n) for n in thread_counts))
                percent = 100 * float(np.median(ceiling)) / float(np.median(times))
                stat = (
                    (lambda t: f"{1e3 * np.median(t):.3g}/{1e3 * np.percentile(t, 99):.3g}")
                    if (workload.name == "plane")
                    else (lambda t: f"{1e3 * np.median(t):.3g}")
                )
                lines.append(
                    f"{workload.name:<10}{cache:<6}{stat(h5) if h5 is not None else '-':>9}"
                    + "".join(f"{stat(ours[n][0]):>13}" for n in thread_counts)
                    + f"{nbytes / len(selections) / np.median(times) / 1e9:>7.2f}"
                    + (
                        f"{np.median(h5) / np.median(times):>8.2f}x"
                        if h5 is not None
                        else f"{'-':>9}"
                    )
                    + f"{percent:>9.0f}%"
                )
    finally:
        if baseline is not None:
            baseline.close()
        ds.close()
    served = max(best_threads, key=lambda n: best_threads[n])
    lines.append(f"threads that served best most often: {served}")
    return lines
