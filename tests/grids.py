"""Hypothesis draws shared by the planner tests: a block grid and the chunk shapes of its files."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from split_dataset.blocks import blocks_per_axis


def draw_block_grid(draw, max_ndim: int):
    """``(shape, block, padding, grid)``: padding and a short last block included."""
    ndim = draw(st.integers(1, max_ndim))
    shape = [draw(st.integers(1, 30)) for _ in range(ndim)]
    block = [draw(st.integers(1, s)) for s in shape]
    padding = [draw(st.integers(0, 3)) if b < s else 0 for s, b in zip(shape, block)]
    return shape, block, padding, blocks_per_axis(shape, block, padding)


def draw_chunk_shapes(draw, block, padding, grid) -> dict[int, tuple[int, ...]]:
    """A chunk shape per file, two kinds mixed (files of one dataset may differ)."""
    variants = [
        tuple(draw(st.integers(1, b + p)) for b, p in zip(block, padding)) for _ in range(2)
    ]
    return {f: variants[draw(st.integers(0, 1))] for f in range(int(np.prod(grid)))}
