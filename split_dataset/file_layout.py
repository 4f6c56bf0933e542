"""Layout of one block file: where its stack dataset's chunks are and how they are encoded.

Learned once per file through h5py (the only place that takes h5py's global lock on the read
path); afterwards a chunk is a byte range of the file that the compiled reader fetches with
``pread`` and decodes itself.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import checksums
from ._ext._chunk_reader import Codec
from .chunk_index import LOOKUPS_PER_READ, LazyChunkIndex, index_all_chunks
from .chunk_ranges import chunk_byte_ranges, chunk_grid, chunks_are_byte_ranges
from .errors import BlockFileError, NoStackError, SplitDatasetError

# HDF5 filter ids.
FILTER_DEFLATE = 1
FILTER_SHUFFLE = 2
FILTER_BLOSC = 32001

# Contiguous datasets are read as a grid of virtual chunks of about this size, so that a plane
# of a large block costs one plane, and big reads still split into parallel tasks. 512 KiB, a
# 512 x 512 uint16 plane in one pread: against 256 KiB, interleaved, raw frames after a
# viewer's 5 ms pause took 0.74-0.96x the time (every syscall costs 25-45 us after a pause on
# this VM), volumes 0.78x, full reads 0.94-0.98x, a plane across time 1.01-1.07x.
VIRTUAL_CHUNK_BYTES = 512 * 1024
# A file's own virtual chunks (those our writer's CRCs are over) are taken only if at least
# this big: a crafted record of tiny chunks would make a table of one entry per element.
MIN_RECORDED_VIRTUAL_CHUNK_BYTES = 4096


_PIPELINES = {
    (): Codec.RAW,
    (FILTER_BLOSC,): Codec.BLOSC,
    (FILTER_DEFLATE,): Codec.DEFLATE,
    (FILTER_SHUFFLE, FILTER_DEFLATE): Codec.SHUFFLE_DEFLATE,
    (FILTER_SHUFFLE,): Codec.SHUFFLE,
}

_FILTER_NAMES = {
    FILTER_DEFLATE: "deflate",
    FILTER_SHUFFLE: "shuffle",
    3: "fletcher32",
    4: "szip",
    5: "nbit",
    6: "scaleoffset",
    32000: "lzf",
    FILTER_BLOSC: "blosc",
    32008: "bitshuffle",
    32015: "zstd",
    32026: "blosc2",
}

_BLOSC_CODECS = {0: "blosclz", 1: "lz4", 2: "lz4hc", 3: "snappy", 4: "zlib", 5: "zstd"}


# Errors h5py raises for a name that is missing, not a dataset, or unreadable.
_H5PY_ERRORS = (KeyError, OSError, ValueError, RuntimeError, TypeError)


def _open_file(path: Path):
    """The file, open read-only through h5py's low-level API: a ``File`` object and its
    root ``Group`` cost about twice as much to make and to close (94 + 55 us against ~50)."""
    import h5py

    try:
        return h5py.h5f.open(os.fsencode(path), h5py.h5f.ACC_RDONLY)
    except _H5PY_ERRORS as error:
        raise BlockFileError(f"{path}: not a readable HDF5 file ({error})") from error


def stack_key(file_id, path: Path) -> str:
    """The name of the array in a block file: the first top-level dataset containing 'stack',
    in the order of its names (h5py's order when it iterates a group)."""
    import h5py

    root = h5py.h5g.open(file_id, b"/")
    try:
        names = list(root)
        for name in names:
            if b"stack" in name and h5py.h5o.get_info(root, name).type == h5py.h5o.TYPE_DATASET:
                return name.decode("utf-8", "surrogateescape")
    finally:
        root.close()
    found = ", ".join(n.decode("utf-8", "replace") for n in names) or "nothing"
    raise NoStackError(f"{path}: no dataset whose name contains 'stack' (found: {found})")


def _open_known(file_id, key: str):
    """The dataset ``key`` if it names one, else None (a group, a missing name)."""
    import h5py

    try:
        return h5py.h5d.open(file_id, key.encode())
    except _H5PY_ERRORS:
        return None


@contextmanager
def _h5py_errors_named(path: Path, what: str) -> Iterator[None]:
    """h5py's errors inside raise ``BlockFileError`` naming the file and ``what`` failed;
    the package's own errors pass as they are."""
    try:
        yield
    except SplitDatasetError:
        raise
    except _H5PY_ERRORS as error:
        raise BlockFileError(f"{path}: {what}: {error}") from error


class _OpenStack:
    """A block file and its stack dataset, open through h5py's low-level API: ``close``
    closes both, the dataset first (HDF5 keeps a file open while an object of it is)."""

    def __init__(self, file_id, dataset_id, key: str) -> None:
        self.file_id, self.dataset_id, self.key = file_id, dataset_id, key

    def close(self) -> None:
        try:
            self.dataset_id.close()
        finally:
            self.file_id.close()


def _open_stack(path: Path, key: str | None) -> _OpenStack:
    """The block file and its stack dataset. ``key``: the key another block file uses, tried
    first (listing the file's names costs more); if it names no dataset here, the stack is
    found by its name."""
    import h5py

    file_id = _open_file(path)
    try:
        with _h5py_errors_named(path, "cannot read the stack dataset"):
            dataset_id = None if key is None else _open_known(file_id, key)
            if dataset_id is None:
                key = stack_key(file_id, path)
                dataset_id = h5py.h5d.open(file_id, key.encode())
    except BaseException:
        file_id.close()
        raise
    assert key is not None
    return _OpenStack(file_id, dataset_id, key)


_IDENTITY = struct.Struct("=QQqq")


def file_identity(stat: os.stat_result) -> bytes:
    """A file version as the readers trust it: device, inode, size and modification time,
    packed as ``_listing.stat_identities`` gives them for 100 files before every read (one
    bytes object a file, not five Python objects)."""
    return _IDENTITY.pack(stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)


def reopen_stack(path: Path, key: str, identity: bytes) -> _OpenStack:
    """The stack dataset of ``path`` opened again for a detached lazy chunk index, if the
    path still names the file version ``identity`` (before and after opening); else
    ``BlockFileError`` (the file was replaced during the read)."""

    def still_the_same() -> bool:
        try:
            return file_identity(os.stat(path)) == identity
        except OSError:
            return False

    if still_the_same():
        opened = _open_stack(path, key)
        if still_the_same():
            return opened
        opened.close()
    raise BlockFileError(
        f"{path}: the file was replaced or changed on disk during the read; read it again"
    )


@dataclass(frozen=True)
class StackSummary:
    """What opening a dataset needs from a block file: no chunk index."""

    path: Path
    key: str
    shape: tuple[int, ...]
    dtype: np.dtype


def probe_stack(path: Path, key: str | None = None) -> StackSummary:
    """Key, shape and dtype of a block file's stack (cheaper than ``read_file_layout``).

    ``key``: the key another block file uses, tried first.
    """
    opened = _open_stack(path, key)
    try:
        with _h5py_errors_named(path, "cannot read the stack dataset"):
            dataset_id = opened.dataset_id
            shape = tuple(int(s) for s in dataset_id.shape)
            return StackSummary(Path(path), opened.key, shape, dataset_id.dtype)
    finally:
        opened.close()


@dataclass(frozen=True, eq=False)
class FileLayout:
    """The stack dataset of one file: shape, dtype, chunking, codec and chunk byte ranges.

    ``chunk_offset[i]`` is -1 for a chunk that was never written (read as the fill value), and
    ``chunk_index.UNKNOWN`` for one that ``lazy`` has not looked up yet (the reader refuses
    to read such a chunk rather than return zeros). ``chunk_crc``: CRC-32 of each chunk's
    stored bytes where our writer recorded them (``checksums``), else None.
    """

    path: Path
    key: str
    shape: tuple[int, ...]
    dtype: np.dtype
    chunk_shape: tuple[int, ...]
    chunk_grid: tuple[int, ...]
    contiguous: bool
    codec: Codec
    filters: tuple[tuple[int, tuple[int, ...]], ...]
    chunk_offset: np.ndarray  # int64 per chunk, C order over chunk_grid
    chunk_size: np.ndarray  # int64 stored bytes
    chunk_mask: np.ndarray  # int64 HDF5 filter mask (bit i: filter i skipped)
    file_size: int  # when indexed: no chunk may reach past it
    chunk_crc: np.ndarray | None = None  # int64 CRC-32 per chunk, -1 unknown
    block_start: tuple[int, ...] | None = None  # where our writer put the block, if recorded
    lazy: LazyChunkIndex | None = None  # chunks looked up as reads need them (UNKNOWN offsets)

    @property
    def chunk_nbytes(self) -> int:
        return int(np.prod(self.chunk_shape)) * self.dtype.itemsize

    def describe_filters(self) -> str:
        if not self.filters:
            return "contiguous, uncompressed" if self.contiguous else "chunked, uncompressed"
        parts = []
        for filter_id, values in self.filters:
            name = _FILTER_NAMES.get(filter_id, f"filter {filter_id}")
            if filter_id == FILTER_BLOSC and len(values) >= 6:
                codec = (
                    _BLOSC_CODECS.get(values[6], str(values[6])) if len(values) > 6 else "blosclz"
                )
                shuffle = {0: "noshuffle", 1: "shuffle", 2: "bitshuffle"}.get(values[5], "?")
                name = f"blosc:{codec} level {values[4]} {shuffle}"
            elif filter_id == FILTER_DEFLATE and values:
                name = f"deflate level {values[0]}"
            parts.append(name)
        return " + ".join(parts)

    def chunk_coordinates(self, linear_index: int) -> tuple[int, ...]:
        return tuple(int(i) for i in np.unravel_index(linear_index, self.chunk_grid))


def virtual_chunk_shape(shape: tuple[int, ...], itemsize: int) -> tuple[int, ...]:
    """Chunks of a contiguous dataset that are each one contiguous byte range of the file.

    Leading axes get 1, one axis gets as many rows as fit in ``VIRTUAL_CHUNK_BYTES``, the
    trailing axes are whole.
    """
    ndim = len(shape)
    chunk = list(shape)
    trailing = itemsize
    for axis in range(ndim - 1, -1, -1):
        if trailing * shape[axis] <= VIRTUAL_CHUNK_BYTES:
            trailing *= shape[axis]
            continue
        chunk[axis] = max(1, VIRTUAL_CHUNK_BYTES // trailing)
        for leading in range(axis):
            chunk[leading] = 1
        break
    return tuple(max(1, c) for c in chunk)


def _virtual_chunks(
    recorded: tuple[int, ...] | None, shape: tuple[int, ...], itemsize: int
) -> tuple[int, ...]:
    """The virtual chunks to read a contiguous dataset by: ``recorded``, those our writer
    recorded CRCs over (``checksums.recorded_chunk_shape``), so that they stay checked whatever
    VIRTUAL_CHUNK_BYTES was when the file was written, if they are virtual chunks of
    ``shape``; else the default."""
    default = virtual_chunk_shape(shape, itemsize)
    if recorded is None or recorded == default or len(recorded) != len(shape):
        return default
    if any(c < 1 or c > max(s, 1) for c, s in zip(recorded, shape)):
        return default
    if not chunks_are_byte_ranges(shape, recorded):
        return default
    least = min(MIN_RECORDED_VIRTUAL_CHUNK_BYTES, int(np.prod(default)) * itemsize)
    if int(np.prod(recorded)) * itemsize < least:
        return default
    return recorded


def _fill_is_zero(plist, dtype: np.dtype) -> bool:
    """Whether unwritten chunks read as zeros. The status is asked first: on a corrupt
    fill-value message it raises, where ``get_fill_value`` crashes the process (h5py 3.16)."""
    import h5py

    status = plist.fill_value_defined()
    if status == h5py.h5d.FILL_VALUE_DEFAULT:
        return True
    if status != h5py.h5d.FILL_VALUE_USER_DEFINED:
        return False
    fill = np.zeros((), dtype=dtype)
    plist.get_fill_value(fill)
    return fill.tobytes() == bytes(dtype.itemsize)


def _contiguous_table(dataset, shape, chunk, itemsize):
    grid = chunk_grid(shape, chunk)
    count = int(np.prod(grid))
    base = dataset.id.get_offset()
    offsets = np.full(count, -1, dtype=np.int64)
    sizes = np.zeros(count, dtype=np.int64)
    if base is None or count == 0:  # storage never allocated: all fill value
        return grid, offsets, sizes
    # Virtual chunks are whole along every axis but one; the edge one holds fewer rows.
    _, starts, lengths = chunk_byte_ranges(shape, chunk, itemsize)
    offsets[:] = base + starts
    sizes[:] = lengths
    return grid, offsets, sizes


def _chunked_table(path, dataset, shape, chunk):
    grid = chunk_grid(shape, chunk)
    count = int(np.prod(grid))
    offsets = np.full(count, -1, dtype=np.int64)
    sizes = np.zeros(count, dtype=np.int64)
    masks = np.zeros(count, dtype=np.int64)
    index_all_chunks(path, dataset.id, chunk, grid, shape, offsets, sizes, masks)
    return grid, offsets, sizes, masks


def read_file_layout(
    path: Path, key: str | None = None, lazy: bool = False, stat: os.stat_result | None = None
) -> FileLayout:
    """Open ``path`` with h5py once and record everything the fast reader needs.

    With ``lazy``, a chunked dataset of many chunks gets an index that is filled in as reads
    need it (``FileLayout.lazy``, which keeps the file open in h5py until it is complete).
    ``stat``: the file's status as the caller saw it (its size bounds every chunk).
    """
    import h5py

    if stat is None:
        try:
            stat = os.stat(path)
        except OSError as error:
            raise BlockFileError(f"{path}: cannot open block file: {error}") from error
    opened = _open_stack(path, key)
    try:
        with _h5py_errors_named(path, "cannot read the stack dataset's layout"):
            fields = _read_stack_layout(opened, h5py.Dataset(opened.dataset_id), Path(path), lazy)
    except BaseException:
        opened.close()
        raise
    lazy_index = fields.pop("lazy")
    if lazy_index is None or lazy_index.complete:
        opened.close()  # else the lazy index keeps it open for its lookups
        lazy_index = None
    return FileLayout(path=Path(path), file_size=stat.st_size, lazy=lazy_index, **fields)


def _read_stack_layout(opened: _OpenStack, dataset, path: Path, lazy: bool) -> dict:
    """``dataset``: an h5py ``Dataset`` on ``opened.dataset_id``."""
    key = opened.key
    shape = tuple(int(s) for s in dataset.shape)
    dtype = dataset.dtype
    plist = dataset.id.get_create_plist()
    filters = tuple(
        (int(f[0]), tuple(int(v) for v in f[2]))
        for f in (plist.get_filter(i) for i in range(plist.get_nfilters()))
    )
    zero_fill = _fill_is_zero(plist, dtype)
    contiguous = dataset.chunks is None
    recorded = checksums.recorded_chunk_shape(dataset)
    lazy_index = None
    try:
        if contiguous:
            chunk = _virtual_chunks(recorded, shape, dtype.itemsize)
            grid, offsets, sizes = _contiguous_table(dataset, shape, chunk, dtype.itemsize)
            masks = np.zeros_like(offsets)
            codec = Codec.RAW
        else:
            chunk = tuple(int(c) for c in dataset.chunks)
            codec = _PIPELINES.get(tuple(f for f, _ in filters), Codec.H5PY)
            grid = chunk_grid(shape, chunk)
            count = int(np.prod(grid))
            if lazy and codec != Codec.H5PY and count > LOOKUPS_PER_READ:
                offsets, sizes, masks = (np.zeros(count, dtype=np.int64) for _ in range(3))
                lazy_index = LazyChunkIndex(path, opened, chunk, grid, shape, offsets, sizes, masks)
            else:
                grid, offsets, sizes, masks = _chunked_table(path, dataset, shape, chunk)
    except (OSError, RuntimeError) as error:
        raise BlockFileError(f"{path}: cannot index the chunks of '{key}': {error}") from error
    if not zero_fill or dtype.hasobject or dtype.kind in "OUSV":
        codec = Codec.H5PY  # unusual fill values and non-numeric data: let HDF5 do it
        if lazy_index is not None:
            lazy_index.ensure_all()
    return dict(
        key=key,
        shape=shape,
        dtype=dtype,
        chunk_shape=chunk,
        chunk_grid=grid,
        contiguous=contiguous,
        codec=codec,
        filters=filters,
        chunk_offset=offsets,
        chunk_size=sizes,
        chunk_mask=masks,
        chunk_crc=checksums.load(dataset, chunk, len(offsets), recorded),
        block_start=checksums.load_block_start(dataset),
        lazy=lazy_index,
    )
