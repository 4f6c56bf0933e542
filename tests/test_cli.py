"""The command line on real fixtures and the demo."""

from __future__ import annotations

import pytest
from format_fixtures import FIXTURES, fixture_manifest

from split_dataset.cli import main


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
