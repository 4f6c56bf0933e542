"""Reading cold files: the page-cache probe and read-ahead, and the read profile's accounting.

Files are made cold with fsync + posix_fadvise(DONTNEED) and checked with mincore(2): the
tests first assert that the pages really left the page cache, so they cannot pass vacuously on
a file system where dropping does nothing.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from datasets import write_split_dataset

from split_dataset import ReadProfile, SplitDataset, file_cache, profile_reads, reader
from split_dataset._ext import _chunk_reader
from split_dataset.planning import plan_blocks, plan_chunks
from split_dataset.selection import normalize

PAGE = mmap.PAGESIZE
libc = ctypes.CDLL(None, use_errno=True)
libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]


def resident_pages(path: Path) -> np.ndarray:
    """Per page of the file: is it in the page cache now (mincore on a mapping of it)."""
    size = path.stat().st_size
    with open(path, "rb") as file:
        mapping = mmap.mmap(file.fileno(), size, access=mmap.ACCESS_COPY)  # writable: addressable
    try:
        address = ctypes.addressof(ctypes.c_char.from_buffer(mapping))
        pages = np.zeros(-(-size // PAGE), dtype=np.uint8)
        if libc.mincore(address, size, pages.ctypes.data) != 0:
            raise OSError(ctypes.get_errno(), "mincore")
        return (pages & 1).astype(bool)
    finally:
        del address
        mapping.close()


def settled_resident_pages(
    path: Path, expected: np.ndarray | None = None, quiet: float = 0.2, limit: float = 15.0
) -> np.ndarray:
    """``resident_pages`` once reads in flight have landed: mincore counts a page only when its
    read completed, and read-ahead is asynchronous. Polls until nothing changes for ``quiet``
    seconds and the ``expected`` pages (a mask) are all in (at most ``limit``: a disk busy
    with other reads can leave an asked-for page out longer than ``quiet``)."""
    pages, stable_since, started = resident_pages(path), time.monotonic(), time.monotonic()
    while time.monotonic() - started < limit and (
        time.monotonic() - stable_since < quiet
        or (expected is not None and not pages[expected].all())
    ):
        time.sleep(0.02)
        now = resident_pages(path)
        if not np.array_equal(now, pages):
            pages, stable_since = now, time.monotonic()
    return pages


def make_cold(paths: list[Path]) -> None:
    file_cache.release_mappings()  # the kernel keeps the pages of mapped files
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
    cached = {p.name: int(resident_pages(p).sum()) for p in paths}
    assert not any(cached.values()), f"pages stayed in the page cache: {cached}"


def movie(shape: tuple[int, ...]) -> np.ndarray:
    rng = np.random.default_rng(3)
    return (rng.integers(0, 64, shape) + np.arange(shape[-1])).astype(np.uint16)


@pytest.mark.parametrize("compression", ["blosc", "raw", "contiguous", "zlib"])
@pytest.mark.parametrize("threads", [1, 2])
def test_a_cold_read_returns_exact_data_through_the_cache_probe(tmp_path, compression, threads):
    """Whether a chunk counts as missed depends on the disk (the probe starts the kernel's
    read, and a fast disk may finish it before the probe returns): the data may not."""
    array = movie((6, 4, 128, 256))
    folder = write_split_dataset(
        tmp_path / "ds", array, (2, 4, 128, 256), (1, 1, 64, 256), compression
    )
    files = sorted(folder.glob("*.h5"))
    ds = SplitDataset(folder, threads=threads)
    ds[:]  # opens the files and looks up every chunk: what the cold read reads is chunk data
    make_cold(files)
    with profile_reads() as profile:
        got = ds[:, 1:3, 10:100]
    np.testing.assert_array_equal(got, array[:, 1:3, 10:100])
    assert 0 <= profile.missed_chunks <= profile.chunks


@contextmanager
def read_context(ds: SplitDataset, key: tuple):
    """The compiled reader's context for ``ds[key]``, its files held open, nothing read."""
    selection = normalize(key, ds.shape)
    grid = ds._grid
    block_plan = plan_blocks(selection.terms, grid.block_shape, grid.blocks_grid)
    out = np.empty(selection.result_shape, ds.dtype)
    with ds._cache.acquire([grid.files[f] for f in block_plan.files], grid.key) as files:
        plan = plan_chunks(
            block_plan, {f: e.layout.chunk_shape for f, e in zip(block_plan.files, files)}
        )
        yield _chunk_reader.ReadContext(plan, out, files), out


def chunk_pages(layout, linear: int) -> slice:
    start = int(layout.chunk_offset[linear])
    return slice(start // PAGE, (start + int(layout.chunk_size[linear]) - 1) // PAGE + 1)


def planned_pages(layout, linears, size: int) -> np.ndarray:
    pages = np.zeros(size, bool)
    for linear in linears:
        pages[chunk_pages(layout, linear)] = True
    return pages


@pytest.mark.parametrize("per_file", [1, 2])
def test_read_ahead_asks_for_the_planned_chunks_and_nothing_else(tmp_path, per_file):
    """One z-plane of every time point (512 KiB chunks, 16 MiB per time point), as a miss in
    the first file would: the kernel is asked for that plane's chunks in the files ahead; in
    the file being read only if they are scattered (one run is the kernel's own read-ahead's
    job); never for the rest of the files (a whole-file advice would read 32 times the data)."""
    array = movie((3 * per_file, 32, 512, 512))
    folder = write_split_dataset(
        tmp_path / "ds", array, (per_file, 32, 512, 512), (1, 1, 512, 512), "raw"
    )
    files = sorted(folder.glob("*.h5"))
    ds = SplitDataset(folder)
    ds[:, 0]  # look up every chunk the read needs
    layouts = [ds.layout(i) for i in range(len(files))]
    make_cold(files)
    with read_context(ds, (slice(None), 0)) as (context, _):
        context.read_ahead_from(0)
    for slot, (path, layout) in enumerate(zip(files, layouts)):
        planned = [t * 32 for t in range(per_file)]  # linear chunk index of plane 0 at each t
        wanted = slot > 0 or per_file > 1
        size = resident_pages(path).size
        expected = planned_pages(layout, planned, size) if wanted else None
        pages = settled_resident_pages(path, expected)
        for linear in planned:
            assert pages[chunk_pages(layout, linear)].all() == wanted, (path.name, linear)
        unplanned = np.ones(pages.size, bool)
        for linear in planned:
            unplanned[chunk_pages(layout, linear)] = False
        unplanned[: chunk_pages(layout, 0).start] = False  # HDF5's own header and index
        assert not pages[unplanned].any(), f"{path.name}: unplanned chunks were asked for"


@pytest.mark.parametrize("compression", ["raw", "blosc"])
def test_whole_raw_files_ahead_are_left_to_the_kernel(tmp_path, compression):
    """A full read of 4 MiB files: compressed files ahead are asked for (the disk reads while
    the cores decode); raw ones are not (nothing to overlap: the kernel's own read-ahead keeps
    up with one long run, and advice queued in front of the file being read slowed it)."""
    array = movie((3, 8, 512, 512))
    folder = write_split_dataset(tmp_path / "ds", array, (1, 8, 512, 512), (1, 1, 512, 512),
                                 compression)
    files = sorted(folder.glob("*.h5"))
    ds = SplitDataset(folder)
    ds[:]  # look up every chunk
    layouts = [ds.layout(i) for i in range(len(files))]
    assert all(int(layout.chunk_size.sum()) > (2 << 20) for layout in layouts)
    make_cold(files)
    with read_context(ds, (slice(None),)) as (context, _):
        context.read_ahead_from(0)
    for slot in (1, 2):
        stored = np.concatenate([np.arange(s.start, s.stop) for s in
                                 (chunk_pages(layouts[slot], c) for c in range(8))])
        size = resident_pages(files[slot]).size
        pages = settled_resident_pages(
            files[slot], planned_pages(layouts[slot], range(8), size)
            if compression == "blosc" else None
        )
        assert pages[stored].all() == (compression == "blosc"), (files[slot].name, compression)


@pytest.mark.parametrize("per_file", [1, 2])
def test_the_read_ahead_thread_asks_for_the_planned_chunks_and_nothing_else(tmp_path, per_file):
    """One z-plane of every time point, as the read-ahead thread asks for it from a miss at
    the first task: every planned chunk of every file, the file being read included (off the
    decoding threads, one run there is asked for too), and nothing else."""
    array = movie((3 * per_file, 32, 512, 512))
    folder = write_split_dataset(
        tmp_path / "ds", array, (per_file, 32, 512, 512), (1, 1, 512, 512), "raw"
    )
    files = sorted(folder.glob("*.h5"))
    ds = SplitDataset(folder)
    ds[:, 0]
    layouts = [ds.layout(i) for i in range(len(files))]
    make_cold(files)
    with read_context(ds, (slice(None), 0)) as (context, _):
        assert context.read_ahead_bytes >= 32 << 20  # more than this read: no waiting
        context.read_ahead_thread_from(0, 0)
    for path, layout in zip(files, layouts):
        planned = planned_pages(
            layout, [t * 32 for t in range(per_file)], resident_pages(path).size
        )
        pages = settled_resident_pages(path, planned)
        assert pages[planned].all(), f"{path.name}: planned chunks were not asked for"
        planned[: chunk_pages(layout, 0).start] = True  # HDF5's own header and index
        assert not pages[~planned].any(), f"{path.name}: unplanned chunks were asked for"


def test_the_read_ahead_thread_keeps_its_distance(tmp_path):
    """With room for three chunks ahead of the decoders, which have taken the first four
    tasks, the thread asks for tasks 4-6 and stops: none before, none after."""
    array = movie((1, 12, 512, 512))
    folder = write_split_dataset(tmp_path / "ds", array, (1, 12, 512, 512), (1, 1, 512, 512),
                                 "raw")
    (path,) = sorted(folder.glob("*.h5"))
    ds = SplitDataset(folder)
    ds[:]
    layout = ds.layout(0)
    make_cold([path])
    with read_context(ds, (slice(None),)) as (context, _):
        context.read_ahead_bytes = 3 * 512 * 512 * 2
        context.read_ahead_thread_from(4, 4)
    asked = planned_pages(layout, [4, 5, 6], resident_pages(path).size)
    pages = settled_resident_pages(path, asked)
    assert pages[asked].all()
    not_asked = planned_pages(layout, [0, 1, 2, 3, 7, 8, 9, 10, 11], pages.size) & ~asked
    assert not pages[not_asked].any()  # (a page shared with an asked chunk is asked for)


@pytest.mark.parametrize("thread", [True, False])
def test_a_cold_read_is_exact_with_read_ahead_on_either_side(tmp_path, monkeypatch, thread):
    """Many files ahead, several chunks each: the read-ahead thread (or the decoding threads)
    advise while the decoders read; the data is exact and the thread is gone at the end."""
    monkeypatch.setattr(reader, "READ_AHEAD_THREAD", thread)
    array = movie((12, 4, 128, 256))
    folder = write_split_dataset(tmp_path / "ds", array, (1, 4, 128, 256), (1, 1, 64, 256))
    files = sorted(folder.glob("*.h5"))
    ds = SplitDataset(folder, threads=2)
    ds[:]  # the pool's workers are started
    native_threads = len(os.listdir("/proc/self/task"))
    for key in [(slice(None),), (slice(None), 2), (slice(3, 9), slice(None), 5)]:
        make_cold(files)
        np.testing.assert_array_equal(ds[key], array[key])
    assert len(os.listdir("/proc/self/task")) == native_threads  # read-ahead threads joined


def test_read_ahead_off_reads_the_same_and_never_probes(tmp_path, monkeypatch):
    array = movie((4, 2, 64, 128))
    folder = write_split_dataset(tmp_path / "ds", array, (1, 2, 64, 128), (1, 1, 32, 128))
    monkeypatch.setattr(reader, "READ_AHEAD", False)
    ds = SplitDataset(folder)
    ds[0, 0]
    make_cold(sorted(folder.glob("*.h5")))
    with profile_reads() as profile:
        np.testing.assert_array_equal(ds[:], array)
    assert profile.missed_chunks == 0


def test_a_truncated_file_is_still_an_error_through_the_cache_probe(tmp_path):
    array = movie((2, 2, 64, 128))
    folder = write_split_dataset(tmp_path / "ds", array, (1, 2, 64, 128), (1, 1, 64, 128), "raw")
    ds = SplitDataset(folder)
    layout = ds.layout(1)
    last = int(layout.chunk_offset[1]) + int(layout.chunk_size[1])
    ds[0]
    os.truncate(folder / "0001.h5", last - 100)
    with pytest.raises(Exception, match=r"0001\.h5"):
        SplitDataset(folder)[1]


# --- the profile's accounting ----------------------------------------------------------------


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    array = movie((8, 3, 64, 96))
    folder = write_split_dataset(
        tmp_path_factory.mktemp("p") / "ds", array, (2, 3, 64, 96), (1, 1, 32, 96)
    )
    return folder, array


def test_the_profile_counts_every_chunk_and_its_shares_add_up(small):
    folder, array = small
    ds = SplitDataset(folder, threads=2)
    with profile_reads() as profile:
        np.testing.assert_array_equal(ds[:], array)
        np.testing.assert_array_equal(ds[3, 1], array[3, 1])
    assert profile.reads == 2
    assert profile.chunks == 8 * 3 * 2 + 2  # every chunk of the full read, then a plane's two
    shares = profile.shares()
    assert set(shares) == {"planning", "io", "decode", "copy", "h5py", "loop", "idle"}
    assert all(v >= 0 for v in shares.values())
    assert sum(shares.values()) == pytest.approx(1.0)
    assert 0 < profile.run_s <= profile.wall_s
    assert profile.busy_s >= profile.chunks_s >= profile.io_s > 0
    assert profile.thread_runs >= 2
    assert "2 reads" in profile.report()


def test_a_profile_sees_only_its_own_threads_reads(small):
    folder, array = small
    ds = SplitDataset(folder, threads=1)
    other = threading.Thread(target=lambda: [ds[t] for t in range(8)])
    with profile_reads() as profile:
        other.start()
        other.join()
        ds[0, 0]
    assert profile.reads == 1
    assert profile.chunks == 2


def test_profiles_nest_and_add(small):
    folder, _ = small
    ds = SplitDataset(folder)
    with profile_reads() as outer:
        ds[0]
        with profile_reads() as inner:
            ds[1]
    assert (outer.reads, inner.reads) == (1, 1)
    total = ReadProfile()
    total.add(outer)
    total.add(inner)
    assert total.reads == 2 and total.chunks == outer.chunks + inner.chunks


def test_without_a_profile_the_reader_counts_nothing(small):
    folder, array = small
    with read_context(SplitDataset(folder), (slice(None),)) as (context, out):
        context.run(2)
    np.testing.assert_array_equal(out, array)
    assert set(context.timings().values()) == {0}


def test_one_mapped_chunk_out_of_the_page_cache_is_seen_as_missed(tmp_path):
    """A plane of a mapped file whose last chunk alone left the page cache: that chunk is
    found missing (a probe of the plane's whole span, or of its first chunks only, would
    call it resident), and the read is exact."""
    array = movie((2, 2, 256, 256))
    folder = write_split_dataset(tmp_path / "ds", array, (2, 2, 256, 256), (1, 1, 64, 256))
    path = folder / "0000.h5"
    ds = SplitDataset(folder, threads=1)
    np.testing.assert_array_equal(ds[:], array)  # every chunk looked up, all pages cached
    layout = ds.layout(0)
    last = int(np.ravel_multi_index((1, 1, 3, 0), layout.chunk_grid))  # of the plane (1, 1)
    start, size = int(layout.chunk_offset[last]), int(layout.chunk_size[last])
    first_page, end_page = -(-start // PAGE), (start + size) // PAGE
    assert end_page > first_page, "the chunk holds no whole page"
    file_cache.release_mappings()
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)  # dirty pages stay
        os.posix_fadvise(fd, first_page * PAGE, (end_page - first_page) * PAGE,
                         os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
    pages = resident_pages(path)
    plane = [int(np.ravel_multi_index((1, 1, i, 0), layout.chunk_grid)) for i in range(3)]
    assert not pages[first_page:end_page].any(), "the chunk's pages stayed in the page cache"
    for chunk in plane:  # the plane's other chunks stayed: not the whole plane is missing
        offset, end = int(layout.chunk_offset[chunk]), int(layout.chunk_offset[chunk]) + int(
            layout.chunk_size[chunk]
        )
        assert pages[offset // PAGE : (end - 1) // PAGE + 1].all()
    with profile_reads() as profile:
        np.testing.assert_array_equal(ds[1, 1], array[1, 1])
    assert profile.missed_chunks == 1
    with profile_reads() as profile:  # all of it is in the page cache now: no miss
        np.testing.assert_array_equal(ds[1, 1], array[1, 1])
    assert profile.missed_chunks == 0
