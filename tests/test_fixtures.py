"""Every real dataset written by the original tools reads bit for bit, with its metadata."""

from __future__ import annotations

import pickle
import shutil
import warnings

import numpy as np
import pytest
from format_fixtures import FIXTURES, fixture_manifest

from split_dataset import IncompleteDatasetWarning, NotASplitDatasetError, SplitDataset
from split_dataset.file_layout import Codec

MANIFEST = fixture_manifest()


def open_fixture(name: str) -> SplitDataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IncompleteDatasetWarning)
        return SplitDataset(FIXTURES / name)


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_fixture_reads_bit_for_bit(name, planner):
    expected = np.load(FIXTURES / f"{name}.npy")
    ds = open_fixture(name)
    assert ds.shape == expected.shape == tuple(MANIFEST[name]["shape"])
    assert ds.dtype == expected.dtype == np.dtype(MANIFEST[name]["dtype"])
    assert ds.data_key == MANIFEST[name]["key"]
    result = ds[...]
    assert result.dtype == expected.dtype
    np.testing.assert_array_equal(result, expected)
    np.testing.assert_array_equal(np.asarray(ds), expected)
    # block by block, through the 0.4.x Blocks API
    for _, slices in ds.slices():
        owned = tuple(slice(s.start, min(s.stop, n)) for s, n in zip(slices, ds.shape))
        np.testing.assert_array_equal(ds[owned], expected[owned])


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_fixture_single_thread_equals_parallel(name):
    ds = open_fixture(name)
    np.testing.assert_array_equal(ds.read(..., threads=1), ds.read(..., threads=4))


def test_stopped_recording_opens_with_real_length_and_warns():
    with pytest.warns(IncompleteDatasetWarning, match="stopped early"):
        ds = SplitDataset(FIXTURES / "sashimi_stopped")
    assert ds.shape == (9, 5, 48, 40)
    assert ds.planned_shape == (20, 5, 48, 40)
    assert len(ds) == 9
    # voxel_size (z, y, x) becomes the resolution of the last three axes
    assert ds.resolution == (None, 7.0, 0.6, 0.6)
    assert ds.voxel_size == (7.0, 0.6, 0.6)
    # the camera ROI under 'crop' is kept as an unknown key, never applied
    assert ds.metadata.extra["crop"] == [0, 0, 2048, 2048]


def test_integer_truncated_resolution_means_unknown():
    ds = open_fixture("esd_int_resolution")
    assert ds.resolution == (1.0, None, None)


def test_float_resolution_and_axis_order():
    ds = open_fixture("esd_stream_4d")
    assert ds.resolution == (0.5, 2.0, 0.6, 0.6)
    assert ds.axis_order == "tzyx"
    assert ds.frequency is None


def test_axis_order_trusted_only_when_it_fits():
    assert open_fixture("sd_5d").axis_order is None  # 0.4.4 wrote "zyx" for 5-d data
    assert open_fixture("sd_blosc_4d").axis_order == "tzyx"


def test_padded_blocks_return_every_voxel_once():
    ds = open_fixture("sd_padded")
    assert ds.padding == (1, 2, 2)
    assert ds.files.shape == (2, 3, 2)
    assert ds.layout(0).shape == (5, 14, 15)  # block plus overlap


def test_one_based_three_digit_and_non_block_files():
    assert [p.name for p in open_fixture("jl_one_based").files.ravel()] == [
        "0001.h5", "0002.h5", "0003.h5",
    ]
    extras = open_fixture("fimpy_extras")
    assert [p.name for p in extras.files.ravel()] == ["000.h5", "001.h5", "002.h5"]


def test_files_shaped_like_block_grid():
    ds = open_fixture("sd_zlib_3d_grid")
    assert ds.files.shape == (3, 3, 3)
    assert ds.files[2, 2, 2].name == "0026.h5"


def test_raw_chunks_and_codecs_take_the_fast_path():
    # time point 2 of sd_blosc_4d is noise: stored raw with a non-zero filter mask
    layout = open_fixture("sd_blosc_4d").layout(0)
    assert layout.codec == Codec.BLOSC
    assert layout.chunk_mask.any()
    assert open_fixture("sd_zlib_3d_grid").layout(0).codec == Codec.SHUFFLE_DEFLATE
    assert open_fixture("sd_raw_4d").layout(0).contiguous


def test_legacy_layout_opens_without_writing(tmp_path):
    folder = tmp_path / "legacy"
    shutil.copytree(FIXTURES / "legacy_no_json", folder)
    before = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    ds = SplitDataset(folder)
    np.testing.assert_array_equal(ds[...], np.load(FIXTURES / "legacy_no_json.npy"))
    assert ds.legacy
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == before


def test_two_channel_parent_folder_points_to_channels():
    with pytest.raises(NotASplitDatasetError, match="green, red"):
        SplitDataset(FIXTURES / "brunoise_2ch" / "original")


def test_pickle_is_cheap_and_reopens_lazily():
    ds = open_fixture("sd_blosc_4d")
    ds[0, 0]
    payload = pickle.dumps(ds)
    assert len(payload) < 4096
    clone = pickle.loads(payload)
    assert len(clone._cache) == 0  # nothing opened until the first read
    np.testing.assert_array_equal(clone[3:7, 2], ds[3:7, 2])
    assert clone.shape == ds.shape and clone.dtype == ds.dtype


def test_repr_len_and_metadata_properties():
    ds = open_fixture("sd_blosc_lz4")
    assert "SplitDataset(" in repr(ds) and "(4, 3, 300, 512)" in repr(ds)
    assert len(ds) == 4
    assert ds.ndim == 4
    assert tuple(ds.shape_block) == (2, 3, 300, 512)
    assert ds.shape_full == (4, 3, 300, 512)
    assert ds.root == FIXTURES / "sd_blosc_lz4"
