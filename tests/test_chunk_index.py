"""Chunk indexes filled in as reads need them: same results as a full index, at any moment."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from datasets import check_reads_from_threads, write_split_dataset

from split_dataset import SplitDataset
from split_dataset.chunk_index import LOOKUPS_PER_READ, UNKNOWN


@pytest.fixture
def many_chunks(tmp_path):
    """Two files of 6 x 4 x (8, 16) planes, one chunk per 4 rows: 6 * 4 * 2 = 48 chunks each."""
    rng = np.random.default_rng(11)
    array = rng.integers(0, 5000, (12, 4, 8, 16)).astype(np.uint16)
    folder = write_split_dataset(tmp_path / "ds", array, (6, 4, 8, 16), (1, 1, 4, 16), "blosc")
    return folder, array


def _entry(ds, block):
    with ds._cache.acquire([ds._grid.files[block]], ds.data_key) as (entry,):
        return entry


def test_a_plane_looks_up_only_its_chunks(many_chunks):
    folder, array = many_chunks
    ds = SplitDataset(folder)
    np.testing.assert_array_equal(ds[7, 2], array[7, 2])
    layout = _entry(ds, 1).layout
    assert layout.lazy is not None and not layout.lazy.complete
    known = np.flatnonzero(layout.chunk_offset != UNKNOWN)
    assert known.size == 2  # the plane's two chunks, nothing else
    np.testing.assert_array_equal(ds[1:9:3, :, 5], array[1:9:3, :, 5])
    assert _entry(ds, 0).layout.chunk_offset[0] == UNKNOWN  # (0, 0, 0) was never needed


def test_a_bulk_read_indexes_the_whole_file_at_once(many_chunks):
    folder, array = many_chunks
    ds = SplitDataset(folder)
    ds[0, 0]
    np.testing.assert_array_equal(ds[:], array)  # needs more than LOOKUPS_PER_READ chunks
    for block in (0, 1):
        layout = _entry(ds, block).layout
        assert layout.lazy.complete and not np.any(layout.chunk_offset == UNKNOWN)


def test_public_layout_is_always_complete(many_chunks):
    folder, _ = many_chunks
    ds = SplitDataset(folder)
    ds[0, 0]
    layout = ds.layout(0)
    with h5py.File(folder / "0000.h5", "r") as handle:
        expected = []
        handle["stack_4D"].id.chunk_iter(lambda info: expected.append(info.byte_offset))
    assert sorted(layout.chunk_offset.tolist()) == sorted(expected)


def test_many_single_lookups_switch_to_a_full_index(many_chunks):
    folder, array = many_chunks
    ds = SplitDataset(folder)
    for i in range(7):  # distinct planes of file 0, 2 chunks each: the 7th exceeds 48 / 4
        np.testing.assert_array_equal(ds[i % 6, i % 4], array[i % 6, i % 4])
    assert _entry(ds, 0).layout.lazy.complete
    assert LOOKUPS_PER_READ < 48


def test_unwritten_chunks_found_by_lookup_read_as_zeros(tmp_path):
    folder = tmp_path / "ds"
    folder.mkdir()
    with h5py.File(folder / "0000.h5", "w") as handle:
        dataset = handle.create_dataset("stack_3D", shape=(40, 8, 8), chunks=(1, 8, 8),
                                        dtype="u2")
        dataset[5] = 7  # every other chunk is never written
    (folder / "stack_metadata.json").write_text(
        '{"shape_full": [40, 8, 8], "shape_block": [40, 8, 8]}'
    )
    ds = SplitDataset(folder)
    np.testing.assert_array_equal(ds[5], np.full((8, 8), 7, np.uint16))
    np.testing.assert_array_equal(ds[6], np.zeros((8, 8), np.uint16))
    assert not _entry(ds, 0).layout.lazy.complete


def test_threads_reading_a_lazily_indexed_file_agree_with_numpy(many_chunks):
    folder, array = many_chunks

    def random_key(rng):
        return (int(rng.integers(12)), int(rng.integers(4)), slice(int(rng.integers(8)), None))

    check_reads_from_threads(SplitDataset(folder), array, random_key, n_threads=6, reads=40,
                             threads=2)


def test_closing_releases_the_files_of_partial_indexes(many_chunks):
    folder, array = many_chunks
    ds = SplitDataset(folder)
    ds[3, 1]
    lazy = _entry(ds, 0).layout.lazy
    ds.close()
    assert lazy._handle is None  # the h5py handle kept for lookups is closed
    np.testing.assert_array_equal(ds[3, 1], array[3, 1])  # reopens and indexes again


def test_a_frame_whose_chunks_are_known_looks_nothing_up_and_a_new_one_does(many_chunks):
    """The next frame of a file whose chunks were looked up takes no lock and no lookup; a
    frame that needs one more chunk (its other chunk known) still looks that one up."""
    folder, array = many_chunks
    ds = SplitDataset(folder)
    np.testing.assert_array_equal(ds[7, 2], array[7, 2])
    lazy = _entry(ds, 1).layout.lazy
    looked_up = []
    real_look_up = lazy._look_up
    lazy._look_up = lambda dataset_id, linear: (
        looked_up.append(linear),
        real_look_up(dataset_id, linear),
    )

    class NoLock:
        def __enter__(self):
            raise AssertionError("the lock was taken for chunks already known")

        def __exit__(self, *exc_info):
            return False

    lock, lazy._lock = lazy._lock, NoLock()
    np.testing.assert_array_equal(ds[7, 2], array[7, 2])
    lazy._lock = lock
    assert looked_up == []
    np.testing.assert_array_equal(ds[7, 2, 2:6], array[7, 2, 2:6])  # rows of both chunks
    assert looked_up == []
    np.testing.assert_array_equal(ds[7, 3, 0], array[7, 3, 0])  # the first chunk of z=3
    assert len(looked_up) == 1
    np.testing.assert_array_equal(ds[7, 3, 3:5], array[7, 3, 3:5])  # that one and the next
    assert len(looked_up) == 2 and not lazy.complete


def test_only_files_with_chunks_not_looked_up_are_asked(many_chunks):
    """A read across files asks a lazily indexed file for its chunks only while one of the
    chunks it reads there is unknown (``ReadContext.files_to_index``), and never misses one:
    values equal NumPy's on every read."""
    folder, array = many_chunks
    ds = SplitDataset(folder)
    np.testing.assert_array_equal(ds[8, 1], array[8, 1])  # file 1 opened and partly indexed
    asked = []
    for block in (0, 1):
        lazy = _entry(ds, block).layout.lazy
        real_ensure = lazy.ensure
        lazy.ensure = lambda chunks, block=block, real=real_ensure: (
            asked.append(block),
            real(chunks),
        )
    np.testing.assert_array_equal(ds[:, 2, :3], array[:, 2, :3])  # both files, first chunks
    assert sorted(asked) == [0, 1]
    asked.clear()
    np.testing.assert_array_equal(ds[::-1, 2, 1:4], array[::-1, 2, 1:4])  # the same chunks
    assert asked == []
    np.testing.assert_array_equal(ds[3:9, 2, 5], array[3:9, 2, 5])  # second chunks
    assert sorted(asked) == [0, 1]
    asked.clear()
    np.testing.assert_array_equal(ds[8, 1], array[8, 1])  # file 1's known plane
    np.testing.assert_array_equal(ds[1, 1, 2:6], array[1, 1, 2:6])  # file 0: new chunks
    assert asked == [0]


def test_files_to_index_follows_the_chunk_offset(many_chunks):
    """A plan run on another chunk (``chunk_base``) reports the files where that chunk is
    not looked up yet, not those of the plan's own chunk."""
    from split_dataset._ext._chunk_reader import ReadContext
    from split_dataset.planning import IntTerm, SliceTerm, plan_in_block

    folder, array = many_chunks
    ds = SplitDataset(folder)
    np.testing.assert_array_equal(ds[0, 0, :4], array[0, 0, :4])  # chunk (0, 0, 0, 0) of file 0
    entry = _entry(ds, 0)
    terms = (IntTerm(0), IntTerm(0), SliceTerm(0, 1, 4), SliceTerm(0, 1, 16))
    plan = plan_in_block(terms, (1, 1, 4, 16))
    out = np.empty((4, 16), np.uint16)
    context = ReadContext(plan, out, [entry])
    assert context.files_to_index() == []
    assert context.files_to_index((0, 0, 1, 0)) == [0]  # rows 4-7: not looked up
    assert context.files_to_index((5, 3, 1, 0)) == [0]
    entry.layout.lazy.ensure(context.chunks_of_file(0, (0, 0, 1, 0)))
    assert context.files_to_index((0, 0, 1, 0)) == []
