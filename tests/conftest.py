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
    napari's settings kept out of the user's, and no warnings about a missing runtime dir."""
    import tempfile

    scratch = tempfile.mkdtemp(prefix="split_dataset-tests-")
    os.environ.setdefault("NAPARI_CONFIG", os.path.join(scratch, "napari-settings.yaml"))
    runtime = os.path.join(scratch, "xdg-runtime")
    os.makedirs(runtime, mode=0o700)
    os.environ.setdefault("XDG_RUNTIME_DIR", runtime)
    os.environ["QT_QPA_PLATFORM"] = "xcb"


@pytest.fixture(scope="session")
def xvfb_display():
    """A private X server (Xvfb, from Debian's packages; .ci/run installs it) for the session.
    It picks a free display number itself and ends with the test process."""
    import ctypes
    import shutil
    import signal
    import subprocess

    if shutil.which("Xvfb") is None:
        pytest.fail("the napari tests need Xvfb: apt-get install xvfb (see .ci/run)")

    def end_with_parent():  # PR_SET_PDEATHSIG: SIGTERM when pytest exits
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)

    read_end, write_end = os.pipe()
    subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_end), "-screen", "0", "1280x1024x24", "-nolisten",
         "tcp", "-noreset"],
        pass_fds=(write_end,), preexec_fn=end_with_parent,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    os.close(write_end)
    with os.fdopen(read_end) as ready:  # Xvfb writes its display number once it is ready
        number = ready.readline().strip()
    if not number:
        pytest.fail("Xvfb did not start")
    os.environ["DISPLAY"] = f":{number}"
    # Not stopped here: Qt's application outlives session fixtures, and a vanished X server
    # makes it exit with an error. It ends with the test process.
    return os.environ["DISPLAY"]


@pytest.fixture(scope="session")
def qapp_args(xvfb_display):
    """pytest-qt creates its QApplication from this fixture: the X server comes first."""
    return []
