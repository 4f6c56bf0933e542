"""Shared test set-up: the committed format fixtures, hypothesis profiles, both planners."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

SHARED_FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures"
FIXTURES = Path(os.environ.get("SPLIT_DATASET_FIXTURES", SHARED_FIXTURES))

# CI: fixed examples, so a red run is reproducible. Local: many more, random.
settings.register_profile(
    "ci", max_examples=150, derandomize=True, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.register_profile(
    "dev", max_examples=2000, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def fixture_manifest() -> dict:
    manifest = FIXTURES / "MANIFEST.json"
    if not manifest.is_file():
        raise FileNotFoundError(
            f"format fixtures not found at {FIXTURES}; set SPLIT_DATASET_FIXTURES to shared/fixtures"
        )
    return json.loads(manifest.read_text())


@pytest.fixture(params=["compiled", "python"])
def planner(request, monkeypatch):
    """Run a test once with the compiled planner and once with the pure-Python reference."""
    monkeypatch.setenv("SPLIT_DATASET_PLANNER", request.param)
    return request.param
