"""A block file's chunk index, filled in as reads need it.

Indexing every chunk of a file with h5py's ``chunk_iter`` costs about 2 us per chunk (0.4 ms
for a 200-chunk file), paid by the first read of each file: a viewer stepping into a new file
pays it for a plane that needs 2-4 chunks. Looking up one chunk costs about 5 us. So the first
reads of a file look up only their chunks, and the whole index is built at once as soon as a
read needs many of them (bulk reads never look chunks up one by one).

A partial index outlives its file's closing (``detached``): a pixel's trace through more
files than the file cache keeps open looks up one chunk in each, and opening every file again
to read its layout cost 0.6 ms a file; the detached index opens its file in h5py only when a
read needs a chunk it does not know yet (0.13 ms), for that read alone.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from .errors import BlockFileError

UNKNOWN = -2  # chunk_offset of a chunk not looked up yet (-1: never written)
LOOKUPS_PER_READ = 16  # more chunks missing in one read: index the whole file
LOOKUP_SHARE = 4  # or once 1 / LOOKUP_SHARE of the file's chunks were looked up singly


def index_all_chunks(path, dataset_id, chunk_shape, grid, shape, offsets, sizes, masks) -> None:
    """Fill the tables of every chunk from one ``chunk_iter`` pass (unwritten chunks: -1).

    The tables are built aside and copied in at the end, offsets last: other threads may be
    reading chunks looked up earlier, whose entries must never change on the way (they are
    copied over with the same values). A chunk index that names chunks outside the dataset,
    off the chunk grid or twice is corrupt (a flipped B-tree key): ``BlockFileError``.
    """
    records: list[tuple[tuple[int, ...], int, int, int]] = []

    def collect(info) -> None:
        records.append((info.chunk_offset, info.filter_mask, info.byte_offset, info.size))

    dataset_id.chunk_iter(collect)
    new_offsets = np.full(len(offsets), -1, dtype=np.int64)
    new_sizes = np.zeros(len(offsets), dtype=np.int64)
    new_masks = np.zeros(len(offsets), dtype=np.int64)
    if records:
        ndim = len(chunk_shape)
        try:
            origins = np.asarray([r[0] for r in records], dtype=np.int64).reshape(-1, ndim)
            byte_offsets = np.asarray([r[2] for r in records], dtype=np.int64)
            stored_sizes = np.asarray([r[3] for r in records], dtype=np.int64)
        except (OverflowError, ValueError) as error:
            raise BlockFileError(f"{path}: the chunk index is corrupt: {error}") from error
        chunk = np.asarray(chunk_shape, dtype=np.int64)
        outside = (
            (origins < 0) | (origins >= np.asarray(shape, dtype=np.int64)) | (origins % chunk != 0)
        )
        bad = np.flatnonzero(outside.any(axis=1) | (byte_offsets < 0) | (stored_sizes < 0))
        if bad.size:
            raise BlockFileError(
                f"{path}: the chunk index is corrupt: it lists a chunk at {tuple(origins[bad[0]])} "
                f"(byte {byte_offsets[bad[0]]}, {stored_sizes[bad[0]]} bytes) in a dataset of "
                f"shape {tuple(shape)} with chunks {tuple(chunk_shape)}"
            )
        # C-order strides of the chunk grid, in plain ints: np.prod per axis cost half of
        # indexing a file of 2 chunks (every file of a 10,000-file recording is one)
        strides = [1] * ndim
        for axis in range(ndim - 2, -1, -1):
            strides[axis] = strides[axis + 1] * int(grid[axis + 1])
        linear = (origins // chunk) @ np.asarray(strides, dtype=np.int64)
        if np.unique(linear).size != linear.size:
            raise BlockFileError(f"{path}: the chunk index is corrupt: it lists a chunk twice")
        new_masks[linear] = [r[1] for r in records]
        new_offsets[linear] = byte_offsets
        new_sizes[linear] = stored_sizes
    masks[:] = new_masks
    sizes[:] = new_sizes
    offsets[:] = new_offsets


# Opens the file of a detached index again: an open stack (``dataset_id``, ``close()``), or
# raises BlockFileError if the path no longer names the file version the index describes.
Reopen = Callable[[], Any]


class LazyChunkIndex:
    """Fills in a file's chunk tables through an h5py handle on it (an open stack:
    ``dataset_id``, ``close()``), held until every chunk is known or ``close``; a ``detached``
    copy holds none and opens the file again for the calls that look chunks up."""

    def __init__(self, path: Path, handle, chunk_shape, grid, shape, offsets, sizes, masks):
        self.path = path
        self._handle = handle
        self._chunk_shape = tuple(chunk_shape)
        self._grid = tuple(grid)
        self._shape = tuple(shape)
        self._offsets, self._sizes, self._masks = offsets, sizes, masks
        self._looked_up = 0
        self._lock = threading.Lock()
        self._reopen: Reopen | None = None  # a detached index's way back to its file
        self.complete = False
        offsets[:] = UNKNOWN

    @property
    def holds_file(self) -> bool:
        """Whether an h5py handle (a descriptor) is held between calls."""
        return self._handle is not None

    def detached(self, reopen: Reopen) -> LazyChunkIndex:
        """This index over the same tables, for the file's next opening once this one
        closes: it holds no file, and opens it with ``reopen`` (that file version) only while
        a call looks chunks up. Both may fill the tables meanwhile: an entry only ever goes
        from UNKNOWN to the one value this file version has, offset last."""
        twin = copy.copy(self)  # the same tables; the count of lookups read without the lock
        twin._handle, twin._lock, twin._reopen = None, threading.Lock(), reopen
        return twin

    def ensure(self, chunks: np.ndarray) -> None:
        """Make the byte ranges of the chunks ``chunks`` (linear indices) known."""
        # Offsets are written last (see index_all_chunks): a known offset is a whole entry, so
        # the usual case, a file's next frame needing chunks looked up before, takes no lock.
        if self.complete or self._offsets[chunks].min(initial=0) > UNKNOWN:
            return
        with self._lock:
            if self.complete:
                return
            missing = np.unique(chunks[self._offsets[chunks] == UNKNOWN])
            if not missing.size:
                return
            share = len(self._offsets) // LOOKUP_SHARE
            with self._file_open() as dataset_id:
                if missing.size > LOOKUPS_PER_READ or self._looked_up + missing.size > share:
                    self._index_all(dataset_id)
                    return
                self._looked_up += missing.size
                try:
                    for linear in missing.tolist():
                        self._look_up(dataset_id, linear)
                except BlockFileError:
                    raise
                except (OSError, RuntimeError, ValueError) as error:
                    raise BlockFileError(f"{self.path}: cannot index a chunk: {error}") from error

    def ensure_all(self) -> None:
        with self._lock:
            if not self.complete:
                with self._file_open() as dataset_id:
                    self._index_all(dataset_id)

    @contextmanager
    def _file_open(self) -> Iterator[Any]:
        """The file's dataset, open in h5py for the block (lock held): through the handle
        held, else (detached) opened again and closed after."""
        if self._handle is not None:
            yield self._handle.dataset_id
            return
        if self._reopen is None:
            raise BlockFileError(f"{self.path}: the file was closed before it was indexed")
        handle = self._reopen()
        try:
            yield handle.dataset_id
        finally:
            handle.close()

    def after_fork_in_child(self) -> None:
        self._lock = threading.Lock()  # a thread of the parent may have held it

    def close(self) -> None:
        with self._lock:
            self._reopen = None  # its file is closed for good: no more lookups
            self._close_handle()

    def _close_handle(self) -> None:
        handle, self._handle = self._handle, None
        if handle is not None:
            handle.close()

    def _look_up(self, dataset_id, linear: int) -> None:
        coords = np.unravel_index(linear, self._grid)
        origin = tuple(int(c) * size for c, size in zip(coords, self._chunk_shape))
        info = dataset_id.get_chunk_info_by_coord(origin)
        if info.byte_offset is None:  # never written: the fill value
            self._offsets[linear], self._sizes[linear], self._masks[linear] = -1, 0, 0
        elif tuple(info.chunk_offset) != origin or info.byte_offset < 0 or info.size < 0:
            raise BlockFileError(
                f"{self.path}: the chunk index is corrupt: looking up the chunk at {origin} "
                f"found one at {tuple(info.chunk_offset)}"
            )
        else:
            self._masks[linear] = info.filter_mask
            self._sizes[linear] = info.size
            self._offsets[linear] = info.byte_offset

    def _index_all(self, dataset_id) -> None:
        try:
            index_all_chunks(
                self.path,
                dataset_id,
                self._chunk_shape,
                self._grid,
                self._shape,
                self._offsets,
                self._sizes,
                self._masks,
            )
        except BlockFileError:
            raise
        except (OSError, RuntimeError) as error:
            raise BlockFileError(f"{self.path}: cannot index the chunks: {error}") from error
        self.complete = True
        self._reopen = None
        self._close_handle()
