"""Writing an array as an OME-TIFF (tifffile): one page per plane, streamed in order with the
next region read in the background; physical sizes, time step, channel names in the OME-XML,
BigTIFF beyond what classic TIFF addresses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from . import regions as regions_
from .description import ImageDescription, describe_image

# The split-dataset metadata rides along in a comment annotation of this namespace.
METADATA_NAMESPACE = "split_dataset"
# Classic TIFF addresses 4 GiB; leave room for the tags and the OME-XML.
BIGTIFF_BYTES = 2**32 - 2**25
# OME-XML's unit symbols for NGFF's unit names.
UNIT_SYMBOLS = {
    "micrometer": "µm",
    "nanometer": "nm",
    "millimeter": "mm",
    "meter": "m",
    "angstrom": "Å",
    "second": "s",
    "millisecond": "ms",
}


def ome_metadata(description: ImageDescription) -> dict[str, Any]:
    """tifffile's ``metadata=`` for the OME-XML: axes, physical sizes where known (with
    units where known), the time increment, channel names, and the split-dataset metadata."""
    metadata: dict[str, Any] = {"axes": description.axes.upper()}
    known = description.metadata.resolution
    for a, letter in enumerate(description.axes):
        unit = description.units[a]
        if letter in "zyx" and known[a] is not None:
            metadata[f"PhysicalSize{letter.upper()}"] = description.scale[a]
            if unit in UNIT_SYMBOLS:
                metadata[f"PhysicalSize{letter.upper()}Unit"] = UNIT_SYMBOLS[unit]
        elif letter == "t" and (known[a] is not None or description.metadata.frequency):
            metadata["TimeIncrement"] = description.scale[a]
            if unit in UNIT_SYMBOLS:
                metadata["TimeIncrementUnit"] = UNIT_SYMBOLS[unit]
    if description.channel_names:
        metadata["Channel"] = {"Name": list(description.channel_names)}
    metadata["CommentAnnotation"] = {
        "Namespace": METADATA_NAMESPACE,
        "Value": json.dumps(description.metadata.to_json_dict()),
    }
    return metadata


def write_ome_tiff(
    data: Any,
    path: str | Path,
    *,
    compression: str | None = None,
    space_unit: str | None = None,
    threads: int | None = None,
    progress: bool = False,
    description: ImageDescription | None = None,
) -> ImageDescription:
    """Write ``data`` as an OME-TIFF at ``path``: planes in C order, one region in memory
    while the next is read (TIFF pages are written front to back, by one writer)."""
    import tifffile

    description = description or describe_image(data, space_unit)
    if set(description.axes) - set("tczyx"):
        raise ValueError(f"OME-TIFF takes axes t, c, z, y, x; this array has {description.axes}")
    shape = tuple(int(s) for s in data.shape)
    dtype = np.dtype(data.dtype)
    plane = (1,) * (len(shape) - 2) + shape[-2:]
    region = regions_.region_shape(shape, plane, dtype.itemsize)
    parts = regions_.regions(shape, region)

    def pages():
        for block in regions_.in_order(data, parts, threads, progress):
            yield from block.reshape((-1,) + shape[-2:])

    nbytes = int(np.prod(shape)) * dtype.itemsize
    with tifffile.TiffWriter(path, bigtiff=nbytes > BIGTIFF_BYTES, ome=True) as tiff:
        tiff.write(
            pages(),
            shape=shape,
            dtype=dtype,
            photometric="minisblack",
            compression=compression,
            metadata=ome_metadata(description),
        )
    return description
