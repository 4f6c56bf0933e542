"""Where the format fixtures (real datasets written by the original tools) live.

A module of its own, not conftest: ``tests/`` and ``benchmarks/`` each have a conftest, and
importing "conftest" by name would pick whichever came first.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

SHARED_FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures"
FIXTURES = Path(os.environ.get("SPLIT_DATASET_FIXTURES", SHARED_FIXTURES))


def fixture_manifest() -> dict:
    manifest = FIXTURES / "MANIFEST.json"
    if not manifest.is_file():
        raise FileNotFoundError(
            f"format fixtures not found at {FIXTURES}; set SPLIT_DATASET_FIXTURES to shared/fixtures"
        )
    return json.loads(manifest.read_text())


def open_fixture(name: str):
    """A fixture dataset (recordings stopped early open without their warning) and its true
    array."""
    import warnings

    import numpy as np

    from split_dataset import IncompleteDatasetWarning, SplitDataset

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IncompleteDatasetWarning)
        return SplitDataset(FIXTURES / name), np.load(FIXTURES / f"{name}.npy")
