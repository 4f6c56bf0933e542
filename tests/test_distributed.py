"""Analysis at scale: a dask.distributed cluster of two worker processes reads a recording
through ``to_dask`` and writes a dask array as a split dataset, both checked against NumPy."""

from __future__ import annotations

import numpy as np
import pytest
from distributed import Client, LocalCluster

from split_dataset import SplitDataset, save_to_split_dataset
from split_dataset.dask import to_split_dataset
from split_dataset.tools.synthetic import synthetic_recording


@pytest.fixture(scope="module")
def client():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as connected:
        yield connected


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    array = synthetic_recording((12, 3, 64, 48), seed=5)
    ds = save_to_split_dataset(array, tmp_path_factory.mktemp("rec"), block_size=(2, 3, 64, 48),
                               prefix="rec", compression="blosc:lz4")
    return ds, array


def test_a_reduction_on_a_cluster_of_worker_processes(client, recording):
    ds, array = recording
    mean = ds.to_dask().mean(axis=0).compute()
    np.testing.assert_allclose(mean, array.mean(axis=0))
    view_sum = ds.view[1::2, 1].to_dask().sum(axis=(1, 2)).compute()
    np.testing.assert_array_equal(view_sum, array[1::2, 1].sum(axis=(1, 2), dtype=np.uint64))


def test_workers_read_on_one_thread_each(client, recording):
    """dask.distributed runs one task per thread of each worker process: the reader there
    leaves the cores to them."""
    from split_dataset.threads import effective_threads

    def reader_threads_in_a_task(_):
        return effective_threads(None)

    futures = client.map(reader_threads_in_a_task, range(4))
    assert client.gather(futures) == [1, 1, 1, 1]


def test_a_dask_array_written_by_the_cluster(client, recording, tmp_path):
    import dask.array as da

    ds, array = recording
    lazy = ds.to_dask() * 2
    written = to_split_dataset(lazy, tmp_path, block_size=(3, 3, 64, 48), prefix="doubled",
                               compression="blosc:zstd")
    reopened = SplitDataset(written.root)
    assert reopened.shape_block == (3, 3, 64, 48)
    np.testing.assert_array_equal(reopened[...], array * 2)
    # written by the workers: one task per block
    assert da.from_array(reopened).sum().compute() == int((array * 2).astype(np.int64).sum())
