"""The napari reader, in a real napari Viewer on a real Qt backend (under Xvfb): which paths it
claims, the layers it makes, and playback that reads only the displayed plane, ahead in time."""

from __future__ import annotations

import shutil

import h5py
import numpy as np
import pytest
from format_fixtures import FIXTURES, open_fixture

from split_dataset import SplitDataset
from split_dataset.napari.reader import get_reader

PLUGIN = "split_dataset"


def compatible_readers(path) -> list[str]:
    from npe2 import PluginManager

    return [reader.plugin_name for reader in PluginManager.instance().iter_compatible_readers([str(path)])]


# --- what the reader claims ---------------------------------------------------------------------


def test_the_reader_claims_recordings_and_their_metadata_file():
    for path in [FIXTURES / "sd_blosc_4d", FIXTURES / "legacy_no_json",
                 FIXTURES / "brunoise_2ch" / "original",
                 FIXTURES / "sd_blosc_4d" / "stack_metadata.json"]:
        assert get_reader(str(path)) is not None, path


def test_the_reader_declines_everything_else(tmp_path):
    lone = tmp_path / "lone.h5"
    with h5py.File(lone, "w") as handle:
        handle["stack_4D"] = np.zeros((2, 2, 2, 2))
    (tmp_path / "unrelated").mkdir()
    (tmp_path / "unrelated" / "notes.txt").write_text("x")
    for path in [lone, FIXTURES / "sd_blosc_4d" / "0000.h5", tmp_path / "unrelated",
                 FIXTURES, FIXTURES / "brunoise_2ch"]:  # the last: a folder of recordings
        assert get_reader(str(path)) is None, path
    assert PLUGIN not in compatible_readers(lone)  # a lone .h5 is never offered to us


# --- in a viewer -----------------------------------------------------------------------------------


@pytest.fixture
def viewer(make_napari_viewer):
    return make_napari_viewer(show=True)


def displayed(layer) -> np.ndarray:
    """The plane napari sliced for display."""
    return np.asarray(layer._slice.image.raw)


def test_a_folder_opens_as_a_lazy_layer_with_its_scale_and_labels(viewer):
    ds, array = open_fixture("esd_stream_4d")  # resolution (0.5, 2.0, 0.6, 0.6), "tzyx"
    layers = viewer.open(str(ds.root), plugin=PLUGIN)
    assert len(layers) == 1
    layer = layers[0]
    assert layer.name == "esd_stream_4d"
    assert tuple(layer.scale) == (0.5, 2.0, 0.6, 0.6)
    assert tuple(layer.axis_labels) == ("t", "z", "y", "x")
    assert layer.data.dtype == np.uint16 and layer.data.shape == array.shape
    assert not isinstance(layer.data, np.ndarray)  # never a full load
    viewer.dims.current_step = (7, 2, 0, 0)
    np.testing.assert_array_equal(np.squeeze(displayed(layer)), array[7, 2])


def test_a_dropped_metadata_file_opens_with_no_plugin_named(viewer):
    ds, array = open_fixture("sd_blosc_4d")
    path = ds.root / "stack_metadata.json"
    assert compatible_readers(path) == [PLUGIN]  # ours is the only reader: no dialog
    layers = viewer.open(str(path), plugin=None)
    assert len(layers) == 1 and layers[0].data.shape == array.shape


def test_channels_open_as_one_layer_each_blended(viewer):
    folder = FIXTURES / "brunoise_2ch" / "original"
    layers = viewer.open(str(folder), plugin=PLUGIN)
    assert [layer.name for layer in layers] == ["original green", "original red"]
    assert [layer.colormap.name for layer in layers] == ["green", "magenta"]
    assert all(layer.blending == "additive" for layer in layers)
    viewer.dims.current_step = (5, 1, 0, 0)
    red = np.load(folder / "red.npy")
    np.testing.assert_array_equal(np.squeeze(displayed(layers[1])), red[5, 1])


def test_odd_recordings_open_and_say_what_was_odd(viewer):
    from napari.utils.notifications import notification_manager

    before = len(notification_manager.records)
    layers = viewer.open(str(FIXTURES / "sashimi_stopped"), plugin=PLUGIN)
    assert layers[0].data.shape[0] == 9
    messages = [str(n.message) for n in notification_manager.records[before:]]
    assert any("stopped early" in m for m in messages), messages
    viewer.open(str(FIXTURES / "legacy_no_json"), plugin=PLUGIN)
    messages = [str(n.message) for n in notification_manager.records[before:]]
    assert any("legacy layout" in m for m in messages), messages


def test_contrast_limits_come_from_a_few_planes(viewer, monkeypatch):
    ds, array = open_fixture("sd_blosc_4d")
    sizes = []
    real_read = SplitDataset.read

    def watched(self, key=(), out=None, threads=None):
        result = real_read(self, key, out, threads)
        sizes.append(result.size)
        return result

    monkeypatch.setattr(SplitDataset, "read", watched)
    layer = viewer.open(str(ds.root), plugin=PLUGIN)[0]
    plane = array.shape[-2] * array.shape[-1]
    assert sizes and max(sizes) <= plane  # planes only, never a volume
    low, high = layer.contrast_limits
    assert array.min() <= low < high <= array.max()


def test_stepping_through_time_reads_only_the_displayed_plane_and_reads_ahead(viewer, monkeypatch):
    ds, array = open_fixture("sd_blosc_lz4")  # (4, 3, 300, 512)
    layer = viewer.open(str(ds.root), plugin=PLUGIN)[0]
    reads = []
    real_read = SplitDataset.read

    def watched(self, key=(), out=None, threads=None):
        result = real_read(self, key, out, threads)
        reads.append(result.size)
        return result

    monkeypatch.setattr(SplitDataset, "read", watched)
    plane = array.shape[-2] * array.shape[-1]
    for t in range(array.shape[0]):
        viewer.dims.current_step = (t, 1, 0, 0)
        np.testing.assert_array_equal(np.squeeze(displayed(layer)), array[t, 1])
    assert reads and max(reads) == plane  # one plane per step, nothing more
    assert layer.data.read_ahead >= array.shape[0] - 2  # the next step was read ahead
    prefetcher = layer.data.dataset._prefetcher
    assert prefetcher is not None


def test_the_3d_view_reads_the_volume(viewer):
    ds, array = open_fixture("sd_blosc_4d")
    layer = viewer.open(str(ds.root), plugin=PLUGIN)[0]
    viewer.dims.ndisplay = 3
    viewer.dims.current_step = (5, 0, 0, 0)
    np.testing.assert_array_equal(np.squeeze(displayed(layer)), array[5])


def test_a_screenshot_shows_the_recording(viewer, tmp_path):
    shutil.copytree(FIXTURES / "sd_blosc_4d", tmp_path / "rec")
    viewer.open(str(tmp_path / "rec"), plugin=PLUGIN)
    image = viewer.screenshot(canvas_only=True, flash=False)
    assert image[..., :3].max() > 0


def test_the_region_on_the_canvas_saves_as_a_crop_that_knows_its_origin(viewer, qtbot, tmp_path):
    from split_dataset.napari.crop import save_crop

    ds, array = open_fixture("sd_blosc_lz4")  # (4, 3, 300, 512)
    layer = viewer.open(str(ds.root), plugin=PLUGIN)[0]
    camera = viewer.scene.camera if hasattr(viewer, "scene") else viewer.camera  # napari 0.9
    camera.center = (0, 150, 256)
    camera.zoom *= 4  # a quarter of the plane on the canvas
    qtbot.wait(300)  # the canvas redraws: the layer learns what it shows
    destination = tmp_path / "crop"
    worker = save_crop(viewer, layer, destination)
    qtbot.waitUntil(lambda: (destination / "stack_metadata.json").is_file(), timeout=30000)
    with qtbot.waitSignal(worker.finished, timeout=30000, raising=False):
        pass
    saved = SplitDataset(destination)
    start = saved.origin.start
    assert saved.shape[:2] == array.shape[:2] and saved.shape[2] < 300 and saved.shape[3] < 512
    region = array[:, :, start[2] : start[2] + saved.shape[2], start[3] : start[3] + saved.shape[3]]
    np.testing.assert_array_equal(saved[...], region)


def test_the_save_crop_widget_docks(viewer):
    widget, _ = viewer.window.add_plugin_dock_widget(PLUGIN, "Save crop")
    assert widget is not None


@pytest.mark.parametrize("name", ["sd_2d", "sd_5d", "jl_one_based", "sd_padded", "fimpy_extras"])
def test_every_layout_and_number_of_axes_opens_lazily(viewer, name):
    ds, array = open_fixture(name)
    layer = viewer.open(str(ds.root), plugin=PLUGIN)[0]
    assert layer.data.shape == array.shape and not isinstance(layer.data, np.ndarray)
    step = tuple(size // 2 for size in array.shape[:-2]) + (0, 0)
    viewer.dims.current_step = step
    np.testing.assert_array_equal(np.squeeze(displayed(layer)), array[step[:-2]])
