"""Multiscale pyramids: 2x mean downsampling along the plane's axes, region by region."""

from __future__ import annotations

import numpy as np


def level_shape(shape: tuple[int, ...], axes: tuple[int, ...], level: int) -> tuple[int, ...]:
    """The shape of pyramid level ``level``: ``axes`` halved ``level`` times, rounded up."""
    return tuple(-(-s // 2**level) if a in axes else s for a, s in enumerate(shape))


def downsample(block: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """The mean of each 2x2 group along ``axes`` (an odd last element is repeated, so that a
    region's result is the same as the whole array's when regions start at even indices);
    integers are rounded back to their type."""
    padding = [(0, s % 2 if a in axes else 0) for a, s in enumerate(block.shape)]
    if any(after for _, after in padding):
        block = np.pad(block, padding, mode="edge")
    shape: list[int] = []
    for a, size in enumerate(block.shape):
        shape.extend((size // 2, 2) if a in axes else (size,))
    pairs = tuple(a + 1 + sum(b in axes for b in range(a)) for a in axes)
    mean = block.reshape(shape).mean(axis=pairs, dtype=np.float64)
    if np.issubdtype(block.dtype, np.integer):
        info = np.iinfo(block.dtype)
        return np.clip(np.rint(mean), info.min, info.max).astype(block.dtype)
    return mean.astype(block.dtype)
