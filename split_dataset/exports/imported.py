"""Images read back from OME-Zarr and OME-TIFF with their split-dataset metadata (resolution,
frequency, axis order, a crop's origin, channel names), as arrays to convert or save."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ElementTree
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ..array_like import ArrayLike
from ..metadata import StackMetadata, parse_metadata
from .description import axis_names
from .ngff import read_image_attributes
from .ome_tiff import METADATA_NAMESPACE


class ImportedImage(ArrayLike):
    """An OME image's array (a zarr array or a TIFF series, read lazily) with the metadata a
    split dataset keeps: ``metadata``, ``shape_block``, ``resolution``, ``frequency``,
    ``axis_order``, ``origin``, ``channel_names``; ``channel(i)`` is one channel of it."""

    def __init__(
        self,
        array: Any,
        metadata: StackMetadata,
        channel_names: tuple[str, ...] | None = None,
        fixed: tuple[int, int] | None = None,
        path: Path | None = None,
    ) -> None:
        self.path = path  # the file or folder read (never written over by an export)
        self._array = array
        self.metadata = metadata
        self.channel_names = channel_names
        self._fixed = fixed  # (axis, index): one channel of a multichannel array

    @property
    def shape(self) -> tuple[int, ...]:
        return self.metadata.shape_full

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self._array.dtype)

    @property
    def shape_block(self) -> tuple[int, ...]:
        return self.metadata.shape_block

    @property
    def resolution(self) -> tuple[float | None, ...]:
        return self.metadata.resolution

    @property
    def frequency(self) -> float | None:
        return self.metadata.frequency

    @property
    def axis_order(self) -> str | None:
        return self.metadata.axis_order

    @property
    def origin(self):
        return self.metadata.origin

    @property
    def channel_axis(self) -> int | None:
        """The axis of the channels, when the metadata says which (``c`` in the axis order, or
        the channel names of a recording exported without an axis order)."""
        order = self.metadata.axis_order
        if self._fixed is not None:
            return None
        if order and "c" in order:
            return order.index("c")
        if self.metadata.extra.get("channels"):
            return axis_names(self.metadata).index("c")
        return None

    def read(
        self, key: Any = (), out: np.ndarray | None = None, threads: int | None = None
    ) -> np.ndarray:
        """``image[key]`` for integers, slices and Ellipsis (what exports and saves read)."""
        items = list(key) if isinstance(key, tuple) else [key]
        if any(i is Ellipsis for i in items):
            at = next(n for n, i in enumerate(items) if i is Ellipsis)
            items[at : at + 1] = [slice(None)] * (self.ndim - len(items) + 1)
        items += [slice(None)] * (self.ndim - len(items))
        if self._fixed is not None:
            items.insert(self._fixed[0], self._fixed[1])
        data = np.asarray(self._array[tuple(items)])
        if out is None:
            return data
        out[...] = data
        return out

    def channel(self, index: int) -> ImportedImage:
        """Channel ``index`` alone: the channel axis dropped from the array and metadata."""
        axis = self.channel_axis
        if axis is None:
            raise ValueError("this image has no channel axis")
        metadata = self.metadata

        def dropped(values: tuple) -> tuple:
            return values[:axis] + values[axis + 1 :]

        order = metadata.axis_order
        origin = metadata.origin
        if origin is not None:  # drop the recording's axis that is the channel axis here
            at = [a for a, step in enumerate(origin.step) if step != 0][axis]
            origin = replace(
                origin,
                start=origin.start[:at] + origin.start[at + 1 :],
                step=origin.step[:at] + origin.step[at + 1 :],
                shape=None,
            )
        channel = replace(
            metadata,
            shape_full=dropped(metadata.shape_full),
            shape_block=dropped(metadata.shape_block),
            padding=dropped(metadata.padding),
            resolution=dropped(metadata.resolution),
            axis_order=None if order is None else order[:axis] + order[axis + 1 :],
            crop_start=dropped(metadata.crop_start),
            crop_end=dropped(metadata.crop_end),
            origin=origin,
            extra={k: v for k, v in metadata.extra.items() if k != "channels"},
        )
        return ImportedImage(self._array, channel, None, (axis, index), self.path)

    def channels(self) -> dict[str, ImportedImage]:
        """Each channel by name (its label, else its index)."""
        axis = self.channel_axis
        count = 0 if axis is None else self.shape[axis]
        names = self.channel_names or tuple(str(c) for c in range(count))
        return {name: self.channel(c) for c, name in enumerate(names[:count])}


def read_ome_zarr(path: str | Path) -> ImportedImage:
    """The full-resolution level of an OME-Zarr image (NGFF 0.4 or 0.5), with its metadata."""
    import zarr

    group = zarr.open_group(str(path), mode="r")
    attributes: dict[str, Any] = dict(group.attrs)
    first = attributes.get("ome", attributes).get("multiscales", [{}])[0]
    array: Any = group[str(first.get("datasets", [{}])[0].get("path", "0"))]
    chunks = array.shards or array.chunks
    metadata, _, names = read_image_attributes(
        attributes, tuple(array.shape), tuple(chunks), str(path)
    )
    return ImportedImage(array, metadata, names, path=Path(path))


def read_ome_tiff(path: str | Path) -> ImportedImage:
    """The first series of an OME-TIFF (memory-mapped when uncompressed), with its metadata:
    the split-dataset metadata this package wrote, else what the OME-XML says."""
    import tifffile

    with tifffile.TiffFile(path) as tiff:
        series = tiff.series[0]
        axes = series.axes.lower()
        shape = tuple(series.shape)
        xml = tiff.ome_metadata
    try:
        array: Any = tifffile.memmap(path, mode="r")
    except ValueError:  # compressed or tiled: decode through tifffile's zarr store
        import zarr

        array = zarr.open(tifffile.imread(path, aszarr=True), mode="r")
    metadata, names = _ome_xml_metadata(xml or "", axes, shape, str(path))
    if metadata.shape_full != shape:  # tifffile leaves out axes of length 1
        if not isinstance(array, np.ndarray):  # a compressed TIFF: decoded whole (rare)
            array = np.asarray(array[...])
        array = array.reshape(metadata.shape_full)
    return ImportedImage(array, metadata, names, path=Path(path))


_OME = "{http://www.openmicroscopy.org/Schemas/OME/2016-06}"
_SECONDS = {"s": 1.0, "ms": 1e-3, "µs": 1e-6, "min": 60.0, "h": 3600.0}


def _ome_xml_metadata(
    xml: str, axes: str, shape: tuple[int, ...], source: str
) -> tuple[StackMetadata, tuple[str, ...] | None]:
    root = ElementTree.fromstring(xml) if xml else None
    pixels = None if root is None else root.find(f".//{_OME}Pixels")
    names: tuple[str, ...] | None = None
    if pixels is not None:
        channels = [c.get("Name") for c in pixels.findall(f"{_OME}Channel")]
        names = tuple(str(n) for n in channels) if channels and all(channels) else None
    if root is not None:
        for comment in root.iter(f"{_OME}CommentAnnotation"):
            value = comment.find(f"{_OME}Value")
            if comment.get("Namespace") == METADATA_NAMESPACE and value is not None:
                own = json.loads(value.text or "{}")
                written = tuple(own.get("shape_full", ()))
                if tuple(n for n in written if n != 1) == tuple(n for n in shape if n != 1):
                    return parse_metadata(own, Path(source)), names
    resolution: list[float | None] = [None] * len(shape)
    frequency = None
    attributes = {} if pixels is None else pixels.attrib
    for a, letter in enumerate(axes):
        if letter in "zyx" and f"PhysicalSize{letter.upper()}" in attributes:
            resolution[a] = float(attributes[f"PhysicalSize{letter.upper()}"])
        elif letter == "t" and "TimeIncrement" in attributes:
            step = resolution[a] = float(attributes["TimeIncrement"])
            unit = attributes.get("TimeIncrementUnit", "s")
            if unit in _SECONDS and step:
                frequency = 1.0 / (step * _SECONDS[unit])
    zeros = (0,) * len(shape)
    order = axes if set(axes) <= set("tczyx") else None
    metadata = StackMetadata(
        shape_full=shape,
        shape_block=(1,) * (len(shape) - 2) + shape[-2:],
        padding=zeros,
        resolution=tuple(resolution),
        axis_order=order,
        frequency=frequency,
        files=None,
        crop_start=zeros,
        crop_end=zeros,
        extra={"channels": list(names)} if names and order and "c" in order else {},
    )
    return metadata, names


__all__ = ["ImportedImage", "read_ome_tiff", "read_ome_zarr"]
