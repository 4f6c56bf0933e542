"""Writing an array as a ``.npy`` file: a memory map of the file filled region by region in
parallel, so arrays larger than memory export too."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from . import regions as regions_


def write_npy(
    data: Any, path: str | Path, *, threads: int | None = None, progress: bool = False
) -> None:
    """Write ``data`` to ``path`` in the ``.npy`` format (``np.load`` reads it, memory-mapped
    or not). Regions are whole along the trailing axes, so each is one contiguous byte range of
    the file: workers write disjoint bytes."""
    shape = tuple(int(s) for s in data.shape)
    dtype = np.dtype(data.dtype)
    target = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape)
    try:
        chunks = (1,) * len(shape)
        region = regions_.region_shape(shape, chunks, dtype.itemsize)
        parts = regions_.regions(shape, region)
        regions_.stream(data, parts, None, threads, progress, "npy", out=target.__getitem__)
        target.flush()
    finally:
        del target
