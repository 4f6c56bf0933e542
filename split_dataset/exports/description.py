"""What an exported image says about itself: the split-dataset metadata of the array being
exported (a dataset, a view, a stack of channels or a plain array), and from it the axes, the
physical steps and units, a crop's placement and the channel names that OME formats record."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..metadata import Origin, StackMetadata

# What the metadata's axis letters mean in OME (NGFF axis types, OME-XML dimensions).
AXIS_TYPES = {"t": "time", "c": "channel", "z": "space", "y": "space", "x": "space"}
# The package's reading of an array without an axis order: time first, the plane last.
DEFAULT_ORDERS = {2: "yx", 3: "zyx", 4: "tzyx", 5: "tczyx"}
TIME_UNIT = "second"  # ``frequency`` is time points per second


@dataclass(frozen=True)
class ImageDescription:
    """The OME view of an exported array. ``axes``: one letter per axis (from the metadata's
    ``axis_order``, else ``DEFAULT_ORDERS``); ``scale``: the physical step per axis, 1.0 where
    unknown; ``units``: per axis, None where unknown; ``translation``: where element 0 lies in
    the recording a crop was cut from (None for a whole recording); ``metadata``: the
    split-dataset metadata itself, kept beside the OME metadata so a round trip loses nothing."""

    axes: str
    scale: tuple[float, ...]
    units: tuple[str | None, ...]
    translation: tuple[float, ...] | None
    channel_names: tuple[str, ...] | None
    metadata: StackMetadata

    @property
    def channel_axis(self) -> int | None:
        return self.axes.index("c") if "c" in self.axes else None


def stack_metadata(data: Any) -> StackMetadata:
    """The split-dataset metadata of ``data``: its own for a dataset or a view; a channel
    axis inserted for a stack of channels; nothing known for any other array."""
    metadata = getattr(data, "metadata", None)
    if isinstance(metadata, StackMetadata):
        # the shape the data has (a stopped recording's metadata announces more); the list
        # of block files means nothing outside the dataset
        return replace(metadata, shape_full=tuple(data.shape), files=None)
    datasets = getattr(data, "datasets", None)
    axis = getattr(data, "axis", None)
    if datasets and isinstance(axis, int):  # a ChannelStack
        inner = datasets[0].metadata

        def inserted(values: tuple, value: Any) -> tuple:
            return values[:axis] + (value,) + values[axis:]

        order = inner.axis_order
        return replace(
            inner,
            shape_full=tuple(data.shape),
            shape_block=inserted(inner.shape_block, 1),
            padding=inserted(inner.padding, 0),
            resolution=inserted(inner.resolution, None),
            axis_order=None if order is None else order[:axis] + "c" + order[axis:],
            frequency=inner.frequency if axis > 0 else None,
            files=None,
            crop_start=inserted(inner.crop_start, 0),
            crop_end=inserted(inner.crop_end, 0),
            origin=None if inner.origin is None else _with_channel_axis(inner.origin, axis),
            extra=dict(inner.extra, channels=list(data.names)),
        )
    shape = tuple(int(s) for s in np.shape(data))
    zeros = (0,) * len(shape)
    return StackMetadata(
        shape_full=shape,
        shape_block=tuple(getattr(data, "chunks", None) or shape),
        padding=zeros,
        resolution=(None,) * len(shape),
        axis_order=None,
        frequency=None,
        files=None,
        crop_start=zeros,
        crop_end=zeros,
        dtype=np.dtype(data.dtype).str,
    )


def _with_channel_axis(origin: Origin, axis: int) -> Origin:
    """An origin of the channels' axes, with the channel axis kept whole (start 0, step 1)."""
    kept = [a for a, step in enumerate(origin.step) if step != 0]
    position = kept[axis] if axis < len(kept) else len(origin.step)
    return Origin(
        origin.path,
        origin.start[:position] + (0,) + origin.start[position:],
        origin.step[:position] + (1,) + origin.step[position:],
        None,  # the recording's shape has no channel axis
    )


def axis_names(metadata: StackMetadata) -> str:
    """One letter per axis: the metadata's order when it names each axis once, else the
    package's default reading; an OME image has 2 to 5 axes."""
    ndim = metadata.ndim
    order = metadata.axis_order
    if order is not None and len(set(order)) == ndim:
        return order
    channels = metadata.extra.get("channels")
    if order is None and channels and ndim - 1 in DEFAULT_ORDERS and ndim <= 5:
        # a stack of channels without an order: the channel axis after time, as stacked
        default = DEFAULT_ORDERS[ndim - 1]
        return default[:1] + "c" + default[1:] if default[0] == "t" else "c" + default
    if ndim not in DEFAULT_ORDERS:
        raise ValueError(f"OME images have 2 to 5 axes; this array has {ndim}")
    return DEFAULT_ORDERS[ndim]


def describe_image(data: Any, space_unit: str | None = None) -> ImageDescription:
    """The OME description of ``data``. ``space_unit`` (e.g. ``"micrometer"``): the unit of
    the resolution, which split datasets do not record; time is in seconds when the frequency
    is known."""
    metadata = stack_metadata(data)
    axes = axis_names(metadata)
    scale = [1.0 if step is None else abs(float(step)) for step in metadata.resolution]
    units: list[str | None] = [
        space_unit if AXIS_TYPES.get(a) == "space" and metadata.resolution[i] else None
        for i, a in enumerate(axes)
    ]
    if metadata.frequency and scale:  # time points per second along the first axis
        scale[0] = 1.0 / metadata.frequency
        units[0] = TIME_UNIT
    channels = metadata.extra.get("channels")
    channel_names = None
    if "c" in axes and isinstance(channels, list):
        channel_names = tuple(str(name) for name in channels)
    return ImageDescription(
        axes=axes,
        scale=tuple(scale),
        units=tuple(units),
        translation=_translation(metadata.origin, tuple(scale)),
        channel_names=channel_names,
        metadata=metadata,
    )


def _translation(origin: Origin | None, scale: tuple[float, ...]) -> tuple[float, ...] | None:
    """Where a crop's element 0 lies in its recording, in physical units: its start times the
    recording's step (the crop's step over its stride)."""
    if origin is None:
        return None
    placed = [(start, step) for start, step in zip(origin.start, origin.step) if step != 0]
    if len(placed) != len(scale):
        return None
    return tuple(start * s / abs(step) for (start, step), s in zip(placed, scale))
