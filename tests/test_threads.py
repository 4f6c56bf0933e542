"""The reader's threads: limits, threadpoolctl, many Python threads on one dataset."""

from __future__ import annotations

import numpy as np
import pytest
from datasets import check_reads_from_threads, write_split_dataset
from threadpoolctl import threadpool_info, threadpool_limits

from split_dataset import SplitDataset, get_default_threads, set_default_threads
from split_dataset.threads import effective_threads


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    rng = np.random.default_rng(5)
    array = rng.integers(0, 4000, (20, 6, 64, 64)).astype(np.uint16)
    folder = write_split_dataset(tmp_path_factory.mktemp("t") / "ds", array, (3, 6, 64, 64), (1, 1, 16, 64))
    return SplitDataset(folder), array


def test_threadpoolctl_limits_the_reader_pool(dataset):
    ds, array = dataset
    assert any(info["user_api"] == "split_dataset" for info in threadpool_info())
    assert effective_threads(8) == 8
    with threadpool_limits(1):
        assert effective_threads(8) == 1
        np.testing.assert_array_equal(ds[::2], array[::2])
    assert effective_threads(8) == 8


def test_default_threads_setting():
    before = get_default_threads()
    try:
        set_default_threads(3)
        assert effective_threads(None) == 3
        with pytest.raises(ValueError):
            set_default_threads(0)
    finally:
        set_default_threads(before)


def test_concurrent_reads_from_many_python_threads(dataset):
    ds, array = dataset

    def random_key(rng):
        t = int(rng.integers(array.shape[0]))
        return (slice(t, None, int(rng.integers(1, 4))), int(rng.integers(6)))

    check_reads_from_threads(ds, array, random_key, n_threads=8, reads=30)


def test_small_file_cache_still_reads_everything(tmp_path):
    array = np.arange(40 * 8, dtype=np.int32).reshape(40, 8)
    folder = write_split_dataset(tmp_path / "many", array, (1, 8), None, "blosc")
    ds = SplitDataset(folder, max_open_files=4)
    np.testing.assert_array_equal(ds[::-1], array[::-1])
    assert len(ds._cache) <= 4


def test_native_pool_serves_simultaneous_multithreaded_reads(dataset):
    """Several Python threads each ask for 3 threads: jobs share the native pool correctly."""
    from split_dataset._ext import _chunk_reader

    ds, array = dataset

    def random_key(rng):
        return (slice(int(rng.integers(array.shape[0])), None), slice(None),
                slice(int(rng.integers(0, 40)), None, 3))

    check_reads_from_threads(ds, array, random_key, n_threads=6, reads=25, threads=3)
    assert _chunk_reader.pool_size() >= 2  # the helpers really exist, and persist


def _read_in_forked_child(folder, queue):
    ds = SplitDataset(folder, threads=3)
    queue.put(int(ds[:].astype(np.int64).sum()))


def test_reads_work_in_a_forked_child(dataset):
    """fork() keeps only the calling thread: the child must start its own helpers, not hang."""
    import multiprocessing

    ds, array = dataset
    np.testing.assert_array_equal(ds.read(slice(None), threads=3), array)  # parent's pool runs
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_read_in_forked_child, args=(ds.root, queue))
    child.start()
    child.join(timeout=60)
    if child.is_alive():  # pragma: no cover - the failure this test exists for
        child.kill()
        pytest.fail("a read in a forked child hung")
    assert child.exitcode == 0
    assert queue.get(timeout=5) == int(array.astype(np.int64).sum())
