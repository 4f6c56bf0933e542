"""A screen for napari where there is none: a private Xvfb and the environment Qt and napari
need, for the viewer tests, the napari benchmark and the README's screenshot.

Qt's offscreen platform has no OpenGL here, so napari needs a real X server: Xvfb, from
Debian's packages (``.ci/run`` installs it).
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import tempfile


def prepare_qt_environment() -> None:
    """Before Qt is imported: Qt on X11, napari's settings in a scratch file (not the user's),
    and the runtime directory Qt asks for."""
    scratch = tempfile.mkdtemp(prefix="split_dataset-napari-")
    os.environ.setdefault("NAPARI_CONFIG", os.path.join(scratch, "napari-settings.yaml"))
    runtime = os.path.join(scratch, "xdg-runtime")
    os.makedirs(runtime, mode=0o700)
    os.environ.setdefault("XDG_RUNTIME_DIR", runtime)
    os.environ["QT_QPA_PLATFORM"] = "xcb"


def _end_with_parent() -> None:  # PR_SET_PDEATHSIG: SIGTERM when the starting process exits
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)


def start_xvfb(screen: str = "1280x1024x24") -> subprocess.Popen:
    """Start Xvfb on a free display (it picks the number itself) and point ``DISPLAY`` at it.
    The server ends with this process: Qt's application usually outlives whoever started it,
    and a vanished X server makes Qt exit with an error."""
    read_end, write_end = os.pipe()
    server = subprocess.Popen(
        [
            "Xvfb",
            "-displayfd",
            str(write_end),
            "-screen",
            "0",
            screen,
            "-nolisten",
            "tcp",
            "-noreset",
        ],
        pass_fds=(write_end,),
        preexec_fn=_end_with_parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write_end)
    with os.fdopen(read_end) as ready:  # Xvfb writes its display number once it is ready
        number = ready.readline().strip()
    if not number:
        raise RuntimeError("Xvfb did not start (apt-get install xvfb)")
    os.environ["DISPLAY"] = f":{number}"
    return server
