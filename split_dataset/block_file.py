"""Writing one block file: an HDF5 file holding one array, as every reader expects it.

Blosc is compressed here, chunk by chunk, as Blosc1 buffers by numcodecs' c-blosc 1.x (which
releases the GIL, so several threads compress in parallel) and stored with HDF5's direct
chunk write; only those writes take h5py's lock. Other filters (zlib) go through HDF5's own
pipeline. Tiny blocks stay contiguous and uncompressed, as PyTables stores them.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, cast

import numpy as np

from . import blosc1, checksums
from .chunk_ranges import chunk_byte_ranges, chunks_are_byte_ranges
from .direct_chunk_write import write_chunks
from .file_layout import virtual_chunk_shape

# Inner chunks of about this size: a 512 x 512 uint16 plane is four chunks (decoded in
# parallel), a pixel over time costs one small chunk per time point.
TARGET_CHUNK_BYTES = 128 * 1024

BLOSC_COMPRESSORS = ("blosclz", "lz4", "lz4hc", "zlib", "zstd")
SHUFFLE = 1  # c-blosc's byte shuffle, as PyTables and hdf5plugin write


def default_chunk_shape(block_shape: Sequence[int], itemsize: int) -> tuple[int, ...]:
    """One chunk per row band of a plane: ``(1, ..., 1, rows, width)`` near the target size."""
    shape = [max(1, int(s)) for s in block_shape]
    if len(shape) == 1:
        return (max(1, min(shape[0], TARGET_CHUNK_BYTES // itemsize)),)
    width = shape[-1]
    rows = max(1, min(shape[-2], TARGET_CHUNK_BYTES // (itemsize * width)))
    return (1,) * (len(shape) - 2) + (rows, width)


@dataclass(frozen=True)
class Compression:
    """A compression argument as flammkuchen spells it, parsed once.

    ``kind``: "blosc" (our workers compress Blosc1 chunks), "raw" (uncompressed, contiguous) or
    "pipeline" (HDF5's own filters compress, e.g. zlib). ``h5py_options``: the
    ``create_dataset`` keywords that declare the filter in the file.
    """

    kind: str
    h5py_options: dict[str, Any]
    cname: str | None = None
    clevel: int | None = None


def parse_compression(compression: Any, level: int | None = None) -> Compression:
    """``None``/"none"/"raw", ``"blosc"``, ``"blosc:lz4"``, ``("blosc:zstd", 5)``, ``"zlib"``."""
    if compression in (None, False, "none", "raw"):
        return Compression("raw", {})
    if compression is True:
        compression = "blosc"
    if isinstance(compression, tuple):  # flammkuchen style ("blosc:lz4", 5)
        compression, level = compression
    name = str(compression)
    if name == "zlib":
        return Compression(
            "pipeline",
            dict(compression="gzip", compression_opts=9 if level is None else level, shuffle=True),
        )
    if name.startswith("blosc"):
        import hdf5plugin

        cname: Any = name.split(":", 1)[1] if ":" in name else "blosclz"
        if cname not in BLOSC_COMPRESSORS:
            raise ValueError(f"unknown blosc compressor {cname!r}; use one of {BLOSC_COMPRESSORS}")
        clevel = 9 if level is None else int(level)
        options = dict(
            hdf5plugin.Blosc(cname=cname, clevel=clevel, shuffle=hdf5plugin.Blosc.SHUFFLE)
        )
        return Compression("blosc", options, cname, clevel)
    raise ValueError(
        f"unknown compression {compression!r}: use 'blosc', 'blosc:lz4', "
        f"'blosc:zstd', 'zlib' or None"
    )


# Blocks of at most this many elements stay contiguous and uncompressed, as PyTables (and
# ``write_block_file``) store them.
TINY_BLOCK = 300


@dataclass(frozen=True)
class BlockEncoding:
    """How a worker stores a block: its compression, the array's key and inner chunk shape."""

    compression: Compression
    key: str
    chunk_shape: tuple[int, ...]

    @property
    def kind(self) -> str:
        return self.compression.kind

    @classmethod
    def for_compression(
        cls, compression: Any, level: int | None, key: str, chunk_shape: Sequence[int]
    ) -> BlockEncoding:
        parsed = parse_compression(compression, level)
        if parsed.kind == "blosc":
            import numcodecs.blosc

            if parsed.cname not in numcodecs.blosc.list_compressors():
                raise ValueError(f"numcodecs' blosc has no {parsed.cname!r} compressor")
            # c-blosc's global thread pool would serialize callers; the contextual API does not
            numcodecs.blosc.use_threads = False
        return cls(parsed, key, tuple(int(c) for c in chunk_shape))


def fsync_path(path: Path) -> None:
    """fsync a file, or a folder (its entries: renames in it survive a power cut)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _chunk_offsets(shape: tuple[int, ...], chunks: tuple[int, ...]):
    ranges = [range(0, s, c) for s, c in zip(shape, chunks)]
    return itertools.product(*ranges)


@dataclass(frozen=True)
class StoredChunk:
    """One inner chunk as it goes into the file: its bytes, HDF5 filter mask and CRC-32."""

    offset: tuple[int, ...]
    data: bytes
    filter_mask: int  # 1: stored raw (filter 0, blosc, skipped)
    crc: int


@dataclass(frozen=True)
class CompressedChunks:
    """A block's chunks as they go into its file, in C order over the chunk grid: the stored
    bytes of chunk ``i`` are ``stored[offsets[i] : offsets[i] + sizes[i]]``."""

    origins: np.ndarray  # (chunks, ndim) uint64: each chunk's first element
    stored: np.ndarray  # uint8, the chunks' stored bytes one after the other
    offsets: np.ndarray  # int64
    sizes: np.ndarray  # int64
    masks: np.ndarray  # uint8, HDF5's filter mask: 1 = kept raw (filter 0, blosc, skipped)
    crcs: np.ndarray  # uint32, of the stored bytes

    def starting_at(self, first: int) -> CompressedChunks:
        """The same chunks, as part of a block that holds them from index ``first`` of its first
        axis on (chunks of a run of frames, written into a block of several)."""
        if first == 0:
            return self
        origins = self.origins.copy()
        origins[:, 0] += np.uint64(first)
        return replace(self, origins=origins)

    def chunks(self) -> list[StoredChunk]:
        return [
            StoredChunk(
                tuple(origin), self.stored[start : start + size].tobytes(), int(mask), int(crc)
            )
            for origin, start, size, mask, crc in zip(
                self.origins.tolist(), self.offsets, self.sizes, self.masks, self.crcs
            )
        ]


class StoredBuffers:
    """Memory for blocks' compressed chunks, reused from block to block of one write.

    A block's worst case (every chunk at full size plus blosc's overhead) is allocated, and the
    compressor touches what it stores. In fresh memory each of those pages is a page fault and
    a page the kernel zeroes first: 10 % of a 2-thread save's CPU (perf: ``clear_page_rep``
    under the compressor's stores). A buffer comes back once its block's file is written, and
    the next block takes it, so there are never more than blocks in flight; they go with the
    writer.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: dict[int, np.ndarray] = {}

    def take(self, nbytes: int) -> np.ndarray:
        """A buffer of at least ``nbytes`` (its contents undefined)."""
        with self._lock:
            fitting = [b for b in self._idle.values() if b.nbytes >= nbytes]
            if fitting:
                return self._idle.pop(id(min(fitting, key=lambda b: b.nbytes)))
        return np.empty(nbytes, np.uint8)

    def give(self, buffer: np.ndarray) -> None:
        """``buffer``, from ``take``, is no longer read by anyone."""
        with self._lock:
            self._idle[id(buffer)] = buffer

    def clear(self) -> None:
        """Let go of the idle buffers (the write is over)."""
        with self._lock:
            self._idle.clear()


def compress_chunks(
    block: np.ndarray, encoding: BlockEncoding, buffers: StoredBuffers | None = None
) -> CompressedChunks:
    """Blosc1-compress every inner chunk of ``block``, in C order over the chunk grid.

    numcodecs' c-blosc 1.x compresses without the GIL, so workers run this in parallel: all
    chunks of a block in one compiled call where each chunk is one byte range of the block
    (row bands, the default), chunk by chunk otherwise. A chunk that blosc cannot shrink is
    kept raw with filter 0 marked as skipped, as the HDF5 blosc filter does; edge chunks are
    padded with zeros, since HDF5 stores every chunk at full size. ``buffers``: where the
    compressed bytes go (else fresh memory).
    """
    chunks = _block_chunks(block.shape, encoding)
    compress_ctx = blosc1.compress_ctx_address()
    if compress_ctx is not None and chunks_are_byte_ranges(block.shape, chunks):
        return _compress_in_one_call(compress_ctx, block, chunks, encoding, buffers)
    return _compress_chunk_by_chunk(block, chunks, encoding)


def _compress_in_one_call(
    compress_ctx: int,
    block: np.ndarray,
    chunks: tuple[int, ...],
    encoding: BlockEncoding,
    buffers: StoredBuffers | None,
) -> CompressedChunks:
    from ._ext import _chunk_writer

    origins, starts, lengths = chunk_byte_ranges(block.shape, chunks, block.itemsize)
    count = len(starts)
    chunk_bytes = int(np.prod(chunks)) * block.itemsize
    # the worst case; pages of it never touched are never faulted in
    worst = count * (chunk_bytes + _chunk_writer.BLOSC_MAX_OVERHEAD)
    stored = np.empty(worst, np.uint8) if buffers is None else buffers.take(worst)
    offsets, sizes = np.empty(count, np.int64), np.empty(count, np.int64)
    masks, crcs = np.empty(count, np.uint8), np.empty(count, np.uint32)
    failed = _chunk_writer.compress_block(
        compress_ctx,
        np.ascontiguousarray(block).reshape(-1).view(np.uint8),
        starts,
        lengths,
        chunk_bytes,
        cast(int, encoding.compression.clevel),
        SHUFFLE,
        block.itemsize,
        cast(str, encoding.compression.cname).encode(),
        stored,
        offsets,
        sizes,
        masks,
        crcs,
    )
    if failed >= 0:
        raise RuntimeError(f"c-blosc could not compress chunk {tuple(origins[failed])}")
    return CompressedChunks(origins.astype(np.uint64), stored, offsets, sizes, masks, crcs)


def _compress_chunk_by_chunk(
    block: np.ndarray, chunks: tuple[int, ...], encoding: BlockEncoding
) -> CompressedChunks:
    from numcodecs import blosc

    chunk_bytes = int(np.prod(chunks)) * block.itemsize
    cname = cast(str, encoding.compression.cname).encode()
    clevel = cast(int, encoding.compression.clevel)
    origins, pieces, masks = [], [], []
    for origin in _chunk_offsets(block.shape, chunks):
        region = block[tuple(slice(o, o + c) for o, c in zip(origin, chunks))]
        piece = np.zeros(chunks, block.dtype)  # edge chunks: zero-padded
        piece[tuple(slice(0, n) for n in region.shape)] = region
        compressed = blosc.compress(piece, cname, clevel, SHUFFLE, 0, block.itemsize)
        kept_raw = len(compressed) >= chunk_bytes
        origins.append(origin)
        pieces.append(piece.tobytes() if kept_raw else compressed)
        masks.append(int(kept_raw))
    sizes = np.array([len(p) for p in pieces], np.int64)
    return CompressedChunks(
        np.array(origins, np.uint64).reshape(len(origins), block.ndim),
        np.frombuffer(b"".join(pieces), np.uint8),
        np.concatenate(([0], np.cumsum(sizes)[:-1])).astype(np.int64),
        sizes,
        np.array(masks, np.uint8),
        np.array([checksums.crc32(p) for p in pieces], np.uint32),
    )


def _block_chunks(shape: tuple[int, ...], encoding: BlockEncoding) -> tuple[int, ...]:
    return tuple(max(1, min(c, s)) for c, s in zip(encoding.chunk_shape, shape))


def store_compressed(
    path: Path,
    shape: tuple[int, ...],
    dtype: np.dtype,
    encoding: BlockEncoding,
    parts: Sequence[CompressedChunks],
    block_start: Sequence[int] | None = None,
) -> None:
    """Write chunks from ``compress_chunks`` as a complete HDF5 block file (direct chunk
    writes: HDF5 stores the bytes as they are, one call at a time in the process, without
    holding the GIL while it copies them: ``direct_chunk_write``). ``parts``: the block's
    chunks, in C order over its chunk grid, in one or more consecutive parts."""
    import h5py
    import hdf5plugin  # noqa: F401  (registers filter 32001 for the dataset creation)

    chunks = _block_chunks(shape, encoding)
    with h5py.File(path, "w") as handle:
        dataset = handle.create_dataset(
            encoding.key,
            shape=shape,
            dtype=dtype,
            chunks=chunks,
            **encoding.compression.h5py_options,
        )
        for part in parts:
            write_chunks(dataset, part, path)
        crcs = np.concatenate([part.crcs for part in parts]) if parts else np.empty(0, np.uint32)
        checksums.record(dataset, chunks, crcs, block_start)


def write_uncompressed_or_by_hdf5(
    path: Path, block: np.ndarray, encoding: BlockEncoding, block_start: Sequence[int] | None = None
) -> None:
    """Write a block that our workers do not compress (uncompressed, tiny, or compressed by
    HDF5's own filter pipeline) as a complete HDF5 block file at ``path``, checksums
    included."""
    import h5py

    if encoding.kind == "raw" and block.size > TINY_BLOCK:
        write_contiguous(path, block, encoding.key, block_start)
        return
    with h5py.File(path, "w") as handle:
        if encoding.kind == "pipeline" and block.size > TINY_BLOCK:
            chunks = _block_chunks(block.shape, encoding)
            dataset = handle.create_dataset(
                encoding.key, data=block, chunks=chunks, **encoding.compression.h5py_options
            )
            # HDF5 compressed them: read back what it stored (still in its cache)
            crcs = [
                checksums.crc32(dataset.id.read_direct_chunk(offset)[1])
                for offset in _chunk_offsets(block.shape, chunks)
            ]
            checksums.record(dataset, chunks, crcs, block_start)
        else:
            dataset = handle.create_dataset(encoding.key, data=block)
            _record_contiguous(dataset, block, block_start)


def _record_contiguous(dataset, block: np.ndarray, block_start: Sequence[int] | None) -> None:
    """CRCs of a contiguous block over the reader's virtual chunks (file_layout)."""
    if block.size == 0:
        return
    chunks = virtual_chunk_shape(block.shape, block.dtype.itemsize)
    checksums.record(dataset, chunks, checksums.contiguous_crcs(block, chunks), block_start)


def write_contiguous(
    path: Path, block: np.ndarray, key: str, block_start: Sequence[int] | None = None
) -> None:
    """An uncompressed block: HDF5 writes the file's structure with the data's bytes allocated
    (contiguous, allocated at creation, never filled), then the bytes go in with ``pwrite``.

    The file is what ``create_dataset(key, data=block)`` makes, but the bulk of the writing
    runs without HDF5's process-wide lock and without the GIL, so several blocks are written
    at once at page-cache speed.
    """
    import h5py

    block = np.ascontiguousarray(block)
    with h5py.File(path, "w") as handle:
        plist = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        plist.set_layout(h5py.h5d.CONTIGUOUS)
        plist.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
        plist.set_fill_time(h5py.h5d.FILL_TIME_NEVER)
        dataset_id = h5py.h5d.create(
            handle.id,
            key.encode(),
            h5py.h5t.py_create(block.dtype),
            h5py.h5s.create_simple(block.shape),
            dcpl=plist,
        )
        offset = dataset_id.get_offset()
        dataset_id.close()
        _record_contiguous(handle[key], block, block_start)
    if offset is None:
        raise OSError(f"{path}: HDF5 allocated no storage for '{key}'")
    data = block.reshape(-1).view(np.uint8).data
    fd = os.open(path, os.O_WRONLY)
    try:
        written = 0
        while written < len(data):
            written += os.pwrite(fd, data[written:], offset + written)
    finally:
        os.close(fd)


@dataclass(eq=False)
class PreparedBlock:
    """A block on its way to disk: compressed by a worker, written out by ``store``.

    Blosc blocks keep their compressed chunks here (``stored``: the whole block's, or those of
    consecutive runs of frames compressed as they arrived) so that the HDF5 writing, which the
    library serializes anyway, runs on one thread of its own and compression workers never
    wait for it; other encodings were already written to ``temporary`` by the worker.
    """

    temporary: Path
    shape: tuple[int, ...]
    dtype: np.dtype
    encoding: BlockEncoding
    stored: list[CompressedChunks] | None
    block_start: tuple[int, ...] | None = None
    buffers: StoredBuffers | None = None  # where ``stored``'s memory goes back once written

    def store(self) -> Path:
        if self.stored is not None:
            store_compressed(
                self.temporary, self.shape, self.dtype, self.encoding, self.stored, self.block_start
            )
            parts, self.stored = self.stored, None
            if self.buffers is not None:  # HDF5 has copied the bytes: nothing reads them now
                for part in parts:
                    self.buffers.give(part.stored)
        return self.temporary


def prepare_block(
    temporary: Path,
    block: np.ndarray,
    encoding: BlockEncoding,
    block_start: Sequence[int] | None = None,
    buffers: StoredBuffers | None = None,
) -> PreparedBlock:
    """Compress ``block`` (blosc), or write it to ``temporary`` (other encodings).

    ``block_start``: where the block sits in the whole array, recorded in the file so that a
    block file found in another's place is recognised (``checksums``). ``buffers``: the
    write's memory for compressed chunks, given back when the block is stored.
    """
    start = None if block_start is None else tuple(int(s) for s in block_start)
    stored: list[CompressedChunks] | None
    if encoding.kind == "blosc" and block.size > TINY_BLOCK:
        stored = [compress_chunks(block, encoding, buffers)]
    else:
        write_uncompressed_or_by_hdf5(temporary, block, encoding, start)
        stored = None
    return PreparedBlock(temporary, block.shape, block.dtype, encoding, stored, start, buffers)


def compressed_by_frames(encoding: BlockEncoding, frame_shape: Sequence[int]) -> bool:
    """Whether runs of frames of a block can be compressed on their own as they arrive: the
    block's chunks are then those of its runs of frames, one after the other (blosc, chunks
    one frame deep) and any block of them is compressed (not a tiny block, kept raw)."""
    return (
        encoding.kind == "blosc"
        and encoding.chunk_shape[0] == 1
        and int(np.prod(frame_shape)) > TINY_BLOCK
    )


def block_encoding(
    data: np.ndarray,
    key: str,
    compression: Any,
    level: int | None,
    chunk_shape: Sequence[int] | None,
) -> BlockEncoding:
    chunks = tuple(chunk_shape) if chunk_shape else default_chunk_shape(data.shape, data.itemsize)
    return BlockEncoding.for_compression(compression, level, key, chunks)


def temporary_name(path: Path) -> Path:
    return path.with_name(path.name + ".tmp")


def publish_temporary(temporary: Path, path: Path, durable: bool = True) -> None:
    """fsync a finished ``.tmp`` block file (if ``durable``), then rename it into place."""
    if durable:
        fsync_path(temporary)
    os.replace(temporary, path)


def write_block_file(
    path: Path,
    data: np.ndarray,
    key: str,
    compression: Any = "blosc",
    level: int | None = None,
    chunk_shape: Sequence[int] | None = None,
    block_start: Sequence[int] | None = None,
    durable: bool = True,
) -> None:
    """Write one block under a temporary name, fsync (if ``durable``), rename into place."""
    data = np.ascontiguousarray(data)
    encoding = block_encoding(data, key, compression, level, chunk_shape)
    prepared = prepare_block(temporary_name(path), data, encoding, block_start)
    publish_temporary(prepared.store(), path, durable)
