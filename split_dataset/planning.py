"""Planning: canonical selection x block grid x chunk grids -> which bytes go where. No I/O.

Two stages, both pure functions returning values:

1. ``plan_blocks``: per axis, the selected source coordinates sorted, with the output position
   of each, and which files (blocks) are touched. Needs only the block grid.
2. ``plan_chunks``: given the chunk shape of each touched file, per axis the runs of
   coordinates that fall in one (block, chunk) - "groups" - and the read tasks: one task per
   chunk to decode, naming one group per axis. Each chunk appears in exactly one task, so a
   strided or repeated selection never decodes a chunk twice.

The per-axis grouping and the task product run in compiled code (``_ext._planner``); the
pure-Python reference below has the same signatures and is selected with
``SPLIT_DATASET_PLANNER=python``. Tests run against both.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields

import numpy as np

from ._ext import _planner
from ._ext._planner import TermKind
from .blocks import block_of
from .selection import IntTerm, SliceTerm, Term, term_coordinates


@dataclass(frozen=True, eq=False)
class AxisSelection:
    """The selection along one axis, sorted by source coordinate."""

    coords: np.ndarray  # int64 source coordinates, non-decreasing
    out_positions: np.ndarray  # int64 output position of each coordinate
    has_output_axis: bool


@dataclass(frozen=True, eq=False)
class BlockPlan:
    axes: tuple[AxisSelection, ...]
    block_shape: tuple[int, ...]
    blocks_grid: tuple[int, ...]
    files: tuple[int, ...]  # linear block indices touched, increasing

    def file_block_index(self, linear: int) -> tuple[int, ...]:
        return tuple(int(i) for i in np.unravel_index(linear, self.blocks_grid))


@dataclass(frozen=True, eq=False)
class ReadPlan:
    """Every chunk to decode and where each selected element of it goes.

    Group ``g`` is a run of coordinates along one axis inside one chunk:
    ``in_coords[group_start[g] : group_start[g] + group_count[g]]`` (coordinates inside the
    chunk) go to the same slice of ``out_coords`` (positions along the output axis).
    Task ``t`` decodes chunk ``sum(group_chunk[task_groups[t, a]] * grid_stride[a])`` of file
    ``files[task_file[t]]`` and copies the product of its groups.
    """

    out_shape: tuple[int, ...]
    out_axis: tuple[int, ...]  # per array axis: output axis, or -1 for an integer index
    files: tuple[int, ...]
    chunk_shapes: tuple[tuple[int, ...], ...]  # per entry of files
    in_coords: np.ndarray
    out_coords: np.ndarray
    group_chunk: np.ndarray
    group_start: np.ndarray
    group_count: np.ndarray
    group_contiguous: np.ndarray  # uint8: in and out both advance by one along the run
    task_file: np.ndarray
    task_groups: np.ndarray  # (tasks, ndim)

    @property
    def n_tasks(self) -> int:
        return int(self.task_file.shape[0])

    def tables(self) -> list[np.ndarray]:
        """The plan's arrays (``vars``: 2.3x faster than ``dataclasses.fields``, and a plan is
        made on the first read of every plane)."""
        return [t for t in vars(self).values() if type(t) is np.ndarray]

    @property
    def nbytes(self) -> int:
        """Bytes of the plan's tables."""
        return sum(t.nbytes for t in self.tables())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ReadPlan):
            return NotImplemented
        return all(
            np.array_equal(getattr(self, f.name), getattr(other, f.name))
            if isinstance(getattr(self, f.name), np.ndarray)
            else getattr(self, f.name) == getattr(other, f.name)
            for f in fields(self)
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"ReadPlan(out_shape={self.out_shape}, files={list(self.files)}, "
            f"tasks={self.n_tasks}, groups={len(self.group_start)})"
        )

    def describe(self) -> list[str]:
        """One line per task: file, chunk along each axis, in-chunk -> output coordinates."""
        lines = []
        for t in range(self.n_tasks):
            parts = []
            for g in self.task_groups[t]:
                start, count = int(self.group_start[g]), int(self.group_count[g])
                coords = self.in_coords[start : start + count].tolist()
                outs = self.out_coords[start : start + count].tolist()
                parts.append(f"chunk {int(self.group_chunk[g])}: {coords}->{outs}")
            lines.append(f"file {self.files[self.task_file[t]]}: " + "; ".join(parts))
        return lines


# --- stage 1: blocks ---------------------------------------------------------------------------


def _axis_selection(term: Term) -> AxisSelection:
    coords, positions = term_coordinates(term)
    if coords.size > 1 and np.any(coords[1:] < coords[:-1]):
        order = np.argsort(coords, kind="stable")
        coords, positions = coords[order], positions[order]
    return AxisSelection(
        np.ascontiguousarray(coords, dtype=np.int64),
        np.ascontiguousarray(positions, dtype=np.int64),
        not isinstance(term, IntTerm),
    )


def _plan_blocks_reference(terms: tuple[Term, ...], block_shape, blocks_grid):
    axes = tuple(_axis_selection(t) for t in terms)
    per_axis_blocks = [
        np.unique(block_of(selection.coords, block_shape[axis], blocks_grid[axis]))
        for axis, selection in enumerate(axes)
    ]
    if any(b.size == 0 for b in per_axis_blocks):
        return axes, ()
    mesh = np.meshgrid(*per_axis_blocks, indexing="ij")
    return axes, tuple(int(f) for f in np.ravel_multi_index(mesh, blocks_grid).ravel())


def _term_spec(term: Term) -> tuple:
    """A term as the compiled planner takes it: ``(kind, start, step, count, reverse, coords)``."""
    if isinstance(term, IntTerm):
        return (TermKind.INTEGER_TERM, term.index, 1, 1, 0, None)
    if isinstance(term, SliceTerm):
        return (TermKind.SLICE_TERM, term.start, term.step, term.count, int(term.reverse), None)
    return (TermKind.VECTOR_TERM, 0, 0, term.count, 0, term.coords)


def plan_blocks(
    terms: tuple[Term, ...], block_shape: tuple[int, ...], blocks_grid: tuple[int, ...]
) -> BlockPlan:
    """Stage 1: per axis the sorted selection, and the blocks (files) it touches."""
    compiled = _compiled()
    if compiled is None:
        axes, files = _plan_blocks_reference(terms, block_shape, blocks_grid)
    else:
        coords, positions, file_array = compiled.axis_selections(
            [_term_spec(t) for t in terms], tuple(block_shape), tuple(blocks_grid)
        )
        axes = tuple(
            AxisSelection(c, p, not isinstance(t, IntTerm))
            for c, p, t in zip(coords, positions, terms)
        )
        files = tuple(file_array.tolist())
    return BlockPlan(axes, tuple(block_shape), tuple(blocks_grid), files)


# --- selections inside one block: planned once, whatever the block -----------------------------


def block_local_selection(
    terms: tuple[Term, ...], block_shape: tuple[int, ...], blocks_grid: tuple[int, ...]
) -> tuple[int, tuple[Term, ...]] | None:
    """For integers and slices that all fall in one block: the block's linear index and the
    selection relative to the block's start. None when the selection spans blocks, selects
    nothing or holds a vector (the dataset-wide planner handles those)."""
    linear = 0
    local: list[Term] = []
    for term, block_size, blocks_along_axis in zip(terms, block_shape, blocks_grid):
        if isinstance(term, IntTerm):
            first = last = term.index
        elif isinstance(term, SliceTerm) and term.count:
            first, last = term.start, term.start + term.step * (term.count - 1)
        else:
            return None
        block = block_of(first, block_size, blocks_along_axis)
        if last != first and block_of(last, block_size, blocks_along_axis) != block:
            return None
        linear = linear * blocks_along_axis + block
        local.append(_shifted(term, block * block_size))
    return linear, tuple(local)


def _shifted(term: IntTerm | SliceTerm, offset: int) -> Term:
    if offset == 0:
        return term
    if isinstance(term, IntTerm):
        return IntTerm(term.index - offset)
    return SliceTerm(term.start - offset, term.step, term.count, term.reverse)


def plan_in_block(local_terms: tuple[Term, ...], chunk_shape: tuple[int, ...]) -> ReadPlan:
    """The plan of a block-local selection in a file of ``chunk_shape`` chunks: the tables of
    the dataset-wide plan of the same read, for any block (its only file is slot 0).

    A grid of one block of size one plans in the block's own coordinates (the last block owns
    every coordinate past its start). The tables are made read-only: readers share them.
    """
    one_block = (1,) * len(local_terms)
    plan = plan_chunks(plan_blocks(local_terms, one_block, one_block), {0: chunk_shape})
    for table in plan.tables():
        table.flags.writeable = False
    return plan


# --- stage 2: chunks (reference implementation) --------------------------------------------------


def _group_axis_reference(coords, positions, block_size, blocks_along_axis, chunk_size):
    """Runs of consecutive sorted coordinates sharing (block, chunk)."""
    blocks = block_of(coords, block_size, blocks_along_axis)
    local = coords - blocks * block_size
    chunks = local // chunk_size
    in_chunk = local - chunks * chunk_size
    if coords.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty, empty, np.zeros(0, dtype=np.uint8), in_chunk
    boundary = np.flatnonzero((np.diff(blocks) != 0) | (np.diff(chunks) != 0)) + 1
    starts = np.concatenate([[0], boundary]).astype(np.int64)
    counts = np.diff(np.concatenate([starts, [coords.size]])).astype(np.int64)
    contiguous = np.array(
        [
            bool(
                np.all(np.diff(in_chunk[s : s + c]) == 1)
                and np.all(np.diff(positions[s : s + c]) == 1)
            )
            for s, c in zip(starts, counts)
        ],
        dtype=np.uint8,
    )
    return blocks[starts], chunks[starts], starts, counts, contiguous, in_chunk


def _tasks_reference(group_ranges: np.ndarray) -> np.ndarray:
    """All combinations of one group per axis, for each file, in C order."""
    ndim = group_ranges.shape[1]
    rows = []
    for file_slot, ranges in enumerate(group_ranges):
        for combo in itertools.product(*(range(lo, hi) for lo, hi in ranges)):
            rows.append((file_slot, *combo))
    return np.asarray(rows, dtype=np.int64).reshape(-1, ndim + 1)


def _compiled():
    """The compiled kernels, unless ``SPLIT_DATASET_PLANNER=python`` asks for the reference."""
    if (os.environ.get("SPLIT_DATASET_PLANNER") or "").lower() == "python":
        return None
    return _planner


def _plan_chunks_reference(block_plan: BlockPlan, chunk_shapes) -> tuple[np.ndarray, ...]:
    axes = block_plan.axes
    ndim = len(axes)
    files = block_plan.files
    pools_in, pools_out, chunk_parts, start_parts, count_parts, contiguous_parts = (
        [],
        [],
        [],
        [],
        [],
        [],
    )
    pool_offset = group_offset = 0
    # (axis, chunk size) -> (first group id, block of each group), created in order of first use
    variants: dict[tuple[int, int], tuple[int, np.ndarray]] = {}
    group_ranges = np.zeros((len(files), ndim, 2), dtype=np.int64)
    for slot, linear in enumerate(files):
        block_index = block_plan.file_block_index(linear)
        for axis, selection in enumerate(axes):
            key = (axis, int(chunk_shapes[slot][axis]))
            if key not in variants:
                blocks, chunks, starts, counts, contiguous, in_chunk = _group_axis_reference(
                    selection.coords,
                    selection.out_positions,
                    block_plan.block_shape[axis],
                    block_plan.blocks_grid[axis],
                    key[1],
                )
                variants[key] = (group_offset, blocks)
                pools_in.append(in_chunk)
                pools_out.append(selection.out_positions)
                chunk_parts.append(chunks)
                start_parts.append(starts + pool_offset)
                count_parts.append(counts)
                contiguous_parts.append(contiguous)
                pool_offset += selection.coords.size
                group_offset += len(starts)
            first, blocks = variants[key]
            lo = np.searchsorted(blocks, block_index[axis], side="left")
            hi = np.searchsorted(blocks, block_index[axis], side="right")
            group_ranges[slot, axis] = (first + lo, first + hi)

    def concat(parts, dtype):
        return np.ascontiguousarray(np.concatenate(parts) if parts else np.zeros(0), dtype=dtype)

    tasks = _tasks_reference(group_ranges)
    return (
        concat(pools_in, np.int64),
        concat(pools_out, np.int64),
        concat(chunk_parts, np.int64),
        concat(start_parts, np.int64),
        concat(count_parts, np.int64),
        concat(contiguous_parts, np.uint8),
        np.ascontiguousarray(tasks[:, 0]),
        np.ascontiguousarray(tasks[:, 1:]),
    )


def plan_chunks(block_plan: BlockPlan, chunk_shapes: Mapping[int, tuple[int, ...]]) -> ReadPlan:
    """Stage 2: split the block plan by each touched file's chunk grid into decode tasks."""
    axes = block_plan.axes
    files = block_plan.files
    # layouts hold tuples of ints: converting each file's again cost 0.5 us a file
    shapes = [chunk_shapes[f] for f in files]
    compiled = _compiled()
    if compiled is None:
        arrays = _plan_chunks_reference(block_plan, shapes)
    else:
        arrays = compiled.chunk_tasks(
            [a.coords for a in axes],
            [a.out_positions for a in axes],
            block_plan.block_shape,
            block_plan.blocks_grid,
            np.asarray(files, dtype=np.int64),
            shapes,
        )
    out_axis, out_index = [], 0
    for selection in axes:
        out_axis.append(out_index if selection.has_output_axis else -1)
        out_index += selection.has_output_axis
    return ReadPlan(
        tuple(a.coords.size for a in axes if a.has_output_axis),
        tuple(out_axis),
        files,
        tuple(shapes),
        *arrays,
    )
