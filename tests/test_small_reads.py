"""The per-frame path: a selection of integers and slices inside one block is planned once, in
the block's own coordinates, and that plan is reused for every block and every read after.

The reused plan must be the dataset-wide planner's plan of the same read (checked table by
table on generated grids), and reads through it must stay right when files change on disk,
when files of one dataset are chunked differently and when other selections come in between.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import fields
from pathlib import Path

import h5py
import numpy as np
import pytest
from datasets import write_split_dataset
from grids import draw_block_grid, draw_chunk_shapes
from hypothesis import given
from hypothesis import strategies as st

from split_dataset import BlockFileError, SplitDataset, file_cache, reader
from split_dataset._ext._planner import plain_in_block
from split_dataset.blocks import block_of, blocks_per_axis
from split_dataset.file_layout import Codec
from split_dataset.planning import (
    ReadPlan,
    block_local_selection,
    plan_blocks,
    plan_chunks,
    plan_in_block,
)
from split_dataset.selection import IntTerm, SliceTerm

# --- the plan in a block is the dataset-wide plan --------------------------------------------


@st.composite
def grids_and_plain_selections(draw):
    """A block grid (padding and a short last block included), a chunk shape per file, and
    canonical integer and slice terms, often inside one block."""
    shape, block, padding, grid = draw_block_grid(draw, max_ndim=4)
    terms = []
    for size, block_size in zip(shape, block):
        start = draw(st.integers(0, size - 1))
        if draw(st.booleans()):
            terms.append(IntTerm(start))
            continue
        step = draw(st.integers(1, 7))
        # short slices stay inside a block more often than not
        count = draw(st.integers(0, min(len(range(start, size, step)), block_size + 2)))
        terms.append(SliceTerm(start, step, count, draw(st.booleans())))
    return tuple(block), grid, tuple(terms), draw_chunk_shapes(draw, block, padding, grid)


@pytest.mark.parametrize("planner_name", ["compiled", "python"])
@given(case=grids_and_plain_selections())
def test_the_plan_in_a_block_has_the_tables_of_the_dataset_wide_plan(planner_name, case):
    block, grid, terms, chunks = case
    os.environ["SPLIT_DATASET_PLANNER"] = planner_name
    try:
        block_plan = plan_blocks(terms, block, grid)
        local = block_local_selection(terms, block, grid)
        if local is None:
            assert len(block_plan.files) != 1
            return
        linear, local_terms = local
        assert block_plan.files == (linear,)
        expected = plan_chunks(block_plan, chunks)
        in_block = plan_in_block(local_terms, chunks[linear])
    finally:
        del os.environ["SPLIT_DATASET_PLANNER"]
    assert in_block.files == (0,)
    for name in [field.name for field in fields(ReadPlan) if field.name != "files"]:
        np.testing.assert_array_equal(getattr(in_block, name), getattr(expected, name), name)


def test_a_selection_across_blocks_or_of_nothing_has_no_plan_in_a_block():
    block, grid = (4, 5), (3, 1)
    assert block_local_selection((IntTerm(3), SliceTerm(0, 1, 5)), block, grid) == (
        0,
        (IntTerm(3), SliceTerm(0, 1, 5)),
    )
    assert block_local_selection((IntTerm(5), SliceTerm(0, 1, 5)), block, grid) == (
        1,
        (IntTerm(1), SliceTerm(0, 1, 5)),
    )
    assert block_local_selection((SliceTerm(3, 1, 2), IntTerm(0)), block, grid) is None
    assert block_local_selection((SliceTerm(0, 1, 0), IntTerm(0)), block, grid) is None
    # a step that jumps over a whole block still ends in another one
    assert block_local_selection((SliceTerm(1, 9, 2), IntTerm(0)), block, grid) is None


def test_the_last_block_owns_the_padding_tail_in_a_block_local_selection():
    """Axis of 26, block 12, padding 2: coordinate 25 is element 13 of the second block."""
    grid = blocks_per_axis((26,), (12,), (2,))
    assert block_local_selection((IntTerm(25),), (12,), grid) == (1, (IntTerm(13),))
    assert block_local_selection((SliceTerm(12, 13, 2, True),), (12,), grid) == (
        1,
        (SliceTerm(0, 13, 2, True),),
    )


def test_block_of_one_coordinate_agrees_with_block_of_an_array():
    coords = np.arange(40)
    for block_size, blocks_along_axis in [(12, 2), (12, 3), (1, 40), (5, 1), (7, 6)]:
        expected = block_of(coords, block_size, blocks_along_axis).tolist()
        got = [block_of(int(c), block_size, blocks_along_axis) for c in coords]
        assert got == expected
        assert all(type(b) is int for b in got)


def test_a_shared_plan_cannot_be_changed():
    plan = plan_in_block((IntTerm(1), SliceTerm(0, 1, 4)), (2, 2))
    with pytest.raises(ValueError, match="read-only"):
        plan.in_coords[0] = 7


# --- reads through the shared plans ------------------------------------------------------------


@pytest.fixture
def recording(tmp_path):
    """A (12, 3, 20, 16) recording, 4 time points per file, blosc chunks of one plane-quarter."""
    array = np.random.default_rng(3).integers(0, 60000, (12, 3, 20, 16)).astype(np.uint16)
    folder = write_split_dataset(tmp_path / "ds", array, (4, 3, 20, 16), (1, 1, 10, 16))
    return folder, array


def rewrite_block(path, block: np.ndarray, chunks, compression=None) -> None:
    """Replace a block file by a new one (another inode) holding ``block``."""
    tmp = path.with_suffix(".tmp")
    with h5py.File(tmp, "w") as handle:
        handle.create_dataset("stack_4D", data=block, chunks=chunks, compression=compression)
    os.replace(tmp, path)


def test_playback_reads_every_frame_right(recording):
    folder, array = recording
    ds = SplitDataset(folder)
    for z in range(3):
        for t in range(12):
            np.testing.assert_array_equal(ds[t, z], array[t, z])
            np.testing.assert_array_equal(ds[t, z, 3:17:2, ::-3], array[t, z, 3:17:2, ::-3])
    # one plan per block-local selection, whatever the block; the plain frames' one plan
    # (their chunks hold one plane: every plane is at the same place in its chunk)
    assert ds._grid.plans_kept() == 3 * 4 + 1


def test_other_selections_between_frames_do_not_disturb_them(recording):
    folder, array = recording
    ds = SplitDataset(folder)
    others = [np.s_[2:9, 1], np.s_[[5, 1, 5]], np.s_[..., 4], np.s_[3, ::-1, 7:2:-2], np.s_[11]]
    for t in range(12):
        np.testing.assert_array_equal(ds[t, 1], array[t, 1])
        other = others[t % len(others)]
        np.testing.assert_array_equal(ds[other], array[other])
        np.testing.assert_array_equal(ds[t, 1, 5], array[t, 1, 5])


def test_frames_into_a_buffer_with_other_strides(recording):
    folder, array = recording
    ds = SplitDataset(folder)
    buffer = np.zeros((16, 20), dtype=np.uint16).T  # Fortran order: other strides than a plane
    for t in (0, 5, 11):
        assert ds.read((t, 2), out=buffer) is buffer
        np.testing.assert_array_equal(buffer, array[t, 2])


def test_files_chunked_differently_get_their_own_plans(recording, tmp_path):
    folder, array = recording
    rewrite_block(folder / "0001.h5", array[4:8], (2, 3, 7, 5), "gzip")
    ds = SplitDataset(folder)
    for t in range(12):
        np.testing.assert_array_equal(ds[t, 1], array[t, 1])
        np.testing.assert_array_equal(ds[t, 2, 9:14], array[t, 2, 9:14])


def test_a_file_replaced_between_frames_is_read_with_its_new_chunks(recording):
    folder, array = recording
    ds = SplitDataset(folder)
    for t in range(12):
        ds[t, 0]
    changed = array[4:8] + 1
    rewrite_block(folder / "0001.h5", changed, (4, 1, 5, 4))
    for t in range(12):
        expected = changed[t - 4, 0] if 4 <= t < 8 else array[t, 0]
        np.testing.assert_array_equal(ds[t, 0], expected)


def test_a_file_rewritten_in_place_between_frames_is_read_anew(recording):
    """Same name, same inode, same chunking: the size or time changes, the data too."""
    folder, array = recording
    ds = SplitDataset(folder)
    np.testing.assert_array_equal(ds[5, 2], array[5, 2])
    ds.layout(1)  # the whole chunk index read: no h5py handle of ours stays open on the file
    changed = array[4:8] + 7
    path = folder / "0001.h5"
    with h5py.File(path, "r+") as handle:
        handle["stack_4D"][...] = changed
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    np.testing.assert_array_equal(ds[5, 2], changed[1, 2])


def test_a_file_replaced_by_a_wrong_block_is_refused_on_the_frame_path(recording):
    folder, array = recording
    ds = SplitDataset(folder)
    ds[5, 0]
    rewrite_block(folder / "0001.h5", array[4:6], (1, 1, 10, 16))  # two time points, not four
    with pytest.raises(BlockFileError, match="0001.h5"):
        ds[5, 0]


def test_the_plans_kept_are_bounded(recording, monkeypatch):
    monkeypatch.setattr(reader, "PLANS_IN_BLOCK_KEPT", 64)
    folder, array = recording
    ds = SplitDataset(folder)
    for n in range(64 + 10):  # every one another row or column start
        row, column = divmod(n, 16)
        np.testing.assert_array_equal(ds[0, 0, row, column:], array[0, 0, row, column:])
    assert 0 < len(ds._grid._plans_in_block) <= 64


def test_the_bytes_of_the_plans_kept_are_bounded(recording, monkeypatch):
    monkeypatch.setattr(reader, "PLANS_IN_BLOCK_BYTES", 20_000)
    folder, array = recording
    ds = SplitDataset(folder)
    for t in range(12):
        for z in range(3):
            for start in range(6):
                np.testing.assert_array_equal(ds[t, z, start:], array[t, z, start:])
    plans = {id(plan): plan for plan in ds._grid._plans_in_block.values()}
    assert 0 < sum(plan.nbytes for plan in plans.values()) <= 20_000
    assert len(plans) < 3 * 6


def test_every_plane_of_a_large_block_is_planned_once(tmp_path, monkeypatch):
    """A viewer jumping between the 10 x 60 cropped planes of a block: each is planned on its
    first read only (a bound of 256 keys planned most reads of a 10 x 20 block again, a third
    of a plane's time); the plain planes share one plan, made for their place in their
    chunks (one plane each)."""
    array = np.random.default_rng(5).integers(0, 999, (20, 60, 4, 6)).astype(np.uint16)
    folder = write_split_dataset(tmp_path / "ds", array, (10, 60, 4, 6), (1, 1, 4, 6))
    planned = []

    def counting(*args):
        planned.append(args[0])
        return plan_in_block(*args)

    monkeypatch.setattr(reader, "plan_in_block", counting)
    ds = SplitDataset(folder)
    keys = [(int(t), int(z)) for t in range(20) for z in range(60)]
    for t, z in np.random.default_rng(1).permutation(keys * 2):
        np.testing.assert_array_equal(ds[t, z, 1:], array[t, z, 1:])
    assert len(planned) == 10 * 60
    for t, z in np.random.default_rng(2).permutation(keys):
        np.testing.assert_array_equal(ds[t, z], array[t, z])
    assert len(planned) == 10 * 60 + 1


# --- the checked context kept per file for a reused plan ----------------------------------------


def test_a_frame_read_again_goes_through_its_kept_context(recording):
    """The second read of a plane in a file goes through the context kept from the first:
    into fresh arrays, into buffers of other strides, with new axes, for every block."""
    folder, array = recording
    ds = SplitDataset(folder)
    buffer = np.zeros((16, 20), dtype=np.uint16).T
    for _ in range(3):
        for t in range(12):
            for z in range(3):
                np.testing.assert_array_equal(ds[t, z], array[t, z])
                assert ds.read((t, z), out=buffer) is buffer
                np.testing.assert_array_equal(buffer, array[t, z])
                np.testing.assert_array_equal(ds[t, z, None, 4:], array[t, z, None, 4:])
    entries = [ds._cache.pin(path, ds._grid.key) for path in ds._grid.files]
    try:  # 4 time points x 3 planes x 2 selections per file
        assert [len(e.read_templates) for e in entries] == [24, 24, 24]
    finally:
        for entry in entries:
            ds._cache.unpin(entry)


def test_every_plane_of_a_block_keeps_its_context(tmp_path, monkeypatch):
    """A viewer jumping between the 10 x 20 cropped planes of each block: once each has been
    read, no read makes a context again (32 kept per file made one on most reads); and each
    plane's plan is checked once, on the first file that reads it: the other file gets that
    context rebound to it. The plain planes share one plan: one checked context in all, one
    kept per file."""
    array = np.random.default_rng(6).integers(0, 999, (20, 20, 4, 6)).astype(np.uint16)
    folder = write_split_dataset(tmp_path / "ds", array, (10, 20, 4, 6), (1, 1, 2, 6))
    made, asked = [], []
    real = reader._chunk_reader.ReadContext
    real_new_context = reader.BlockGrid.new_context

    def counting(*args):
        made.append(args[0])
        return real(*args)

    def counting_new_context(grid, plan, *args):
        asked.append(plan)
        return real_new_context(grid, plan, *args)

    monkeypatch.setattr(reader._chunk_reader, "ReadContext", counting)
    monkeypatch.setattr(reader.BlockGrid, "new_context", counting_new_context)
    ds = SplitDataset(folder)
    keys = [(t, z, slice(1, None)) for t in range(20) for z in range(20)]
    order = np.random.default_rng(2).permutation(len(keys))
    for i in order:
        np.testing.assert_array_equal(ds[keys[i]], array[keys[i]])
    assert len(asked) == len(keys)  # a context per plane and file...
    assert len(made) == len(keys) // 2  # ...checked once per plane, rebound for the other file
    for i in order[::-1]:
        np.testing.assert_array_equal(ds[keys[i]], array[keys[i]])
    assert len(asked) == len(keys)  # every one through its kept context
    assert ds._cache.templates_kept() == len(keys)
    for i in order:
        np.testing.assert_array_equal(ds[keys[i][:2]], array[keys[i][:2]])
    assert len(asked) == len(keys) + 2  # the plain planes: one context per file...
    assert len(made) == len(keys) // 2 + 1  # ...one checked, rebound to the other file
    assert ds._cache.templates_kept() == len(keys) + 2


def test_a_context_is_rebound_only_to_files_of_its_chunk_geometry(tmp_path):
    """Blocks whose chunk shape is the same but whose chunk grid is not (a short last block),
    or whose item size differs, get a context checked for them; a file of the same geometry
    another file's, with its own descriptor, tables and mapping."""
    array = np.random.default_rng(9).integers(0, 60000, (10, 3, 8, 6)).astype(np.uint16)
    folder = write_split_dataset(tmp_path / "ds", array, (4, 3, 8, 6), (1, 1, 4, 6))
    ds = SplitDataset(folder)
    grid = ds._grid
    for block in range(3):
        ds.layout(block)  # every chunk indexed (a read looks up those it needs first)
    entries = [ds._cache.pin(path, grid.key) for path in grid.files]
    try:
        plan = grid.plan_in_block((1, 2), entries[0].layout.chunk_shape)
        out = np.empty((8, 6), np.uint16)
        first = grid.new_context(plan, out, [entries[0]], False)
        first.run(1)
        assert first.error_code == 0
        np.testing.assert_array_equal(out, array[1, 2])
        template = first.as_template()
        again = template.rebound([entries[1]], out)  # block 1: 4 time points, same grid
        again.run(1)
        assert again.error_code == 0
        np.testing.assert_array_equal(out, array[5, 2])
        assert template.rebound([entries[2]], out) is None  # block 2: 2 time points
        assert template.rebound([entries[1], entries[2]], out) is None  # another file count
        assert template.rebound([entries[1]], np.empty((8, 5), np.uint16)) is None
        assert template.rebound([entries[1]], np.empty((8, 6), np.uint32)) is None
        through_grid = grid.new_context(plan, out, [entries[2]], False)  # checked, not rebound
        through_grid.run(1)
        assert through_grid.error_code == 0
        np.testing.assert_array_equal(out, array[9, 2])
    finally:
        for entry in entries:
            ds._cache.unpin(entry)
    for t in range(10):
        for z in range(3):
            np.testing.assert_array_equal(ds[t, z], array[t, z])


def test_the_contexts_kept_are_bounded_least_recently_read_files_first(recording, monkeypatch):
    monkeypatch.setattr(file_cache, "READ_TEMPLATES_KEPT", 30)
    monkeypatch.setattr(file_cache, "READ_TEMPLATES_PER_FILE", 20)
    folder, array = recording
    ds = SplitDataset(folder)
    for t in range(12):  # 12 planes per file, 3 files
        for z in range(3):
            np.testing.assert_array_equal(ds[t, z, 1:], array[t, z, 1:])
            assert ds._cache.templates_kept() <= 30
    entries = [ds._cache.pin(path, ds._grid.key) for path in ds._grid.files]
    try:  # the last file read keeps all of its own
        assert len(entries[-1].read_templates) == 12
        assert len(entries[0].read_templates) < 12
    finally:
        for entry in entries:
            ds._cache.unpin(entry)
    for _ in range(2):  # and reads stay right as they are dropped and kept again
        for t in range(12):
            np.testing.assert_array_equal(ds[t, 1, 3:], array[t, 1, 3:])
            assert ds._cache.templates_kept() <= 30


@contextmanager
def context_kept_for_block_0(ds: SplitDataset):
    """After ``ds[1, 2]``: block 0's file (pinned meanwhile) and the one context it keeps."""
    ds[1, 2]
    entry = ds._cache.pin(ds._grid.files[0], ds._grid.key)
    try:
        ((_, template),) = entry.read_templates.values()
        yield entry, template
    finally:
        ds._cache.unpin(entry)


def test_a_kept_context_is_only_a_template(recording):
    folder, array = recording
    ds = SplitDataset(folder)
    with context_kept_for_block_0(ds) as (entry, template):
        with pytest.raises(ValueError, match="template has no output"):
            template.run(1)
        assert template.for_output(np.empty((20, 17), np.uint16)) is None  # another shape
        assert template.for_output(np.empty((20, 16), np.uint32)) is None  # another item size
        read_only = np.empty((20, 16), np.uint16)
        read_only.flags.writeable = False
        with pytest.raises(ValueError, match="read-only"):
            template.for_output(read_only)
        out = np.zeros((20, 16), np.uint16)
        context = template.run_into(out, 1, False, False, True, True, (1, 2, 0, 0))
        assert context.error_code == 0
        np.testing.assert_array_equal(out, array[1, 2])  # the plan of every plane, on (1, 2)
        entry.layout.lazy.ensure_all()
        context = template.for_output(out)
        context.run(1)
        assert context.error_code == 0
        np.testing.assert_array_equal(out, array[0, 0])  # at no offset: the first chunk's


def test_a_context_kept_by_plain_frames_serves_other_reads_of_its_plan(recording):
    """The plain path keeps the context of a plane's plan and runs it on the chunk each frame
    is in, looking up only those chunks in a lazily indexed file; a read by the general path
    that finds that context for the same plan (the first plane of each chunk, into ``out=``)
    looks up its own chunks."""
    folder, array = recording
    ds = SplitDataset(folder)
    buffer = np.empty((20, 16), np.uint16)
    for t in (1, 5, 9):
        np.testing.assert_array_equal(ds[t, 2], array[t, 2])
        block_start = t - t % 4
        assert ds.read((block_start, 0), out=buffer) is buffer
        np.testing.assert_array_equal(buffer, array[block_start, 0])


def test_a_chunk_offset_outside_a_files_grid_is_refused(recording):
    """The offset a plain plane's plan runs at is checked against the file's chunk grid: a
    malformed one never reads outside it."""
    folder, array = recording
    ds = SplitDataset(folder)
    with context_kept_for_block_0(ds) as (entry, template):
        out = np.zeros((20, 16), np.uint16)
        for chunk in [(4, 0, 0, 0), (0, 3, 0, 0), (0, 0, 1, 0), (-1, 0, 0, 0), (0, 0, 0)]:
            with pytest.raises(ValueError, match="chunk_base"):
                template.run_into(out, 1, False, False, True, True, chunk)
            with pytest.raises(ValueError, match="chunk_base"):
                template.chunks_of_file(0, chunk)
        assert not out.any()
        entry.layout.lazy.ensure_all()
        context = template.run_into(out, 1, False, False, True, True, (3, 2, 0, 0))
        assert context.error_code == 0
        np.testing.assert_array_equal(out, array[3, 2])  # the last chunk of the grid


def corrupt_in_place(ds: SplitDataset, chunk_position: tuple[int, ...]) -> None:
    """Flip the last stored byte of a chunk of block 0, the file's size and times put back:
    the file cache sees the same file."""
    layout = ds.layout(0)
    chunk = int(np.ravel_multi_index(chunk_position, layout.chunk_grid))
    path = ds.root / "0000.h5"
    stat = path.stat()
    with open(path, "r+b") as handle:
        handle.seek(int(layout.chunk_offset[chunk]) + int(layout.chunk_size[chunk]) - 1)
        last = handle.read(1)
        handle.seek(-1, os.SEEK_CUR)
        handle.write(bytes([last[0] ^ 0xFF]))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def test_a_context_kept_without_checksums_does_not_serve_a_checked_read(tmp_path):
    """A chunk corrupted in place, the file's size and time put back (the cache sees the same
    file): a read with checksums must check it, though an unchecked context of that plan is
    kept."""
    from split_dataset import ChunkReadError, save_to_split_dataset

    array = np.random.default_rng(4).integers(0, 60000, (4, 2, 32, 32)).astype(np.uint16)
    save_to_split_dataset(array, tmp_path / "ds", block_size=(2, 2, 32, 32))
    ds = SplitDataset(tmp_path / "ds")
    np.testing.assert_array_equal(ds[1, 1], array[1, 1])
    np.testing.assert_array_equal(ds[1, 1], array[1, 1])  # through the kept context
    corrupt_in_place(ds, (1, 1, 0, 0))
    ds.verify_checksums = True
    with pytest.raises(ChunkReadError, match="0000.h5.*checksum mismatch"):
        ds[1, 1]


# --- the plain-key path: ds[t, z] parsed in compiled code -------------------------------------


@st.composite
def grids_and_integer_keys(draw):
    """A block grid and a key of integers for some leading axes: in range or not, negative,
    Python's or NumPy's of several widths."""
    shape, block, padding, grid = draw_block_grid(draw, max_ndim=4)
    n = draw(st.integers(0, len(shape)))
    key = []
    for size in shape[:n]:
        index = draw(st.integers(-size - 2, size + 1))
        kind = draw(st.sampled_from([int, np.int64, np.int16, np.uint32]))
        if kind is np.uint32 and index < 0:
            kind = int
        if kind is np.int16:
            index = max(min(index, 2**15 - 1), -(2**15))
        key.append(kind(index))
    # then whole slices, as napari sends for the axes it shows: sometimes one too many
    wholes = (slice(None),) * draw(st.integers(0, len(shape) - n + 1))
    return tuple(shape), tuple(block), grid, tuple(key), wholes


@given(case=grids_and_integer_keys(), as_tuple=st.booleans())
def test_a_plain_key_finds_the_block_and_offsets_of_the_general_rule(case, as_tuple):
    """``plain_in_block`` answers exactly for integers in range on fewer than all axes (then
    whole slices, no more than the axes) whose remaining axes are one block each, with the
    block and offsets ``block_local_selection`` finds for the same read; for anything else it
    answers None and the general path reads."""
    shape, block, grid, key, wholes = case
    items = key + wholes
    spelled = items[0] if len(items) == 1 and not as_tuple else items
    got = plain_in_block(spelled, shape, block, grid)
    in_range = all(-s <= int(i) < s for i, s in zip(key, shape))
    expected_to_answer = (
        0 < len(key) < len(shape)
        and len(key + wholes) <= len(shape)
        and in_range
        and all(g == 1 for g in grid[len(key) :])
    )
    if not expected_to_answer:
        assert got is None
        return
    terms = tuple(IntTerm(int(i) % s) for i, s in zip(key, shape)) + tuple(
        SliceTerm(0, 1, s) for s in shape[len(key) :]
    )
    linear, local_terms = block_local_selection(terms, block, grid)
    assert got == (linear, tuple(t.index for t in local_terms[: len(key)]))
    assert all(type(i) is int for i in got[1])


def test_bools_floats_and_other_keys_are_not_plain():
    shape, block, grid = (6, 2, 4), (2, 2, 4), (3, 1, 1)
    others = [True, (np.True_, 0), 1.0, (1, None), ..., [1], np.array(1), (1, ...)]
    others += [(1, slice(0, None)), (1, slice(None, None, 1)), (1, slice(None), 2), (slice(None),)]
    others += [(1, 1, slice(None), slice(None)), (0, slice(None), slice(None), slice(None))]
    for key in others:
        assert plain_in_block(key, shape, block, grid) is None, key
    assert plain_in_block((5, -1), shape, block, grid) == (2, (1, 1))
    # whole slices after the integers, as napari sends for the axes it shows
    assert plain_in_block((5, slice(None), slice(None)), shape, block, grid) == (2, (1,))
    assert plain_in_block((4, 1, slice(None)), shape, block, grid) == (2, (0, 1))


@pytest.fixture
def plain_reads(monkeypatch):
    """Counts the reads the plain-key path made (the rest went the general way)."""
    from split_dataset import dataset, reader

    made = []

    def counting(*args, **kwargs):
        frame = reader.read_plain(*args, **kwargs)
        made.append(frame is not None)
        return frame

    monkeypatch.setattr(dataset, "read_plain", counting)
    return made


@pytest.mark.parametrize("chunks", [(1, 1, 6, 10), (3, 2, 5, 10), (4, 3, 12, 10)])
@pytest.mark.parametrize("padding", [None, (2, 0, 0, 0)])
def test_plain_keys_read_what_numpy_returns(tmp_path, plain_reads, padding, chunks):
    """Every spelling of a plain key, on blocks of 4 time points (the last block longer with
    the 0.4.x padding), equals NumPy's result, and went through the plain path: with chunks
    of one plane, or of several along time and z (the plan made for a plane's place inside
    its chunk, run on the chunk it is in; partial chunks at the edges of the grid)."""
    array = np.random.default_rng(5).integers(0, 60000, (14, 3, 12, 10)).astype(np.uint16)
    folder = write_split_dataset(tmp_path / "ds", array, (4, 3, 12, 10), chunks, padding=padding)
    ds = SplitDataset(folder)
    keys = [5, -1, np.int64(13), (np.uint8(2),), (3, 2), (-14, -3), (np.int32(12), np.int64(1))]
    keys += [(t, z) for t in range(14) for z in range(3)] + [(t, 1, 4) for t in (0, 7, 13)]
    keys += [(6, 2, slice(None), slice(None)), (np.int16(-2), slice(None)), (9, 0, 3, slice(None))]
    for key in keys:
        got = ds[key]
        np.testing.assert_array_equal(got, array[key], err_msg=str(key))
        assert got.shape == array[key].shape and got.dtype == array.dtype
        assert got.flags.c_contiguous and got.flags.writeable
    assert plain_reads == [True] * len(keys)


def test_keys_the_plain_path_hands_over_read_and_fail_as_before(tmp_path, plain_reads):
    array = np.arange(4 * 3 * 5 * 6, dtype=np.uint16).reshape(4, 3, 5, 6)
    folder = write_split_dataset(tmp_path / "ds", array, (2, 1, 5, 6))  # blocks along z too
    ds = SplitDataset(folder)
    for key in [(1, 2), 3, (True,), (1, 2, 3, 4), np.s_[1, ..., 2]]:
        np.testing.assert_array_equal(ds[key], array[key])
    # ds[3]: z is split into blocks, so the axes past the key are not one block; a bool is an
    # advanced index; an integer on every axis gives NumPy's scalar; an Ellipsis is no integer
    assert plain_reads == [True, False, False, False, False]
    for key, error in [((4, 0), IndexError), ((0, -4), IndexError), ((1.5,), IndexError)]:
        with pytest.raises(error) as raised:
            ds[key]
        with pytest.raises(error) as numpy_raised:
            array[key]
        assert type(raised.value) is type(numpy_raised.value)
    with pytest.raises(IndexError, match="index 4 is out of bounds for axis 0 with size 4"):
        ds[4, 0]


def test_a_profiled_plain_read_is_counted_by_the_general_path(recording):
    from split_dataset import profile_reads

    folder, array = recording
    ds = SplitDataset(folder)
    with profile_reads() as profile:
        np.testing.assert_array_equal(ds[5, 1], array[5, 1])
        np.testing.assert_array_equal(ds[-1], array[-1])
    assert profile.reads == 2


# --- opening, then the first plane --------------------------------------------------------------


def _h5py_opens(monkeypatch) -> list[str]:
    """The names of the files h5py opens from now on (``h5f.open``, which ``File`` calls too),
    in order."""
    names: list[str] = []
    open_file = h5py.h5f.open

    def counting_open(name, *args, **kwargs):
        names.append(os.path.basename(os.fsdecode(name)))
        return open_file(name, *args, **kwargs)

    monkeypatch.setattr(h5py.h5f, "open", counting_open)
    return names


@pytest.mark.parametrize("compression", ["blosc", "raw"])
def test_opening_then_the_first_plane_opens_the_first_block_once(
    tmp_path, monkeypatch, compression
):
    """Opening reads the first block's key, shape and dtype from the layout its first read
    uses, kept in the file cache: showing the first plane opens that file with h5py once."""
    array = np.arange(4 * 3 * 16 * 8, dtype=np.uint16).reshape(4, 3, 16, 8)
    folder = write_split_dataset(tmp_path / "ds", array, (2, 3, 16, 8), compression=compression)
    opened = _h5py_opens(monkeypatch)
    with SplitDataset(folder) as ds:
        np.testing.assert_array_equal(ds[0, 1], array[0, 1])
    assert opened == ["0000.h5", "0001.h5"]  # the last block: probed at opening for its shape
    one = write_split_dataset(tmp_path / "one", array, (4, 3, 16, 8), compression=compression)
    opened.clear()
    with SplitDataset(one) as ds:  # a single block is first and last
        np.testing.assert_array_equal(ds[3], array[3])
    assert opened == ["0000.h5"]


def test_a_first_block_replaced_after_opening_is_read_as_it_is_now(tmp_path):
    """The first block's entry made at opening is checked like any other before a read."""
    array = np.arange(4 * 3 * 16 * 8, dtype=np.uint16).reshape(4, 3, 16, 8)
    folder = write_split_dataset(tmp_path / "ds", array, (2, 3, 16, 8), compression="blosc")
    replaced = array[::-1].copy()
    write_split_dataset(tmp_path / "new", replaced, (2, 3, 16, 8), compression="blosc")
    with SplitDataset(folder) as ds:
        (tmp_path / "new" / "0000.h5").replace(folder / "0000.h5")
        np.testing.assert_array_equal(ds[0, 1], replaced[0, 1])
        np.testing.assert_array_equal(ds[1], replaced[1])


def test_a_known_key_is_opened_without_listing_the_file(tmp_path, monkeypatch):
    """Opening probes the last block, and reads every block's layout, for the key the first
    block uses without listing the file's names; any other case (a group of that name, no such
    key, not HDF5) lists them, which finds the stack or names the file at fault."""
    from split_dataset import file_layout
    from split_dataset.file_layout import probe_stack, read_file_layout

    good = tmp_path / "0001.h5"
    with h5py.File(good, "w") as handle:
        handle.create_group("stack")
        handle["stack_4D"] = np.arange(120, dtype=np.uint16).reshape(2, 3, 4, 5)
    bad = tmp_path / "0002.h5"
    bad.write_bytes(b"not an HDF5 file")
    listed: list[str] = []
    list_names = file_layout.stack_key

    def counting_stack_key(file_id, path):
        listed.append(Path(path).name)
        return list_names(file_id, path)

    monkeypatch.setattr(file_layout, "stack_key", counting_stack_key)
    summary = probe_stack(good, "stack_4D")
    assert (summary.key, summary.shape, summary.dtype) == ("stack_4D", (2, 3, 4, 5), np.uint16)
    layout = read_file_layout(good, "stack_4D")
    assert (layout.key, layout.shape, layout.contiguous) == ("stack_4D", (2, 3, 4, 5), True)
    assert listed == []
    for key in ("stack", "missing", None):
        assert probe_stack(good, key).key == "stack_4D"
        assert read_file_layout(good, key).key == "stack_4D"
    assert listed == ["0001.h5"] * 6
    for probe in (probe_stack, read_file_layout):
        with pytest.raises(BlockFileError, match="0002.h5.*not a readable HDF5 file"):
            probe(bad, "stack_4D")


# --- a frame read again: its kept context, straight away ----------------------------------------


@pytest.fixture
def general_reads(monkeypatch):
    """The reads that went through ``_read_in_block`` (planning, checking, making or finding a
    context): the block index of each."""
    made = []
    real = reader._read_in_block

    def counting(grid, cache, linear, *args, **kwargs):
        made.append(linear)
        return real(grid, cache, linear, *args, **kwargs)

    monkeypatch.setattr(reader, "_read_in_block", counting)
    return made


def test_a_frame_runs_a_kept_context_and_nothing_else(recording, general_reads, monkeypatch):
    """A viewer's frame, read for the first time or again, in the foreground or by prefetch,
    in any order, runs the checked context kept for its plan and file (``_run_kept``) with no
    general step. Chunks of one plane: every frame has the same plan, a context per file
    (checked on the first file, rebound to the next), made on the file's first frame."""
    folder, array = recording
    ds = SplitDataset(folder, threads=2)
    made = []
    real_new_context = reader.BlockGrid.new_context

    def counting_new_context(grid, plan, *args):
        made.append(plan)
        return real_new_context(grid, plan, *args)

    monkeypatch.setattr(reader.BlockGrid, "new_context", counting_new_context)
    keys = [(t, z) for t in range(12) for z in range(3)]
    for key in keys:
        np.testing.assert_array_equal(ds[key], array[key])
    assert general_reads == []
    assert len(made) == 3 == ds._cache.templates_kept()  # one plan: a context per file
    for key in keys[::-1]:
        np.testing.assert_array_equal(ds[key], array[key])
    for key in keys:
        np.testing.assert_array_equal(ds.prefetch(key).result(), array[key])
        np.testing.assert_array_equal(ds[key], array[key])  # the prefetched frame
    ds.threads = 1
    for key in keys[5:9]:
        np.testing.assert_array_equal(ds[key], array[key])
    assert general_reads == []
    assert len(made) == 3


def test_a_kept_frame_of_a_filter_only_h5py_decodes_is_right(tmp_path, general_reads):
    """Chunks with a Fletcher-32 checksum: HDF5 decodes them; a frame read again through its
    kept context still gets them from h5py."""
    array = np.random.default_rng(8).integers(0, 60000, (6, 2, 12, 10)).astype(np.uint16)
    folder = write_split_dataset(tmp_path / "ds", array, (3, 2, 12, 10), compression="contiguous")
    for n in range(2):
        with h5py.File(folder / f"{n:04d}.h5", "w") as handle:
            handle.create_dataset(
                "stack_4D", data=array[3 * n : 3 * n + 3], chunks=(1, 1, 6, 10), fletcher32=True
            )
    ds = SplitDataset(folder)
    assert ds.layout(0).codec == Codec.H5PY
    for _ in range(3):
        for t in range(6):
            np.testing.assert_array_equal(ds[t, 1], array[t, 1])
    assert general_reads == []


def test_a_chunk_corrupted_under_a_kept_checked_context_is_named(tmp_path, general_reads):
    """A chunk corrupted in place, the file's size and time put back (the cache sees the same
    file): the frame's kept context, with checksums on, finds the mismatch and names the
    file."""
    from split_dataset import ChunkReadError, save_to_split_dataset

    array = np.random.default_rng(4).integers(0, 60000, (4, 2, 32, 32)).astype(np.uint16)
    save_to_split_dataset(array, tmp_path / "ds", block_size=(2, 2, 32, 32))
    ds = SplitDataset(tmp_path / "ds", verify_checksums=True)
    for _ in range(2):
        np.testing.assert_array_equal(ds[1, 1], array[1, 1])
    assert general_reads == []
    corrupt_in_place(ds, (1, 1, 0, 0))
    with pytest.raises(ChunkReadError, match="0000.h5.*checksum mismatch"):
        ds[1, 1]
    assert general_reads == []
