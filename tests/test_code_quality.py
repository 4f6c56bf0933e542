"""Lint, format and types of the package: ruff and mypy, as configured in pyproject.toml."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "command",
    [
        ["ruff", "check", "split_dataset"],
        ["ruff", "format", "--check", "split_dataset"],
        ["mypy"],
    ],
    ids=["ruff-lint", "ruff-format", "mypy"],
)
def test_the_package_passes(command):
    result = subprocess.run([sys.executable, "-m", *command], cwd=ROOT, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
