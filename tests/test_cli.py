"""The command line on real fixtures and the demo."""

from __future__ import annotations

import pytest
from conftest import FIXTURES, fixture_manifest

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
