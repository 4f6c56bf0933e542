"""Where the chunks of a C-order array lie in its bytes, when each chunk is one byte range.

That is the case when a chunk is 1 along its leading axes, whole along its trailing axes and
free along one axis between them, e.g. ``(1, rows, width)`` of a ``(z, height, width)`` block:
the reader's virtual chunks of contiguous datasets (``file_layout``), the CRCs of contiguous
blocks (``checksums``) and the writer's compression of row-band chunks (``block_file``) all
rest on it.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np


def chunk_grid(shape: Sequence[int], chunk: Sequence[int]) -> tuple[int, ...]:
    """Chunks along each axis (the last one of an axis may be partial)."""
    return tuple(-(-int(s) // int(c)) for s, c in zip(shape, chunk))


def chunks_are_byte_ranges(shape: Sequence[int], chunk: Sequence[int]) -> bool:
    """Whether every chunk of a C-order array of ``shape`` is one contiguous byte range."""
    axis = next((a for a, c in enumerate(chunk) if c != 1), len(chunk))
    return all(int(c) == int(s) for c, s in zip(chunk[axis + 1 :], shape[axis + 1 :]))


def chunk_byte_ranges(
    shape: Sequence[int], chunk: Sequence[int], itemsize: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(origins, starts, lengths)`` of every chunk in C order over the chunk grid: its first
    element's index (one row per chunk) and its byte range in the array's C-order bytes.

    Only for chunkings where ``chunks_are_byte_ranges``; a chunk at the edge of its free axis
    is shorter (its first bytes are those of the full-size chunk it is stored as). The arrays
    are read-only and shared: every block of a dataset has the same, and working them out
    took 150 us of a raw file's first read (its virtual chunks), or of every block written.
    """
    return _byte_ranges(tuple(int(s) for s in shape), tuple(int(c) for c in chunk), int(itemsize))


@lru_cache(maxsize=16)
def _byte_ranges(
    shape: tuple[int, ...], chunk: tuple[int, ...], itemsize: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    grid = chunk_grid(shape, chunk)
    count = int(np.prod(grid))
    shape_array, chunk_array = np.asarray(shape, np.int64), np.asarray(chunk, np.int64)
    origins = np.stack(np.unravel_index(np.arange(count), grid), axis=1).astype(np.int64)
    origins = origins.reshape(count, len(grid)) * chunk_array
    element_strides = np.asarray(
        [int(np.prod(shape[a + 1 :])) for a in range(len(shape))], dtype=np.int64
    )
    starts = (origins @ element_strides) * itemsize
    extents = np.minimum(origins + chunk_array, shape_array) - origins
    lengths = np.prod(extents, axis=1) * itemsize
    for table in (origins, starts, lengths):
        table.setflags(write=False)
    return origins, starts, lengths
