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


# --- a real display for the napari viewer tests ----------------------------------------------


def pytest_configure(config):
    """Before any Qt application exists: Qt on X11 (its offscreen platform has no OpenGL),
    napari's settings kept out of the user's."""
    from split_dataset.tools.display import prepare_qt_environment

    prepare_qt_environment()


@pytest.fixture(scope="session")
def xvfb_display():
    """A private X server (Xvfb; .ci/run installs it) for the session's napari tests."""
    import shutil

    from split_dataset.tools.display import start_xvfb

    if shutil.which("Xvfb") is None:
        pytest.fail("the napari tests need Xvfb: apt-get install xvfb (see .ci/run)")
    start_xvfb()
    return os.environ["DISPLAY"]


@pytest.fixture(scope="session")
def qapp_args(xvfb_display):
    """pytest-qt creates its QApplication from this fixture: the X server comes first."""
    return []
