"""Resources: descriptors stay bounded whatever the selection and the concurrency, and threads
that come and go leave no memory behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from types import SimpleNamespace

import h5py
import numpy as np
import pytest
from datasets import write_split_dataset

from split_dataset import SplitDataset

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent


def open_descriptors(inside: Path | None = None) -> int:
    """Descriptors open now (of files ``inside`` a folder only, if given)."""
    count = 0
    for name in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{name}")
        except OSError:  # closed meanwhile, or the listing's own descriptor
            continue
        count += inside is None or target.startswith(f"{inside}{os.sep}")
    return count


def rss_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def test_concurrent_first_reads_leak_no_descriptors(tmp_path):
    """Eight threads make the first reads of the same files at once: every descriptor they
    open is closed by close() (a check-then-open race leaked 52 in 300 trials)."""
    array = np.arange(16 * 32 * 64, dtype=np.uint16).reshape(16, 32, 64)
    folder = write_split_dataset(tmp_path / "ds", array, (2, 32, 64), (1, 1, 64), "blosc")
    assert open_descriptors(folder) == 0
    for trial in range(300):
        ds = SplitDataset(folder)
        barrier = threading.Barrier(8)

        def first_read(t, ds=ds, barrier=barrier):
            barrier.wait()
            ds.read((t, slice(3, 9)), threads=1)

        threads = [threading.Thread(target=first_read, args=(t % 4,)) for t in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if trial == 0:
            assert open_descriptors(folder) > 0  # the count sees the files while they are open
        ds.close()
    # only the block files' descriptors: other tests' threads may close theirs meanwhile
    # (an event loop's eventfd did, and a count of all of them came out one short)
    assert open_descriptors(folder) == 0


def test_a_read_waits_between_runs_only_for_files_it_must_open(tmp_path, monkeypatch):
    """A read over many files is split into runs that each open at most ``files_per_batch``
    files and hold at most as many as the cache keeps; files already open cost no descriptor,
    so a read over open files is one run. Descriptors stay within twice the capacity."""
    from split_dataset import reader

    array = np.arange(24 * 3 * 8, dtype=np.uint16).reshape(24, 3, 8)
    folder = write_split_dataset(tmp_path / "ds", array, (1, 3, 8), compression="raw")
    ds = SplitDataset(folder, max_open_files=16)  # runs open 4 files, hold 8
    cache = ds._cache
    assert (cache.capacity, cache.files_per_batch) == (16, 4)
    runs: list[int] = []
    peak = [0]
    read_batch = reader._read_batch

    def counting_batch(grid, cache, block_plan, paths, out, options):
        runs.append(len(block_plan.files))
        read_batch(grid, cache, block_plan, paths, out, options)
        peak[0] = max(peak[0], open_descriptors(folder))

    monkeypatch.setattr(reader, "_read_batch", counting_batch)
    np.testing.assert_array_equal(ds[:10], array[:10])  # block 0 open since opening
    assert runs == [5, 4, 1]
    runs.clear()
    np.testing.assert_array_equal(ds[:8, 1], array[:8, 1])  # all open: one run
    assert runs == [8]
    runs.clear()
    np.testing.assert_array_equal(ds[::-1], array[::-1])
    assert sum(runs) == 24 and max(runs) <= 8
    np.testing.assert_array_equal(ds[::3, 2], array[::3, 2])
    assert 0 < peak[0] <= 2 * cache.capacity
    ds.close()


MANY_FILES = 20_000
FILE_SHAPE = (1, 2, 32, 8)  # uncompressed chunks of (1, 1, 2, 8): 32 per file, a lazy index
CHUNK_SHAPE = (1, 1, 2, 8)


def write_many_files(folder: Path, count: int) -> None:
    """``count`` one-time-point block files whose every value is the time point's index
    (mod 2**16): one file is written with h5py, the others are copies with their chunk bytes
    patched (20,000 files in seconds)."""
    folder.mkdir()
    template = folder / "template.h5"
    with h5py.File(template, "w") as handle:
        dataset = handle.create_dataset(
            "stack_4D", shape=FILE_SHAPE, dtype=np.uint16, chunks=CHUNK_SHAPE
        )
        dataset[...] = 0
        spans = []
        dataset.id.chunk_iter(lambda info: spans.append((info.byte_offset, info.size)))
    data = bytearray(template.read_bytes())
    template.unlink()
    for t in range(count):
        value = np.full(int(np.prod(CHUNK_SHAPE)), t % 2**16, np.uint16).tobytes()
        for offset, size in spans:
            data[offset : offset + size] = value
        (folder / f"{t:04d}.h5").write_bytes(data)
    (folder / "stack_metadata.json").write_text(
        json.dumps({"shape_full": [count, *FILE_SHAPE[1:]], "shape_block": list(FILE_SHAPE)})
    )


LOW_LIMIT_SCRIPT = textwrap.dedent(
    """
    import resource, sys
    import numpy as np
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
    from split_dataset import SplitDataset

    ds = SplitDataset(sys.argv[1])
    count = ds.shape[0]
    values = (np.arange(count) % 2**16).astype(np.uint16)
    rng = np.random.default_rng(0)
    mask = rng.random(count) < 0.5
    vector = rng.permutation(count)[: count // 3]
    selections = {
        "one element per file": (slice(None), 0, 0, 0),
        "whole": (Ellipsis,),
        "stride": (slice(3, None, 7), 1),
        "reversed": (slice(None, None, -1), 0, 5),
        "unsorted vector": (vector, 1, slice(2, 6)),
        "mask": (mask, 0, 31, 7),
        "several advanced": ([0, count - 1, 7], [0, 1, 1], 3),
    }
    for name, key in selections.items():
        result = ds[key]
        index = key[0]
        expected = values[index] if not isinstance(index, type(Ellipsis)) else values
        reduced = result.reshape(result.shape[0], -1)[:, 0] if result.ndim > 1 else result
        if name == "whole":
            reduced = result[:, 0, 0, 0]
        assert np.array_equal(reduced, expected), name
        ds.close()
        print(name, "ok", flush=True)
    """
)


def test_twenty_thousand_files_read_end_to_end_under_a_low_descriptor_limit(tmp_path):
    """Files whose chunk index is only partly known hold two descriptors (pread and h5py):
    with ``ulimit -n 256`` every selection kind still reads all 20,000 files."""
    folder = tmp_path / "many"
    write_many_files(folder, MANY_FILES)
    script = tmp_path / "low_limit.py"
    script.write_text(LOW_LIMIT_SCRIPT)
    result = subprocess.run(
        [sys.executable, str(script), str(folder)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert result.stdout.count(" ok") == 7, result.stdout


def test_threads_that_come_and_go_leave_memory_flat(tmp_path):
    """Each short-lived thread decodes 2 MiB chunks into its own scratch buffers: freed when
    it exits (350 threads used to keep 700 MiB)."""
    rng = np.random.default_rng(3)
    array = rng.integers(0, 400, (4, 1024, 1024)).astype(np.uint16)
    folder = write_split_dataset(
        tmp_path / "big", array, (4, 1024, 1024), (1, 1024, 1024), "blosc:lz4"
    )
    ds = SplitDataset(folder)
    ds.read((0, slice(0, 512)), threads=1)  # files indexed, pool and caches warm

    def read(t):
        region = ds.read((t % 4, slice(1, 700)), threads=1)  # through the decoded scratch
        assert region[0, 0] == array[t % 4, 1, 0]

    for t in range(20):  # warm up the allocator's arenas
        thread = threading.Thread(target=read, args=(t,))
        thread.start()
        thread.join()
    before = rss_bytes()
    for t in range(350):
        thread = threading.Thread(target=read, args=(t,))
        thread.start()
        thread.join()
    grown = rss_bytes() - before
    assert grown < 64 * 2**20, f"RSS grew by {grown / 2**20:.0f} MiB"


@pytest.mark.parametrize("threads", [1, 3])
def test_the_calling_thread_keeps_its_scratch_for_the_next_read(tmp_path, threads):
    """What the previous test frees is per thread: a thread that reads keeps its buffers
    (playback reads on one thread must not reallocate every frame)."""
    from split_dataset._ext import _chunk_reader

    array = np.arange(2 * 64 * 64, dtype=np.uint16).reshape(2, 64, 64)
    folder = write_split_dataset(tmp_path / "ds", array, (1, 64, 64), (1, 16, 64), "blosc")
    seen = []

    def read():
        SplitDataset(folder).read((0, slice(2, 9)), threads=threads)
        seen.append(_chunk_reader.thread_has_state())

    thread = threading.Thread(target=read)
    thread.start()
    thread.join()
    assert seen == [True]


@pytest.fixture
def more_files_than_kept_open(tmp_path):
    """30 block files of one time point, read by a dataset that keeps 8 descriptors open."""
    rng = np.random.default_rng(5)
    array = rng.integers(0, 4000, (30, 2, 16, 16)).astype(np.uint16)
    folder = write_split_dataset(tmp_path / "ds", array, (1, 2, 16, 16), (1, 1, 8, 16), "blosc")
    return folder, array


def _count_calls(monkeypatch, name: str) -> list:
    """The paths ``file_cache.<name>`` is called with from now on (it still runs)."""
    from split_dataset import file_cache

    paths: list = []
    real = getattr(file_cache, name)

    def counted(path, *args, **kwargs):
        paths.append(path)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(file_cache, name, counted)
    return paths


def _count_layout_reads(monkeypatch) -> list:
    return _count_calls(monkeypatch, "read_file_layout")


def test_files_closed_for_descriptors_reopen_with_their_kept_layouts(
    more_files_than_kept_open, monkeypatch
):
    """A read across more files than the cache keeps open closes files to stay within its
    descriptors; their complete layouts are kept, and the next read of the same file
    versions reopens them without parsing their HDF5 layout again (a pixel's trace through
    10,000 files: 795 us a file), with NumPy's values."""
    folder, array = more_files_than_kept_open
    reads = _count_layout_reads(monkeypatch)
    ds = SplitDataset(folder, max_open_files=8)
    np.testing.assert_array_equal(ds[:, 1, 3, 5], array[:, 1, 3, 5])
    assert len(reads) >= 30  # the first read opened every file
    reads.clear()
    for key in [(slice(None), 0, 9, 2), (slice(None, None, -1), 1), (slice(None), 1, 4)]:
        np.testing.assert_array_equal(ds[key], array[key])
    assert reads == []  # every file reopened from its kept layout
    assert open_descriptors(folder) <= 8 + 2


def test_a_file_replaced_after_its_layout_was_kept_is_read_as_it_is_now(
    more_files_than_kept_open, monkeypatch, tmp_path
):
    """A kept layout serves only the file version it was read from: a block file replaced,
    or rewritten in place, meanwhile has its layout read again and its new values read."""
    folder, array = more_files_than_kept_open
    ds = SplitDataset(folder, max_open_files=8)
    np.testing.assert_array_equal(ds[:, 1, 3, 5], array[:, 1, 3, 5])
    changed = array.copy()
    changed[2] += 1000  # a different chunk layout: new sizes, new offsets
    other = write_split_dataset(tmp_path / "other", changed, (1, 2, 16, 16), (1, 1, 8, 16), "blosc")
    os.replace(other / "0002.h5", folder / "0002.h5")
    changed[5] = array[5][::-1]  # the same bytes count, rewritten in place
    write_split_dataset(tmp_path / "again", changed, (1, 2, 16, 16), (1, 1, 8, 16), "blosc")
    (folder / "0005.h5").write_bytes((tmp_path / "again" / "0005.h5").read_bytes())
    reads = _count_layout_reads(monkeypatch)
    np.testing.assert_array_equal(ds[:, 1, 3, 5], changed[:, 1, 3, 5])
    np.testing.assert_array_equal(ds[:], changed)
    assert {path.name for path in reads} >= {"0002.h5", "0005.h5"}


def test_kept_layouts_are_bounded(more_files_than_kept_open, monkeypatch):
    from split_dataset import file_cache

    folder, array = more_files_than_kept_open
    ds = SplitDataset(folder, max_open_files=8)
    np.testing.assert_array_equal(ds[:, 1, 3, 5], array[:, 1, 3, 5])
    kept = ds._cache._closed
    assert kept
    one = next(iter(kept.values())).nbytes
    monkeypatch.setattr(file_cache, "CLOSED_LAYOUTS_BYTES", 3 * one)
    np.testing.assert_array_equal(ds[:, 0, 9, 2], array[:, 0, 9, 2])
    assert 0 < len(ds._cache._closed) <= 3
    assert ds._cache._closed_bytes == sum(k.nbytes for k in ds._cache._closed.values())
    ds.close()
    assert len(ds._cache._closed) == 0


@pytest.fixture
def partly_indexed_files(tmp_path):
    """40 block files of 32 chunks each (indexed lazily: a pixel's trace looks up one chunk
    a file), read by a dataset that keeps 12 descriptors open."""
    rng = np.random.default_rng(8)
    array = rng.integers(0, 4000, (40, 4, 64, 16)).astype(np.uint16)
    folder = write_split_dataset(tmp_path / "ds", array, (1, 4, 64, 16), (1, 1, 8, 16), "blosc")
    return folder, array


def _count_reopenings(monkeypatch) -> list:
    return _count_calls(monkeypatch, "reopen_stack")


def test_partial_indexes_of_files_closed_for_descriptors_are_kept_detached(
    partly_indexed_files, monkeypatch
):
    """A pixel's trace through more files than the cache keeps open looks up one chunk a
    file; files closed for descriptors keep their partial index, detached: the next trace
    through known chunks opens no file in h5py at all, one through new chunks opens each
    closed file only to look them up (0.13 ms, not 0.6 for its whole layout), never holding
    more descriptors than the capacity; values are NumPy's."""
    folder, array = partly_indexed_files
    reads = _count_layout_reads(monkeypatch)
    reopened = _count_reopenings(monkeypatch)
    ds = SplitDataset(folder, max_open_files=12)
    np.testing.assert_array_equal(ds[:, 1, 3, 5], array[:, 1, 3, 5])
    assert len(reads) >= 40 and reopened == []
    kept = [k.layout.lazy for k in ds._cache._closed.values()]
    assert kept and all(lazy is not None and not lazy.complete for lazy in kept)
    assert not any(lazy.holds_file for lazy in kept)
    reads.clear()
    np.testing.assert_array_equal(ds[:, 1, 7, 2], array[:, 1, 7, 2])  # the same chunks
    assert reads == [] and reopened == []
    np.testing.assert_array_equal(ds[::-1, 2, 40, 9], array[::-1, 2, 40, 9])  # new chunks
    assert reads == []
    assert len(reopened) >= 40 - ds._cache.capacity
    for key in [(slice(None), 2, 41), (slice(None), 3), (slice(0, 40, 7),)]:
        np.testing.assert_array_equal(ds[key], array[key])
        assert ds._cache.descriptors() <= ds._cache.capacity
        assert open_descriptors(folder) <= ds._cache.capacity
    ds.close()
    assert open_descriptors(folder) == 0


def test_a_file_replaced_during_a_read_through_its_detached_index_is_named(
    partly_indexed_files, monkeypatch, tmp_path
):
    """A detached index opens its file again by path: if the path names another file by
    then (replaced between the read's check and the lookup), the read fails naming it rather
    than look chunks up in one file and read them from another; the next read reads the new
    file."""
    from split_dataset import file_cache
    from split_dataset.errors import BlockFileError

    folder, array = partly_indexed_files
    ds = SplitDataset(folder, max_open_files=12)
    np.testing.assert_array_equal(ds[:, 1, 3, 5], array[:, 1, 3, 5])
    assert folder / "0003.h5" in ds._cache._closed
    changed = array.copy()
    changed[3] = changed[3][:, ::-1]
    other = write_split_dataset(tmp_path / "other", changed, (1, 4, 64, 16), (1, 1, 8, 16), "blosc")
    real_pin_all = file_cache.FileCache.pin_all

    def pin_then_replace(cache, paths, *args):
        entries = real_pin_all(cache, paths, *args)
        if folder / "0003.h5" in paths and (other / "0003.h5").exists():
            os.replace(other / "0003.h5", folder / "0003.h5")
        return entries

    monkeypatch.setattr(file_cache.FileCache, "pin_all", pin_then_replace)
    with pytest.raises(BlockFileError, match="0003.h5.*replaced or changed on disk"):
        ds[:, 2, 50, 1]  # a chunk no file has looked up yet
    monkeypatch.undo()
    np.testing.assert_array_equal(ds[:, 2, 50, 1], changed[:, 2, 50, 1])
    np.testing.assert_array_equal(ds[:], changed)
    ds.close()
    assert open_descriptors(folder) == 0


def test_reopening_for_a_detached_index_checks_the_file_version(partly_indexed_files):
    from split_dataset.errors import BlockFileError
    from split_dataset.file_layout import file_identity, reopen_stack

    folder, _ = partly_indexed_files
    path = folder / "0001.h5"
    stat = os.stat(path)
    identity = file_identity(stat)
    handle = reopen_stack(path, "stack_4D", identity)
    assert handle.dataset_id.shape == (1, 4, 64, 16)
    handle.close()
    modified_later = SimpleNamespace(
        st_dev=stat.st_dev,
        st_ino=stat.st_ino,
        st_size=stat.st_size,
        st_mtime_ns=stat.st_mtime_ns + 1,
    )
    with pytest.raises(BlockFileError, match="0001.h5"):
        reopen_stack(path, "stack_4D", file_identity(modified_later))
    path.unlink()
    with pytest.raises(BlockFileError, match="0001.h5"):
        reopen_stack(path, "stack_4D", identity)


def test_descriptors_stay_within_the_capacity_while_files_are_partly_indexed(
    partly_indexed_files,
):
    """Files whose lazy index is partial hold two descriptors (the h5py handle kept for
    lookups), indexed ones one: reads across more files than the cache keeps open, some
    partly indexed and some whole, never hold more than the capacity once they are done
    (the cache counts the partial ones, not every file, on each opening)."""
    folder, array = partly_indexed_files
    ds = SplitDataset(folder, max_open_files=12)
    for key in [(slice(None), 1, 3, 5), (slice(0, 40, 3),), (slice(None), 2, 9), (7,)]:
        np.testing.assert_array_equal(ds[key], array[key])
        cache = ds._cache
        assert cache.descriptors() <= cache.capacity
        assert open_descriptors(folder) <= cache.capacity
        partial = {e for e in cache._entries.values() if e.descriptors == 2}
        assert partial <= cache._indexing  # every file holding two descriptors is counted
    ds.close()
    assert open_descriptors(folder) == 0
