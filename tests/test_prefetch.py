"""Read-ahead for playback hands over exactly what a direct read returns."""

from __future__ import annotations

import numpy as np
import pytest
from datasets import write_split_dataset

from split_dataset import SplitDataset
from split_dataset.prefetch import selection_token


@pytest.fixture
def dataset(tmp_path):
    rng = np.random.default_rng(11)
    array = rng.integers(0, 4000, (12, 4, 48, 40)).astype(np.uint16)
    folder = write_split_dataset(tmp_path / "ds", array, (3, 4, 48, 40), (1, 1, 16, 40))
    return SplitDataset(folder), array


def test_playback_with_read_ahead(dataset):
    ds, array = dataset
    buffer = np.empty((48, 40), dtype=np.uint16)
    for t in range(array.shape[0]):
        for z in range(array.shape[1]):
            ds.prefetch((t, (z + 1) % 4))
            ds.prefetch((np.int64(t), slice(None), -1))
            assert ds.read((t, z), out=buffer) is buffer
            np.testing.assert_array_equal(buffer, array[t, z])
            np.testing.assert_array_equal(ds[t, :, -1], array[t, :, -1])


def test_prefetch_future_gives_the_array(dataset):
    ds, array = dataset
    future = ds.prefetch((slice(2, 9, 3), 1))
    np.testing.assert_array_equal(future.result(), array[2:9:3, 1])
    # unhashable selections are read ahead too, just not handed over implicitly
    np.testing.assert_array_equal(ds.prefetch(([5, 1],)).result(), array[[5, 1]])


def test_prefetch_rejects_a_bad_index_at_once(dataset):
    ds, _ = dataset
    with pytest.raises(IndexError, match="out of bounds"):
        ds.prefetch((12,))


def test_prefetched_result_into_out_of_wrong_shape(dataset):
    ds, _ = dataset
    ds.prefetch((0, 0)).result()
    with pytest.raises(ValueError, match="shape"):
        ds.read((0, 0), out=np.empty((48, 41), dtype=np.uint16))


def test_selection_tokens():
    assert selection_token((np.int32(3), slice(1, None), None, ...)) == (
        3, ("slice", 1, None, None), None, ...,
    )
    assert selection_token(([1, 2],)) is None
    assert selection_token(True) is None
