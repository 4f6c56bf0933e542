"""Writing an array as an OME-Zarr image (NGFF 0.5, zarr v3): blosc/zstd chunks written in
parallel, region by region, with an optional pyramid of 2x downsampled planes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from . import regions as regions_
from .description import AXIS_TYPES, ImageDescription, describe_image
from .ngff import image_attributes
from .pyramid import downsample, level_shape
from .zarr_chunks import ChunkFiles, direct_layout

# A plane chunk larger than this is cut into tiles of ``TILE`` (viewers load whole chunks).
PLANE_CHUNK_BYTES = 4 * 2**20
TILE = 1024


def chunk_shape(
    shape: tuple[int, ...], itemsize: int, chunks: Any, blocks: tuple[int, ...]
) -> tuple[int, ...]:
    """``"planes"``: one plane of the last two axes per chunk (tiled when large), what a
    viewer stepping through time and depth reads; ``"blocks"``: the source's blocks; or a
    shape."""
    if isinstance(chunks, str):
        if chunks == "blocks":
            return tuple(max(1, min(b, s)) for b, s in zip(blocks, shape))
        if chunks != "planes":
            raise ValueError(f"chunks must be 'planes', 'blocks' or a shape, got {chunks!r}")
        plane = [max(1, s) for s in shape[-2:]]
        if int(np.prod(plane)) * itemsize > PLANE_CHUNK_BYTES:
            plane = [min(s, TILE) for s in plane]
        return (1,) * (len(shape) - 2) + tuple(plane)
    given = tuple(int(c) for c in chunks)
    if len(given) != len(shape) or any(c < 1 for c in given):
        raise ValueError(f"chunks {given} do not fit an array of shape {shape}")
    return tuple(min(c, max(1, s)) for c, s in zip(given, shape))


def plane_axes(axes: str) -> tuple[int, ...]:
    """The axes a pyramid halves: the last two spatial ones (y and x)."""
    space = [a for a, letter in enumerate(axes) if AXIS_TYPES.get(letter) == "space"]
    return tuple(space[-2:])


def dtype_range(dtype: np.dtype) -> tuple[float, float]:
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return float(info.min), float(info.max)
    return 0.0, 1.0


def write_ome_zarr(
    data: Any,
    path: str | Path,
    *,
    chunks: Any = "planes",
    pyramid: int = 0,
    compression_level: int = 1,
    space_unit: str | None = None,
    threads: int | None = None,
    progress: bool = False,
    description: ImageDescription | None = None,
    name: str | None = None,
) -> ImageDescription:
    """Write ``data`` as an OME-Zarr image at ``path`` (which must not exist), named ``name``
    (default: the file name without its suffixes): level 0 and
    ``pyramid`` levels of 2x mean downsampling along y and x, written in one pass: each worker
    reads a region and writes it and its downsampled versions (regions are aligned to every
    level's chunks, so no two workers touch one chunk)."""
    import zarr
    from zarr.codecs import BloscCodec, BloscShuffle

    description = description or describe_image(data, space_unit)
    shape = tuple(int(s) for s in data.shape)
    dtype = np.dtype(data.dtype)
    base = chunk_shape(shape, dtype.itemsize, chunks, description.metadata.shape_block)
    halved = plane_axes(description.axes) if pyramid else ()
    levels = 1 + int(pyramid)
    attributes = image_attributes(
        description, levels, halved, dtype_range(dtype), name or Path(path).name.split(".")[0]
    )
    group = zarr.create_group(store=str(path), zarr_format=3, attributes=attributes)
    compressor = BloscCodec(cname="zstd", clevel=compression_level, shuffle=BloscShuffle.shuffle)
    arrays = []
    for level in range(levels):
        level_dims = level_shape(shape, halved, level)
        arrays.append(
            group.create_array(
                name=str(level),
                shape=level_dims,
                chunks=tuple(min(c, max(1, s)) for c, s in zip(base, level_dims)),
                dtype=dtype,
                compressors=compressor,
                fill_value=0,
                dimension_names=list(description.axes),
                chunk_key_encoding={"name": "default", "separator": "/"},
            )
        )
    stores: list[Any] = [
        ChunkFiles(Path(path) / str(level), array) if direct_layout(array) else array
        for level, array in enumerate(arrays)
    ]
    # regions start where every level's chunks start: multiples of chunk * 2**(levels - 1)
    aligned = tuple(c * 2 ** (levels - 1) if a in halved else c for a, c in enumerate(base))
    region = regions_.region_shape(shape, aligned, dtype.itemsize)

    def store(level: int, part: regions_.Region, block: np.ndarray) -> None:
        target = stores[level]
        if isinstance(target, ChunkFiles):
            target.write(tuple(p.start for p in part), block)
        else:
            target[part] = block

    def write(part: regions_.Region, block: np.ndarray) -> None:
        store(0, part, block)
        for level in range(1, levels):
            block = downsample(block, halved)
            part = tuple(
                slice(p.start // 2, p.start // 2 + block.shape[a]) if a in halved else p
                for a, p in enumerate(part)
            )
            store(level, part, block)

    regions_.stream(data, regions_.regions(shape, region), write, threads, progress, "OME-Zarr")
    return description
