"""Concurrency: forks while reading, process pools of every start method, close() racing
read-ahead and reads, eviction under many threads, readers of a dataset being written."""

from __future__ import annotations

import os
import signal
import threading
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import numpy as np
import pytest
from datasets import write_split_dataset

from split_dataset import IncompleteDatasetWarning, SplitDataset, SplitDatasetWriter
from split_dataset._ext import _chunk_reader

CHILD_TIMEOUT = 30.0


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    rng = np.random.default_rng(11)
    array = rng.integers(0, 3000, (24, 4, 96, 64)).astype(np.uint16)
    folder = write_split_dataset(tmp_path_factory.mktemp("c") / "ds", array, (2, 4, 96, 64),
                                 (1, 1, 24, 64), "blosc:lz4")
    return folder, array


def run_in_fork(child) -> int:
    """Fork; the child runs ``child()`` and exits 0 if it returns True. Returns the child's
    exit status, or -1 if it hung (then it is killed)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads running
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            code = 0 if child() else 3
        finally:
            os._exit(code)
    deadline = time.monotonic() + CHILD_TIMEOUT
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return -1


def test_a_child_forked_while_the_parent_reads_can_prefetch(recording):
    """The count of foreground reads (read-ahead waits for it to be zero) is inherited from
    threads that do not exist in the child: it must start at zero there."""
    folder, array = recording
    ds = SplitDataset(folder, threads=2)
    stop = threading.Event()

    def keep_reading():
        while not stop.is_set():
            ds.read(slice(None), threads=2)

    reader = threading.Thread(target=keep_reading)
    reader.start()
    try:
        statuses = []
        for _ in range(10):
            while _chunk_reader.foreground_reads() == 0:  # fork in the middle of a read
                time.sleep(0)

            def child():
                assert _chunk_reader.foreground_reads() == 0
                result = ds.prefetch((3, 1)).result(timeout=10)
                return np.array_equal(result, array[3, 1]) and np.array_equal(ds[5], array[5])

            statuses.append(run_in_fork(child))
    finally:
        stop.set()
        reader.join()
    assert statuses == [0] * 10, statuses


def test_a_child_forked_with_read_ahead_in_flight_reads_those_keys(recording):
    """Futures of read-ahead started in the parent never complete in the child: a read of
    their key there must not wait for them."""
    folder, array = recording
    ds = SplitDataset(folder)
    keys = [(t,) for t in range(0, 24, 2)]
    for key in keys:
        ds.prefetch(key)

    def child():
        return all(np.array_equal(ds[key], array[key]) for key in keys)

    assert run_in_fork(child) == 0
    for key in keys:  # the parent's read-ahead is unaffected
        np.testing.assert_array_equal(ds[key], array[key])


def _sum_of(ds: SplitDataset, key) -> int:
    return int(ds[key].astype(np.int64).sum())


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_process_pools_of_every_start_method_read_a_pickled_dataset(recording, method):
    folder, array = recording
    ds = SplitDataset(folder, threads=2)
    ds[0]  # the parent has files open and helpers running before it forks
    keys = [(t, slice(None), slice(t, None, 3)) for t in range(array.shape[0])]
    with ProcessPoolExecutor(2, mp_context=get_context(method)) as pool:
        sums = list(pool.map(_sum_of, [ds] * len(keys), keys))
    assert sums == [int(array[key].astype(np.int64).sum()) for key in keys]


def test_close_racing_read_ahead_and_reads_raises_nothing(recording):
    folder, array = recording
    ds = SplitDataset(folder)
    errors: list[BaseException] = []
    stop = threading.Event()

    def loop(action):
        rng = np.random.default_rng(threading.get_ident() % 1000)
        try:
            while not stop.is_set():
                action(rng)
        except BaseException as error:  # noqa: BLE001 - reported by the test
            errors.append(error)

    def prefetch(rng):
        ds.prefetch((int(rng.integers(24)), int(rng.integers(4))))

    def read(rng):
        t = int(rng.integers(24))
        np.testing.assert_array_equal(ds[t, 1], array[t, 1])

    threads = [threading.Thread(target=loop, args=(action,))
               for action in (prefetch, prefetch, read, lambda rng: ds.close())]
    for thread in threads:
        thread.start()
    time.sleep(2.0)
    stop.set()
    for thread in threads:
        thread.join()
    assert not errors, errors[0]


def test_many_threads_with_eviction_and_out_buffers(recording):
    """Eight threads read into their own buffers through a cache of 4 descriptors (constant
    eviction) while another thread closes the dataset now and then."""
    folder, array = recording
    ds = SplitDataset(folder, max_open_files=4)
    errors: list[BaseException] = []
    stop = threading.Event()

    def reader(seed):
        rng = np.random.default_rng(seed)
        buffer = np.empty((24, 96), np.uint16)
        try:
            for _ in range(60):
                z, x = int(rng.integers(4)), int(rng.integers(64))
                ds.read((slice(None), z, slice(None), x), out=buffer, threads=2)
                np.testing.assert_array_equal(buffer, array[:, z, :, x])
        except BaseException as error:  # noqa: BLE001
            errors.append(error)

    def closer():
        while not stop.is_set():
            ds.close()
            time.sleep(0.005)

    threads = [threading.Thread(target=reader, args=(seed,)) for seed in range(8)]
    closing = threading.Thread(target=closer)
    closing.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stop.set()
    closing.join()
    assert not errors, errors[0]


def test_a_dataset_opened_while_a_fast_writer_commits_is_never_inconsistent(tmp_path):
    """Opening lists the folder while blocks are renamed in: a listing may miss a file that
    was just renamed and see the next one (a false gap). Opening must not fail for it, and
    what it reads is always a correct prefix."""
    folder = tmp_path / "live"
    frames = np.arange(400 * 8 * 8, dtype=np.uint16).reshape(400, 8, 8)
    writer = SplitDatasetWriter(folder, (8, 8), np.uint16, 1, compression=None, durable=False)
    errors: list[BaseException] = []

    def write():
        for frame in frames:
            writer.append(frame)
        writer.close()

    writing = threading.Thread(target=write)
    writing.start()
    opened = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IncompleteDatasetWarning)
        while writing.is_alive() or opened < 50:
            try:
                ds = SplitDataset(folder)
                np.testing.assert_array_equal(ds[...], frames[: ds.shape[0]])
                ds.close()
            except BaseException as error:  # noqa: BLE001
                errors.append(error)
            opened += 1
    writing.join()
    assert not errors, f"{len(errors)} of {opened} opens failed: {errors[0]!r}"
    np.testing.assert_array_equal(SplitDataset(folder)[...], frames)


def test_listing_a_folder_while_blocks_are_renamed_in_sees_no_false_gap(tmp_path):
    """A directory listing during renames can miss a file just renamed and see the next one
    (a fifth of the listings of this 3,000-file folder did, before names were looked up)."""
    from split_dataset.discovery import numbered_block_files

    count = 3000
    for i in range(count):
        (tmp_path / f"{i:04d}.h5.tmp").write_bytes(b"")

    def rename_in():
        for i in range(count):
            os.replace(tmp_path / f"{i:04d}.h5.tmp", tmp_path / f"{i:04d}.h5")

    renaming = threading.Thread(target=rename_in)
    renaming.start()
    listings = []
    while renaming.is_alive() or not listings:
        listings.append([int(p.stem) for p in numbered_block_files(tmp_path)])
    renaming.join()
    assert all(numbers == list(range(len(numbers))) for numbers in listings)
    assert len(numbered_block_files(tmp_path)) == count
