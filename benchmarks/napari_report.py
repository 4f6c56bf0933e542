"""Slider-step latency in a real napari Viewer: this package's reader against plain h5py and the
third-party ``napari-split-dataset`` plugin, in one run; writes a Markdown report.

    python benchmarks/napari_report.py --size full --out benchmarks/RESULTS_napari.md

The recording is ``split_dataset.tools.synthetic``'s uint16 calcium-imaging array, ``(T, 30,
1024, 1024)`` for ``full`` (T = 24, 1.5 GB; ``small``: (6, 4, 256, 256)), one time point per file,
written twice: by this package's ``save_to_split_dataset(..., block_size=(1, 30, 1024, 1024),
compression="blosc")`` and as PyTables ``CArray`` blosc files (flammkuchen's way,
``benchmarks/data.py``). Cached under ``$SPLIT_DATASET_BENCH_DIR`` (default
``/tmp/split_dataset_bench``); the page cache is hot (the files are read once before timing).

One viewer (``napari.Viewer(show=True)`` on a private Xvfb, 1200 x 800 window, Mesa llvmpipe),
one layer at a time, 2-D view, napari's defaults (synchronous slicing, projection mode "mean").
A step sets ``viewer.dims.current_step = (t, z, 0, 0)`` and times:

- ``slice``: until the setter returns: napari has read the plane and ``layer._slice`` holds it;
- ``drawn``: until the vispy canvas has finished the draw event that follows (the texture
  upload and the draw included: ``glFinish`` in a callback connected last to
  ``canvas.events.draw``), waiting in a real Qt event loop (``QEventLoop``), as the app does;
- ``shown``: until Qt has handled that paint event to its end (the canvas composed into the
  window and sent to the X server): the frame on screen, the headline figure;
- ``read``: the time spent inside ``layer.data[key]`` (what the reader itself costs).

A pass jumps to ``(0, z)`` (untimed) then steps t = 1 .. T-1 at that z, one timed sample per step;
every pass uses a z no other pass of the same reader and mode used, so no (t, z) is read twice
by a reader in a mode (HDF5's chunk caches cannot help). Two modes: ``pause``, the app idles
30-50 ms in its event loop between a frame shown and the next step (a user scrubbing); and
``play``, the next step as soon as the frame is shown (napari's own play also waits for the
draw). The readers, interleaved pass by pass in rotating order:

- ``split_dataset (plugin)``: ``viewer.open(folder, plugin="split_dataset")``, the layer as
  opened (``ReadAheadArray``: reads the next time step ahead when two reads in a row are one
  step apart);
- ``split_dataset, no read-ahead``: ``viewer.add_image(SplitDataset(folder))``;
- ``h5py``: ``viewer.add_image(H5pyLazy(folder))``, 20 lines a user writes: h5py + hdf5plugin,
  every file kept open, ``dset[sel]`` on the time point's file;
- ``NumPy in memory (floor)``: ``viewer.add_image(array)``, the whole array in memory: no read
  at all, what napari, vispy and Qt cost by themselves (no reader can do better);
- ``napari-split-dataset 0.3``: the third-party plugin (split_dataset 0.4.x underneath) in its
  own virtualenv, run as a subprocess by ``run_napari_04x.py`` with the same passes, after the
  in-process readers (not interleaved).

Ratios are h5py's time divided by the reader's, in the same run (> 1: faster than h5py).
Logged: load average, threads, CPU time / wall time, the GL renderer.

This module imports only the standard library and NumPy at the top: ``run_napari_04x.py`` loads
it by file path, in a virtualenv without this package.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SEED = 20240611  # data.py's
SIZES = {"small": (6, 4, 256, 256), "full": (24, 30, 1024, 1024)}
ROUNDS = {"small": 3, "full": 14}  # timed passes per reader and mode (+ 1 warm-up pass)
PAUSE_RANGE = (0.030, 0.050)  # seconds idle between steps in "pause" mode
WINDOW = (1200, 800)
DRAW_TIMEOUT = 20.0
V04_PYTHON = "/tmp/venv-napari04/bin/python"
V04_INSTALL = ('python3 -m venv /tmp/venv-napari04 && /tmp/venv-napari04/bin/pip install napari '
               '"PySide6-Essentials==6.11.3" napari-split-dataset')

PLUGIN = "split_dataset (plugin, read-ahead)"
PLAIN = "split_dataset, no read-ahead"
H5PY = "h5py"
V04 = "napari-split-dataset 0.3"
FLOOR = "NumPy in memory (floor)"
READERS = (PLUGIN, PLAIN, H5PY, V04, FLOOR)


# --- the display and napari's settings, before Qt is imported -----------------------------------


def start_display() -> subprocess.Popen | None:
    """A private Xvfb (it picks a free display number), ended with this process; napari's
    settings in a temp file; Qt on X11. Reuses ``$DISPLAY`` if the caller set
    ``SPLIT_DATASET_NAPARI_DISPLAY`` (the 0.4.x runner does: it draws on the report's server)."""
    scratch = tempfile.mkdtemp(prefix="split_dataset-napari-")
    os.environ["NAPARI_CONFIG"] = os.path.join(scratch, "napari-settings.yaml")
    runtime = os.path.join(scratch, "xdg-runtime")
    os.makedirs(runtime, mode=0o700)
    os.environ["XDG_RUNTIME_DIR"] = runtime
    os.environ["QT_QPA_PLATFORM"] = "xcb"
    shared = os.environ.get("SPLIT_DATASET_NAPARI_DISPLAY")
    if shared:
        os.environ["DISPLAY"] = shared
        return None

    from split_dataset.tools.display import start_xvfb  # not in the 0.4.x venv: after the check

    return start_xvfb()


# --- what can lie ----------------------------------------------------------------------------


def thread_count() -> int:
    """Threads of this process (Python's, the decoder pool's, llvmpipe's, Qt's)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    return -1


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def machine_busy_seconds() -> float:
    """CPU seconds every process on the machine has used since boot (/proc/stat, not idle)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


# --- the viewer and the timing loop (shared with run_napari_04x.py) ---------------------------


class DrawWatch:
    """Times the canvas's draws: ``start`` when a draw event begins (first callback), ``end``
    once it is finished (last callback, after ``glFinish``); ``wait`` runs a Qt event loop until
    the next draw has ended, as the application's own loop would."""

    def __init__(self, viewer) -> None:
        self.scene_canvas = viewer.window._qt_viewer.canvas._scene_canvas
        self.count = 0
        self.start = self.end = self.shown = 0.0
        self.renderer = None
        self._loop = None
        self.scene_canvas.events.draw.connect(self._first, position="first")
        self.scene_canvas.events.draw.connect(self._last, position="last")

    def _first(self, event) -> None:
        self.start = time.perf_counter()

    def _last(self, event) -> None:
        self.scene_canvas.context.finish()  # the GL work done, not only queued
        self.end = time.perf_counter()
        self.count += 1
        if self.renderer is None:
            from vispy.gloo import gl

            renderer, version = (gl.glGetParameter(gl.GL_RENDERER),
                                 gl.glGetParameter(gl.GL_VERSION))
            self.renderer = f"{renderer}, {version}"
        if self._loop is not None:
            self._loop.quit()

    def wait(self, count: int, timeout: float = DRAW_TIMEOUT) -> bool:
        """Until more than ``count`` draws have ended (False after ``timeout`` seconds), and
        the event that drew has been handled to its end: Qt has then composed the canvas into
        the window and sent it to the X server (``shown``)."""
        if self.count > count:
            self.shown = time.perf_counter()
            return True
        from qtpy.QtCore import QEventLoop, QTimer

        loop, timer = QEventLoop(), QTimer()
        timer.setSingleShot(True)
        timer.timeout.connect(loop.quit)
        timer.start(int(timeout * 1000))
        self._loop = loop
        while self.count <= count and timer.isActive():
            loop.exec()
        self.shown = time.perf_counter()
        self._loop = None
        timer.stop()
        return self.count > count


def idle(seconds: float) -> None:
    """The application idle in its event loop for ``seconds`` (a user between two steps)."""
    from qtpy.QtCore import QEventLoop, Qt, QTimer

    loop, timer = QEventLoop(), QTimer()
    timer.setSingleShot(True)
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    timer.timeout.connect(loop.quit)
    timer.start(max(1, int(round(seconds * 1000))))
    loop.exec()


def make_viewer():
    import napari

    viewer = napari.Viewer(show=True)
    viewer.window._qt_window.resize(*WINDOW)
    watch = DrawWatch(viewer)
    deadline = time.perf_counter() + 10
    while watch.count == 0 and time.perf_counter() < deadline:
        from qtpy.QtWidgets import QApplication

        QApplication.instance().processEvents()
        time.sleep(0.01)
    return viewer, watch


class ReadTimer:
    """Times ``type(data).__getitem__`` (what napari calls) while installed; ``durations`` of the
    reads since the last ``clear``."""

    def __init__(self, data) -> None:
        self.cls = type(data)
        self.original = self.cls.__dict__.get("__getitem__")
        self.durations: list[float] = []
        inherited = self.cls.__getitem__
        durations = self.durations

        def timed(obj, key):
            start = time.perf_counter()
            try:
                return inherited(obj, key)
            finally:
                durations.append(time.perf_counter() - start)

        try:
            self.cls.__getitem__ = timed
            self.installed = True
        except TypeError:  # a built-in type (NumPy's array): not timed
            self.installed = False

    def remove(self) -> None:
        if not self.installed:
            return
        if self.original is None:
            del self.cls.__getitem__
        else:
            self.cls.__getitem__ = self.original


def show_only(viewer, watch: DrawWatch, layer) -> None:
    """``layer`` alone in the viewer, the view reset (same camera for every reader)."""
    count = watch.count
    viewer.layers.clear()
    viewer.layers.append(layer)
    viewer.reset_view()
    watch.wait(count)


def run_pass(viewer, watch: DrawWatch, layer, z: int, T: int, pauses: list[float] | None,
             expected=None) -> list[dict]:
    """Jump to (0, z) untimed, then step t = 1 .. T-1: one sample per step. ``pauses``: idle
    before each step (None: play, back to back). ``expected(t, z)``: check every displayed
    plane (warm-up passes only: a check would give read-ahead free time)."""
    tail = (0,) * (layer.ndim - 2)
    count = watch.count
    viewer.dims.current_step = (0, z) + tail
    watch.wait(count)
    reads = ReadTimer(layer.data)
    samples = []
    try:
        for t in range(1, T):
            if pauses is not None:
                idle(pauses[t - 1])
            reads.durations.clear()
            count = watch.count
            cpu0 = time.process_time()
            t0 = time.perf_counter()
            viewer.dims.current_step = (t, z) + tail
            t1 = time.perf_counter()
            drawn = watch.wait(count)
            cpu = time.process_time() - cpu0
            sample = dict(t=t, z=z, slice=t1 - t0, read=float(sum(reads.durations)),
                          reads=len(reads.durations) if reads.installed else None,
                          drawn=watch.end - t0 if drawn else None,
                          shown=watch.shown - t0 if drawn else None,
                          paint=watch.end - watch.start if drawn else None, cpu=cpu)
            if expected is not None:
                shown = np.squeeze(np.asarray(layer._slice.image.raw))
                sample["correct"] = bool(np.array_equal(shown, expected(t, z)))
            samples.append(sample)
    finally:
        reads.remove()
    return samples


def pass_plan(size: str, mode: str, T: int, Z: int) -> dict:
    """The z of each pass (warm-up first) and the pauses: the same for every reader. The two
    modes use disjoint z (HDF5 chunk caches never see a plane twice)."""
    rounds = ROUNDS[size] + 1
    order = [(7 * i + 3) % Z for i in range(Z)]  # 7 is prime to 30: every z once
    half = len(order) // 2 if len(order) >= 2 * rounds else 0
    offset = 0 if mode == "pause" else half
    zs = [order[(offset + i) % len(order)] for i in range(rounds)]
    rng = np.random.default_rng(SEED + (mode == "play"))
    pauses = None
    if mode == "pause":
        pauses = [rng.uniform(*PAUSE_RANGE, T - 1).round(4).tolist() for _ in range(rounds)]
    return dict(zs=zs, pauses=pauses, T=T)


def measure_blocks(viewer, watch: DrawWatch, layers: dict, plan: dict, expected=None) -> dict:
    """Every reader's passes for one mode, interleaved pass by pass in rotating order. Returns
    per reader: samples (warm-up excluded), CPU and wall time of the timed passes, threads,
    load average."""
    names = list(layers)
    ahead0 = {name: getattr(layers[name].data, "read_ahead", None) for name in names}
    out = {name: dict(samples=[], warmup=[], cpu=0.0, wall=0.0, machine=0.0) for name in names}
    for i, z in enumerate(plan["zs"]):
        rotation = names[i % len(names):] + names[: i % len(names)]
        for name in rotation:
            show_only(viewer, watch, layers[name])
            pauses = plan["pauses"][i] if plan["pauses"] is not None else None
            cpu0, wall0 = time.process_time(), time.perf_counter()
            machine0 = machine_busy_seconds()
            samples = run_pass(viewer, watch, layers[name], z, plan["T"], pauses,
                               expected if i == 0 else None)
            if i == 0:
                out[name]["warmup"] = samples
                continue
            out[name]["cpu"] += time.process_time() - cpu0
            out[name]["wall"] += time.perf_counter() - wall0
            out[name]["machine"] += machine_busy_seconds() - machine0
            out[name]["samples"] += samples
    for name in names:
        out[name]["threads"] = thread_count()
        out[name]["load"] = load_average()
        ahead = getattr(layers[name].data, "read_ahead", None)
        out[name]["read_ahead"] = None if ahead is None else ahead - ahead0[name]
    viewer.layers.clear()
    return out


# --- data --------------------------------------------------------------------------------------


def prepare_data(size: str, verbose: bool = True) -> tuple[np.ndarray, dict[str, Path]]:
    """The array (cached ``array.npy``) and its two datasets, written once."""
    sys.path.insert(0, str(HERE))
    import data  # benchmarks/data.py: the cache, the generator, PyTables' way of writing

    from split_dataset import save_to_split_dataset

    shape = SIZES[size]
    start = time.perf_counter()
    array = data.load_array(shape, SEED)
    folders = {"PyTables blosc (flammkuchen)": data.dataset_path(shape, "blosc", 1, SEED, array)}
    folder = data.cache_dir(shape, SEED) / "napari_writer_blosc_tpf1"
    if not (folder / ".complete").is_file():
        tmp = folder.with_name(folder.name + f".{os.getpid()}.tmp")
        save_to_split_dataset(array, tmp, block_size=(1,) + shape[1:], compression="blosc",
                              resolution=(1.0, 1.0, 0.6, 0.6), overwrite=True)
        (tmp / ".complete").write_text("")
        if folder.exists():
            import shutil

            shutil.rmtree(folder)
        os.replace(tmp, folder)
    folders = {"this package's writer, blosc": folder, **folders}
    if verbose:
        print(f"data: {shape} {array.nbytes / 1e9:.2f} GB ready in "
              f"{time.perf_counter() - start:.0f} s: {data.cache_dir(shape, SEED)}",
              file=sys.stderr)
    return array, folders


def warm(folder: Path) -> None:
    """Read every file once: the page cache is hot for every reader."""
    for path in sorted(folder.iterdir()):
        if path.is_file():
            with open(path, "rb") as handle:
                while handle.read(1 << 24):
                    pass


def chunk_shape(folder: Path) -> str:
    import h5py
    import hdf5plugin  # noqa: F401

    with h5py.File(sorted(folder.glob("[0-9]*.h5"))[0], "r") as handle:
        dset = handle[next(k for k in handle if k.startswith("stack"))]
        filters = [str(f) for f in dset._filters]
        return f"chunks {dset.chunks}, filters {filters}"


class H5pyLazy:
    """The plain h5py way: every block file open, ``dset[sel]`` on the files a key touches."""

    def __init__(self, folder: Path) -> None:
        import h5py
        import hdf5plugin  # noqa: F401  (the blosc filter)

        meta = json.loads((Path(folder) / "stack_metadata.json").read_text())
        self.shape = tuple(meta["shape_full"])
        self.per_file = meta["shape_block"][0]
        self.handles = [h5py.File(p, "r") for p in sorted(Path(folder).glob("[0-9]*.h5"))]
        key = next(k for k in self.handles[0] if k.startswith("stack"))
        self.dsets = [h[key] for h in self.handles]
        self.dtype = self.dsets[0].dtype
        self.ndim = len(self.shape)

    def __getitem__(self, key):
        key = key if isinstance(key, tuple) else (key,)
        first, rest = key[0], tuple(key[1:])
        if isinstance(first, (int, np.integer)):
            t = int(first) % self.shape[0]
            return self.dsets[t // self.per_file][(t % self.per_file,) + rest]
        times = range(*first.indices(self.shape[0]))
        parts = [self.dsets[t // self.per_file][(slice(t % self.per_file, t % self.per_file + 1),)
                                                + rest] for t in times]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)


# --- the third-party plugin, in its own virtualenv --------------------------------------------


def run_v04(python: str, folder: Path, plans: dict, array_path: Path | None) -> dict:
    """``run_napari_04x.py`` in ``python``'s virtualenv, drawing on this process's X server."""
    if not Path(python).exists():
        return dict(error=f"{python} not found; install it with: {V04_INSTALL}")
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(plans, handle)
    env = {k: v for k, v in os.environ.items() if k not in ("NAPARI_CONFIG", "PYTHONPATH")}
    env["SPLIT_DATASET_NAPARI_DISPLAY"] = os.environ["DISPLAY"]
    command = [python, str(HERE / "run_napari_04x.py"), "--folder", str(folder), "--plans",
               handle.name]
    if array_path is not None:
        command += ["--array", str(array_path)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=3600)
    finally:
        os.unlink(handle.name)
    if done.returncode != 0:
        return dict(error=f"exit {done.returncode}: {done.stderr.strip()[-1500:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- the report --------------------------------------------------------------------------------


def percentile(values, q) -> float:
    return float(np.percentile(np.asarray(values, float), q)) if values else float("nan")


def summarize(block: dict) -> dict:
    samples = [s for s in block["samples"] if s["drawn"] is not None]

    def pick(key, where=lambda s: True):
        return [s[key] for s in samples if where(s)]

    def mean(values):
        return float(np.mean(values)) if values else float("nan")

    warm = block.get("warmup", [])
    out = dict(n=len(block["samples"]), missed=len(block["samples"]) - len(samples),
               reads=mean([r for r in pick("reads") if r is not None]),
               cpu_per_step=mean(pick("cpu")),
               cpu_per_wall=block["cpu"] / block["wall"] if block.get("wall") else float("nan"),
               machine_per_wall=(block.get("machine", float("nan")) / block["wall"]
                                 if block.get("wall") else float("nan")),
               threads=block.get("threads"), load=block.get("load"),
               read_ahead=block.get("read_ahead"), checked=len(warm),
               correct=sum(bool(s.get("correct")) for s in warm))
    for key in ("shown", "drawn", "slice", "read", "paint"):
        values = pick(key)
        out[key + "50"], out[key + "99"] = percentile(values, 50), percentile(values, 99)
    stepping = pick("shown", lambda s: s["t"] > 1)
    out["stepping50"], out["stepping99"] = percentile(stepping, 50), percentile(stepping, 99)
    jump = pick("shown", lambda s: s["t"] == 1)
    out["jump50"], out["n_jump"] = percentile(jump, 50), len(jump)
    # where a step goes, in means (they add up to the mean of shown)
    out["part_read"] = mean(pick("read"))
    out["part_napari"] = mean([s["slice"] - s["read"] for s in samples])
    out["part_draw"] = mean([s["drawn"] - s["slice"] for s in samples])
    out["part_compose"] = mean([s["shown"] - s["drawn"] for s in samples])
    out["part_total"] = mean(pick("shown"))
    return out


def ms(x: float) -> str:
    return "-" if x != x else f"{x * 1e3:.1f}"


def ratio(ref: float, x: float) -> str:
    return "-" if x != x or ref != ref or x == 0 else f"{ref / x:.2f}x"


def versions() -> dict:
    import h5py
    import napari
    import qtpy
    import vispy

    from split_dataset import __version__

    qt = f"{qtpy.API_NAME} {qtpy.PYSIDE_VERSION or qtpy.PYQT_VERSION} (Qt {qtpy.QT_VERSION})"
    return dict(napari=napari.__version__, vispy=vispy.__version__, qt=qt,
                h5py=h5py.__version__, split_dataset=__version__)


def summaries_of(by_mode: dict) -> dict:
    return {mode: {name: summarize(b) for name, b in blocks.items() if "samples" in b}
            for mode, blocks in by_mode.items()}


def render(size: str, shape, results: dict, info: dict, notes: list[str]) -> str:
    machine = info["machine"]
    lines = [
        "# napari: slider-step latency",
        "",
        f"Generated by `benchmarks/napari_report.py --size {size}` on "
        f"{machine['date']}. Machine: {machine['cpu']}, {machine['nproc']} cores "
        f"(affinity {machine['affinity']}), {machine['memory']}, Linux {machine['kernel']}, "
        f"Python {machine['python']}, NumPy {machine['numpy']}, h5py {machine['h5py']} "
        f"(HDF5 {machine['hdf5']}), hdf5plugin {machine['hdf5plugin']}, "
        f"split_dataset {machine['split_dataset']} ({machine['default_threads']} decoding "
        f"threads).",
        "",
        f"napari {info['versions']['napari']}, vispy {info['versions']['vispy']}, "
        f"{info['versions']['qt']}; Xvfb, {WINDOW[0]}x{WINDOW[1]} window, GL: {info['renderer']} "
        f"(software); LP_NUM_THREADS={os.environ.get('LP_NUM_THREADS', 'unset')}; napari "
        f"defaults: synchronous slicing (async: {info['async']}), projection mode \"mean\", 2-D.",
        "",
        f"Recording: synthetic uint16 calcium imaging {tuple(shape)} "
        f"({int(np.prod(shape)) * 2 / 1e9:.2f} GB), one time point per file; a plane is "
        f"{shape[-2]}x{shape[-1]} ({shape[-2] * shape[-1] * 2 / 1e6:.1f} MB). Page cache hot.",
        "",
        "One step: `viewer.dims.current_step = (t, z, 0, 0)` from t-1, same z, timed until:",
        "",
        "- **shown**: Qt has handled the paint event to its end (canvas drawn, composed into the "
        "window and sent to the X server): the frame the user sees;",
        "- **drawn**: the vispy canvas finished drawing the new plane (last `events.draw` "
        "callback, after `glFinish`: texture upload and draw done);",
        "- **slice**: `viewer.dims.current_step` returned: napari has read the plane and "
        "`layer._slice` holds it; **read**: the time inside `layer.data[key]`.",
        "",
        "**pause**: the app idles 30-50 ms in its Qt event loop between a frame shown and the "
        "next step (a user scrubbing). **play**: back to back, the next step as soon as the "
        "frame is shown (napari's own play also waits for the draw). Samples per row: passes x "
        "(T-1) steps; every pass of a reader in a mode is at a z of its own (no (t, z) read "
        "twice); the first step of each pass follows a jump to (0, z). Speed-up: h5py's time / "
        "the reader's, same run (> 1: faster than h5py).",
        "",
    ]
    all_summaries = {variant: summaries_of(by_mode) for variant, by_mode in results.items()}
    lines += ["## Summary", ""]
    for variant, by_mode in all_summaries.items():
        for mode, summaries in by_mode.items():
            ref = summaries.get(H5PY)
            parts = []
            for name in (PLUGIN, PLAIN, V04, FLOOR):
                if name in summaries and ref:
                    s = summaries[name]
                    parts.append(f"{name} {ms(s['shown50'])} / {ms(s['shown99'])} ms "
                                 f"({ratio(ref['shown50'], s['shown50'])} / "
                                 f"{ratio(ref['shown99'], s['shown99'])})")
            if ref:
                share = ref["part_read"] / ref["part_total"]
                plugin = summaries.get(PLUGIN)
                lines.append(
                    f"- {variant}, {mode}: shown p50 / p99 (speed-up vs h5py): h5py "
                    f"{ms(ref['shown50'])} / {ms(ref['shown99'])} ms; " + "; ".join(parts)
                    + f". h5py's read is {share:.0%} of its step"
                    + (f"; read-ahead cuts the read from {ms(summaries[PLAIN]['read50'])} to "
                       f"{ms(plugin['read50'])} ms (p50)" if plugin and PLAIN in summaries
                       else "") + ".")
    lines.append("")
    for variant, by_mode in results.items():
        summaries_by_mode = all_summaries[variant]
        lines += [f"## {variant}", "", f"{info['chunks'][variant]}.", ""]
        lines += ["| mode | reader | n | shown p50 | shown p99 | speed-up p50 / p99 | "
                  "drawn p50 / p99 | speed-up p50 / p99 | slice p50 / p99 | read p50 / p99 |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for mode, blocks in by_mode.items():
            summaries = summaries_by_mode[mode]
            ref = summaries.get(H5PY)
            for name in READERS:
                if name not in blocks:
                    continue
                if name not in summaries:
                    lines.append(f"| {mode} | {name} | not run: {blocks[name].get('error', '?')} "
                                 + "| " * 7 + "|")
                    continue
                s = summaries[name]
                missed = f" ({s['missed']} not drawn)" if s["missed"] else ""
                lines.append(
                    f"| {mode} | {name} | {s['n']}{missed} | **{ms(s['shown50'])}** | "
                    f"{ms(s['shown99'])} | "
                    f"{ratio(ref['shown50'], s['shown50']) if ref else '-'} / "
                    f"{ratio(ref['shown99'], s['shown99']) if ref else '-'} | "
                    f"{ms(s['drawn50'])} / {ms(s['drawn99'])} | "
                    f"{ratio(ref['drawn50'], s['drawn50']) if ref else '-'} / "
                    f"{ratio(ref['drawn99'], s['drawn99']) if ref else '-'} | "
                    f"{ms(s['slice50'])} / {ms(s['slice99'])} | "
                    + (f"{ms(s['read50'])} / {ms(s['read99'])} |" if s["reads"] == s["reads"]
                       else "not timed |"))
        lines += ["", "Where a step goes (means, ms: they add up to the mean of shown) and what "
                  "can lie:", "",
                  "| mode | reader | read | napari slicing, read excluded | to drawn (upload, "
                  "GL) | Qt composes the window | shown (mean) | paint p50 | reads/step | "
                  "CPU ms/step | CPU/wall | machine CPU/wall | threads | load avg |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for mode in by_mode:
            for name, s in summaries_by_mode[mode].items():
                timed = s["reads"] == s["reads"]  # NumPy's reads are not timed
                reads = f"{s['reads']:.2f}" if timed else "-"
                read = ms(s["part_read"]) if timed else "-"
                lines.append(
                    f"| {mode} | {name} | {read} | {ms(s['part_napari'])} | "
                    f"{ms(s['part_draw'])} | {ms(s['part_compose'])} | {ms(s['part_total'])} | "
                    f"{ms(s['paint50'])} | {reads} | {ms(s['cpu_per_step'])} | "
                    f"{s['cpu_per_wall']:.2f} | {s['machine_per_wall']:.2f} | {s['threads']} | "
                    f"{s['load']} |")
        lines += ["", "Read-ahead and correctness:", ""]
        for mode in by_mode:
            for name, s in summaries_by_mode[mode].items():
                extra = ""
                if s["read_ahead"] is not None:
                    extra = (f"; {s['read_ahead']} reads ahead submitted (warm-up included); "
                             f"shown p50 / p99 of the steps that follow a step "
                             f"{ms(s['stepping50'])} / {ms(s['stepping99'])} ms, of the "
                             f"{s['n_jump']} first steps after a jump (not read ahead) p50 "
                             f"{ms(s['jump50'])} ms")
                lines.append(f"- {mode}, {name}: warm-up pass {s['correct']}/{s['checked']} "
                             f"displayed planes equal to the array{extra}.")
        lines.append("")
    lines += ["## Notes", ""] + [f"- {note}" for note in notes] + [""]
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    parser.add_argument("--out", default=None, help="Markdown report (default: stdout)")
    parser.add_argument("--v04-python", default=os.environ.get(
        "SPLIT_DATASET_BENCH_NAPARI04_PYTHON", V04_PYTHON))
    parser.add_argument("--skip-v04", action="store_true")
    parser.add_argument("--variants", default=None, help="'writer', 'pytables' or both (default)")
    args = parser.parse_args(argv)

    server = start_display()
    try:
        report = run(args)
    finally:
        if server is not None:
            server.terminate()
            server.wait(10)
    if args.out:
        Path(args.out).write_text(report)
        print(f"wrote {args.out}", file=sys.stderr)
    else:
        print(report)


def run(args) -> str:
    sys.path.insert(0, str(HERE))
    from machine import machine_info

    from split_dataset import SplitDataset

    array, folders = prepare_data(args.size)
    if args.variants:
        wanted = args.variants.split(",")
        folders = {k: v for k, v in folders.items()
                   if any(w in k.lower() for w in wanted)}
    shape = array.shape
    T, Z = shape[0], shape[1]
    array_path = Path(sys.modules["data"].cache_dir(shape, SEED)) / "array.npy"
    wall0 = time.perf_counter()
    info = dict(machine=machine_info(), versions=versions(), chunks={}, load_start=load_average())
    import napari.settings

    info["async"] = napari.settings.get_settings().experimental.async_
    viewer, watch = make_viewer()
    plans = {mode: pass_plan(args.size, mode, T, Z) for mode in ("pause", "play")}
    results: dict = {}
    for variant, folder in folders.items():
        warm(folder)
        info["chunks"][variant] = chunk_shape(folder)
        opened = viewer.open(str(folder), plugin="split_dataset")[0]
        limits, scale = tuple(opened.contrast_limits), tuple(opened.scale)
        layers = {
            PLUGIN: opened,
            PLAIN: viewer.add_image(SplitDataset(folder), contrast_limits=limits, scale=scale,
                                    name="no read-ahead"),
            H5PY: viewer.add_image(H5pyLazy(folder), contrast_limits=limits, scale=scale,
                                   name="h5py"),
            FLOOR: viewer.add_image(array, contrast_limits=limits, scale=scale, name="numpy"),
        }
        viewer.layers.clear()
        results[variant] = {}
        for mode, plan in plans.items():
            print(f"{variant}, {mode}: in-process readers ({load_average()})", file=sys.stderr)
            results[variant][mode] = measure_blocks(viewer, watch, layers, plan,
                                                    expected=lambda t, z: array[t, z])
        for layer in layers.values():
            for handle in getattr(layer.data, "handles", []):
                handle.close()
        del layers, opened
        if not args.skip_v04:
            print(f"{variant}: napari-split-dataset 0.3 in {args.v04_python}", file=sys.stderr)
            v04 = run_v04(args.v04_python, folder, plans, array_path)
            for mode in plans:
                if "error" in v04:
                    results[variant][mode][V04] = dict(error=v04["error"])
                else:
                    results[variant][mode][V04] = v04["results"][mode]
            if "error" not in v04:
                info["v04"] = v04["versions"]
                info["v04_renderer"] = v04.get("renderer")
            else:
                info["v04_error"] = v04["error"]
    info["renderer"] = watch.renderer
    viewer.close()
    notes = [
        f"Load average at the start {info['load_start']}, at the end {load_average()}; the run "
        f"took {time.perf_counter() - wall0:.0f} s. CPU/wall is this process's CPU time (every "
        f"thread: decoders, read-ahead, llvmpipe's rasterizer) over the wall time of the timed "
        f"passes, pauses included; machine CPU/wall is the same for every process on the "
        f"machine (/proc/stat: the others are Xvfb and whatever else ran then); CPU ms/step is "
        f"the process CPU time from the step to the frame shown.",
        "What a step costs beside the read: napari's own slicing (events, validation, the mean "
        "projection of a one-plane slice), vispy's texture upload and draw, and Qt composing the "
        "window. The NumPy layer reads nothing: it is the floor, and a reader can only win the "
        "difference between its row and the floor. Read-ahead takes the read out of the step "
        "(see the read column), which is worth what the read was.",
        "Threads: the process's thread count at the end of each block (Qt, llvmpipe, the "
        "decoder pool, the read-ahead thread, h5py none).",
        "The draw is software OpenGL (llvmpipe) under Xvfb: on a machine with a GPU the paint "
        "part is smaller, so the reader's share of a step is larger than here.",
        "Passes of the in-process readers are interleaved (reader order rotated every pass); "
        "napari-split-dataset runs afterwards in its own process on the same X server.",
    ]
    if "v04" in info:
        v = info["v04"]
        notes.append(
            f"napari-split-dataset {v.get('napari-split-dataset')} with split_dataset "
            f"{v.get('split_dataset')}, flammkuchen {v.get('flammkuchen')}, tables "
            f"{v.get('tables')}, napari {v.get('napari')}, {v.get('qt')} in {args.v04_python} "
            f"(GL: {info.get('v04_renderer')}). Its layer: `viewer.open(folder, "
            f"plugin=\"napari-split-dataset\")`, the 0.4.x `SplitDataset` itself (each read "
            f"opens the block file through flammkuchen/PyTables; its `dtype` property reads a "
            f"pixel from the first file each time napari asks).")
    elif "v04_error" in info:
        notes.append(f"napari-split-dataset not run: {info['v04_error']}")
    return render(args.size, shape, results, info, notes)


if __name__ == "__main__":
    main()
