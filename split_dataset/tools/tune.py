"""``split-dataset tune``: which writer settings suit a recording, measured on a sample of it.

For a small grid of settings (codec and level, inner chunk shape, frames per file) the sample
is written and read back; the table gives the write rate, the compression ratio and the read
latency of a plane, a volume and a pixel over time (page cache hot, selections rotated so that
no cache serves a repetition), and the settings that serve playback, bulk analysis and both.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..block_file import default_chunk_shape


@dataclass
class Setting:
    compression: Any
    level: int | None
    chunk: str  # "band" (the default row bands) or "plane"
    frames_per_file: int

    @property
    def label(self) -> str:
        codec = "none" if self.compression is None else self.compression
        level = "" if self.level is None else f" {self.level}"
        return f"{codec}{level}, {self.chunk} chunks, {self.frames_per_file}/file"


@dataclass
class Measurement:
    setting: Setting
    write_mb_s: float
    ratio: float
    plane_ms: float
    volume_ms: float
    pixel_ms: float


def settings_grid(n_frames: int, quick: bool = False) -> list[Setting]:
    codecs: list[tuple[Any, int | None]] = [
        ("blosc", 9),
        ("blosc:lz4", 5),
        ("blosc:zstd", 3),
        (None, None),
    ]
    chunks = ["band"] if quick else ["band", "plane"]
    per_file = sorted({1, min(10, n_frames)})
    return [Setting(c, lvl, ch, f) for c, lvl in codecs for ch in chunks for f in per_file]


def _chunk_shape(setting: Setting, frame_shape: tuple[int, ...], itemsize: int) -> tuple[int, ...]:
    block = (setting.frames_per_file,) + frame_shape
    if setting.chunk == "plane":
        return (1,) * (len(block) - 2) + block[-2:]
    return default_chunk_shape(block, itemsize)


def _median_ms(function, keys: list) -> float:
    times = []
    for key in keys:
        started = time.perf_counter()
        function(key)
        times.append(time.perf_counter() - started)
    return 1e3 * float(np.median(times))


def measure(sample: np.ndarray, setting: Setting, folder: Path, repeats: int = 15) -> Measurement:
    from ..dataset import SplitDataset
    from ..writer import save_to_split_dataset

    frame_shape = sample.shape[1:]
    started = time.perf_counter()
    written = save_to_split_dataset(
        sample,
        folder,
        block_size=(setting.frames_per_file,) + frame_shape,
        prefix="tuned",
        compression=setting.compression,
        compression_level=setting.level,
        chunk_shape=_chunk_shape(setting, frame_shape, sample.itemsize),
    )
    write_seconds = time.perf_counter() - started
    stored = sum(p.stat().st_size for p in written.root.glob("*.h5"))
    ds = SplitDataset(written.root)
    ds[...]  # page cache hot, files indexed
    rng = np.random.default_rng(0)
    t_count = sample.shape[0]
    planes = [
        (int(rng.integers(t_count)),) + tuple(int(rng.integers(s)) for s in frame_shape[:-2])
        for _ in range(repeats)
    ]
    volumes = [(int(rng.integers(t_count)),) for _ in range(repeats)]
    pixels = [
        (slice(None),) + tuple(int(rng.integers(s)) for s in frame_shape) for _ in range(repeats)
    ]
    result = Measurement(
        setting,
        write_mb_s=sample.nbytes / 1e6 / write_seconds,
        ratio=sample.nbytes / stored,
        plane_ms=_median_ms(ds.read, planes),
        volume_ms=_median_ms(ds.read, volumes),
        pixel_ms=_median_ms(ds.read, pixels),
    )
    ds.close()
    shutil.rmtree(written.root)
    return result


def recommend(results: list[Measurement]) -> dict[str, Measurement]:
    """Best sum of ranks: playback on plane latency, bulk on volume and pixel-over-time
    latency, both on all three; the compression ratio weighs as much as the speeds together."""

    def rank(values: list[float]) -> list[int]:
        order = np.argsort(values, kind="stable")
        ranks = np.empty(len(values), dtype=int)
        ranks[order] = np.arange(len(values))
        return ranks.tolist()

    plane = rank([r.plane_ms for r in results])
    volume = rank([r.volume_ms for r in results])
    pixel = rank([r.pixel_ms for r in results])
    ratio = rank([-r.ratio for r in results])
    best = lambda score: results[int(np.argmin(score))]  # noqa: E731
    # Disk space counts in every use: it decides how much fits and how fast cold reads are.
    return {
        "playback": best([p + q for p, q in zip(plane, ratio)]),
        "bulk analysis": best([v + x + 2 * q for v, x, q in zip(volume, pixel, ratio)]),
        "both": best([p + v + x + 3 * q for p, v, x, q in zip(plane, volume, pixel, ratio)]),
    }


def run_tune(source: Any, sample_frames: int | None = None, quick: bool = False) -> list[str]:
    """Measure the grid on the first frames of ``source``; return the report as lines."""
    frame_bytes = int(np.prod(source.shape[1:])) * np.dtype(source.dtype).itemsize
    if sample_frames is None:  # about 100 MB, at least 2 and at most 20 frames
        sample_frames = int(min(20, max(2, 100e6 // max(frame_bytes, 1))))
    sample = np.ascontiguousarray(source[: min(sample_frames, source.shape[0])])
    grid, seen = [], set()
    for setting in settings_grid(sample.shape[0], quick):  # drop settings that store the same
        chunks = (
            None
            if setting.compression is None
            else _chunk_shape(setting, sample.shape[1:], sample.itemsize)
        )
        key = (setting.compression, setting.level, chunks, setting.frames_per_file)
        if key not in seen:
            seen.add(key)
            grid.append(setting)
    lines = [
        f"sample: {sample.shape} {sample.dtype} ({sample.nbytes / 1e6:.0f} MB), "
        f"{len(grid)} settings; reads hot, median of 15 rotated selections",
        f"{'setting':<42} {'write MB/s':>10} {'ratio':>6} {'plane ms':>9} {'volume ms':>10} "
        f"{'pixel ms':>9}",
    ]
    results = []
    folder = Path(tempfile.mkdtemp(prefix="split_dataset_tune_"))
    try:
        for setting in grid:
            result = measure(sample, setting, folder)
            results.append(result)
            lines.append(
                f"{setting.label:<42} {result.write_mb_s:>10.0f} {result.ratio:>6.2f} "
                f"{result.plane_ms:>9.3f} {result.volume_ms:>10.2f} {result.pixel_ms:>9.3f}"
            )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    lines.append("")
    for use, result in recommend(results).items():
        lines.append(f"recommended for {use}: {result.setting.label}")
    return lines
