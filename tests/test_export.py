"""Export to OME-Zarr, OME-TIFF and .npy: every fixture read back bit for bit by the format's
own reader, NGFF metadata valid against the published schema and true to the source's
metadata, round trips that keep data and metadata, outputs that appear complete or not at all."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import numpy as np
import pytest
import tifffile
import zarr
from format_fixtures import FIXTURES, fixture_manifest, open_fixture

from split_dataset import DestinationError, SplitDataset, export, open_recording
from split_dataset.exports import describe_image, format_of, read_ome_tiff, read_ome_zarr
from split_dataset.exports import regions as export_regions
from split_dataset.exports.pyramid import downsample
from split_dataset.exports.zarr_chunks import direct_layout
from split_dataset.tools.cli import main
from split_dataset.writer import save_to_split_dataset

SCHEMAS = Path(__file__).parent / "ngff_schemas" / "0.5"
OME = "{http://www.openmicroscopy.org/Schemas/OME/2016-06}"
FIXTURE_NAMES = sorted(fixture_manifest())


def ngff_validator(strict: bool = False):
    """The NGFF 0.5 image schema, its ``$ref``s resolved to the vendored copies."""
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012

    resources = []
    for path in SCHEMAS.glob("*.schema"):
        schema = json.loads(path.read_text())
        resources.append((schema["$id"], Resource.from_contents(schema, DRAFT202012)))
    registry = Registry().with_resources(resources)
    name = "strict_image.schema" if strict else "image.schema"
    return Draft202012Validator(json.loads((SCHEMAS / name).read_text()), registry=registry)


def group_attributes(path: Path) -> dict:
    return json.loads((path / "zarr.json").read_text())["attributes"]


def expected_scale(ds) -> list[float]:
    scale = [1.0 if r is None else r for r in ds.resolution]
    if ds.frequency:
        scale[0] = 1.0 / ds.frequency
    return scale


# --- every fixture, every format, read back by the format's own reader -------------------------


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_every_fixture_to_ome_zarr(name, tmp_path):
    ds, truth = open_fixture(name)
    out = export(ds, tmp_path / "image.ome.zarr")
    group = zarr.open_group(out, mode="r")
    array = group["0"]
    np.testing.assert_array_equal(array[...], truth)
    assert array.dtype == truth.dtype and array.metadata.zarr_format == 3
    assert direct_layout(array)  # the chunks were written by our threads, read here by zarr
    assert array.metadata.codecs[-1].to_dict()["configuration"]["cname"] == "zstd"
    attributes = group_attributes(out)
    ngff_validator().validate(attributes)
    multiscale = attributes["ome"]["multiscales"][0]
    axes = [axis["name"] for axis in multiscale["axes"]]
    assert array.metadata.dimension_names == tuple(axes)
    if ds.axis_order is not None:
        assert "".join(axes) == ds.axis_order
    scale = multiscale["datasets"][0]["coordinateTransformations"][0]["scale"]
    assert scale == expected_scale(ds)


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_every_fixture_to_ome_tiff(name, tmp_path):
    ds, truth = open_fixture(name)
    out = export(ds, tmp_path / "image.ome.tif")
    np.testing.assert_array_equal(tifffile.imread(out).reshape(truth.shape), truth)
    with tifffile.TiffFile(out) as tiff:
        assert tiff.is_ome
        pixels = ElementTree.fromstring(tiff.ome_metadata).find(f".//{OME}Pixels")
    axes = describe_image(ds).axes
    assert pixels.get("DimensionOrder").startswith("XY")
    for letter, step in zip(axes, ds.resolution):
        if letter in "zyx":
            size = pixels.get(f"PhysicalSize{letter.upper()}")
            assert (size is None) == (step is None)
            assert size is None or float(size) == step


def test_a_tiff_beyond_classic_tiffs_reach_is_a_bigtiff(tmp_path, monkeypatch):
    from split_dataset.exports import ome_tiff

    ds, truth = open_fixture("sd_raw_4d")
    small = export(ds, tmp_path / "small.ome.tif")
    monkeypatch.setattr(ome_tiff, "BIGTIFF_BYTES", truth.nbytes - 1)
    big = export(ds, tmp_path / "big.ome.tif")
    with tifffile.TiffFile(small) as a, tifffile.TiffFile(big) as b:
        assert not a.is_bigtiff and b.is_bigtiff and b.is_ome
        np.testing.assert_array_equal(b.asarray(), truth)


def test_any_array_exports_with_the_format_given(tmp_path):
    array = np.arange(5 * 6 * 7, dtype=np.float32).reshape(5, 6, 7)
    out = export(array, tmp_path / "array.data", "npy")
    np.testing.assert_array_equal(np.load(out), array)
    image = read_ome_zarr(export(array, tmp_path / "array.zarr"))
    assert image.axis_order is None and image.resolution == (None, None, None)  # not guessed
    np.testing.assert_array_equal(image[...], array)
    with pytest.raises(ValueError, match="pyramid levels"):
        export(array, tmp_path / "array.npy", pyramid=1)


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_every_fixture_to_npy(name, tmp_path):
    ds, truth = open_fixture(name)
    out = export(ds, tmp_path / "image.npy", threads=2)
    loaded = np.load(out)
    assert loaded.dtype == truth.dtype
    np.testing.assert_array_equal(loaded, truth)


def test_a_large_export_streams_in_regions_on_several_threads(tmp_path, monkeypatch):
    """Regions far smaller than the array, several workers: the same bytes as one pass."""
    monkeypatch.setattr(export_regions, "REGION_BYTES", 3000)
    ds, truth = open_fixture("sd_blosc_4d")
    reads = []
    original = export_regions.read_region
    monkeypatch.setattr(
        export_regions, "read_region",
        lambda data, region, *a, **k: reads.append(region) or original(data, region, *a, **k),
    )
    for suffix in ("ome.zarr", "npy", "ome.tif"):
        out = export(ds, tmp_path / f"image.{suffix}", threads=2)
        read = np.load(out) if suffix == "npy" else (
            tifffile.imread(out) if suffix == "ome.tif" else zarr.open_array(out / "0")[...])
        np.testing.assert_array_equal(read, truth)
    assert len(reads) > 3 * 13


def test_recording_channels_become_the_c_axis_with_omero_names(tmp_path):
    recording = open_recording(FIXTURES / "brunoise_2ch" / "original")
    out = export(recording, tmp_path / "rec.ome.zarr")
    attributes = group_attributes(out)
    ngff_validator().validate(attributes)
    multiscale = attributes["ome"]["multiscales"][0]
    assert [a["name"] for a in multiscale["axes"]] == ["t", "c", "z", "y", "x"]
    assert [a.get("type") for a in multiscale["axes"]][:2] == ["time", "channel"]
    channels = attributes["ome"]["omero"]["channels"]
    assert [c["label"] for c in channels] == ["green", "red"]
    assert [c["color"] for c in channels] == ["00FF00", "FF0000"]
    data = zarr.open_array(out / "0")[...]
    for c, name in enumerate(["green", "red"]):
        truth = np.load(FIXTURES / "brunoise_2ch" / "original" / f"{name}.npy")
        np.testing.assert_array_equal(data[:, c], truth)


# --- pyramids --------------------------------------------------------------------------------


@pytest.mark.parametrize("region_bytes", [2**30, 4000], ids=["one-region", "many-regions"])
def test_pyramid_levels_are_2x_means_of_the_whole_array(tmp_path, monkeypatch, region_bytes):
    monkeypatch.setattr(export_regions, "REGION_BYTES", region_bytes)
    array = np.random.default_rng(1).integers(0, 4000, (3, 2, 45, 37)).astype(np.uint16)
    ds = save_to_split_dataset(array, tmp_path, (1, 2, 45, 37), prefix="ds",
                               resolution=(1.0, 2.0, 0.5, 0.25), axis_order="tzyx")
    out = export(ds, tmp_path / "p.ome.zarr", pyramid=2, chunks=(1, 1, 8, 8), threads=2,
                 space_unit="micrometer")
    attributes = group_attributes(out)
    ngff_validator(strict=True).validate(attributes)
    expected = array
    for level, dataset in enumerate(attributes["ome"]["multiscales"][0]["datasets"]):
        if level:
            expected = downsample(expected, (2, 3))
        np.testing.assert_array_equal(zarr.open_array(out / dataset["path"])[...], expected)
        scale, translation = (t[t["type"]] for t in dataset["coordinateTransformations"]) \
            if level else (dataset["coordinateTransformations"][0]["scale"], [0] * 4)
        assert scale == [1.0, 2.0, 0.5 * 2**level, 0.25 * 2**level]
        assert translation == [0, 0, (2**level - 1) / 2 * 0.5, (2**level - 1) / 2 * 0.25]
    assert expected.shape == (3, 2, 12, 10)


# --- round trips -----------------------------------------------------------------------------


@pytest.fixture
def crop(tmp_path):
    """A crop (with a step) of a recording with every piece of metadata set."""
    array = np.random.default_rng(2).integers(0, 60000, (12, 4, 40, 36)).astype(np.uint16)
    ds = save_to_split_dataset(array, tmp_path, (3, 4, 40, 36), prefix="rec",
                               resolution=(0.5, 2.0, 0.6, 0.4), frequency=2.0,
                               axis_order="tzyx")
    return ds.view[2:10, 1:3, 4:36:2], array[2:10, 1:3, 4:36:2]


@pytest.mark.parametrize("suffix", ["ome.zarr", "ome.tif"])
def test_round_trip_keeps_data_and_metadata(tmp_path, crop, suffix):
    view, truth = crop
    exported = tmp_path / f"crop.{suffix}"
    assert main(["convert", str(view.source.root), str(tmp_path / "whole.ome.zarr")]) == 0
    export(view, exported, space_unit="micrometer")
    assert main(["convert", str(exported), str(tmp_path / "back")]) == 0
    back = SplitDataset(tmp_path / "back")
    np.testing.assert_array_equal(back[...], truth)
    assert back.resolution == view.resolution == (0.5, 2.0, 1.2, 0.4)
    assert back.frequency == view.frequency == 2.0
    assert back.axis_order == "tzyx"
    assert back.origin == view.origin
    assert back.origin.start == (2, 1, 4, 0) and back.origin.step == (1, 1, 2, 1)


def test_a_foreign_ome_zarr_is_read_from_its_ngff_metadata(tmp_path, crop):
    """Without this package's own metadata beside ``ome``: steps from the scale, the frequency
    from a time axis in seconds, the axis order from the axis names, the origin from the
    translation."""
    view, truth = crop
    out = export(view, tmp_path / "crop.ome.zarr", space_unit="micrometer")
    document = json.loads((out / "zarr.json").read_text())
    del document["attributes"]["split_dataset"]
    (out / "zarr.json").write_text(json.dumps(document))
    image = read_ome_zarr(out)
    np.testing.assert_array_equal(image[...], truth)
    assert image.axis_order == "tzyx"
    assert image.frequency == pytest.approx(2.0)
    assert image.resolution[1:] == pytest.approx((2.0, 1.2, 0.4))
    # in steps of the crop's own grid (NGFF does not say the crop's stride): y 4 * 0.6 / 1.2
    assert image.origin.start == (2, 1, 2, 0)


def test_a_foreign_ome_tiff_is_read_from_its_ome_xml(tmp_path):
    array = np.arange(2 * 3 * 8 * 9, dtype=np.uint16).reshape(2, 3, 8, 9)
    path = tmp_path / "foreign.ome.tif"
    tifffile.imwrite(path, array, ome=True, metadata={
        "axes": "TZYX", "PhysicalSizeX": 0.3, "PhysicalSizeY": 0.3, "PhysicalSizeZ": 2.0,
        "TimeIncrement": 0.25, "TimeIncrementUnit": "s"})
    image = read_ome_tiff(path)
    np.testing.assert_array_equal(image[...], array)
    assert image.axis_order == "tzyx"
    assert image.resolution == (0.25, 2.0, 0.3, 0.3)
    assert image.frequency == 4.0


@pytest.mark.parametrize("suffix", ["ome.zarr", "ome.tif"])
def test_channel_names_survive_a_round_trip_as_a_folder_of_channels(tmp_path, suffix):
    source = FIXTURES / "brunoise_2ch" / "original"
    exported = tmp_path / f"rec.{suffix}"
    assert main(["convert", str(source), str(exported)]) == 0
    assert main(["convert", str(exported), str(tmp_path / "back")]) == 0
    back = open_recording(tmp_path / "back")
    assert back.channels == ("green", "red")
    for name in back.channels:
        np.testing.assert_array_equal(back[name][...], np.load(source / f"{name}.npy"))
        assert back[name].shape_block == SplitDataset(source / name).shape_block


# --- destinations: chosen by name, never a silent guess, never destroyed ----------------------


@pytest.mark.parametrize(
    "name, given, expected",
    [("out", None, "split-dataset"), ("out.npy", None, "npy"), ("OUT.NPY", None, "npy"),
     ("a.ome.tif", None, "ome-tiff"), ("a.ome.tiff", None, "ome-tiff"), ("a.tif", None, "ome-tiff"),
     ("a.zarr", None, "ome-zarr"), ("a.ome.zarr", None, "ome-zarr"),
     ("a.data", "npy", "npy"), ("a.zarr", "ome-zarr", "ome-zarr")],
)
def test_the_format_comes_from_the_name_or_is_given(name, given, expected):
    assert format_of(name, given) == expected


@pytest.mark.parametrize(
    "name, given, message",
    [("out.h5", None, "names no format"), ("rec.v2", None, "names no format"),
     ("out.npy", "ome-zarr", "its name says npy"), ("out", "hdf5", "unknown format")],
)
def test_an_unknown_or_ambiguous_destination_is_an_error(name, given, message):
    with pytest.raises(ValueError, match=message):
        format_of(name, given)


def test_convert_to_an_unknown_suffix_writes_nothing(tmp_path, capsys):
    assert main(["convert", str(FIXTURES / "sd_2d"), str(tmp_path / "out.h5")]) == 1
    assert "names no format" in capsys.readouterr().err
    assert main(["convert", str(FIXTURES / "sd_2d"), str(tmp_path / "o.npy"), "--to",
                 "ome-zarr"]) == 1
    assert main(["convert", str(FIXTURES / "sd_2d"), str(tmp_path / "o.npy"),
                 "--block-shape", "10,37"]) == 1
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("suffix", ["ome.zarr", "npy", "ome.tif"])
def test_convert_refuses_to_overwrite_unless_told(tmp_path, capsys, suffix):
    out = tmp_path / f"out.{suffix}"
    assert main(["convert", str(FIXTURES / "sd_2d"), str(out)]) == 0
    before = sorted(p.relative_to(out) for p in out.rglob("*")) if out.is_dir() else None
    assert main(["convert", str(FIXTURES / "sd_padded"), str(out)]) == 1
    assert "--overwrite" in capsys.readouterr().err
    if before is not None:
        assert sorted(p.relative_to(out) for p in out.rglob("*")) == before
    assert main(["convert", str(FIXTURES / "sd_padded"), str(out), "--overwrite"]) == 0
    readers = {"ome.zarr": lambda p: zarr.open_array(p / "0")[...], "npy": np.load,
               "ome.tif": tifffile.imread}
    np.testing.assert_array_equal(readers[suffix](out), np.load(FIXTURES / "sd_padded.npy"))
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]  # no old copy left


def test_an_export_never_writes_into_its_source(tmp_path):
    shutil.copytree(FIXTURES / "sd_2d", tmp_path / "ds")
    ds = SplitDataset(tmp_path / "ds")
    with pytest.raises(DestinationError, match="nested with the source"):
        export(ds, tmp_path / "ds" / "inside.ome.zarr")
    with pytest.raises(DestinationError, match="the source"):
        export(ds, tmp_path / "ds", "npy", overwrite=True)
    assert sorted(p.name for p in (tmp_path / "ds").iterdir()) == sorted(
        p.name for p in (FIXTURES / "sd_2d").iterdir())
    image = read_ome_zarr(export(ds, tmp_path / "image.ome.zarr"))
    with pytest.raises(DestinationError, match="the source"):
        export(image, tmp_path / "image.ome.zarr", overwrite=True)
    np.testing.assert_array_equal(image[...], ds[...])


@pytest.mark.parametrize("suffix", ["ome.zarr", "npy", "ome.tif"])
@pytest.mark.parametrize("existing", [False, True], ids=["new", "replacing"])
def test_an_interrupted_export_leaves_nothing_that_looks_complete(
    tmp_path, monkeypatch, suffix, existing
):
    """A failure midway (here the fourth region read): no output at the destination, no
    partial one beside it, and an output being replaced is still there, whole."""
    monkeypatch.setattr(export_regions, "REGION_BYTES", 2000)
    ds, truth = open_fixture("sd_blosc_4d")
    out = tmp_path / f"out.{suffix}"
    if existing:
        export(ds.view[:2], out)
        before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    original, calls = export_regions.read_region, []

    def failing(data, region, *args, **kwargs):
        calls.append(region)
        if len(calls) == 4:
            raise OSError("disk on fire")
        return original(data, region, *args, **kwargs)

    monkeypatch.setattr(export_regions, "read_region", failing)
    with pytest.raises(OSError, match="disk on fire"):
        export(ds, out, overwrite=existing, threads=2)
    if existing:
        assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
        readers = {"ome.zarr": lambda p: zarr.open_array(p / "0")[...], "npy": np.load,
                   "ome.tif": tifffile.imread}
        np.testing.assert_array_equal(readers[suffix](out), truth[:2])
    else:
        assert list(tmp_path.iterdir()) == []


def test_a_killed_exports_leftover_is_hidden_and_cleared_by_the_next(tmp_path):
    leftover = tmp_path / ".out.ome.zarr.writing-0123456789ab"
    leftover.mkdir()
    (leftover / "zarr.json").write_text("{}")
    export(open_fixture("sd_2d")[0], tmp_path / "out.ome.zarr")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.ome.zarr"]


def test_napari_builtin_reader_opens_the_image_at_its_scale(tmp_path, crop):
    """What the README shows: napari's own zarr reader reads the levels, the layer options
    give the physical scale and the crop's translation."""
    from napari_builtins.io import magic_imread

    from split_dataset.tools.cli import ome_zarr_layer_options

    view, truth = crop
    out = export(view, tmp_path / "crop.ome.zarr", pyramid=1)
    levels = magic_imread(str(out))
    np.testing.assert_array_equal(np.asarray(levels[0]), truth)
    options = ome_zarr_layer_options(out)
    assert options["scale"] == (0.5, 2.0, 1.2, 0.4)
    assert options["translate"] == pytest.approx((1.0, 2.0, 2.4, 0.0))
    assert options["axis_labels"] == ("t", "z", "y", "x")


def test_napari_opens_the_export_in_its_builtin_reader_at_the_right_scale(
    make_napari_viewer, tmp_path, crop
):
    """The README's command, in a real viewer: ``split-dataset view crop.ome.zarr``."""
    from split_dataset.tools.cli import ome_zarr_layer_options

    view, truth = crop
    out = export(view, tmp_path / "crop.ome.zarr", pyramid=1)
    viewer = make_napari_viewer(show=False)
    layer = viewer.open(str(out), plugin="napari", **ome_zarr_layer_options(out))[0]
    assert layer.multiscale and len(layer.data) == 2
    assert tuple(layer.scale) == pytest.approx((0.5, 2.0, 1.2, 0.4))
    assert tuple(layer.translate) == pytest.approx((1.0, 2.0, 2.4, 0.0))
    assert tuple(viewer.dims.axis_labels) == ("t", "z", "y", "x")
    np.testing.assert_array_equal(np.asarray(layer.data[0]), truth)
