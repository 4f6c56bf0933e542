"""Compiled planner kernels (src_ext/_planner.pyx)."""

from enum import IntEnum

import numpy as np
from numpy.typing import NDArray

class TermKind(IntEnum):
    INTEGER_TERM = 0
    SLICE_TERM = 1
    VECTOR_TERM = 2

def axis_selections(
    terms: list[tuple[int, int, int, int, int, NDArray[np.int64] | None]],
    block_shape: tuple[int, ...],
    blocks_grid: tuple[int, ...],
) -> tuple[list[NDArray[np.int64]], list[NDArray[np.int64]], NDArray[np.int64]]: ...
def chunk_tasks(
    coords_list: list[NDArray[np.int64]],
    positions_list: list[NDArray[np.int64]],
    block_shape: tuple[int, ...],
    blocks_grid: tuple[int, ...],
    files: NDArray[np.int64],
    chunk_shapes: list[tuple[int, ...]],
) -> tuple[NDArray[np.int64], ...]: ...
def plain_in_block(
    key: object,
    shape: tuple[int, ...],
    block_shape: tuple[int, ...],
    blocks_grid: tuple[int, ...],
) -> tuple[int, tuple[int, ...]] | None: ...
