"""Readers under test and the machine's ceiling, shared by ``report.py`` and the pytest suite.

Readers (all with ``read(index)`` and ``open_and_read(index)``):

- ``H5pyReader``: the plain way: h5py + hdf5plugin, every block file kept open, ``dset[sel]``
  per file and a NumPy copy into the output.
- ``PackageReader``: this package, ``SplitDataset(folder, threads=n)[index]``, or
  ``ds.read(index, out=buffer)`` with a reused buffer.

Ceiling, measured on the very chunks a selection touches (their byte ranges come from
``ds.layout(i)``):

- decode only, from memory into a reused buffer, on 1 and on all cores: blosc chunks with
  ``blosc2_decompress_ctx`` and shuffle+deflate chunks with ``zng_uncompress`` + ``blosc2_unshuffle``
  (the decoders the package links), called through ctypes, which releases the GIL;
- page-cache ``pread`` of the same byte ranges into a reused buffer, on 1 and on all cores;
- ``memcpy`` (``np.copyto``) of a large buffer.
"""

from __future__ import annotations

import ctypes
import datetime
import json
import os
import platform
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

import split_dataset
from split_dataset import SplitDataset
from split_dataset.file_layout import Codec

N_CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


# --- readers ---------------------------------------------------------------------------------


def _block_files(folder: Path) -> list[Path]:
    return sorted(Path(folder).glob("[0-9]*.h5"))


class H5pyReader:
    """h5py + hdf5plugin, files kept open, ``dset[sel]`` per file and a copy into the output."""

    def __init__(self, folder: Path, open_files: bool = True) -> None:
        import h5py
        import hdf5plugin  # noqa: F401  (registers the blosc filter)

        self.folder = Path(folder)
        meta = json.loads((self.folder / "stack_metadata.json").read_text())
        self.shape = tuple(meta["shape_full"])
        self.block = tuple(meta["shape_block"])
        if any(b != s for b, s in zip(self.block[1:], self.shape[1:])):
            raise ValueError("H5pyReader handles datasets split along the first axis only")
        self.tpf = self.block[0]
        self.files = [h5py.File(p, "r") for p in _block_files(self.folder)]
        self.dsets = [f["stack_4D"] for f in self.files]
        self.dtype = self.dsets[0].dtype
        self._touched: set[int] = set()

    def before_read(self) -> None:
        """Empty HDF5's chunk cache (8 MiB per open dataset with HDF5 2.0) of the files the last
        read touched, untimed, so that no repetition is served from a previous one's chunks.

        Closing the last handle of a dataset drops its chunk cache; the file stays open and its
        metadata (the chunk index) stays cached, as with files kept open."""
        for i in self._touched:
            self.dsets[i] = None
            self.dsets[i] = self.files[i]["stack_4D"]
        self._touched.clear()

    def close(self) -> None:
        for f in self.files:
            f.close()

    def note(self, workload: str) -> str:
        return ""

    def read(self, index: tuple) -> np.ndarray:
        index = tuple(index) + (slice(None),) * (len(self.shape) - len(index))
        first, rest = index[0], index[1:]
        T, tpf = self.shape[0], self.tpf
        if isinstance(first, (int, np.integer)):
            t = int(first) % T
            self._touched.add(t // tpf)
            return self.dsets[t // tpf][(t % tpf,) + rest]  # one file: h5py's array as is
        rest_shape = []
        for item, extent in zip(rest, self.shape[1:]):
            if isinstance(item, slice):
                rest_shape.append(len(range(*item.indices(extent))))
        if isinstance(first, slice):
            times = np.arange(*first.indices(T))
        else:
            times = np.asarray(first) % T
        self._touched.update(int(f) for f in np.unique(times // tpf))
        out = np.empty((len(times), *rest_shape), dtype=self.dtype)
        if isinstance(first, slice) and (first.step or 1) > 0:
            # per file, one strided slice
            step = first.step or 1
            files = times // tpf
            i = 0
            while i < len(times):
                f = files[i]
                j = i
                while j < len(times) and files[j] == f:
                    j += 1
                local = slice(int(times[i] - f * tpf), int(times[j - 1] - f * tpf) + 1, step)
                out[i:j] = self.dsets[f][(local,) + rest]
                i = j
            return out
        for i, t in enumerate(times):  # a list (or negative step): one read per time point
            out[i] = self.dsets[t // tpf][(int(t % tpf),) + rest]
        return out

    def open_and_read(self, index: tuple) -> np.ndarray:
        reader = H5pyReader(self.folder)
        try:
            return reader.read(index)
        finally:
            reader.close()


class PackageReader:
    """This package; ``reuse_out`` reads into a buffer kept between calls."""

    def __init__(self, folder: Path, threads: int, reuse_out: bool = False) -> None:
        self.folder = Path(folder)
        self.threads = threads
        self.reuse_out = reuse_out
        self.ds = SplitDataset(self.folder, threads=threads)
        for i in range(len(self.ds.files.ravel())):  # index every file once, like open h5py files
            self.ds.layout(i)
        self._buffers: dict = {}

    def note(self, workload: str) -> str:
        return "out= reused" if self.reuse_out else ""

    def read(self, index: tuple) -> np.ndarray:
        if not self.reuse_out:
            return self.ds[index]
        key = json.dumps([repr(i) for i in index])
        buffer = self._buffers.get(key)
        if buffer is None:
            buffer = np.empty(_result_shape(index, self.ds.shape), dtype=self.ds.dtype)
            if len(self._buffers) > 2:
                self._buffers.clear()
            self._buffers[key] = buffer
        return self.ds.read(index, out=buffer)

    def open_and_read(self, index: tuple) -> np.ndarray:
        return SplitDataset(self.folder, threads=self.threads)[index]

    def close(self) -> None:
        self.ds.close()


def _result_shape(index: tuple, shape: tuple[int, ...]) -> tuple[int, ...]:
    out = []
    for axis, extent in enumerate(shape):
        item = index[axis] if axis < len(index) else slice(None)
        if isinstance(item, slice):
            out.append(len(range(*item.indices(extent))))
        elif isinstance(item, (list, np.ndarray)):
            out.append(len(item))
    return tuple(out)


# --- chunks touched by a selection ----------------------------------------------------------


def _axis_indices(item, extent: int) -> np.ndarray:
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
        self.path_slot: dict[Path, int] = {}
        self.entries: list[tuple[int, int, int, int]] = []  # (slot, offset, size, nbytes)
        self.masks: list[int] = []
        self._seen: set = set()

    @property
    def stored(self) -> int:
        return sum(e[2] for e in self.entries)

    @property
    def decoded(self) -> int:
        return sum(e[3] for e in self.entries)

    def __len__(self) -> int:
        return len(self.entries)


def touched_chunks(ds: SplitDataset, index: tuple, into: ChunkSet | None = None) -> ChunkSet:
    """The chunks of ``ds`` that ``ds[index]`` has to read (split along the first axis only)."""
    chunks = into if into is not None else ChunkSet()
    shape = ds.shape
    index = tuple(index) + (slice(None),) * (len(shape) - len(index))
    per_axis = [_axis_indices(item, extent) for item, extent in zip(index, shape)]
    tpf = ds.shape_block[0]
    times = per_axis[0]
    for f in np.unique(times // tpf):
        layout = ds.layout(int(f))
        local = [np.unique(times[times // tpf == f] - f * tpf)] + per_axis[1:]
        chunk_idx = [np.unique(ix // c) for ix, c in zip(local, layout.chunk_shape)]
        grids = np.meshgrid(*chunk_idx, indexing="ij")
        linear = np.ravel_multi_index([g.ravel() for g in grids], layout.chunk_grid)
        slot = chunks.path_slot.get(layout.path)
        if slot is None:
            slot = len(chunks.paths)
            chunks.path_slot[layout.path] = slot
            chunks.paths.append(layout.path)
            chunks.codecs.append(int(layout.codec))
        for lin in linear:
            key = (slot, int(lin))
            if key in chunks._seen:
                continue
            chunks._seen.add(key)
            offset = int(layout.chunk_offset[lin])
            if offset < 0:
                continue
            size = int(layout.chunk_size[lin])
            if layout.contiguous:
                nbytes = size
            else:
                nbytes = layout.chunk_nbytes
            chunks.entries.append((slot, offset, size, nbytes))
            chunks.masks.append(int(layout.chunk_mask[lin]))
    return chunks


def decoded_bytes(ds: SplitDataset, index: tuple) -> int:
    return touched_chunks(ds, index).decoded


# --- ceiling: decoders through ctypes (the GIL is released during each call) -----------------


def _decoder_libraries() -> list[Path]:
    """Shared libraries exporting c-blosc2 (and zlib-ng): blosc2's wheel, else hdf5plugin's."""
    candidates = []
    try:
        import blosc2

        candidates.append(Path(blosc2.__file__).parent / "lib" / "libblosc2.so")
    except ImportError:
        pass
    try:
        import hdf5plugin

        candidates.append(Path(hdf5plugin.__file__).parent / "plugins" / "libh5blosc2.so")
    except ImportError:
        pass
    return [c for c in candidates if c.is_file()]


class _Blosc2Lib:
    def __init__(self) -> None:
        lib = None
        for path in _decoder_libraries():
            try:
                candidate = ctypes.CDLL(str(path))
                candidate.blosc2_decompress_ctx  # noqa: B018  (raises if not exported)
                lib = candidate
                self.path = path
                break
            except (OSError, AttributeError):
                continue
        if lib is None:
            raise RuntimeError("no shared library exporting blosc2_decompress_ctx found")
        lib.blosc2_init()

        class DParams(ctypes.Structure):
            _fields_ = [("nthreads", ctypes.c_int16), ("schunk", ctypes.c_void_p),
                        ("postfilter", ctypes.c_void_p), ("postparams", ctypes.c_void_p),
                        ("typesize", ctypes.c_int32)]

        self.DParams = DParams
        lib.blosc2_create_dctx.argtypes = [DParams]
        lib.blosc2_create_dctx.restype = ctypes.c_void_p
        lib.blosc2_decompress_ctx.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int32,
                                              ctypes.c_void_p, ctypes.c_int32]
        lib.blosc2_decompress_ctx.restype = ctypes.c_int
        lib.blosc2_unshuffle.argtypes = [ctypes.c_int32, ctypes.c_int32, ctypes.c_void_p,
                                         ctypes.c_void_p]
        lib.blosc2_unshuffle.restype = ctypes.c_int32
        # inflate: zlib-ng as the package links it (blosc2's wheel, or the package's extension)
        inflate = None
        from split_dataset._ext import _chunk_reader

        for load, name in ((lambda: lib, "zng_uncompress"),
                           (lambda: ctypes.CDLL(_chunk_reader.__file__), "zng_uncompress"),
                           (lambda: ctypes.CDLL("libz.so.1"), "uncompress")):
            try:
                holder = load()
                inflate = getattr(holder, name)
                self.inflate_name = f"{name} ({Path(holder._name).name})"
                break
            except (OSError, AttributeError):
                continue
        if inflate is None:
            raise RuntimeError("no inflate (zlib-ng or zlib) library found")
        inflate.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_size_t), ctypes.c_void_p,
                            ctypes.c_size_t]
        inflate.restype = ctypes.c_int
        self.inflate = inflate
        self.lib = lib
        self.local = threading.local()

    def dctx(self):
        ctx = getattr(self.local, "dctx", None)
        if ctx is None:
            ctx = self.lib.blosc2_create_dctx(self.DParams(1, None, None, None, 8))
            self.local.dctx = ctx
        return ctx


_BLOSC2: _Blosc2Lib | None = None
_POOL: ThreadPoolExecutor | None = None


def _blosc2() -> _Blosc2Lib:
    global _BLOSC2
    if _BLOSC2 is None:
        _BLOSC2 = _Blosc2Lib()
    return _BLOSC2


def _pool() -> ThreadPoolExecutor:
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=max(1, N_CORES), thread_name_prefix="ceiling")
    return _POOL


def _run_split(work, items: list, threads: int) -> None:
    """``work(part)`` on ``threads`` threads (the caller is one), parts interleaved."""
    if threads <= 1 or len(items) <= 1:
        work(items)
        return
    parts = [items[i::threads] for i in range(threads)]
    futures = [_pool().submit(work, p) for p in parts[1:]]
    work(parts[0])
    for f in futures:
        f.result()


class LoadedChunks:
    """The stored bytes of a ChunkSet, in memory, ready to be decoded over and over."""

    def __init__(self, chunks: ChunkSet) -> None:
        self.chunks = chunks
        total = chunks.stored
        self.buffer = np.empty(max(total, 1), dtype=np.uint8)
        self.items = []  # (address, size, nbytes, codec, mask)
        base = self.buffer.ctypes.data
        position = 0
        fds = [os.open(p, os.O_RDONLY) for p in chunks.paths]
        try:
            for (slot, offset, size, nbytes), mask in zip(chunks.entries, chunks.masks):
                view = memoryview(self.buffer[position : position + size])
                got = os.preadv(fds[slot], [view], offset)
                assert got == size, (got, size)
                self.items.append((base + position, size, nbytes, chunks.codecs[slot], mask))
                position += size
        finally:
            for fd in fds:
                os.close(fd)
        self.max_nbytes = max((i[2] for i in self.items), default=1)
        self.compressed = any(i[3] != int(Codec.RAW) for i in self.items)

    def _decode_part(self, part: list) -> None:
        b = _blosc2()
        lib = b.lib
        ctx = b.dctx()
        target = np.empty(self.max_nbytes, dtype=np.uint8)
        staging = np.empty(self.max_nbytes, dtype=np.uint8)
        t_addr, s_addr = target.ctypes.data, staging.ctypes.data
        produced = ctypes.c_size_t()
        for address, size, nbytes, codec, mask in part:
            if codec in (Codec.BLOSC, Codec.DEFLATE) and mask & 1:
                continue  # HDF5 stored the chunk raw (filter skipped: incompressible)
            if codec == Codec.SHUFFLE_DEFLATE and mask & 2:
                if not mask & 1:
                    lib.blosc2_unshuffle(2, nbytes, address, t_addr)
                continue
            if codec == Codec.BLOSC:
                status = lib.blosc2_decompress_ctx(ctx, address, size, t_addr, nbytes)
                if status != nbytes:
                    raise RuntimeError(f"blosc2_decompress_ctx returned {status}")
            elif codec in (Codec.SHUFFLE_DEFLATE, Codec.DEFLATE):
                produced.value = nbytes
                status = b.inflate(s_addr if codec == Codec.SHUFFLE_DEFLATE else t_addr,
                                            ctypes.byref(produced), address, size)
                if status != 0:
                    raise RuntimeError(f"inflate returned {status}")
                if codec == Codec.SHUFFLE_DEFLATE:
                    lib.blosc2_unshuffle(2, nbytes, s_addr, t_addr)
            elif codec == Codec.SHUFFLE:
                lib.blosc2_unshuffle(2, nbytes, address, t_addr)
            # RAW: nothing to decode

    def decode(self, threads: int) -> float:
        """Decode every chunk once on ``threads`` threads; wall seconds."""
        t0 = time.perf_counter()
        _run_split(self._decode_part, self.items, threads)
        return time.perf_counter() - t0

    def check_decode(self) -> None:
        """Decode one chunk into a fresh buffer and compare with blosc2's Python API (sanity)."""
        import blosc2

        for address, size, nbytes, codec, mask in self.items:
            if codec != Codec.BLOSC:
                return
            if mask & 1:
                continue
            raw = ctypes.string_at(address, size)
            expected = blosc2.decompress(raw)
            target = np.empty(nbytes, dtype=np.uint8)
            lib = _blosc2().lib
            lib.blosc2_decompress_ctx(_blosc2().dctx(), address, size, target.ctypes.data, nbytes)
            assert target.tobytes() == expected
            return


class PreadRanges:
    """pread of a ChunkSet's byte ranges into a reused buffer (page cache bandwidth)."""

    def __init__(self, chunks: ChunkSet) -> None:
        self.chunks = chunks
        self.fds = [os.open(p, os.O_RDONLY) for p in chunks.paths]
        self.items = [(self.fds[slot], offset, size) for slot, offset, size, _ in chunks.entries]
        self.max_size = max((i[2] for i in self.items), default=1)

    def _part(self, part: list) -> None:
        buffer = bytearray(self.max_size)
        view = memoryview(buffer)
        preadv = os.preadv
        for fd, offset, size in part:
            preadv(fd, [view[:size]], offset)

    def read(self, threads: int) -> float:
        t0 = time.perf_counter()
        _run_split(self._part, self.items, threads)
        return time.perf_counter() - t0

    def close(self) -> None:
        for fd in self.fds:
            os.close(fd)


def memcpy_rate(nbytes: int = 256 << 20, reps: int = 7) -> dict:
    """Single-thread np.copyto bandwidth (GB/s), buffers touched beforehand."""
    src = np.ones(nbytes // 8, dtype=np.float64)
    dst = np.zeros_like(src)
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        np.copyto(dst, src)
        times.append(time.perf_counter() - t0)
    return dict(bytes=nbytes, median=float(np.median(times)), min=float(min(times)),
                gbps=nbytes / float(np.median(times)) / 1e9)


def alloc_rate(nbytes: int = 256 << 20, reps: int = 7) -> dict:
    """Fresh np.empty + first touch (page faults): the cost of returning a new array.

    On VMs whose freed memory goes back to the host this varies a lot between repetitions,
    hence min / median / max."""
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        a = np.empty(nbytes, dtype=np.uint8)
        a[::4096] = 1
        times.append(time.perf_counter() - t0)
        del a
    return dict(bytes=nbytes, median=float(np.median(times)), min=float(min(times)),
                max=float(max(times)), gbps=nbytes / float(np.median(times)) / 1e9)


def measure_ceiling(chunks: ChunkSet, reps: int = 7, threads=(1, N_CORES)) -> dict:
    """Decode-only and pread rates (bytes/s of decoded data, and of stored data) of ``chunks``."""
    out = dict(n_chunks=len(chunks), stored=chunks.stored, decoded=chunks.decoded)
    if not len(chunks):
        return out
    loaded = LoadedChunks(chunks)
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
    del loaded
    pr = PreadRanges(chunks)
    try:
        for n in sorted(set(threads)):
            pr.read(n)
            times = [pr.read(n) for _ in range(reps)]
            out[f"pread{n}_median"] = float(np.median(times))
            out[f"pread{n}_rate"] = chunks.stored / float(np.median(times))  # stored bytes/s
            out[f"pread{n}_decoded_rate"] = chunks.decoded / float(np.median(times))
    finally:
        pr.close()
    return out


def measure_cold_pread(chunks: ChunkSet, reps: int = 3, threads=(1, N_CORES)) -> dict:
    """pread of the chunks right after dropping the files' pages (disk, or the host's cache)."""
    from workloads import drop_cache

    out = {}
    pr = PreadRanges(chunks)
    try:
        for n in sorted(set(threads)):
            times = []
            for _ in range(reps):
                drop_cache(chunks.paths)
                times.append(pr.read(n))
            out[f"pread{n}_median"] = float(np.median(times))
            out[f"pread{n}_rate"] = chunks.stored / float(np.median(times))
            out[f"pread{n}_decoded_rate"] = chunks.decoded / float(np.median(times))
    finally:
        pr.close()
    return out


def ceiling_rate(ceiling: dict, threads: int) -> float:
    """min(threads x single-thread decode rate, pread rate with as many threads), decoded B/s."""
    decode = ceiling.get("decode1_rate", float("inf")) * threads
    n = 1 if threads <= 1 else N_CORES
    io = ceiling.get(f"pread{n}_decoded_rate", float("inf"))
    return min(decode, io)


def serial_rate(ceiling: dict, threads: int) -> float:
    """Each thread preads a chunk, then decodes it: 1 / (1/decode + 1/pread) per thread, both
    single-thread rates measured in this run; capped by the n-thread pread rate. The rate
    ``ceiling_rate`` leaves out the copy out of the page cache, which a pread-based reader pays
    on the same core as the decode (at 1 thread nothing overlaps them)."""
    decode = ceiling.get("decode1_rate", float("inf"))
    pread = ceiling.get("pread1_decoded_rate", float("inf"))
    per_thread = 1.0 / (1.0 / decode + 1.0 / pread)
    n = 1 if threads <= 1 else N_CORES
    return min(per_thread * threads, ceiling.get(f"pread{n}_decoded_rate", float("inf")))


def measured_rate(ceiling: dict, threads: int) -> float:
    """Like ``ceiling_rate`` but with the decode rate measured on that many threads (what the
    machine delivered in this run, e.g. less than n x 1-core when other processes hold cores)."""
    n = 1 if threads <= 1 else N_CORES
    decode = ceiling.get(f"decode{n}_rate", float("inf"))
    io = ceiling.get(f"pread{n}_decoded_rate", float("inf"))
    return min(decode, io)


# --- environment -----------------------------------------------------------------------------


def _decoder_description() -> str:
    try:
        b = _blosc2()
        return f"blosc2_decompress_ctx ({b.path.name}), {b.inflate_name}"
    except Exception as error:  # noqa: BLE001
        return f"unavailable: {error}"


def machine_info() -> dict:
    import h5py
    import hdf5plugin
    import blosc2

    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "?"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024**2:.1f} GiB"
    except OSError:
        pass
    try:
        import tables

        tables_version = tables.__version__
    except ImportError:
        tables_version = "-"
    return dict(
        date=datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        nproc=os.cpu_count(),
        affinity=N_CORES,
        cpu=model,
        memory=mem,
        kernel=platform.release(),
        python=platform.python_version(),
        numpy=np.__version__,
        h5py=h5py.__version__,
        hdf5=h5py.version.hdf5_version,
        hdf5plugin=hdf5plugin.version,
        blosc2=blosc2.__version__,
        tables=tables_version,
        split_dataset=split_dataset.__version__,
        default_threads=split_dataset.get_default_threads(),
        ceiling_decoders=_decoder_description(),
        env={k: os.environ[k] for k in ("BLOSC_NTHREADS", "OMP_NUM_THREADS",
                                         "SPLIT_DATASET_BENCH_SIZE") if k in os.environ},
    )
