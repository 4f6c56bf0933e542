"""Streaming an array out region by region: chunk-aligned regions of bounded size, read through
the source's fast reader and handed to a writer on worker threads, a few at a time."""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

from ..threads import effective_threads

Region = tuple[slice, ...]
# Bytes per region: large enough that per-call overheads vanish, small enough that two
# regions per worker stay a small part of memory.
REGION_BYTES = 32 * 2**20


def region_shape(
    shape: tuple[int, ...], chunks: tuple[int, ...], itemsize: int, limit: int | None = None
) -> tuple[int, ...]:
    """A region shape that tiles ``shape`` in whole ``chunks`` (the last ones cut short) and
    holds at most ``limit`` bytes where a chunk allows: axes are narrowed from the first on,
    so a region is whole along every axis after the one it splits (C-contiguous in the
    array, which file formats written in order rely on). ``limit``: ``REGION_BYTES``."""
    limit = REGION_BYTES if limit is None else limit
    region = list(shape)
    for axis, chunk in enumerate(chunks):
        per_index = itemsize * int(np.prod(region[:axis] + [1] + region[axis + 1 :]))
        if per_index * region[axis] <= limit:
            break
        fits = max(1, limit // max(per_index, 1))
        region[axis] = min(region[axis], max(chunk, fits // chunk * chunk))
        if per_index * region[axis] <= limit:
            break
    return tuple(region)


def regions(shape: tuple[int, ...], region: tuple[int, ...]) -> list[Region]:
    """The regions of shape ``region`` that tile ``shape``, in C order."""
    starts = [range(0, size, step) for size, step in zip(shape, region)]
    return [
        tuple(slice(s, min(s + step, size)) for s, step, size in zip(start, region, shape))
        for start in itertools.product(*starts)
    ]


def read_region(
    data: Any, region: Region, threads: int = 1, out: np.ndarray | None = None
) -> np.ndarray:
    """``data[region]`` (into ``out`` if given) through the fast reader where there is one
    (datasets, views, stacks of channels), else through NumPy-style slicing."""
    read = getattr(data, "read", None)
    if callable(read):
        return np.asarray(read(region, out=out, threads=threads))
    if out is None:
        return np.asarray(data[region])
    out[...] = data[region]
    return out


def stream(
    data: Any,
    parts: list[Region],
    write: Callable[[Region, np.ndarray], None] | None,
    threads: int | None = None,
    progress: bool = False,
    description: str = "exporting",
    out: Callable[[Region], np.ndarray] | None = None,
) -> None:
    """Read each region of ``data`` and ``write`` it (or read it straight into ``out(region)``,
    for outputs that are arrays in memory or memory-mapped), on ``threads`` workers (each reads with
    one thread: the workers are the parallelism), at most two regions per worker in flight.
    ``write`` is called concurrently: the regions are disjoint, so writers that store them
    in separate chunks or bytes need no lock."""
    workers = effective_threads(threads)
    bar = None
    if progress:
        from tqdm import tqdm

        itemsize = np.dtype(data.dtype).itemsize
        total = int(np.prod(np.shape(data))) * itemsize
        bar = tqdm(total=total, desc=description, unit="B", unit_scale=True)

    def task(region: Region) -> int:
        block = read_region(data, region, out=None if out is None else out(region))
        if write is not None:
            write(region, block)
        return block.nbytes

    pending: deque[Future] = deque()
    try:
        if workers == 1:  # inline: no pool to start
            for region in parts:
                done = task(region)
                if bar is not None:
                    bar.update(done)
            return
        with ThreadPoolExecutor(workers, thread_name_prefix="split_dataset_export") as pool:
            for region in parts:
                while len(pending) >= 2 * workers:
                    _finish(pending.popleft(), bar)
                pending.append(pool.submit(task, region))
            while pending:
                _finish(pending.popleft(), bar)
    except BaseException:
        for future in pending:
            future.cancel()
        raise
    finally:
        if bar is not None:
            bar.close()


def _finish(future: Future, bar: Any) -> None:
    done = future.result()
    if bar is not None:
        bar.update(done)


def in_order(
    data: Any, parts: list[Region], threads: int | None = None, progress: bool = False
) -> Iterator[np.ndarray]:
    """The regions' data in order, the next one read in the background while the caller
    writes the current one (for formats written front to back)."""
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(parts), desc="exporting", unit="region")
    reads = max(1, effective_threads(threads))
    try:
        with ThreadPoolExecutor(1, thread_name_prefix="split_dataset_export") as pool:
            ahead: deque[Future] = deque()
            for region in parts:
                ahead.append(pool.submit(read_region, data, region, reads))
                if len(ahead) > 1:
                    yield ahead.popleft().result()
                    if bar is not None:
                        bar.update()
            while ahead:
                yield ahead.popleft().result()
                if bar is not None:
                    bar.update()
    finally:
        if bar is not None:
            bar.close()
