"""The npe2 reader: which paths are ours, and the layers a recording opens as.

Claimed: a folder holding a split dataset (with ``stack_metadata.json``, or the legacy layout
whose metadata is inside the last block file), a folder of channel subfolders that are split
datasets, and a ``*stack_metadata.json`` file. Declined (so other readers keep them): anything
else, lone ``.h5`` files included.

Each channel becomes one lazy image layer (never a full load): physical scale from the
resolution (the time step from the frequency), axis labels from ``axis_order``, colormaps and
additive blending for channels, contrast limits from a few sampled planes. What was odd about
the recording (stopped early, legacy layout, interrupted write...) is shown as a notification.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..channels import channel_folders, open_recording
from ..dataset import SplitDataset
from ..discovery import find_metadata_file, numbered_block_files
from ..errors import SplitDatasetError
from ..metadata import METADATA_SUFFIX
from .playback import ReadAheadArray

CHANNEL_COLORMAPS = {
    "green": "green",
    "gfp": "green",
    "red": "magenta",
    "rfp": "magenta",
    "blue": "cyan",
    "far_red": "yellow",
}
FALLBACK_COLORMAPS = ("green", "magenta", "cyan", "yellow", "gray")
SAMPLED_PLANES = 3  # contrast limits come from this many planes, never whole volumes
SAMPLE_PIXELS = 256  # ...each subsampled to about this many pixels a side


def recording_folder(path: Path) -> Path | None:
    """The folder to open for ``path``, or None if the path is not ours."""
    if path.is_file():
        return path.parent if path.name.endswith(METADATA_SUFFIX) else None
    if not path.is_dir():
        return None
    try:
        if find_metadata_file(path) is not None or channel_folders(path):
            return path
        if numbered_block_files(path):  # the legacy layout: its metadata is in the last file
            from ..discovery import discover

            discover(path)
            return path
    except SplitDatasetError:
        return None
    return None


def get_reader(path: str | list[str]) -> Callable[[Any], list[tuple]] | None:
    """npe2's hook: a reader for a recording folder or its JSON, else None."""
    if isinstance(path, list):
        if len(path) != 1:
            return None
        path = path[0]
    folder = recording_folder(Path(path))
    return None if folder is None else read_recording


def read_recording(path: str | list[str]) -> list[tuple]:
    """The layers of a recording: ``(data, options, "image")`` per channel."""
    if isinstance(path, list):
        path = path[0]
    folder = recording_folder(Path(path)) or Path(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        recording = open_recording(folder)
    notes = [str(w.message) for w in caught]
    channels = list(recording.items())
    layers = []
    for index, (name, dataset) in enumerate(channels):
        if dataset.legacy:
            notes.append(f"{dataset.root}: legacy layout (metadata inside the last block file)")
        options = layer_options(dataset, name if len(channels) > 1 else None, index, folder)
        layers.append((ReadAheadArray(dataset), options, "image"))
    _notify(notes)
    return layers


def layer_options(dataset: SplitDataset, channel: str | None, index: int, folder: Path) -> dict:
    options: dict[str, Any] = {
        "name": folder.name if channel is None else f"{folder.name} {channel}",
        "scale": physical_scale(dataset),
        "metadata": {"split_dataset": str(dataset.root), "shape": dataset.shape},
        "multiscale": False,
    }
    if dataset.axis_order is not None:
        options["axis_labels"] = tuple(dataset.axis_order)
    if channel is not None:
        options["colormap"] = CHANNEL_COLORMAPS.get(
            channel.lower(), FALLBACK_COLORMAPS[index % len(FALLBACK_COLORMAPS)]
        )
        options["blending"] = "additive"
    limits = contrast_limits(dataset)
    if limits is not None:
        options["contrast_limits"] = limits
    return options


def physical_scale(dataset: SplitDataset) -> tuple[float, ...]:
    """Per axis: the resolution, the time step (1 / frequency) on the first axis, else 1."""
    scale = [1.0 if step is None else abs(float(step)) for step in dataset.resolution]
    if scale and dataset.frequency:
        scale[0] = 1.0 / dataset.frequency
    return tuple(scale)


def contrast_limits(dataset: SplitDataset) -> tuple[float, float] | None:
    """Low and high percentiles of a few subsampled planes spread over time (never whole
    volumes: opening must stay quick whatever the recording's size)."""
    if dataset.ndim < 2 or dataset.size == 0 or not dataset.has_stack:
        return None
    leading = dataset.shape[:-2]
    times = (
        sorted({int(t) for t in np.linspace(0, leading[0] - 1, SAMPLED_PLANES)})
        if leading
        else [None]
    )
    middle = tuple(size // 2 for size in leading[1:])
    step_y = max(1, dataset.shape[-2] // SAMPLE_PIXELS)
    step_x = max(1, dataset.shape[-1] // SAMPLE_PIXELS)
    samples = []
    for t in times:
        index = ((t,) if t is not None else ()) + middle
        samples.append(dataset.read(index + (slice(None, None, step_y), slice(None, None, step_x))))
    values = np.concatenate([s.ravel() for s in samples]).astype(np.float64)
    values = values[np.isfinite(values)]
    if not values.size:
        return None
    low, high = np.percentile(values, [0.5, 99.9])
    if high <= low:
        high = low + 1.0
    return float(low), float(high)


def _notify(notes: list[str]) -> None:
    if not notes:
        return
    try:
        from napari.utils.notifications import show_warning
    except ImportError:  # opened without napari (tests, scripts)
        return
    for note in notes:
        show_warning(note)
