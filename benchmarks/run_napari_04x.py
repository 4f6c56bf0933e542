"""The third-party napari plugin ``napari-split-dataset`` 0.3 (split_dataset 0.4.x underneath),
timed the way ``napari_report.py`` times this package's reader; prints JSON on stdout.

Runs in its own virtualenv (split_dataset 0.4.x conflicts with this package)::

    python3 -m venv /tmp/venv-napari04
    /tmp/venv-napari04/bin/pip install napari "PySide6-Essentials==6.11.3" napari-split-dataset
    /tmp/venv-napari04/bin/python benchmarks/run_napari_04x.py --folder DIR --plans PLANS.json

``napari_report.py`` calls it as a subprocess with the same passes (z per pass, pauses) as the
in-process readers, drawing on the report's Xvfb (``$SPLIT_DATASET_NAPARI_DISPLAY``; without it,
it starts its own). The timing code is ``napari_report.py``'s, loaded by file path (it imports
only the standard library and NumPy at the top), so this repository's package is never imported.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
# never import this repository's split_dataset: drop the repo root from the path
sys.path = [p for p in sys.path if Path(p or ".").resolve() != HERE.parent]

import numpy as np  # noqa: E402

spec = importlib.util.spec_from_file_location("napari_report", HERE / "napari_report.py")
report = importlib.util.module_from_spec(spec)
spec.loader.exec_module(report)


def versions() -> dict:
    from importlib.metadata import version

    import qtpy

    out = {name: version(name) for name in ("napari-split-dataset", "split_dataset", "napari",
                                            "flammkuchen", "tables", "numpy")}
    out["qt"] = f"{qtpy.API_NAME} {qtpy.PYSIDE_VERSION or qtpy.PYQT_VERSION} (Qt {qtpy.QT_VERSION})"
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--folder", required=True)
    parser.add_argument("--plans", required=True, help="JSON: mode -> napari_report.pass_plan()")
    parser.add_argument("--array", default=None, help=".npy of the array, for the checks")
    args = parser.parse_args()
    import split_dataset

    if not split_dataset.__version__.startswith("0.4"):
        sys.exit(f"expected split_dataset 0.4.x, found {split_dataset.__version__} at "
                 f"{split_dataset.__file__}")
    plans = json.loads(Path(args.plans).read_text())
    array = np.load(args.array, mmap_mode="r") if args.array else None
    server = report.start_display()
    try:
        viewer, watch = report.make_viewer()
        start = time.perf_counter()
        layer = viewer.open(args.folder, plugin="napari-split-dataset")[0]
        opened = time.perf_counter() - start
        if type(layer.data).__module__.split(".")[0] != "split_dataset":
            sys.exit(f"the plugin's layer holds a {type(layer.data)}, not a 0.4.x SplitDataset")
        layers = {report.V04: layer}
        results = {}
        for mode, plan in plans.items():
            expected = None if array is None else (lambda t, z: array[t, z])
            results[mode] = report.measure_blocks(viewer, watch, layers, plan, expected)[report.V04]
        renderer = watch.renderer
        viewer.close()
    finally:
        if server is not None:
            server.terminate()
            server.wait(10)
    print(json.dumps(dict(versions=versions(), renderer=renderer, open_seconds=opened,
                          data_type=f"{type(layer.data).__module__}.{type(layer.data).__name__}",
                          results=results)))


if __name__ == "__main__":
    main()
