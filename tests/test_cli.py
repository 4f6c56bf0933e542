"""The command line on real fixtures and the demo."""

from __future__ import annotations

import pytest
from format_fixtures import FIXTURES, fixture_manifest

from split_dataset.tools.cli import main


@pytest.mark.parametrize("name", sorted(fixture_manifest()))
def test_info_on_every_fixture(name, capsys):
    assert main(["info", str(FIXTURES / name)]) == 0
    out = capsys.readouterr().out
    manifest = fixture_manifest()[name]
    assert str(tuple(manifest["shape"])) in out
    assert manifest["dtype"] in out
    assert "fast path" in out


def test_info_reports_oddities(capsys):
    main(["info", str(FIXTURES / "sashimi_stopped")])
    out = capsys.readouterr().out
    assert "planned shape (20, 5, 48, 40), files hold (9, 5, 48, 40)" in out
    main(["info", str(FIXTURES / "fimpy_extras")])
    assert "shifts_sobel.h5" in capsys.readouterr().out


def test_info_on_a_folder_that_is_not_a_dataset(tmp_path, capsys):
    assert main(["info", str(tmp_path)]) == 1
    assert "not a split dataset" in capsys.readouterr().err


def test_demo_small(tmp_path, capsys):
    assert main(["demo", "--small", "--folder", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "matched the original array bit for bit" in out
    assert (tmp_path / "recording" / "stack_metadata.json").is_file()


@pytest.mark.parametrize("name", ["sd_blosc_4d", "sd_zlib_3d_grid", "sd_padded", "legacy_no_json"])
def test_verify_good_fixtures(name, capsys):
    assert main(["verify", str(FIXTURES / name)]) == 0
    assert "all chunks decode" in capsys.readouterr().out


def test_verify_reports_a_corrupt_chunk(tmp_path, capsys):
    import shutil

    from split_dataset import SplitDataset

    folder = tmp_path / "ds"
    shutil.copytree(FIXTURES / "sd_blosc_4d", folder)
    layout = SplitDataset(folder).layout(2)
    with open(folder / "0002.h5", "r+b") as handle:
        handle.seek(int(layout.chunk_offset[0]))
        handle.write(b"\xff" * 32)
    assert main(["verify", str(folder)]) == 1
    out = capsys.readouterr().out
    assert "0002.h5" in out and "1 file(s) failed" in out


@pytest.fixture
def movie():
    import numpy as np

    return np.random.default_rng(4).integers(0, 3000, (6, 3, 40, 36)).astype(np.uint16)


def _converted(destination):
    from split_dataset import SplitDataset

    return SplitDataset(destination)


def test_convert_reblocks_a_split_dataset(tmp_path, capsys):
    import numpy as np

    destination = tmp_path / "planes"
    assert main(["convert", str(FIXTURES / "sd_blosc_4d"), str(destination),
                 "--block-shape", "1,1,64,48", "--compression", "blosc:lz4"]) == 0
    ds = _converted(destination)
    assert tuple(ds.shape_block) == (1, 1, 64, 48)
    assert ds.files.shape == (13, 6, 1, 1)
    np.testing.assert_array_equal(ds[...], np.load(FIXTURES / "sd_blosc_4d.npy"))
    assert "blosc:lz4" in ds.layout(0).describe_filters()
    assert "wrote" in capsys.readouterr().out


@pytest.mark.parametrize("kind", ["npy", "h5", "tiff", "zarr"])
def test_convert_from_single_arrays(tmp_path, movie, kind):
    import h5py
    import numpy as np

    if kind == "npy":
        source = tmp_path / "movie.npy"
        np.save(source, movie)
    elif kind == "h5":
        with h5py.File(tmp_path / "movie.h5", "w") as handle:
            handle["other"] = np.zeros(3)
            handle["data/movie"] = movie
        source = f"{tmp_path / 'movie.h5'}:data/movie"
    elif kind == "tiff":
        import tifffile

        source = tmp_path / "movie.tif"
        tifffile.imwrite(source, movie, photometric="minisblack")
    else:
        import zarr

        source = tmp_path / "movie.zarr"
        array = zarr.open_array(source, mode="w", shape=movie.shape, dtype=movie.dtype, chunks=(2, 3, 40, 36))
        array[...] = movie
    destination = tmp_path / "out"
    assert main(["convert", str(source), str(destination), "--frames-per-file", "4",
                 "--compression", "none"]) == 0
    ds = _converted(destination)
    assert tuple(ds.shape_block) == (4, 3, 40, 36)
    np.testing.assert_array_equal(ds[...], movie)


def test_convert_refuses_an_existing_dataset_unless_overwrite(tmp_path, movie, capsys):
    import numpy as np

    np.save(tmp_path / "movie.npy", movie)
    destination = tmp_path / "out"
    assert main(["convert", str(tmp_path / "movie.npy"), str(destination)]) == 0
    assert main(["convert", str(tmp_path / "movie.npy"), str(destination)]) == 1
    assert "overwrite" in capsys.readouterr().err
    assert main(["convert", str(tmp_path / "movie.npy"), str(destination), "--overwrite",
                 "--frames-per-file", "6"]) == 0
    assert _converted(destination).files.shape == (1, 1, 1, 1)


def test_convert_names_an_ambiguous_hdf5_file(tmp_path, movie, capsys):
    import h5py

    with h5py.File(tmp_path / "two.h5", "w") as handle:
        handle["a"] = movie
        handle["b"] = movie
    assert main(["convert", str(tmp_path / "two.h5"), str(tmp_path / "out")]) == 1
    assert "two.h5:KEY" in capsys.readouterr().err


def test_tune_measures_the_grid_and_recommends(tmp_path, capsys):
    import numpy as np

    from split_dataset.tools.synthetic import synthetic_recording

    np.save(tmp_path / "movie.npy", synthetic_recording((6, 2, 64, 64)))
    assert main(["tune", str(tmp_path / "movie.npy"), "--quick"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if "chunks," in line and "recommended" not in line]
    assert len(rows) == 8  # 4 codecs x 1 chunking x 2 frames-per-file, none duplicated
    assert all(float(row.split()[-4]) > 0 for row in rows)  # a real compression ratio
    for use in ("playback", "bulk analysis", "both"):
        assert f"recommended for {use}:" in out


# shape, block shape: 2-D to 5-D, fewer time points than a stride of 5, and a grid split along
# several axes (no h5py baseline then)
BENCH_DATASETS = {
    "2d": ((40, 37), (8, 37)),
    "3d": ((9, 24, 20), (3, 24, 20)),
    "4d-3-time-points": ((3, 2, 32, 32), (1, 2, 32, 32)),
    "5d": ((4, 2, 3, 20, 18), (1, 2, 3, 20, 18)),
    "4d-grid": ((6, 4, 32, 32), (2, 2, 32, 16)),
}


def _bench_rows(out: str) -> dict[tuple[str, str], list[str]]:
    """The table's rows by (workload, cache): the lines after its header, to the blank line."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("workload cache"))
    rows = {}
    for line in lines[start + 1 :]:
        if not line.strip():
            break
        fields = line.split()
        rows[fields[0], fields[1]] = fields
    return rows


@pytest.mark.parametrize("cold", [False, True], ids=["hot-only", "hot-and-cold"])
@pytest.mark.parametrize("name", list(BENCH_DATASETS))
def test_bench_runs_every_workload_that_fits_the_shape(tmp_path, capsys, name, cold):
    from split_dataset import save_to_split_dataset
    from split_dataset.tools.synthetic import synthetic_recording
    from split_dataset.tools.workloads import COLD_WORKLOADS, make_workloads

    shape, block = BENCH_DATASETS[name]
    ds = save_to_split_dataset(synthetic_recording(shape), tmp_path, block_size=block)
    arguments = ["bench", str(ds.root), "--samples", "12", "--reps", "2"]
    assert main(arguments + ([] if cold else ["--hot-only"])) == 0
    out = capsys.readouterr().out
    rows = _bench_rows(out)
    names = list(make_workloads(shape))  # the benchmarks' workloads for this shape
    expected = {(w, "hot") for w in names}
    if cold:
        expected |= {(w, "cold") for w in names if w in COLD_WORKLOADS}
    assert set(rows) == expected
    baseline = name != "4d-grid"
    assert ("h5py baseline: not available" in out) != baseline
    for (workload, cache), fields in rows.items():
        assert fields[-2] == ("yes" if baseline else "-"), fields  # ours equal h5py
        if workload != "open":
            assert fields[-5].endswith("%"), fields  # % of the ceiling
            into_output = fields[-4]  # % of the same work into the output: hot runs only
            assert into_output.endswith("%") and ("-" in into_output) == (cache == "cold"), fields
    ceiling = out[out.index("ceiling, measured in this run") :].splitlines()[2:]
    assert {tuple(line.split()[:2]) for line in ceiling if line.strip()} >= expected
    assert "flagged:" in out and "load average" in out.splitlines()[-1]
