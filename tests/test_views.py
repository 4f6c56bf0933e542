"""Lazy views: ``ds.view[k1][k2]`` is NumPy's ``array[k1][k2]`` on every fixture, views of
views compose, the metadata goes with them, and a saved view remembers where it came from."""

from __future__ import annotations

import hashlib
import json
import pickle

import numpy as np
import pytest
from format_fixtures import FIXTURES, fixture_manifest, open_fixture
from hypothesis import given
from hypothesis import strategies as st

from split_dataset import (
    DatasetView,
    SplitDataset,
    save_to_split_dataset,
)

MANIFEST = fixture_manifest()


FIXTURE_DATA = {name: open_fixture(name) for name in sorted(MANIFEST)}


@st.composite
def basic_keys(draw, shape: tuple[int, ...]):
    """Integers (negative too), slices with any step (negative too), an Ellipsis."""
    items = []
    for size in shape:
        kind = draw(st.sampled_from(["slice", "slice", "int", "all"]))
        if kind == "int" and size:
            items.append(draw(st.integers(-size, size - 1)))
        elif kind == "slice":
            bound = st.none() | st.integers(-size - 2, size + 2)
            step = draw(st.sampled_from([None, 1, 2, 3, -1, -2, 7]))
            items.append(slice(draw(bound), draw(bound), step))
        else:
            items.append(slice(None))
    if items and draw(st.booleans()):  # an Ellipsis for a run of whole axes
        cut = draw(st.integers(0, len(items)))
        items = items[:cut] + [Ellipsis] + [i for i in items[cut:] if i != slice(None)][:1]
        while sum(i is not Ellipsis for i in items) > len(shape):
            items.pop()
    return tuple(items)


OTHER_KEYS = [(), (0,), (-1,), ([0, 0],), (Ellipsis, [1, 0]), (None,), (slice(None, None, -2),),
              (Ellipsis, None, slice(1, None))]


@st.composite
def fixture_and_keys(draw):
    name = draw(st.sampled_from(sorted(FIXTURE_DATA)))
    ds, array = FIXTURE_DATA[name]
    first = draw(basic_keys(array.shape))
    second = draw(basic_keys(array[first].shape))
    return name, first, second


def same(got, expected) -> None:
    assert np.shape(got) == np.shape(expected)
    np.testing.assert_array_equal(got, expected)


@given(fixture_and_keys())
def test_views_of_views_read_like_numpy(case):
    name, first, second = case
    ds, array = FIXTURE_DATA[name]
    view = ds.view[first]
    expected = array[first]
    assert isinstance(view, DatasetView)
    assert view.shape == expected.shape and view.ndim == expected.ndim
    same(view[...], expected)
    same(np.asarray(view), expected)
    twice = view.view[second]
    same(twice[...], expected[second])
    for key in OTHER_KEYS:  # any NumPy index on a view
        try:
            reference = expected[key]
        except IndexError:
            with pytest.raises(IndexError):
                view[key]
            continue
        same(view[key], reference)
    # every element of the view maps back to where it lies in the dataset
    if twice.size:
        point = tuple(int(i) for i in np.unravel_index(twice.size // 2, twice.shape))
        original = twice.origin.to_original(point)
        assert array[original] == twice[point]


def test_a_view_takes_basic_keys_only():
    ds, _ = FIXTURE_DATA["sd_blosc_4d"]
    for key in ([1, 2], None, np.array([True] * 13), 1.5):
        with pytest.raises(TypeError, match="integers, slices and Ellipsis"):
            ds.view[key]
    with pytest.raises(IndexError, match="out of bounds"):
        ds.view[99]


def test_a_view_carries_its_metadata():
    ds, _ = FIXTURE_DATA["esd_stream_4d"]  # resolution (0.5, 2.0, 0.6, 0.6), "tzyx"
    view = ds.view[1::3, 2, ::-2]
    assert view.resolution == (1.5, 1.2, 0.6)
    assert view.axis_order == "tyx"
    assert view.origin.start == (1, 2, 31, 0) and view.origin.step == (3, 0, -2, 1)
    assert view.frequency is None  # unknown stays unknown
    unknown, _ = FIXTURE_DATA["esd_int_resolution"]  # 0.4.4's [1, 0, 0]: (1.0, None, None)
    assert unknown.view[:, ::2].resolution == (1.0, None, None)


def test_frequency_follows_the_time_step(tmp_path):
    array = np.arange(12 * 4 * 5, dtype=np.uint16).reshape(12, 4, 5)
    ds = save_to_split_dataset(array, tmp_path, block_size=(3, 4, 5), prefix="ds",
                               frequency=10.0, axis_order="tyx", resolution=(0.1, 1.0, 1.0))
    assert ds.view[::4].frequency == 2.5
    assert ds.view[2].frequency is None and ds.view[2].axis_order == "yx"


def snapshot(folder) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("name", ["esd_stream_4d", "sd_blosc_lz4", "sd_padded", "jl_one_based"])
def test_a_saved_view_reopens_equal_and_remembers_its_origin(tmp_path, name):
    ds, array = FIXTURE_DATA[name]
    source = tmp_path / "source"
    import shutil

    shutil.copytree(FIXTURES / name, source)
    ds = SplitDataset(source)
    before = snapshot(source)
    key = (slice(1, None), slice(None, None, 2)) + (slice(1, -1),) * (ds.ndim - 2)
    view = ds.view[key]
    saved = save_to_split_dataset(view, tmp_path, prefix="crop")
    assert snapshot(source) == before  # the source is never touched
    same(saved[...], array[key])
    origin = saved.origin
    assert origin.path == str(source.resolve())
    assert origin.start[0] == 1 and origin.step[:2] == (1, 2)
    metadata = json.loads((saved.root / "stack_metadata.json").read_text())
    assert metadata["crop_start"][0] == 1 and metadata["crop_end"][0] == 0  # step 1: 0.4.x crop
    assert metadata["crop_start"][1] == 0  # step 2: no 0.4.x meaning, see origin
    # a crop of the crop still maps back to the original recording
    inner = saved.view[2:, 1]
    point = (0,) * inner.ndim
    assert array[inner.origin.to_original(point)] == inner[point]


def test_saving_a_view_reads_block_by_block(tmp_path, monkeypatch):
    """A view as large as the dataset is written with at most a block in memory per worker."""
    ds, array = FIXTURE_DATA["sd_blosc_lz4"]
    view = ds.view[:, ::-1]
    largest = [0]
    real_read = DatasetView.read

    def watched(self, key=(), out=None, threads=None):
        result = real_read(self, key, out, threads)
        largest[0] = max(largest[0], result.nbytes)
        return result

    monkeypatch.setattr(DatasetView, "read", watched)
    saved = save_to_split_dataset(view, tmp_path, prefix="flipped")
    same(saved[...], array[:, ::-1])
    block_bytes = int(np.prod(view.shape_block)) * array.itemsize
    assert 0 < largest[0] <= block_bytes


def test_save_with_crop_records_where_the_crop_came_from(tmp_path):
    ds, array = FIXTURE_DATA["esd_stream_4d"]
    saved = save_to_split_dataset(ds, tmp_path, prefix="rec", crop=((2, 1), (0, 0), (3, 4), (5, 0)))
    same(saved[...], array[2:-1, :, 3:-4, 5:])
    assert saved.metadata.crop_start == (2, 0, 3, 5) and saved.metadata.crop_end == (1, 0, 4, 0)
    assert saved.origin.start == (2, 0, 3, 5) and saved.origin.step == (1, 1, 1, 1)
    assert saved.resolution == ds.resolution and saved.axis_order == ds.axis_order


def test_unknown_metadata_is_written_as_unknown(tmp_path):
    array = np.zeros((4, 3, 2), np.uint8)
    ds = save_to_split_dataset(array, tmp_path, block_size=(2, 3, 2), prefix="ds",
                               resolution=(None, 0.5, 0.5))
    metadata = json.loads((ds.root / "stack_metadata.json").read_text())
    assert metadata["resolution"] == [None, 0.5, 0.5]  # never a made-up 1.0
    assert "axis_order" not in metadata  # never guessed from the number of axes
    assert ds.resolution == (None, 0.5, 0.5)


def test_extra_keys_of_the_source_survive_views_and_saves(tmp_path):
    ds, _ = FIXTURE_DATA["sashimi_stopped"]  # a camera ROI under 'crop', never applied
    saved = save_to_split_dataset(ds.view[:4], tmp_path, prefix="part")
    assert saved.metadata.extra["crop"] == ds.metadata.extra["crop"]


def test_a_view_pickles_small_and_reads_after_unpickling():
    ds, array = FIXTURE_DATA["sd_blosc_4d"]
    view = ds.view[3:, 2, ::2]
    data = pickle.dumps(view)
    assert len(data) < 1000
    same(pickle.loads(data)[...], array[3:, 2, ::2])


def test_playback_of_a_view_uses_the_datasets_read_ahead():
    ds, array = FIXTURE_DATA["sd_blosc_lz4"]
    view = ds.view[:, 1, 5:]
    future = view.prefetch((3,))
    same(future.result(), array[3, 1, 5:])
    same(view[3], array[3, 1, 5:])
    with pytest.raises(IndexError):
        view.prefetch((4,))
    assert ds._prefetcher is not None and not ds._prefetcher._futures  # taken by the read


@pytest.mark.filterwarnings("ignore::split_dataset.IncompleteDatasetWarning")
def test_convert_keeps_the_metadata(tmp_path):
    from split_dataset.tools.cli import main as command_line

    ds, array = FIXTURE_DATA["sashimi_stopped"]  # voxel_size, a camera 'crop', stopped early
    assert command_line(["convert", str(ds.root), str(tmp_path / "copy"),
                         "--frames-per-file", "3"]) == 0
    copy = SplitDataset(tmp_path / "copy")
    same(copy[...], array)
    assert copy.resolution == ds.resolution and copy.axis_order == ds.axis_order
    assert copy.metadata.extra["crop"] == ds.metadata.extra["crop"]
