"""The machine's ceiling for the very chunks a selection reads, measured apart from the package.

- ``touched_chunks``: the stored chunks ``ds[index]`` needs (byte ranges from ``ds.layout``),
  found from the block grid and each file's chunk grid, on any grid and any number of axes;
- ``LoadedChunks``: decode only, from memory into a reused buffer, on 1 and on all cores:
  blosc chunks with ``blosc2_decompress_ctx`` and (shuffle+)deflate chunks with zlib-ng's
  inflate + ``blosc2_unshuffle`` (the decoders the package links, through ctypes, which
  releases the GIL: ``native_decoders``);
- ``PreadRanges``: ``pread`` of the same byte ranges into a reused buffer, on 1 and all cores,
  with the pages in the cache or just dropped;
- ``FrameFloor``: the least work one frame of playback takes (pread + decode, one thread);
- ``memcpy_rate`` and ``alloc_rate``: copying a large buffer, and a fresh array's first touch;
- ``read_directory``, ``directory_read_time``: the kernel's reading of a folder's entries,
  nothing done with them.

``ceiling_rate`` combines them into the decoded bytes per second a reader on n threads can
reach: ``min(n x single-thread decode rate, pread rate)``.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import itertools
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from ..blocks import block_of
from ..dataset import SplitDataset
from ..file_layout import Codec, FileLayout
from .native_decoders import DecoderUnavailable, native_decoders
from .workloads import drop_cache, encode, result_nbytes

N_CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


# --- chunks touched by a selection ----------------------------------------------------------


def _axis_indices(item: Any, extent: int) -> np.ndarray:
    if isinstance(item, slice):
        return np.arange(*item.indices(extent))
    if isinstance(item, (list, np.ndarray)):
        return np.asarray(item, dtype=np.int64) % extent
    return np.asarray([int(item) % extent])


class ChunkSet:
    """Byte ranges of the stored chunks a selection needs (deduplicated), grouped by file."""

    def __init__(self) -> None:
        self.paths: list[Path] = []
        self.codecs: list[int] = []
        self.itemsizes: list[int] = []  # the shuffle filter's type size
        self.path_slot: dict[Path, int] = {}
        self.entries: list[tuple[int, int, int, int]] = []  # (slot, offset, size, nbytes)
        self.masks: list[int] = []
        self.chunks: list[tuple[int, int]] = []  # (slot, linear chunk index in its file)
        self._seen: set[tuple[int, int]] = set()

    @property
    def stored(self) -> int:
        return sum(e[2] for e in self.entries)

    @property
    def decoded(self) -> int:
        return sum(e[3] for e in self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def slot(self, layout: FileLayout) -> int:
        """The slot of a file's layout, added on first use."""
        slot = self.path_slot.get(layout.path)
        if slot is None:
            slot = len(self.paths)
            self.path_slot[layout.path] = slot
            self.paths.append(layout.path)
            self.codecs.append(int(layout.codec))
            self.itemsizes.append(layout.dtype.itemsize)
        return slot

    def add(self, layout: FileLayout, linear: int) -> None:
        """Chunk ``linear`` of the file, once; a chunk never written has nothing to read."""
        slot = self.slot(layout)
        if (slot, linear) in self._seen:
            return
        self._seen.add((slot, linear))
        offset = int(layout.chunk_offset[linear])
        if offset < 0:
            return
        size = int(layout.chunk_size[linear])
        nbytes = size if layout.contiguous else layout.chunk_nbytes
        self.entries.append((slot, offset, size, nbytes))
        self.masks.append(int(layout.chunk_mask[linear]))
        self.chunks.append((slot, linear))

    def sample(self, max_stored: int) -> ChunkSet:
        """An evenly spread subset of at most ``max_stored`` stored bytes (at least one chunk):
        rates measured on it hold for the whole set, at a bounded cost in memory and time."""
        if self.stored <= max_stored or len(self) <= 1:
            return self
        sizes = np.asarray([e[2] for e in self.entries])

        def spread(count: int) -> np.ndarray:
            return np.unique(np.linspace(0, len(self) - 1, count).astype(int))

        keep = max(1, int(len(self) * max_stored / self.stored))
        picks = spread(keep)
        while keep > 1 and sizes[picks].sum() > max_stored:  # chunk sizes vary: fewer
            keep = max(1, min(keep - 1, int(keep * max_stored / sizes[picks].sum())))
            picks = spread(keep)
        out = ChunkSet()
        out.paths, out.codecs, out.itemsizes = self.paths, self.codecs, self.itemsizes
        out.path_slot = self.path_slot
        for i in picks.tolist():
            out.entries.append(self.entries[i])
            out.masks.append(self.masks[i])
            out.chunks.append(self.chunks[i])
        out._seen = set(out.chunks)
        return out


def touched_chunks(ds: SplitDataset, index: tuple, into: ChunkSet | None = None) -> ChunkSet:
    """The chunks of ``ds`` that ``ds[index]`` has to read, for a workload's selection (ints,
    slices and int lists, one per axis from the first): per axis the selected coordinates, the
    block owning each (``blocks.block_of``) and, inside each touched block's file, the chunks
    holding them. Any block grid (padding included) and any number of axes."""
    chunks = into if into is not None else ChunkSet()
    shape, block_shape, grid = ds.shape, ds.shape_block, tuple(ds.blocks_grid)
    index = tuple(index) + (slice(None),) * (len(shape) - len(index))
    coords = [_axis_indices(item, extent) for item, extent in zip(index, shape)]
    owners = [block_of(c, b, n) for c, b, n in zip(coords, block_shape, grid)]
    for block_index in itertools.product(*(np.unique(o).tolist() for o in owners)):
        layout = ds.layout(int(np.ravel_multi_index(block_index, grid)))
        in_file = [
            np.unique(c[o == b] - b * size) // chunk
            for c, o, b, size, chunk in zip(
                coords, owners, block_index, block_shape, layout.chunk_shape
            )
        ]
        linear = np.ravel_multi_index(
            [g.ravel() for g in np.meshgrid(*in_file, indexing="ij")], layout.chunk_grid
        )
        for chunk in np.unique(linear).tolist():
            chunks.add(layout, chunk)
    return chunks


# --- decode only, from memory ----------------------------------------------------------------


def _pool() -> ThreadPoolExecutor:
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=max(1, N_CORES), thread_name_prefix="ceiling")
    return _POOL


_POOL: ThreadPoolExecutor | None = None


def _run_split(work: Callable[[list], None], items: list, threads: int) -> float:
    """``work(part)`` on ``threads`` threads (the caller is one), parts interleaved; seconds."""
    started = time.perf_counter()
    if threads <= 1 or len(items) <= 1:
        work(items)
    else:
        parts = [items[i::threads] for i in range(threads)]
        futures = [_pool().submit(work, p) for p in parts[1:]]
        work(parts[0])
        for f in futures:
            f.result()
    return time.perf_counter() - started


DECODABLE = {Codec.RAW, Codec.BLOSC, Codec.DEFLATE, Codec.SHUFFLE_DEFLATE, Codec.SHUFFLE}


def _decode(decoders: Any, ctx: Any, item: tuple, t_addr: int, s_addr: int, produced: Any) -> bool:
    """Decode one stored chunk ``(address, size, nbytes, codec, mask, itemsize)`` into
    ``t_addr`` (``s_addr``: scratch for shuffle + deflate) with the decoders the package links;
    False if its stored bytes are already the data (raw, or filters skipped)."""
    address, size, nbytes, codec, mask, itemsize = item
    lib = decoders.lib
    if codec in (Codec.BLOSC, Codec.DEFLATE) and mask & 1:
        return False  # HDF5 stored the chunk raw (filter skipped: incompressible)
    if codec == Codec.SHUFFLE_DEFLATE and mask & 2:
        if mask & 1:
            return False
        lib.blosc2_unshuffle(itemsize, nbytes, address, t_addr)
        return True
    if codec == Codec.BLOSC:
        status = lib.blosc2_decompress_ctx(ctx, address, size, t_addr, nbytes)
        if status != nbytes:
            raise RuntimeError(f"blosc2_decompress_ctx returned {status}")
    elif codec in (Codec.SHUFFLE_DEFLATE, Codec.DEFLATE):
        produced.value = nbytes
        status = decoders.inflate(
            s_addr if codec == Codec.SHUFFLE_DEFLATE else t_addr,
            ctypes.byref(produced),
            address,
            size,
        )
        if status != 0:
            raise RuntimeError(f"inflate returned {status}")
        if codec == Codec.SHUFFLE_DEFLATE:
            lib.blosc2_unshuffle(itemsize, nbytes, s_addr, t_addr)
    elif codec == Codec.SHUFFLE:
        lib.blosc2_unshuffle(itemsize, nbytes, address, t_addr)
    else:
        return False  # RAW
    return True


def _packed_output(sizes: list[int]) -> tuple[np.ndarray, list[int]]:
    """An output for pieces of ``sizes`` laid one after the other, its pages touched, and
    where each piece starts in it."""
    starts = np.cumsum([0] + sizes[:-1]).tolist()
    return np.ones(max(sum(sizes), 1), dtype=np.uint8), starts


class LoadedChunks:
    """The stored bytes of a ChunkSet, in memory, ready to be decoded over and over."""

    def __init__(self, chunks: ChunkSet) -> None:
        self.chunks = chunks
        self.buffer = np.empty(max(chunks.stored, 1), dtype=np.uint8)
        self.items = []  # (address, size, nbytes, codec, mask, itemsize)
        base = self.buffer.ctypes.data
        position = 0
        fds = [os.open(p, os.O_RDONLY) for p in chunks.paths]
        try:
            for (slot, offset, size, nbytes), mask in zip(chunks.entries, chunks.masks):
                view = self.buffer[position : position + size].data
                got = os.preadv(fds[slot], [view], offset)
                if got != size:
                    raise OSError(f"{chunks.paths[slot]}: read {got} of {size} bytes at {offset}")
                self.items.append(
                    (
                        base + position,
                        size,
                        nbytes,
                        chunks.codecs[slot],
                        mask,
                        chunks.itemsizes[slot],
                    )
                )
                position += size
        finally:
            for fd in fds:
                os.close(fd)
        self.max_nbytes = max((i[2] for i in self.items), default=1)
        self.compressed = any(i[3] != Codec.RAW for i in self.items)
        self._output: np.ndarray | None = None  # decode_in_place's, kept between calls
        self._placed: list = []
        self.undecodable = sorted({Codec(i[3]).name for i in self.items if i[3] not in DECODABLE})

    def _decode_part(self, part: list) -> None:
        decoders = native_decoders()
        ctx = decoders.dctx()
        target = np.empty(self.max_nbytes, dtype=np.uint8)
        staging = np.empty(self.max_nbytes, dtype=np.uint8)
        t_addr, s_addr = target.ctypes.data, staging.ctypes.data
        produced = ctypes.c_size_t()
        for item in part:
            _decode(decoders, ctx, item, t_addr, s_addr, produced)

    def decode(self, threads: int) -> float:
        """Decode every chunk once on ``threads`` threads; wall seconds."""
        self._decoders()
        return _run_split(self._decode_part, self.items, threads)

    def decode_in_place(self, threads: int) -> float:
        """Decode every chunk to a place of its own in one output of their total decoded size,
        its pages touched beforehand; wall seconds. What a reader filling a large output must
        also do, write it to memory: ``decode``'s buffer stays in the core's cache."""
        self._decoders()
        if self._output is None:
            self._output, starts = _packed_output([i[2] for i in self.items])
            base = self._output.ctypes.data
            self._placed = [(item, base + start) for item, start in zip(self.items, starts)]
        return _run_split(self._decode_in_place_part, self._placed, threads)

    def _decode_in_place_part(self, part: list) -> None:
        decoders = native_decoders()
        ctx = decoders.dctx()
        staging = np.empty(self.max_nbytes, dtype=np.uint8)
        s_addr = staging.ctypes.data
        produced = ctypes.c_size_t()
        for item, t_addr in part:
            if not _decode(decoders, ctx, item, t_addr, s_addr, produced):
                ctypes.memmove(t_addr, item[0], item[2])  # stored raw: copied, as a reader does

    def _decoders(self):
        if self.undecodable:
            raise DecoderUnavailable(f"no native decoder for {', '.join(self.undecodable)} chunks")
        return native_decoders()

    def check_decode(self) -> None:
        """Decode one blosc chunk into a fresh buffer and compare with numcodecs' decoder."""
        from numcodecs import blosc

        decoders = self._decoders()
        for address, size, nbytes, codec, mask, _ in self.items:
            if codec != Codec.BLOSC or mask & 1:
                continue
            expected = blosc.decompress(ctypes.string_at(address, size))
            target = np.empty(nbytes, dtype=np.uint8)
            decoders.lib.blosc2_decompress_ctx(
                decoders.dctx(), address, size, target.ctypes.data, nbytes
            )
            if target.tobytes() != expected:
                raise RuntimeError("the ctypes blosc decoder disagrees with blosc2.decompress")
            return


# --- pread, memcpy, allocation ----------------------------------------------------------------


class PreadRanges:
    """pread of a ChunkSet's byte ranges into a reused buffer (page cache or disk bandwidth)."""

    def __init__(self, chunks: ChunkSet) -> None:
        self.chunks = chunks
        self.fds = [os.open(p, os.O_RDONLY) for p in chunks.paths]
        self.items = [(self.fds[slot], offset, size) for slot, offset, size, _ in chunks.entries]
        self.max_size = max((i[2] for i in self.items), default=1)
        self.output: np.ndarray | None = None  # filled by read_in_place, ranges in order
        self._placed: list = []

    def _part(self, part: list) -> None:
        view = memoryview(bytearray(self.max_size))
        preadv = os.preadv
        for fd, offset, size in part:
            preadv(fd, [view[:size]], offset)

    def read(self, threads: int) -> float:
        return _run_split(self._part, self.items, threads)

    def read_in_place(self, threads: int) -> float:
        """pread every range to a place of its own in one output of their total size, its
        pages touched beforehand: what a reader filling a large output must also do, write
        it to memory (``read``'s buffer stays in the core's cache)."""
        if self.output is None:
            self.output, starts = _packed_output([i[2] for i in self.items])
            self._placed = [
                (fd, offset, self.output[start : start + size].data)
                for (fd, offset, size), start in zip(self.items, starts)
            ]
        return _run_split(self._place_part, self._placed, threads)

    @staticmethod
    def _place_part(part: list) -> None:
        preadv = os.preadv
        for fd, offset, target in part:
            preadv(fd, [target], offset)

    def close(self) -> None:
        for fd in self.fds:
            os.close(fd)
        self.output = None
        self._placed = []


class FrameFloor:
    """The least work a frame of playback takes, apart from the package: ``pread`` the stored
    bytes of its chunks and decode them into a fresh array with the same C decoders, on one
    thread, the chunks looked up beforehand (no planning, no pool, no file to check). Its
    latency after the same pause as a reader's is the floor under the reader's, tail included.

    ``read`` returns the chunks' data one after the other: the frame itself, flat, when its
    chunks are row bands (as the benchmark files' are), else only the same amount of work;
    ``in_frame_order`` says which (every frame checked once against ``ds``, untimed)."""

    def __init__(self, ds: SplitDataset, indexes: Sequence[tuple]) -> None:
        self.dtype = ds.dtype
        self._fds: dict[Path, int] = {}
        self._frames: dict[tuple, tuple[int, list[tuple]]] = {}
        for index in indexes:
            chunks = touched_chunks(ds, index)
            fds = [self._fd(path) for path in chunks.paths]
            items = [
                (fds[slot], offset, size, nbytes, chunks.codecs[slot], mask, chunks.itemsizes[slot])
                for (slot, offset, size, nbytes), mask in zip(chunks.entries, chunks.masks)
            ]
            self._frames[tuple(index)] = (sum(i[3] for i in items), items)
        every_chunk = [i for _, items in self._frames.values() for i in items]
        decoded = max((i[3] for i in every_chunk), default=1)
        # deflate grows an incompressible chunk a little, and HDF5 stores it so: the stored
        # bytes can outnumber the decoded ones (and a chunk stored raw is copied from here)
        stored = max((i[2] for i in every_chunk), default=1)
        self._stored = np.empty(max(stored, decoded), dtype=np.uint8)
        self._scratch = np.empty(decoded, dtype=np.uint8)
        self._decoders = native_decoders()
        self._ctx = self._decoders.dctx()
        self._produced = ctypes.c_size_t()
        self.in_frame_order = all(
            np.array_equal(self.read(index), np.asarray(ds[index]).reshape(-1))
            for index in self._frames
        )

    def _fd(self, path: Path) -> int:
        if path not in self._fds:
            self._fds[path] = os.open(path, os.O_RDONLY)
        return self._fds[path]

    def read(self, index: tuple) -> np.ndarray:
        nbytes_total, items = self._frames[tuple(index)]
        out = np.empty(nbytes_total, dtype=np.uint8)
        stored, stored_addr = self._stored.data, self._stored.ctypes.data
        scratch_addr = self._scratch.ctypes.data
        position = 0
        for fd, offset, size, nbytes, codec, mask, itemsize in items:
            target = out[position : position + nbytes]
            if codec == Codec.RAW:
                os.preadv(fd, [target.data], offset)
            else:
                os.preadv(fd, [stored[:size]], offset)
                item = (stored_addr, size, nbytes, codec, mask, itemsize)
                decoders, ctx, produced = self._decoders, self._ctx, self._produced
                if not _decode(decoders, ctx, item, target.ctypes.data, scratch_addr, produced):
                    target[:] = self._stored[:nbytes]
            position += nbytes
        return out.view(self.dtype)

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()


def memcpy_rate(nbytes: int = 256 << 20, reps: int = 7) -> dict:
    """Single-thread np.copyto bandwidth (GB/s), buffers touched beforehand."""
    src = np.ones(nbytes // 8, dtype=np.float64)
    dst = np.zeros_like(src)
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        np.copyto(dst, src)
        times.append(time.perf_counter() - t0)
    return dict(
        bytes=nbytes,
        median=float(np.median(times)),
        min=float(min(times)),
        gbps=nbytes / float(np.median(times)) / 1e9,
    )


def _hash_rounds(buffer: bytes, rounds: int) -> None:
    for _ in range(rounds):
        hashlib.sha256(buffer).digest()  # hashlib lets go of the GIL for buffers this large


def compute_scaling(reps: int = 7, rounds: int = 400) -> dict:
    """How much faster two threads do pure compute than one: SHA-256 rounds over a 256 KiB
    buffer (it stays in each core's cache, so memory is not what limits), the same rounds on
    1 thread and on each of 2 at once. About 2x means two real cores; decoding that scales
    less is held back by what the cores share (memory), not by the reader."""
    buffer = bytes(range(256)) * 1024
    one, two = [], []
    for _ in range(reps):
        one.append(_run_split(lambda part: _hash_rounds(buffer, rounds), [0], 1))
        two.append(_run_split(lambda part: _hash_rounds(buffer, rounds), [0, 1], 2))
    return dict(
        one_s=float(np.median(one)),
        two_s=float(np.median(two)),
        speedup=2 * float(np.median(one)) / float(np.median(two)),
    )


_GETDENTS64 = {"x86_64": 217, "aarch64": 61}  # the syscall's number per architecture


@functools.cache
def _getdents64() -> Callable[..., int]:
    """``getdents64(fd, buffer, size)`` through libc's ``syscall``, looked up once (not in the
    timed read)."""
    import platform

    number = _GETDENTS64.get(platform.machine())
    if number is None:
        raise NotImplementedError(f"getdents64's number on {platform.machine()} is not known")
    syscall = ctypes.CDLL(None, use_errno=True).syscall
    return functools.partial(syscall, number)


def read_directory(folder: Path, buffer: Any = None) -> int:
    """Have the kernel hand over every entry of ``folder`` (``getdents64``, through ctypes,
    into ``buffer``: 4 MiB, one call for tens of thousands of names), the names left unread;
    returns the bytes of entries read. Linux only."""
    getdents64 = _getdents64()
    buffer = ctypes.create_string_buffer(4 << 20) if buffer is None else buffer
    total = 0
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        while (read := getdents64(fd, buffer, len(buffer))) > 0:
            total += read
    finally:
        os.close(fd)
    if read < 0:
        raise OSError(ctypes.get_errno(), f"getdents64 of {folder}")
    return total


def directory_read_time(folder: Path, reps: int = 7) -> float:
    """Median seconds of ``read_directory(folder)``: the least any reader that lists the
    folder pays for it."""
    buffer = ctypes.create_string_buffer(4 << 20)
    times = []
    for _ in range(reps):
        started = time.perf_counter()
        read_directory(folder, buffer)
        times.append(time.perf_counter() - started)
    return float(np.median(times))


PARALLEL_TOUCH_BYTES = 4 << 20


def _touch_pages(array: np.ndarray, part: int, parts: int) -> None:
    """Write one byte per page of ``part`` of ``parts`` of a flat uint8 array."""
    pages = -(-array.size // 4096)
    first, last = part * pages // parts, (part + 1) * pages // parts
    array[first * 4096 : last * 4096 : 4096] = 1


def _fresh_touched(nbytes: int, threads: int, pool: Any) -> None:
    """np.empty of ``nbytes``, every page touched by ``threads`` threads (``pool``'s), freed."""
    a = np.empty(nbytes, dtype=np.uint8)
    if threads == 1 or nbytes < PARALLEL_TOUCH_BYTES:  # handing a small array over costs more
        _touch_pages(a, 0, 1)
    else:
        list(pool.map(_touch_pages, [a] * threads, range(threads), [threads] * threads))


def alloc_rate(nbytes: int = 256 << 20, reps: int = 7, threads: int = 1) -> dict:
    """Fresh np.empty + first touch (page faults): the cost of returning a new array, the
    pages touched by ``threads`` threads (NumPy releases the GIL for the writes), back to
    back.

    On VMs whose freed memory goes back to the host this varies a lot between repetitions,
    hence min / median / max (and ``FirstTouch``, timed where the reads are)."""
    if nbytes < PARALLEL_TOUCH_BYTES:
        threads = 1
    times = []
    with ThreadPoolExecutor(threads) as pool:
        for _ in range(reps):
            t0 = time.perf_counter()
            _fresh_touched(nbytes, threads, pool)
            times.append(time.perf_counter() - t0)
    return dict(
        bytes=nbytes,
        threads=threads,
        median=float(np.median(times)),
        min=float(min(times)),
        max=float(max(times)),
        gbps=nbytes / float(np.median(times)) / 1e9,
    )


class FirstTouch:
    """A stand-in reader for ``workloads.run_workload``: ``read(index)`` allocates a fresh
    array of that selection's result size and touches every page on ``threads`` threads.

    Timed in turn with the readers: what a fresh array of that size cost at the moments the
    reads ran. On a VM that hands freed pages back to the host, refaulting them costs 20-40x
    more a second after they were freed than at once, and a stand-in timed at another moment
    than the read it stands for can meet them either way (measured: 118 ms in turn against
    13 ms back to back, next to fresh reads of 49 ms); ``alloc_rate``'s back-to-back loop is
    the machine's least cost. Its result is no data: ``checks = False`` tells run_workload so.
    """

    checks = False

    def __init__(self, shape: tuple[int, ...], itemsize: int, threads: int = 2) -> None:
        self.shape, self.itemsize, self.threads = shape, itemsize, threads
        self._pool = ThreadPoolExecutor(threads)

    def read(self, index: Any) -> None:
        _fresh_touched(result_nbytes(index, self.shape, self.itemsize), self.threads, self._pool)

    def close(self) -> None:
        self._pool.shutdown()


class IntoOutputInTurn:
    """A stand-in reader for ``workloads.run_workload``: ``read(index)`` decodes the chunks of
    that very selection (uncompressed ones: ``pread``) each into its place in an output of
    their size, pages touched beforehand, on ``threads`` threads (``LoadedChunks.
    decode_in_place``, ``PreadRanges.read_in_place``).

    The into-the-output ceiling of each read, timed in turn with the readers: the report's own
    is measured on the union of a workload's selections at another moment than the reads, and
    on this VM two moments a few seconds apart can differ by a fifth. The chunks of the timed
    ``selections`` are loaded (and their outputs touched) when made; another selection's, at
    its first read. Its result is no data: ``checks = False``."""

    checks = False

    def __init__(self, ds: SplitDataset, selections: Sequence[tuple], threads: int = N_CORES):
        self.ds, self.threads = ds, threads
        self._placers: dict[str, _Placer] = {}
        for index in selections:
            self._placer(index)

    def _placer(self, index: tuple) -> _Placer:
        key = repr(encode(index))
        placer = self._placers.get(key)
        if placer is None:
            placer = self._placers[key] = _Placer(touched_chunks(self.ds, index))
            placer.place(self.threads)  # the output's pages, the decoders
        return placer

    def read(self, index: tuple) -> None:
        self._placer(index).place(self.threads)

    def close(self) -> None:
        for placer in self._placers.values():
            placer.close()
        self._placers.clear()


# --- the ceiling -----------------------------------------------------------------------------


def _pread_rates(chunks: ChunkSet, times: list[float], threads: int) -> dict:
    median = float(np.median(times))
    return {
        f"pread{threads}_median": median,
        f"pread{threads}_rate": chunks.stored / median,  # stored bytes/s
        f"pread{threads}_decoded_rate": chunks.decoded / median,
    }


def measure_ceiling(chunks: ChunkSet, reps: int = 7, threads: Sequence[int] = (1, N_CORES)) -> dict:
    """Decode-only and page-cache pread rates (bytes/s of decoded data, and of stored data).

    Where the chunks cannot be decoded natively (filters the package leaves to h5py, or no
    c-blosc2 library) ``unavailable`` says why, and ``ceiling_rate`` is NaN."""
    out: dict = dict(n_chunks=len(chunks), stored=chunks.stored, decoded=chunks.decoded)
    if not len(chunks):
        return out
    loaded = LoadedChunks(chunks)
    try:
        if loaded.compressed:
            loaded.check_decode()
        for n in sorted(set(threads)):
            if loaded.compressed:
                loaded.decode(n)  # warm-up (thread-local contexts, buffers)
                times = [loaded.decode(n) for _ in range(reps)]
                out[f"decode{n}_median"] = float(np.median(times))
                out[f"decode{n}_min"] = float(min(times))
                out[f"decode{n}_rate"] = chunks.decoded / float(np.median(times))
            else:
                out[f"decode{n}_rate"] = float("inf")
    except DecoderUnavailable as error:
        out["unavailable"] = str(error)
    del loaded
    ranges = PreadRanges(chunks)
    try:
        for n in sorted(set(threads)):
            ranges.read(n)
            out.update(_pread_rates(chunks, [ranges.read(n) for _ in range(reps)], n))
    finally:
        ranges.close()
    return out


def measure_in_place(
    chunks: ChunkSet, reps: int = 7, threads: Sequence[int] = (1, N_CORES)
) -> dict:
    """The ceiling of a reader that writes its result to memory, decoded bytes/s: compressed
    chunks decoded each into its place in an output of their total size
    (``LoadedChunks.decode_in_place``: ``decode{n}_in_place_rate``), uncompressed ones read
    there from the page cache (``PreadRanges.read_in_place``:
    ``pread{n}_in_place_decoded_rate``; ``in_place_rate`` picks the one that applies)."""
    out: dict = {}
    if not len(chunks):
        return out
    placer = _Placer(chunks)
    kind = "decode{}_in_place_rate" if placer.decodes else "pread{}_in_place_decoded_rate"
    try:
        for n in sorted(set(threads)):
            placer.place(n)  # warm-up: the output's pages, the decoders
            median = float(np.median([placer.place(n) for _ in range(reps)]))
            out[kind.format(n)] = chunks.decoded / median
    except DecoderUnavailable as error:
        out["unavailable"] = str(error)
    finally:
        placer.close()
    return out


class _Placer:
    """A ChunkSet's work into the output: compressed chunks decoded each into its place
    (``LoadedChunks.decode_in_place``), uncompressed ones read there (``PreadRanges.
    read_in_place``). ``place(threads)`` returns wall seconds."""

    def __init__(self, chunks: ChunkSet) -> None:
        self.decodes = any(codec != Codec.RAW for codec in chunks.codecs)
        self._ranges = None if self.decodes else PreadRanges(chunks)
        self._loaded = LoadedChunks(chunks) if self.decodes else None

    def place(self, threads: int) -> float:
        if self._loaded is not None:
            return self._loaded.decode_in_place(threads)
        assert self._ranges is not None
        return self._ranges.read_in_place(threads)

    def close(self) -> None:
        if self._ranges is not None:
            self._ranges.close()


def measure_cold_pread(
    chunks: ChunkSet, reps: int = 3, threads: Sequence[int] = (1, N_CORES)
) -> dict:
    """pread of the chunks right after dropping the files' pages (disk, or the host's cache)."""
    out: dict = {}
    ranges = PreadRanges(chunks)
    try:
        for n in sorted(set(threads)):
            times = []
            for _ in range(reps):
                drop_cache(chunks.paths)
                times.append(ranges.read(n))
            out.update(_pread_rates(chunks, times, n))
    finally:
        ranges.close()
    return out


def _pread_threads(threads: int) -> int:
    """The pread rate measured for a reader on ``threads`` threads: 1, or all cores."""
    return 1 if threads <= 1 else N_CORES


def ceiling_rate(ceiling: dict, threads: int) -> float:
    """min(threads x single-thread decode rate, pread rate with as many threads), decoded B/s;
    NaN where the ceiling could not be measured (``unavailable``: no native decoder)."""
    if ceiling.get("unavailable"):
        return float("nan")
    decode = ceiling.get("decode1_rate", float("inf")) * threads
    io = ceiling.get(f"pread{_pread_threads(threads)}_decoded_rate", float("inf"))
    return min(decode, io)


def serial_rate(ceiling: dict, threads: int) -> float:
    """Each thread preads a chunk, then decodes it: 1 / (1/decode + 1/pread) per thread, both
    single-thread rates measured in this run; capped by the n-thread pread rate. The rate
    ``ceiling_rate`` leaves out the copy out of the page cache, which a pread-based reader pays
    on the same core as the decode (at 1 thread nothing overlaps them)."""
    if ceiling.get("unavailable"):
        return float("nan")
    decode = ceiling.get("decode1_rate", float("inf"))
    pread = ceiling.get("pread1_decoded_rate", float("inf"))
    inverse = 1.0 / decode + 1.0 / pread
    per_thread = 1.0 / inverse if inverse else float("inf")
    io = ceiling.get(f"pread{_pread_threads(threads)}_decoded_rate", float("inf"))
    return min(per_thread * threads, io)


def in_place_rate(ceiling: dict, threads: int) -> float:
    """The ceiling's work done into an output of the chunks' size (``measure_in_place``) on as
    many threads (1, or all cores), decoded B/s: the rate a reader that writes its result to
    memory can reach; NaN where it was not measured."""
    if ceiling.get("unavailable"):
        return float("nan")
    n = _pread_threads(threads)
    for key in (f"decode{n}_in_place_rate", f"pread{n}_in_place_decoded_rate"):
        if key in ceiling:
            return ceiling[key]
    return float("nan")


def measured_rate(ceiling: dict, threads: int) -> float:
    """Like ``ceiling_rate`` but with the decode rate measured on that many threads (what the
    machine delivered in this run, e.g. less than n x 1-core when other processes hold cores)."""
    if ceiling.get("unavailable"):
        return float("nan")
    n = _pread_threads(threads)
    return min(
        ceiling.get(f"decode{n}_rate", float("inf")),
        ceiling.get(f"pread{n}_decoded_rate", float("inf")),
    )
