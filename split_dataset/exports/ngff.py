"""OME-Zarr (NGFF 0.5) image metadata: the ``ome`` attributes of an exported image, and the
split-dataset metadata read back from them (also from OME-Zarr images other tools wrote)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ..metadata import Origin, StackMetadata, parse_metadata
from .description import AXIS_TYPES, ImageDescription

NGFF_VERSION = "0.5"
# Beside ``ome`` in the group's attributes: the split-dataset metadata, verbatim, for what
# NGFF cannot say (an unknown step, a crop's source and stride, the user's own keys).
METADATA_KEY = "split_dataset"
# NGFF's units (UDUNITS-2 names) that are times, in seconds.
TIME_UNITS = {
    "second": 1.0,
    "millisecond": 1e-3,
    "microsecond": 1e-6,
    "minute": 60.0,
    "hour": 3600.0,
}
# Colours for channels named after them (hex RGB, as OMERO writes them), else in turn.
COLOURS = {
    "green": "00FF00",
    "red": "FF0000",
    "blue": "0000FF",
    "magenta": "FF00FF",
    "cyan": "00FFFF",
    "yellow": "FFFF00",
    "gray": "FFFFFF",
    "grey": "FFFFFF",
}
_COLOUR_CYCLE = ("00FF00", "FF00FF", "00FFFF", "FFFF00", "FF0000", "0000FF")


def level_transforms(
    description: ImageDescription, level: int, downsampled: tuple[int, ...]
) -> list[dict[str, Any]]:
    """``coordinateTransformations`` of pyramid level ``level``: the steps times 2**level along
    the ``downsampled`` axes, and the level's element 0 placed at the centre of the elements
    it averages (so levels overlay in a viewer), after a crop's translation."""
    factor = [2**level if a in downsampled else 1 for a in range(len(description.axes))]
    scale = [s * f for s, f in zip(description.scale, factor)]
    offset = list(description.translation or (0.0,) * len(scale))
    offset = [t + (f - 1) / 2 * s for t, f, s in zip(offset, factor, description.scale)]
    transforms: list[dict[str, Any]] = [{"type": "scale", "scale": scale}]
    if description.translation is not None or level > 0:
        transforms.append({"type": "translation", "translation": offset})
    return transforms


def image_attributes(
    description: ImageDescription,
    levels: int,
    downsampled: tuple[int, ...],
    dtype_range: tuple[float, float],
    name: str,
) -> dict[str, Any]:
    """The group's attributes: ``ome`` (multiscales with axes and transforms per level, and
    ``omero`` channels when there is a channel axis) and the split-dataset metadata."""
    axes = []
    for letter, unit in zip(description.axes, description.units):
        axis: dict[str, Any] = {"name": letter}
        if letter in AXIS_TYPES:
            axis["type"] = AXIS_TYPES[letter]
        if unit is not None:
            axis["unit"] = unit
        axes.append(axis)
    multiscale: dict[str, Any] = {
        "name": name,
        "axes": axes,
        "datasets": [
            {
                "path": str(level),
                "coordinateTransformations": level_transforms(description, level, downsampled),
            }
            for level in range(levels)
        ],
    }
    if levels > 1:
        multiscale["type"] = "mean"
        multiscale["metadata"] = {
            "description": f"2x mean downsampling along axes {list(downsampled)}",
            "method": "split_dataset.export",
        }
    ome: dict[str, Any] = {"version": NGFF_VERSION, "multiscales": [multiscale]}
    if description.channel_axis is not None:
        ome["omero"] = {"channels": channels(description, dtype_range)}
    return {"ome": ome, METADATA_KEY: description.metadata.to_json_dict()}


def channels(description: ImageDescription, dtype_range: tuple[float, float]) -> list[dict]:
    count = description.metadata.shape_full[description.channel_axis or 0]
    names = description.channel_names or tuple(str(c) for c in range(count))
    low, high = dtype_range
    return [
        {
            "label": label,
            "color": COLOURS.get(label.lower(), _COLOUR_CYCLE[c % len(_COLOUR_CYCLE)]),
            "active": True,
            "window": {"min": low, "max": high, "start": low, "end": high},
        }
        for c, label in enumerate(names)
    ]


def read_image_attributes(
    attributes: dict[str, Any], shape: tuple[int, ...], chunks: tuple[int, ...], source: str
) -> tuple[StackMetadata, str, tuple[str, ...] | None]:
    """The split-dataset metadata of level 0 of an OME-Zarr image, its array's path, and the
    channel names. The metadata this package wrote beside ``ome`` is taken as it is; other
    tools' images are read from the NGFF metadata alone: axis names as the axis order when
    they are single letters, steps from the scale, the frequency from a time axis in a time
    unit, a translation in whole steps as the crop's origin."""
    ome = attributes.get("ome", attributes)  # NGFF 0.4 keeps ``multiscales`` at the top
    multiscales = ome.get("multiscales")
    if not multiscales:
        raise ValueError(f"{source}: not an OME-Zarr image (no 'multiscales' in its metadata)")
    multiscale = multiscales[0]
    dataset = multiscale["datasets"][0]
    omero = ome.get("omero") or {}
    names = tuple(str(c.get("label", i)) for i, c in enumerate(omero.get("channels", [])))
    own = attributes.get(METADATA_KEY)
    if isinstance(own, dict) and tuple(own.get("shape_full", ())) == tuple(shape):
        return parse_metadata(own, Path(source)), dataset["path"], names or None
    axes = multiscale["axes"]
    letters = [str(a["name"] if isinstance(a, dict) else a) for a in axes]
    scale, translation = _transforms(dataset.get("coordinateTransformations", []), len(shape))
    resolution: list[float | None] = list(scale)
    frequency = None
    if axes and isinstance(axes[0], dict) and axes[0].get("unit") in TIME_UNITS:
        seconds = scale[0] * TIME_UNITS[axes[0]["unit"]]
        frequency = 1.0 / seconds if seconds else None
    origin = None
    if translation is not None and any(translation):
        steps = [t / s if s else math.nan for t, s in zip(translation, scale)]
        if all(math.isfinite(v) and abs(v - round(v)) < 1e-6 for v in steps):
            ndim = len(shape)
            origin = Origin(None, tuple(round(v) for v in steps), (1,) * ndim)
    order = "".join(letters)
    metadata = StackMetadata(
        shape_full=tuple(shape),
        shape_block=tuple(chunks),
        padding=(0,) * len(shape),
        resolution=tuple(resolution),
        axis_order=order if all(len(n) == 1 for n in letters) else None,
        frequency=frequency,
        files=None,
        crop_start=(0,) * len(shape),
        crop_end=(0,) * len(shape),
        extra={"channels": list(names)} if names and "c" in letters else {},
        origin=origin,
    )
    return metadata, dataset["path"], names or None


def _transforms(
    transforms: list[dict[str, Any]], ndim: int
) -> tuple[tuple[float, ...], tuple[float, ...] | None]:
    scale: tuple[float, ...] = (1.0,) * ndim
    translation = None
    for transform in transforms:
        if transform.get("type") == "scale":
            scale = tuple(float(s) for s in transform["scale"])
        elif transform.get("type") == "translation":
            translation = tuple(float(t) for t in transform["translation"])
    return scale, translation
