"""Chunk checksums: a CRC-32 of every stored chunk, recorded by our writers, checked on request.

Blosc1 chunks carry no checksum, so no reader of the format can tell a chunk whose bytes rotted
from a good one: the values simply come out wrong. Our writers therefore record, in attributes
of the block file's stack dataset (which every other reader ignores), the CRC-32 of each chunk's
stored bytes, and where the block sits in the whole array. ``verify`` always checks them, reads
do with ``SplitDataset(..., verify_checksums=True)``; blocks written by other tools have none.

Attributes are limited to 64 KiB each, so the CRCs are split over ``split_dataset_crc32_0``,
``split_dataset_crc32_1``...; ``split_dataset_crc32_chunk`` is the chunk shape they are over
(for contiguous data: the reader's virtual chunks, see ``file_layout.virtual_chunk_shape``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ._ext import _chunk_reader
from .chunk_ranges import chunk_byte_ranges

CRC_PREFIX = "split_dataset_crc32_"
CRC_CHUNK_SHAPE = "split_dataset_crc32_chunk"
BLOCK_START = "split_dataset_block_start"
CRCS_PER_ATTRIBUTE = 15_000  # 60 KB of uint32: under HDF5's 64 KiB per attribute
UNKNOWN = -1  # a chunk without a recorded checksum


def crc32(data: Any) -> int:
    """CRC-32 (zlib's polynomial) of a contiguous bytes-like, by zlib-ng as the reader checks
    it: ten times Python's zlib here, and without the GIL, so writers hash in parallel."""
    return _chunk_reader.crc32(memoryview(data).cast("B"))


def record(
    dataset: Any,
    chunk_shape: Sequence[int],
    crcs: Sequence[int] | np.ndarray,
    block_start: Sequence[int] | None = None,
) -> None:
    """Write the CRCs (C order over the chunk grid) and the block's start as attributes."""
    values = np.asarray(crcs, dtype=np.uint32)
    attributes = dataset.attrs
    attributes[CRC_CHUNK_SHAPE] = np.asarray(chunk_shape, dtype=np.int64)
    for part, first in enumerate(range(0, max(len(values), 1), CRCS_PER_ATTRIBUTE)):
        attributes[f"{CRC_PREFIX}{part}"] = values[first : first + CRCS_PER_ATTRIBUTE]
    if block_start is not None:
        attributes[BLOCK_START] = np.asarray(block_start, dtype=np.int64)


def _attribute(dataset: Any, name: str) -> np.ndarray | None:
    """The attribute ``name`` of an h5py dataset as an array, or None if it has none.

    Read through h5py's low-level API: ``dataset.attrs`` cost 35 us an attribute, and every
    block file's opening reads three (a tenth of opening a small block file)."""
    import h5py

    key = name.encode()
    if not h5py.h5a.exists(dataset.id, key):
        return None
    attribute = h5py.h5a.open(dataset.id, key)
    shape, dtype = attribute.shape, attribute.dtype
    if shape is None or dtype.kind not in "biuf":  # not what our writers write: as h5py reads it
        return np.asarray(dataset.attrs[name])
    values = np.empty(shape, dtype=dtype)
    attribute.read(values)
    return values


def recorded_chunk_shape(dataset: Any) -> tuple[int, ...] | None:
    """The chunk shape the recorded CRCs are over, if any (unchecked: as the file says)."""
    values = _attribute(dataset, CRC_CHUNK_SHAPE)
    if values is None:
        return None
    try:
        return tuple(int(c) for c in values.reshape(-1))
    except (TypeError, ValueError, OverflowError):
        return None


def load(
    dataset: Any,
    chunk_shape: Sequence[int],
    n_chunks: int,
    recorded: tuple[int, ...] | None,
) -> np.ndarray | None:
    """The recorded CRCs as int64 (``UNKNOWN`` for none), or None if the file has none that
    fit this chunk grid (written by another tool, or rewritten since). ``recorded``: the
    dataset's ``recorded_chunk_shape``, read once by the caller."""
    if recorded != tuple(int(c) for c in chunk_shape):
        return None
    parts = []
    for part in range(-(-n_chunks // CRCS_PER_ATTRIBUTE)):
        values = _attribute(dataset, f"{CRC_PREFIX}{part}")
        if values is None:
            return None
        parts.append(np.asarray(values, dtype=np.int64).reshape(-1))
    values = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    return values if values.shape[0] == n_chunks else None


def load_block_start(dataset: Any) -> tuple[int, ...] | None:
    """Where the writer put this block in the whole array, if it said."""
    values = _attribute(dataset, BLOCK_START)
    return None if values is None else tuple(int(v) for v in values.reshape(-1))


def contiguous_crcs(block: np.ndarray, chunk_shape: Sequence[int]) -> list[int]:
    """CRCs of an uncompressed C-order block, one per (virtual) chunk of ``chunk_shape``.

    Virtual chunks are whole along all axes but one (``virtual_chunk_shape``), so each one is
    a contiguous byte range of the block: its bytes are hashed in place.
    """
    flat = np.ascontiguousarray(block).reshape(-1).view(np.uint8).data
    _, starts, lengths = chunk_byte_ranges(block.shape, chunk_shape, block.itemsize)
    return [crc32(flat[start : start + length]) for start, length in zip(starts, lengths)]
