"""Shared test set-up: the committed format fixtures, hypothesis profiles, both planners."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

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


@pytest.fixture(params=["compiled", "python"])
def planner(request, monkeypatch):
    """Run a test once with the compiled planner and once with the pure-Python reference."""
    monkeypatch.setenv("SPLIT_DATASET_PLANNER", request.param)
    return request.param
