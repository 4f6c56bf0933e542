"""Execute read plans: the compiled chunk reader on worker threads, h5py for exotic filters."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import cast, overload

import numpy as np

from ._ext import _chunk_reader, _planner
from .blocks import owned_extent
from .errors import BlockFileError, ChunkReadError
from .file_cache import FileCache, OpenBlockFile
from .file_layout import Codec, FileLayout
from .output_memory import new_output
from .planning import (
    BlockPlan,
    ReadPlan,
    block_local_selection,
    plan_blocks,
    plan_chunks,
    plan_in_block,
)
from .profiling import ReadProfile, active_profile, page_faults, record_run
from .selection import IntTerm, SliceTerm, Term
from .threads import effective_threads

# Waking a sleeping helper thread costs more than decoding a few chunks (see worker_pool.h):
# a plan of fewer than SMALL_PLAN_TASKS chunks is shared only with helpers that are awake or
# while reads come back to back; reads of EAGER_WAKE_BYTES or more wake helpers before
# planning, so that they are running by the time the plan is.
SMALL_PLAN_TASKS = 8
EAGER_WAKE_BYTES = 4 << 20
# A chunk missing from the page cache makes the reader ask the kernel for the chunks ahead
# (posix_fadvise), so the disk reads while the cores decode. Off only to measure its effect.
READ_AHEAD = True
# ... from a thread of its own, which keeps the plan's chunks asked for well ahead of the
# decoders (off: the decoding threads ask, a few files ahead at a time, as before; measured
# against it in benchmarks/profile_report.py).
READ_AHEAD_THREAD = True
# Checked plan-on-file contexts are kept for small plans reused across blocks (bounded by the
# file cache: FileCache.keep_read_template). Large plans amortize making one.
TEMPLATE_MAX_TASKS = 64
# Plans of selections inside one block kept per dataset (see BlockGrid.plan_in_block), at most
# PLANS_IN_BLOCK_KEPT keys (a plane's plan is kept under two spellings) whose tables take at
# most PLANS_IN_BLOCK_BYTES (a 512 x 512 plane's: 16 KB). Enough for every plane of a block of
# 10 time points x 100 z; with 256 keys, random planes of a 10 x 20 block were planned again
# on most reads (34 us of a 200 us plane).
PLANS_IN_BLOCK_KEPT = 2048
PLANS_IN_BLOCK_BYTES = 32 << 20


class BlockPaths(Sequence[Path]):
    """The block files' paths, each made when first asked for: a folder of 10,000 blocks
    opens without building 10,000 ``Path`` objects (most of its opening time, measured)."""

    def __init__(self, root: Path, names: Sequence[str]) -> None:
        self._root = root
        self._names = names
        self._made: dict[int, Path] = {}

    def __len__(self) -> int:
        return len(self._names)

    @overload
    def __getitem__(self, index: int) -> Path: ...
    @overload
    def __getitem__(self, index: slice) -> list[Path]: ...
    def __getitem__(self, index: int | slice) -> Path | list[Path]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        index = range(len(self._names))[index]  # IndexError, negative indices
        path = self._made.get(index)
        if path is None:
            path = self._made[index] = self._root / self._names[index]
        return path

    def take(self, indices: Sequence[int]) -> list[Path]:
        """The paths of blocks ``indices`` (valid, as a plan gives them): a read across 100
        files asked for each through ``__getitem__`` in 0.35 us, 10x the lookup alone."""
        made = self._made
        try:
            return [made[i] for i in indices]
        except KeyError:  # some not made yet
            return [self[i] for i in indices]


class BlockGrid:
    """What the reader needs to know about the dataset as a whole."""

    def __init__(
        self,
        shape: tuple[int, ...],
        dtype: np.dtype,
        block_shape: tuple[int, ...],
        blocks_grid: tuple[int, ...],
        padding: tuple[int, ...],
        files: BlockPaths,
        key: str | None,
    ) -> None:
        self.shape = shape
        self.dtype = dtype
        self.block_shape = block_shape
        self.blocks_grid = blocks_grid
        self.padding = padding
        self.files = files
        self.key = key
        # A viewer reads ds[t, z] frame after frame: the same selection relative to a block,
        # in files of the same chunk shape. Planned once, not every frame (a plain read spent
        # a quarter of its Python time planning).
        self._plans_in_block: dict[tuple, ReadPlan] = {}
        self._plans_in_block_bytes = 0
        # ... and checked once: the context first made for such a plan serves the other
        # block files of the same chunk geometry (``ReadContext.rebound``), so that the first
        # read of a plane in each file, a viewer playing a recording, costs a copy.
        self._plan_contexts: dict[tuple[int, bool], tuple[ReadPlan, _chunk_reader.ReadContext]]
        self._plan_contexts = {}

    def plan_in_block(
        self, local: tuple[Term, ...] | tuple[int, ...], chunk_shape: tuple[int, ...]
    ) -> ReadPlan:
        """The plan of a selection inside one block (``planning.plan_in_block``), kept: the
        same plan object for the same selection, whose checked contexts the files keep.

        ``local``: the block-local terms, or the integers of a plain key
        (``_planner.plain_in_block``: the remaining axes whole), which hash faster."""
        key = (local, chunk_shape)
        plan = self._plans_in_block.get(key)
        if plan is None:
            if local and type(local[0]) is int:
                whole = tuple(SliceTerm(0, 1, size) for size in self.shape[len(local) :])
                terms = tuple(IntTerm(index) for index in local) + whole
                plan = self.plan_in_block(terms, chunk_shape)  # one plan for both spellings
            else:
                plan = plan_in_block(cast(tuple[Term, ...], local), chunk_shape)
                self._plans_in_block_bytes += plan.nbytes
            if (
                len(self._plans_in_block) >= PLANS_IN_BLOCK_KEPT
                or self._plans_in_block_bytes > PLANS_IN_BLOCK_BYTES
            ):
                self._plans_in_block.clear()
                self._plan_contexts.clear()
                self._plans_in_block_bytes = plan.nbytes
            self._plans_in_block[key] = plan
        return plan

    def plain_plan(
        self, local: tuple[int, ...], chunk_shape: tuple[int, ...]
    ) -> tuple[ReadPlan, tuple[int, ...]]:
        """The plan of a plain key's block-local integers (``_planner.plain_in_block``) made
        for their place inside their chunk, and the chunk to run it on (per axis, as
        ``ReadContext.run_into`` takes it): the planes at one place in their chunks share a
        plan, so one checked context per file serves them all (with chunks of one plane,
        every plane of a block)."""
        in_chunk = tuple(index % size for index, size in zip(local, chunk_shape))
        chunk = tuple(index // size for index, size in zip(local, chunk_shape))
        whole_axes = (0,) * (len(chunk_shape) - len(local))
        return self.plan_in_block(in_chunk, chunk_shape), chunk + whole_axes

    def new_context(
        self, plan: ReadPlan, out: np.ndarray, entries: list[OpenBlockFile], verify: bool
    ) -> _chunk_reader.ReadContext:
        """``ReadContext(plan, out, entries, verify)`` for a plan of ``plan_in_block``: the
        context checked for it on another block file, rebound to these if their chunk
        geometry is the same."""
        key = (id(plan), verify)
        known = self._plan_contexts.get(key)
        if known is not None and known[0] is plan:
            context = known[1].rebound(entries, out)
            if context is not None:
                return context
        context = _chunk_reader.ReadContext(plan, out, entries, verify)
        if known is None or known[0] is not plan:
            self._plan_contexts[key] = (plan, context.as_template())
        return context

    def plans_kept(self) -> int:
        """How many distinct plans ``plan_in_block`` keeps (a plain key and its terms share
        one)."""
        return len({id(plan) for plan in self._plans_in_block.values()})

    def block_index(self, linear: int) -> tuple[int, ...]:
        return tuple(int(i) for i in np.unravel_index(linear, self.blocks_grid))

    def check_shape(
        self, path: Path, key: str, shape: tuple[int, ...], block_index: tuple[int, ...]
    ) -> None:
        """A block file's array must hold every element its block owns, and no more than the
        block and its padding: a file that contradicts the metadata would be read shifted."""
        if len(shape) != len(self.shape):
            raise BlockFileError(
                f"{path}: '{key}' is {len(shape)}-d, the dataset is {len(self.shape)}-d"
            )
        needed = owned_extent(block_index, self.block_shape, self.blocks_grid, self.shape)
        largest = tuple(b + p for b, p in zip(self.block_shape, self.padding))
        if any(have < need for have, need in zip(shape, needed)):
            raise BlockFileError(
                f"{path}: '{key}' has shape {shape} but block {block_index} needs at least "
                f"{needed} (metadata: shape_full {self.shape}, shape_block {self.block_shape})"
            )
        if any(have > most for have, most in zip(shape, largest)):
            raise BlockFileError(
                f"{path}: '{key}' has shape {shape}, larger than the metadata's shape_block "
                f"{self.block_shape}"
                + (f" plus padding {self.padding}" if any(self.padding) else "")
                + ": the files and stack_metadata.json disagree"
            )

    def check_layout(self, layout: FileLayout, block_index: tuple[int, ...]) -> None:
        self.check_shape(layout.path, layout.key, layout.shape, block_index)
        if layout.dtype != self.dtype:
            raise BlockFileError(
                f"{layout.path}: '{layout.key}' has dtype {layout.dtype}, the dataset {self.dtype}"
            )
        expected_start = tuple(i * b for i, b in zip(block_index, self.block_shape))
        if layout.block_start is not None and layout.block_start != expected_start:
            raise BlockFileError(
                f"{layout.path}: written as the block starting at {layout.block_start}, but it "
                f"is in the place of the block starting at {expected_start} (files renamed or "
                f"swapped?)"
            )


def _describe_failure(context, plan: ReadPlan, entries: list[OpenBlockFile]) -> str:
    task = context.error_task
    entry = entries[plan.task_file[task]]
    layout = entry.layout
    linear = context.chunk_index(task)
    what = _chunk_reader.ERROR_MESSAGES.get(context.error_code, f"error {context.error_code}")
    where = ""
    if 0 <= linear < len(layout.chunk_offset):
        where = (
            f" at byte {int(layout.chunk_offset[linear])}"
            f" ({int(layout.chunk_size[linear])} bytes stored)"
        )
        chunk = layout.chunk_coordinates(linear)
    else:
        chunk = (linear,)
    return (
        f"{layout.path}: chunk {chunk} of '{layout.key}'{where}: {what} "
        f"(detail {context.error_detail}; {layout.describe_filters()})"
    )


def _read_with_h5py(context, plan: ReadPlan, entries: list[OpenBlockFile]) -> None:
    """Tasks of files whose filters the compiled path does not decode: h5py decodes the chunk."""
    import h5py
    import hdf5plugin  # noqa: F401  (registers blosc2, lz4, zstd, bitshuffle... filters)

    tasks = [
        t for t in range(plan.n_tasks) if entries[plan.task_file[t]].layout.codec == Codec.H5PY
    ]
    by_file: dict[int, list[int]] = {}
    for task in tasks:
        by_file.setdefault(int(plan.task_file[task]), []).append(task)
    for slot, file_tasks in by_file.items():
        layout = entries[slot].layout
        chunk = np.zeros(layout.chunk_shape, dtype=layout.dtype)
        try:
            handle = h5py.File(layout.path, "r")
        except OSError as error:
            raise BlockFileError(f"{layout.path}: not a readable HDF5 file ({error})") from error
        with handle:
            dataset = handle[layout.key]
            for task in file_tasks:
                coords = layout.chunk_coordinates(context.chunk_index(task))
                region = tuple(
                    slice(c * size, min((c + 1) * size, extent))
                    for c, size, extent in zip(coords, layout.chunk_shape, layout.shape)
                )
                inner = tuple(slice(0, r.stop - r.start) for r in region)
                try:
                    chunk[inner] = dataset[region]
                except OSError as error:
                    raise ChunkReadError(
                        f"{layout.path}: chunk {coords} of '{layout.key}': h5py failed: {error}"
                    ) from error
                context.scatter_decoded(task, chunk.reshape(-1).view(np.uint8))


def read_orthogonal(
    grid: BlockGrid,
    cache: FileCache,
    terms: tuple[Term, ...],
    out: np.ndarray,
    threads: int | None = None,
    background: bool = False,
    decode_only: bool = False,
    verify_checksums: bool = False,
) -> None:
    """Fill ``out`` (one axis per non-integer term, any strides) with the orthogonal selection.

    A ``background`` read (prefetch) yields to foreground reads between chunks. ``decode_only``
    (benchmarks) reads and decodes the same chunks and leaves ``out`` alone: the ceiling.
    ``verify_checksums``: chunks whose CRC-32 our writer recorded are checked before decoding.
    """
    profile = active_profile()
    started = time.perf_counter() if profile is not None else 0.0
    options = _options(out, threads, background, decode_only, verify_checksums, profile)
    if out.size == 0:
        return
    in_one_block = block_local_selection(terms, grid.block_shape, grid.blocks_grid)
    if in_one_block is not None:
        _read_in_block(grid, cache, *in_one_block, out, options)
    else:
        _read_blocks(
            grid, cache, plan_blocks(terms, grid.block_shape, grid.blocks_grid), out, options
        )
    if profile is not None:
        profile.reads += 1
        elapsed = time.perf_counter() - started
        profile.wall_s += elapsed
        profile.threads_s += elapsed


def read_plain(
    grid: BlockGrid,
    cache: FileCache,
    key: object,
    threads: int | None = None,
    background: bool = False,
    verify_checksums: bool = False,
) -> np.ndarray | None:
    """``ds[t, z]`` as a viewer asks for it every frame (``_planner.plain_in_block``: integers
    inside one block, the remaining axes whole), in a new array, or None for any other key
    (and while a profile is on): the general path then reads it.

    The same read as ``read_orthogonal``'s, without the steps a plain key does not need:
    after a viewer's pause every Python step costs 3-5x more, and the selection objects,
    the output view and the term-keyed plan lookup cost more than the preads of a raw plane.
    A frame runs the checked context of its plan kept for its file (``_frame_template``),
    with no other step.
    """
    found = _planner.plain_in_block(key, grid.shape, grid.block_shape, grid.blocks_grid)
    if found is None or active_profile() is not None:
        return None
    linear, local = found
    out = new_output(grid.shape[len(local) :], grid.dtype)
    if not out.size:
        return out
    entry = cache.pin(grid.files[linear], grid.key)
    try:
        plan, chunk = grid.plain_plan(local, entry.layout.chunk_shape)
        template = _frame_template(grid, cache, linear, entry, plan, out, verify_checksums)
        if template is not None and _run_kept(
            template, plan, chunk, entry, out, threads, background
        ):
            return out
        options = _options(out, threads, background, False, verify_checksums, None)
        _read_in_block(grid, cache, linear, local, out, options, pinned=entry)
    finally:
        cache.unpin(entry)
    return out


def _frame_template(
    grid: BlockGrid,
    cache: FileCache,
    linear: int,
    entry: OpenBlockFile,
    plan: ReadPlan,
    out: np.ndarray,
    verify: bool,
) -> _chunk_reader.ReadContext | None:
    """The checked context of a frame's ``plan`` on block ``linear``'s file (``entry``) to
    run the frame from: the one kept from an earlier read of it, else one made now
    (``BlockGrid.new_context``: the plan is checked once per dataset) and kept; None for a
    plan too large to keep (the general path reads it)."""
    key = (id(plan), verify)
    kept = entry.read_templates.get(key)
    if kept is not None and kept[0] is plan and linear in entry.checked_blocks:
        return kept[1]
    if plan.n_tasks > TEMPLATE_MAX_TASKS:
        return None
    _check_layouts(grid, (linear,), [entry])
    template = grid.new_context(plan, out, [entry], verify).as_template()
    cache.keep_read_template(entry, key, (plan, template))
    return template


def _run_kept(
    template: _chunk_reader.ReadContext,
    plan: ReadPlan,
    chunk: tuple[int, ...],
    entry: OpenBlockFile,
    out: np.ndarray,
    threads: int | None,
    background: bool,
) -> bool:
    """``_run`` of a frame through the context kept for its plan and file, on the chunks
    ``chunk`` further along each axis (``BlockGrid.plain_plan``), in as few steps as such a
    read needs (a plane is often one chunk: no threads to work out); False if the template
    does not fit ``out``."""
    _index_chunks_of(template, [entry], chunk)
    n_tasks = plan.n_tasks
    context = template.run_into(
        out,
        1 if n_tasks == 1 else min(effective_threads(threads), n_tasks),
        n_tasks < SMALL_PLAN_TASKS,
        background,
        READ_AHEAD,
        READ_AHEAD_THREAD,
        chunk,
    )
    if context is None:
        return False
    if context.error_code:
        raise ChunkReadError(_describe_failure(context, plan, [entry]))
    if entry.layout.codec == Codec.H5PY:
        _read_with_h5py(context, plan, [entry])
    return True


def _options(
    out: np.ndarray,
    threads: int | None,
    background: bool,
    decode_only: bool,
    verify_checksums: bool,
    profile: ReadProfile | None,
) -> ReadOptions:
    n_threads = effective_threads(threads)
    if n_threads > 1 and out.nbytes >= EAGER_WAKE_BYTES:
        _chunk_reader.wake_pool(n_threads)  # helpers wake while we plan, not after
    return ReadOptions(n_threads, background, decode_only, verify_checksums, profile)


@dataclass(slots=True)  # made for every read: a frozen dataclass costs twice as much to make
class ReadOptions:
    threads: int
    background: bool = False  # prefetch: yield to foreground reads between chunks
    decode_only: bool = False  # benchmarks: read and decode, copy nothing
    verify_checksums: bool = False  # check the CRC-32 of chunks our writers recorded
    profile: ReadProfile | None = None  # where the time goes (profiling.profile_reads)


def _read_blocks(
    grid: BlockGrid, cache: FileCache, block_plan: BlockPlan, out: np.ndarray, options: ReadOptions
) -> None:
    # Bound the files held open at once; each batch is planned and executed on its own.
    files = block_plan.files
    paths = grid.files.take(files)
    for run in cache.batches(paths):
        batch = block_plan if run == slice(0, len(files)) else replace(block_plan, files=files[run])
        _read_batch(grid, cache, batch, paths[run], out, options)


def _read_batch(
    grid: BlockGrid,
    cache: FileCache,
    block_plan: BlockPlan,
    paths: Sequence[Path],
    out: np.ndarray,
    options: ReadOptions,
) -> None:
    """``paths``: those of ``block_plan.files``."""
    with cache.acquire(paths, grid.key) as entries:
        _check_layouts(grid, block_plan.files, entries)
        plan = plan_chunks(
            block_plan, {f: e.layout.chunk_shape for f, e in zip(block_plan.files, entries)}
        )
        _execute(plan, out, entries, options)


def _read_in_block(
    grid: BlockGrid,
    cache: FileCache,
    linear: int,
    local: tuple[Term, ...] | tuple[int, ...],
    out: np.ndarray,
    options: ReadOptions,
    pinned: OpenBlockFile | None = None,
) -> None:
    """A selection inside one block: its plan depends only on the block-local selection
    (``local``, see ``BlockGrid.plan_in_block``) and the file's chunk shape, so it is
    planned once for every block. ``pinned``: the block's file, pinned by the caller."""
    entry = cache.pin(grid.files[linear], grid.key) if pinned is None else pinned
    try:
        _check_layouts(grid, (linear,), [entry])
        plan = grid.plan_in_block(local, entry.layout.chunk_shape)
        template = _frame_template(grid, cache, linear, entry, plan, out, options.verify_checksums)
        context = None if template is None else template.for_output(out)
        if context is None:
            _execute(plan, out, [entry], options, grid=grid)
        else:
            # a kept context's chunks too: the plain path runs the contexts it keeps on other
            # chunks (``_run_kept``), and looks up only those
            _index_chunks_of(context, [entry])
            _run(context, plan, [entry], options)
    finally:
        if pinned is None:
            cache.unpin(entry)


def _check_layouts(grid: BlockGrid, files: Sequence[int], entries: list[OpenBlockFile]) -> None:
    for linear, entry in zip(files, entries):
        if linear not in entry.checked_blocks:  # once per file version, not every read
            grid.check_layout(entry.layout, grid.block_index(linear))
            entry.checked_blocks.add(linear)


def _execute(
    plan: ReadPlan,
    out: np.ndarray,
    entries: list[OpenBlockFile],
    options: ReadOptions,
    grid: BlockGrid | None = None,
) -> None:
    """Run the plan's tasks on the files ``entries`` (one per plan file, in order) through a
    new context. ``grid``: the dataset's, for a plan of ``plan_in_block``, whose context it
    makes (``BlockGrid.new_context``: checked once, rebound to the other blocks' files)."""
    if grid is None:
        context = _chunk_reader.ReadContext(plan, out, entries, options.verify_checksums)
    else:
        context = grid.new_context(plan, out, entries, options.verify_checksums)
    _index_chunks_of(context, entries)
    _run(context, plan, entries, options)


def _index_chunks_of(
    context: _chunk_reader.ReadContext,
    entries: list[OpenBlockFile],
    chunk: tuple[int, ...] | None = None,
) -> None:
    """Look up, in the files indexed lazily, the chunks ``context`` reads (run on ``chunk``,
    as ``ReadContext.run_into`` takes it); before every run. Only the files with a chunk not
    looked up yet are asked (one compiled pass finds them: asking each of 100 files cost
    3 us a file on every read)."""
    for slot in context.files_to_index(chunk):
        lazy = entries[slot].layout.lazy
        if lazy is not None:
            lazy.ensure(context.chunks_of_file(slot, chunk))


def _run(
    context: _chunk_reader.ReadContext,
    plan: ReadPlan,
    entries: list[OpenBlockFile],
    options: ReadOptions,
) -> None:
    """Run a context of ``plan`` on ``entries`` with ``options``; chunks of filters the
    compiled reader does not decode are then read by h5py."""
    context.background = options.background
    context.decode_only = options.decode_only
    context.read_ahead = READ_AHEAD
    context.read_ahead_thread = READ_AHEAD_THREAD
    n_tasks = plan.n_tasks
    threads = min(options.threads, n_tasks)
    profile = options.profile
    if profile is None:
        context.run(threads, n_tasks < SMALL_PLAN_TASKS)
    else:
        context.profile = True
        faults, run_started = page_faults(), time.perf_counter()
        context.run(threads, n_tasks < SMALL_PLAN_TASKS)
        run_s = time.perf_counter() - run_started
        record_run(profile, context.timings(), run_s, options.threads, faults)
    if context.error_code:
        raise ChunkReadError(_describe_failure(context, plan, entries))
    if any(e.layout.codec == Codec.H5PY for e in entries) and not options.decode_only:
        fallback_started = time.perf_counter()
        _read_with_h5py(context, plan, entries)
        if profile is not None:
            profile.fallback_s += time.perf_counter() - fallback_started
