"""The dask and xarray bridges, and recordings with channels."""

from __future__ import annotations

import json
import subprocess
import sys

import dask
import dask.array as da
import numpy as np
import pytest
import xarray as xr
from format_fixtures import FIXTURES, fixture_manifest, open_fixture

from split_dataset import (
    SplitDataset,
    open_recording,
    save_to_split_dataset,
)
from split_dataset.dask import to_split_dataset
from split_dataset.threads import effective_threads

MANIFEST = fixture_manifest()


def block_edges(ds: SplitDataset, axis: int) -> set[int]:
    block, n = ds.shape_block[axis], ds.blocks_grid[axis]
    return {min(i * block, ds.shape[axis]) for i in range(n)} | {ds.shape[axis]}


def chunk_edges(chunks: tuple[int, ...]) -> set[int]:
    return {0, *np.cumsum(chunks).tolist()}


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_to_dask_reads_every_fixture_in_chunks_that_follow_the_files(name):
    ds, array = open_fixture(name)
    for lazy in (ds.to_dask(), ds.to_dask("blocks")):
        np.testing.assert_array_equal(lazy.compute(), array)
        for axis, chunks in enumerate(lazy.chunks):
            assert chunk_edges(chunks) <= block_edges(ds, axis) | {0}, (axis, chunks)
    lazy = ds.to_dask("blocks")
    assert lazy.name == ds.to_dask("blocks").name  # deterministic
    # tasks hold the dataset and slices, never data
    for task in dict(lazy.__dask_graph__()).values():
        assert not any(isinstance(part, np.ndarray) for part in task[1:])


def test_sub_block_chunks_and_views():
    ds, array = open_fixture("sd_blosc_4d")  # blocks of 4 time points
    lazy = ds.to_dask((1,))
    assert lazy.chunks[0] == (1,) * 13
    view = ds.view[1:12:2, :, ::-3]
    lazy_view = view.to_dask("blocks")
    np.testing.assert_array_equal(lazy_view.compute(), array[1:12:2, :, ::-3])
    # along time the view's chunks end where the dataset's blocks end (t = 4, 8, 12)
    assert lazy_view.chunks[0] == (2, 2, 2)


def test_by_default_whole_blocks_are_grouped_up_to_dasks_chunk_size():
    """One time point per file makes a chunk per time point: a mean over time would then
    make as many partial results as time points. Chunks hold as many blocks as fit."""
    ds, array = open_fixture("sd_blosc_4d")  # blocks of (4, 6, 64, 48) uint16: 147 KB
    with dask.config.set({"array.chunk-size": "400KiB"}):
        lazy = ds.to_dask()
    assert lazy.chunks[0] == (8, 5)
    np.testing.assert_array_equal(lazy.mean(axis=0).compute(), array.mean(axis=0))


def test_dask_from_array_aligns_with_the_files_on_its_own():
    """``ds.chunks`` is the block shape: dask's automatic chunks then take whole blocks. (For
    blocks larger than dask's chunk size dask cuts them its own way: ``ds.to_dask(chunks)``
    cuts them into sub-blocks that never straddle two files.)"""
    ds, array = open_fixture("sd_blosc_4d")  # blocks of (4, 6, 64, 48) uint16: 147 KB
    with dask.config.set({"array.chunk-size": "400KiB"}):
        lazy = da.from_array(ds)
    assert len(lazy.chunks[0]) > 1
    assert chunk_edges(lazy.chunks[0]) <= block_edges(ds, 0), lazy.chunks
    np.testing.assert_array_equal(lazy.compute(), array)


def test_reads_inside_dask_tasks_leave_the_cores_to_dask():
    """On the threaded scheduler, dask runs a task per core: a read that asks for no
    particular number of threads then decodes on its own thread only."""
    from split_dataset.threads import CORES

    seen = da.from_delayed(dask.delayed(lambda: np.array([effective_threads(None)]))(),
                           (1,), dtype=int).compute(scheduler="threads", num_workers=CORES)
    assert seen[0] == 1
    assert effective_threads(None) == CORES or effective_threads(None) >= 1  # outside: default


def test_a_dask_array_written_as_a_split_dataset(tmp_path):
    rng = np.random.default_rng(4)
    array = rng.integers(0, 1000, (9, 3, 20, 16)).astype(np.uint16)
    lazy = da.from_array(array, chunks=(2, 3, 20, 16)) + 1
    ds = to_split_dataset(lazy, tmp_path, prefix="from_dask", resolution=(0.5, 1, 0.3, 0.3),
                          axis_order="tzyx", scheduler="threads")
    np.testing.assert_array_equal(ds[...], array + 1)
    assert ds.shape_block == (2, 3, 20, 16) and ds.axis_order == "tzyx"
    assert "incomplete" not in json.loads((ds.root / "stack_metadata.json").read_text())


def test_to_xarray_names_dims_and_places_coordinates(tmp_path):
    array = np.arange(8 * 2 * 3 * 4, dtype=np.uint16).reshape(8, 2, 3, 4)
    ds = save_to_split_dataset(array, tmp_path, block_size=(3, 2, 3, 4), prefix="rec",
                               resolution=(None, 5.0, 0.5, 0.25), frequency=4.0,
                               axis_order="tzyx")
    lazy = ds.to_xarray()
    assert lazy.dims == ("t", "z", "y", "x")
    assert isinstance(lazy.data, da.Array)
    np.testing.assert_allclose(lazy["t"], np.arange(8) / 4.0)
    np.testing.assert_allclose(lazy["y"], np.arange(3) * 0.5)
    assert lazy.attrs["frequency"] == 4.0 and lazy.attrs["axis_order"] == "tzyx"
    np.testing.assert_array_equal(lazy.values, array)
    # a view's coordinates continue those of the recording
    cropped = ds.view[2::2, :, 1:].to_xarray()
    np.testing.assert_allclose(cropped["t"], np.arange(2, 8, 2) / 4.0)
    np.testing.assert_allclose(cropped["y"], np.arange(1, 3) * 0.5)
    untitled = SplitDataset(FIXTURES / "sd_2d").to_xarray()
    assert untitled.dims == ("dim_0", "dim_1")


def test_xarray_opens_a_dataset_folder_through_its_backend():
    ds, array = open_fixture("esd_stream_4d")
    opened = xr.open_dataarray(FIXTURES / "esd_stream_4d", engine="split_dataset")
    assert opened.dims == ("t", "z", "y", "x")
    np.testing.assert_array_equal(opened[2:5, 1, ::3, [1, 5]].values,
                                  array[2:5, 1, ::3][..., [1, 5]])
    np.testing.assert_array_equal(opened.values, array)
    chunked = xr.open_dataarray(FIXTURES / "esd_stream_4d", engine="split_dataset",
                                chunks={"t": 3})
    assert isinstance(chunked.data, da.Array)
    np.testing.assert_array_equal(chunked.values, array)


def test_importing_the_package_imports_no_optional_extra():
    code = ("import sys, split_dataset; "
            "print([m in sys.modules for m in ('dask', 'xarray', 'napari', 'qtpy')])")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "[False, False, False, False]"


# --- channels ---------------------------------------------------------------------------------


def test_a_recording_with_channels_opens_by_name_and_stacked():
    folder = FIXTURES / "brunoise_2ch" / "original"
    recording = open_recording(folder)
    assert recording.channels == ("green", "red")
    green, red = (np.load(folder / f"{name}.npy") for name in ("green", "red"))
    np.testing.assert_array_equal(recording["red"][...], red)
    stacked = recording.stacked()
    expected = np.stack([green, red], axis=1)  # (t, c, z, y, x)
    assert stacked.shape == expected.shape
    for key in [(Ellipsis,), (3,), (slice(None), 1), (2, [1, 0], 1), ([1, 2], [0, 1]),
                (slice(None, None, -1), slice(None), [2, 0]), (np.arange(8) % 2 == 0,)]:
        np.testing.assert_array_equal(stacked[key], expected[key])
    np.testing.assert_array_equal(stacked.to_dask().compute(), expected)
    assert stacked.to_xarray()["c"].values.tolist() == ["green", "red"]


def test_a_plain_dataset_is_a_recording_of_one_channel():
    recording = open_recording(FIXTURES / "sd_blosc_4d")
    assert recording.channels == ("sd_blosc_4d",)
    np.testing.assert_array_equal(recording["sd_blosc_4d"][...],
                                  np.load(FIXTURES / "sd_blosc_4d.npy"))
