"""The writers under test and the machine's write ceilings, shared by ``write_report.py`` and
``test_write_bench.py``.

Writers: ``whole-tN`` = ``save_to_split_dataset(threads=N)``; ``stream-tN`` =
``SplitDatasetWriter(threads=N)``, one volume per ``append``, ``close`` included; ``pytables`` =
PyTables ``CArray`` with ``Filters(9, complib, shuffle=True)`` per block file, exactly what
``flammkuchen.save`` does (``create_array`` for raw), PyTables' own chunk shapes and blosc
threads, no fsync; ``pytables-fsync`` adds one fsync per file, as this package's writers do
by default (``-nosync`` writers pass ``durable=False``).
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

import data

from split_dataset import SplitDatasetWriter, save_to_split_dataset
from split_dataset.block_file import default_chunk_shape

CODECS = {"blosc": "blosc", "lz4": "blosc:lz4", "raw": None}  # name -> our compression
CNAMES = {"blosc": "blosclz", "lz4": "lz4"}  # name -> Blosc codec of the compressed variants
RESOLUTION = (1.0, 1.0, 0.6, 0.6)


def write_pytables(folder: Path, array: np.ndarray, tpf: int, codec: str, fsync: bool) -> None:
    data.write_split_dataset(folder, array, tpf, codec)
    if fsync:
        for path in sorted(folder.glob("*.h5")):
            with open(path, "rb+") as handle:
                os.fsync(handle.fileno())


def stream(folder: Path, array: np.ndarray, tpf: int, codec: str, threads: int,
           durable: bool = True, passes: int = 1) -> None:
    """Append ``array`` volume by volume, ``passes`` times over (a longer recording)."""
    with SplitDatasetWriter(folder, array.shape[1:], array.dtype, tpf, compression=CODECS[codec],
                            threads=threads, resolution=RESOLUTION, durable=durable) as writer:
        for _ in range(passes):
            for volume in array:
                writer.append(volume)


def writer_threads(writer: str) -> int | None:
    """``whole-t2-nosync`` -> 2; None for the package default."""
    for part in writer.split("-"):
        if part[:1] == "t" and part[1:].isdigit():
            return int(part[1:])
    return None


def write(writer: str, folder: Path, array: np.ndarray, tpf: int, codec: str,
          passes: int = 1) -> None:
    """Write ``array`` to ``folder`` with one of the writers named in the module docstring
    (``-nosync``: ``durable=False``, no fsync); a ``stream`` writer may append it ``passes``
    times over."""
    durable = not writer.endswith("-nosync")
    if passes != 1 and not writer.startswith("stream"):
        raise ValueError(f"only a stream writer appends the data {passes} times, not {writer!r}")
    if writer.startswith("whole"):
        save_to_split_dataset(array, folder, block_size=(tpf,) + array.shape[1:],
                              compression=CODECS[codec], resolution=RESOLUTION,
                              threads=writer_threads(writer), durable=durable)
    elif writer.startswith("stream"):
        stream(folder, array, tpf, codec, threads=writer_threads(writer), durable=durable,
               passes=passes)
    elif writer.startswith("pytables"):
        write_pytables(folder, array, tpf, codec, fsync=writer.endswith("fsync"))
    else:
        raise ValueError(f"unknown writer {writer!r}")


def stored_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.glob("*.h5"))


# --- ceilings ----------------------------------------------------------------------------------


def writer_chunks(array: np.ndarray) -> list[np.ndarray]:
    """The recording cut into the writer's default chunks (contiguous copies)."""
    _, _, rows, _ = default_chunk_shape((1,) + array.shape[1:], array.itemsize)
    return [
        np.ascontiguousarray(array[t, z, r : r + rows])
        for t in range(array.shape[0]) for z in range(array.shape[1])
        for r in range(0, array.shape[2], rows)
    ]


def settle_page_cache() -> None:
    """Write back every dirty page before a timed write: the kernel otherwise throttles a
    writer for the writeback of earlier runs' bytes (plain writes of the same 1 GB took
    0.12-0.15 s, and 1.0-1.3 s in 2 runs of 12 without this; at most 0.31 s with it)."""
    os.sync()


def _timed_on_threads(work, items: list, threads: int) -> float:
    """Seconds for ``threads`` threads to run ``work`` on interleaved shares of ``items``
    (dirty pages written back first, untimed)."""
    settle_page_cache()
    started = time.perf_counter()
    if threads == 1:
        work(items)
    else:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(work, [items[i::threads] for i in range(threads)]))
    return time.perf_counter() - started


def compression_time(chunks: list[np.ndarray], cname: str, threads: int, level: int = 9) -> float:
    """Seconds to compress every chunk with numcodecs' Blosc (Blosc1 format, byte shuffle, the
    writer's encoder) on ``threads`` threads; numcodecs releases the GIL while compressing."""
    import numcodecs.blosc
    from numcodecs import Blosc

    numcodecs.blosc.use_threads = False  # one blosc thread per caller, as in the writer
    codec = Blosc(cname=cname, clevel=level, shuffle=Blosc.SHUFFLE)

    def compress(part):
        for chunk in part:
            codec.encode(chunk)

    return _timed_on_threads(compress, chunks, threads)


def file_write_time(folder: Path, blocks: list[np.ndarray], threads: int, fsync: bool) -> float:
    """Seconds to write each block's bytes to its own new file (plain ``write``, optionally an
    fsync per file): the page-cache write rate, or the durable one, for these file sizes."""
    folder.mkdir(parents=True, exist_ok=True)

    def write_part(part):
        for index, block in part:
            path = folder / f"{index:04d}.bin"
            with open(path, "wb") as handle:
                handle.write(memoryview(block).cast("B"))
                if fsync:
                    handle.flush()
                    os.fsync(handle.fileno())

    elapsed = _timed_on_threads(write_part, list(enumerate(blocks)), threads)
    for path in folder.glob("*.bin"):
        path.unlink()
    return elapsed


def compress_and_write_time(folder: Path, chunks: list[np.ndarray], chunks_per_block: int,
                            cname: str, threads: int, fsync: bool) -> float:
    """Seconds to compress every chunk (as ``compression_time``) and write the compressed
    bytes, chunk by chunk, to one new file per block (plain ``write``, optionally an fsync per
    file), blocks shared over ``threads`` threads: the work any writer of these files must do,
    HDF5's own bookkeeping left out."""
    import numcodecs.blosc
    from numcodecs import Blosc

    numcodecs.blosc.use_threads = False
    codec = Blosc(cname=cname, clevel=9, shuffle=Blosc.SHUFFLE)
    folder.mkdir(parents=True, exist_ok=True)
    blocks = [chunks[first : first + chunks_per_block]
              for first in range(0, len(chunks), chunks_per_block)]

    def write_part(part):
        for index, block in part:
            with open(folder / f"{index:04d}.bin", "wb", buffering=0) as handle:
                for chunk in block:
                    handle.write(codec.encode(chunk))
                if fsync:
                    os.fsync(handle.fileno())

    elapsed = _timed_on_threads(write_part, list(enumerate(blocks)), threads)
    for path in folder.glob("*.bin"):
        path.unlink()
    return elapsed


# --- where a writer's time goes ----------------------------------------------------------------

# The writers' stages, each a module function every writer calls through its module, so that
# wrapping it times it wherever it runs: (module, function) -> stage name.
STAGES = (
    ("split_dataset.block_file", "compress_chunks", "compress"),
    ("split_dataset.checksums", "crc32", "checksum"),
    ("split_dataset.block_file", "store_compressed", "HDF5 file"),  # and raw pwrite:
    ("split_dataset.block_file", "write_uncompressed_or_by_hdf5", "HDF5 file"),
    ("split_dataset.block_file", "fsync_path", "fsync"),
    ("split_dataset.streaming", "fsync_path", "fsync"),
)


@contextmanager
def profile_stages():
    """Sum, over all threads, the CPU seconds and the wall seconds spent in each stage of
    ``STAGES`` while the block runs; yields the dict it fills ({stage: [cpu, wall]}). A
    checksum is inside compression: its time is subtracted from compression's."""
    import importlib
    import threading

    totals: dict[str, list[float]] = {}
    lock = threading.Lock()
    depth = threading.local()
    originals = []

    def timed(function, stage):
        def wrapper(*args, **kwargs):
            nested = getattr(depth, "stage", None)
            depth.stage = stage
            cpu, wall = time.thread_time(), time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                depth.stage = nested
                spent = (time.thread_time() - cpu, time.perf_counter() - wall)
                with lock:
                    entry = totals.setdefault(stage, [0.0, 0.0])
                    entry[0] += spent[0]
                    entry[1] += spent[1]
                    if nested is not None:  # a checksum inside compression
                        outer = totals.setdefault(nested, [0.0, 0.0])
                        outer[0] -= spent[0]
                        outer[1] -= spent[1]
        return wrapper

    for module_name, name, stage in STAGES:
        module = importlib.import_module(module_name)
        originals.append((module, name, getattr(module, name)))
        setattr(module, name, timed(getattr(module, name), stage))
    try:
        yield totals
    finally:
        for module, name, function in originals:
            setattr(module, name, function)
