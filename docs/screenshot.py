"""Makes ``docs/napari.png``: the napari window showing a two-channel recording opened through
this package's plugin.

    python docs/screenshot.py [--out docs/napari.png]

Writes a small synthetic two-channel recording (``original/green/`` and ``original/red/``, each a
split dataset of shape (20, 8, 512, 768), 10 volumes per second, 2 x 0.6 x 0.6 um voxels) in a
temp folder, starts a private Xvfb, opens ``original/`` with ``viewer.open(..., plugin=
"split_dataset")`` (one layer per channel, green and magenta, additive), moves the sliders to a
time point in the middle (T // 2 - 1: the generator makes T // 2 pure noise) and the middle
plane, 2-D view, and saves the whole window (``viewer.screenshot(canvas_only=False)``), 1200 x
800, reduced to a 256-colour palette to stay small.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SHAPE = (20, 8, 512, 768)
WINDOW = (1200, 800)


def write_recording(folder: Path) -> None:
    """Two channels of one shape: green (GCaMP-like activity) and red (another seed, dimmer)."""
    from split_dataset import save_to_split_dataset
    from split_dataset.tools.synthetic import synthetic_recording

    for name, seed, brightness in (("green", 1, 2.0), ("red", 2, 0.8)):
        array = synthetic_recording(SHAPE, seed, brightness=brightness)
        save_to_split_dataset(array, folder / name, block_size=(5,) + SHAPE[1:],
                              compression="blosc", resolution=(0.1, 2.0, 0.6, 0.6),
                              frequency=10.0, axis_order="tzyx", durable=False)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=str(HERE / "napari.png"))
    args = parser.parse_args(argv)

    from split_dataset.tools.display import prepare_qt_environment, start_xvfb

    scratch = Path(tempfile.mkdtemp(prefix="split_dataset-screenshot-"))
    prepare_qt_environment()
    server = start_xvfb()
    try:
        recording = scratch / "original"
        write_recording(recording)

        import napari
        from PIL import Image
        from qtpy.QtWidgets import QApplication

        viewer = napari.Viewer(show=True, title="split_dataset")
        viewer.window._qt_window.resize(*WINDOW)
        layers = viewer.open(str(recording), plugin="split_dataset")
        assert [layer.name for layer in layers] == ["original green", "original red"], layers
        viewer.dims.ndisplay = 2
        viewer.dims.current_step = (SHAPE[0] // 2 - 1, SHAPE[1] // 2, 0, 0)
        viewer.reset_view()
        app = QApplication.instance()
        deadline = time.perf_counter() + 2  # let the window settle and draw
        while time.perf_counter() < deadline:
            app.processEvents()
            time.sleep(0.02)
        shown = [np.asarray(layer._slice.image.raw) for layer in layers]
        assert all(plane.max() > 0 for plane in shown), "nothing displayed"
        image = viewer.screenshot(canvas_only=False, flash=False)
        viewer.close()
    finally:
        server.terminate()
        server.wait(10)
        shutil.rmtree(scratch, ignore_errors=True)

    picture = Image.fromarray(np.ascontiguousarray(image[..., :3]))
    if picture.size != WINDOW:
        picture = picture.resize(WINDOW, Image.LANCZOS)
    picture = picture.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    picture.save(args.out, optimize=True)
    print(f"wrote {args.out}: {picture.size[0]}x{picture.size[1]}, "
          f"{Path(args.out).stat().st_size / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
