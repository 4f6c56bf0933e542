"""Bad input gives a clear error naming the folder, file or chunk at fault, never a crash."""

from __future__ import annotations

import json
import os
import shutil

import h5py
import numpy as np
import pytest
from datasets import write_split_dataset

from split_dataset import (
    BlockFileError,
    ChunkReadError,
    MetadataError,
    NoStackError,
    NotASplitDatasetError,
    SplitDataset,
    SplitDatasetError,
)


@pytest.fixture
def array():
    return np.arange(6 * 4 * 20 * 16, dtype=np.uint16).reshape(6, 4, 20, 16)


@pytest.fixture
def folder(tmp_path, array):
    return write_split_dataset(tmp_path / "ds", array, (2, 4, 20, 16), (1, 1, 10, 16), "blosc")


def test_missing_folder(tmp_path):
    with pytest.raises(NotASplitDatasetError, match="not a folder"):
        SplitDataset(tmp_path / "nowhere")


def test_empty_folder(tmp_path):
    with pytest.raises(NotASplitDatasetError, match="not a split dataset"):
        SplitDataset(tmp_path)


def test_malformed_json(folder):
    (folder / "stack_metadata.json").write_text("{not json")
    with pytest.raises(MetadataError, match="stack_metadata.json: malformed JSON"):
        SplitDataset(folder)


def test_json_without_required_key(folder):
    (folder / "stack_metadata.json").write_text(json.dumps({"shape_full": [6, 4, 20, 16]}))
    with pytest.raises(MetadataError, match="'shape_block' is missing"):
        SplitDataset(folder)


def test_json_with_wrong_lengths(folder):
    metadata = json.loads((folder / "stack_metadata.json").read_text())
    metadata["shape_block"] = [2, 4]
    (folder / "stack_metadata.json").write_text(json.dumps(metadata))
    with pytest.raises(MetadataError, match="'shape_block' has 2 entries"):
        SplitDataset(folder)


def test_missing_block_file_in_the_middle(folder):
    (folder / "0001.h5").unlink()
    with pytest.raises(BlockFileError, match=r"number 1 is missing \(between 0000.h5 and 0002.h5"):
        SplitDataset(folder)


def test_missing_block_file_across_the_grid(folder):
    # split along z too: 6 files expected; 5 is not a whole number of time blocks
    metadata = json.loads((folder / "stack_metadata.json").read_text())
    metadata["shape_block"] = [2, 2, 20, 16]
    (folder / "stack_metadata.json").write_text(json.dumps(metadata))
    for i in range(3, 5):
        shutil.copy(folder / "0000.h5", folder / f"{i:04d}.h5")
    with pytest.raises(BlockFileError, match="5 block files, expected 6"):
        SplitDataset(folder)


def test_extra_block_file(folder):
    shutil.copy(folder / "0000.h5", folder / "0003.h5")
    with pytest.raises(BlockFileError, match="0003.h5"):
        SplitDataset(folder)


def test_listed_file_missing(folder):
    metadata = json.loads((folder / "stack_metadata.json").read_text())
    metadata["files"] = ["0000.h5", "0001.h5", "0009.h5"]
    (folder / "stack_metadata.json").write_text(json.dumps(metadata))
    with pytest.raises(NotASplitDatasetError, match="0009.h5"):
        SplitDataset(folder)


def test_block_with_wrong_dtype(folder):
    with h5py.File(folder / "0001.h5", "w") as handle:
        handle["stack_4D"] = np.zeros((2, 4, 20, 16), dtype=np.float32)
    ds = SplitDataset(folder)
    with pytest.raises(BlockFileError, match=r"0001.h5.*dtype float32"):
        ds[2]
    np.testing.assert_array_equal(ds[0], np.arange(4 * 20 * 16).reshape(4, 20, 16))


def test_block_with_wrong_shape(folder):
    with h5py.File(folder / "0001.h5", "w") as handle:
        handle["stack_4D"] = np.zeros((2, 4, 10, 16), dtype=np.uint16)
    with pytest.raises(BlockFileError, match=r"0001.h5.*shape \(2, 4, 10, 16\)"):
        SplitDataset(folder)[3]


def test_file_that_is_not_hdf5(folder):
    (folder / "0001.h5").write_bytes(b"this is not an HDF5 file" * 10)
    with pytest.raises(BlockFileError, match="0001.h5: not a readable HDF5 file"):
        SplitDataset(folder)[2:4]


def test_truncated_file(folder):
    path = folder / "0002.h5"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(SplitDatasetError, match="0002.h5"):
        SplitDataset(folder)[:]


@pytest.mark.parametrize(
    "chunks, compression",
    [((1, 1, 10, 16), "blosc"), (None, "contiguous"), ((1, 2, 10, 16), "raw")],
    ids=["blosc", "contiguous", "chunked-uncompressed"],
)
def test_file_truncated_after_its_index_was_built(tmp_path, array, chunks, compression):
    folder = write_split_dataset(tmp_path / "ds", array, (2, 4, 20, 16), chunks, compression)
    ds = SplitDataset(folder)
    np.testing.assert_array_equal(ds[...], array)
    path = folder / "0001.h5"
    layout = ds.layout(1)
    # truncate in place (same inode, so the cached index would point past the end)
    os.truncate(path, int(layout.chunk_offset.max()) + 8)
    with pytest.raises(SplitDatasetError, match="0001.h5"):
        ds[2:4, :, 3:17, 2:9]  # a region: uncompressed data reads only its rows


def test_file_replaced_on_disk_is_reindexed(folder, array):
    ds = SplitDataset(folder)
    ds[...]
    replacement = folder.parent / "other"
    write_split_dataset(replacement, array + 1, (2, 4, 20, 16), (2, 2, 5, 8), "zlib")
    os.replace(replacement / "0001.h5", folder / "0001.h5")
    np.testing.assert_array_equal(ds[2:4], array[2:4] + 1)


def test_a_file_deleted_under_a_read_across_files_is_named_and_nothing_stays_pinned(
    folder, array
):
    """The files of a read are pinned together (``FileCache.pin_all``): one replaced by a
    file that is not HDF5, or gone, since the last read fails the read with its name, and
    the others, pinned by then, are released."""
    ds = SplitDataset(folder)
    np.testing.assert_array_equal(ds[:, 1], array[:, 1])
    (folder / "0001.h5").write_bytes(b"not an HDF5 file")
    with pytest.raises(BlockFileError, match=r"0001\.h5"):
        ds[:, 1]
    assert all(entry.pins == 0 for entry in ds._cache._entries.values())
    (folder / "0001.h5").unlink()
    with pytest.raises(BlockFileError, match=r"0001\.h5: block file is missing"):
        ds[:, 1]
    assert all(entry.pins == 0 for entry in ds._cache._entries.values())
    np.testing.assert_array_equal(ds[4:], array[4:])  # the files left read as before


def test_a_file_replaced_among_open_ones_is_read_as_it_is_now(folder, array):
    """A read across files open already: the one replaced since is opened again, in its
    place among the others."""
    ds = SplitDataset(folder)
    np.testing.assert_array_equal(ds[:, 2, 3], array[:, 2, 3])
    replacement = folder.parent / "other"
    write_split_dataset(replacement, array * 3, (2, 4, 20, 16), (1, 1, 10, 16), "blosc")
    os.replace(replacement / "0001.h5", folder / "0001.h5")
    expected = array[:, 2, 3].copy()
    expected[2:4] *= 3
    np.testing.assert_array_equal(ds[:, 2, 3], expected)
    assert all(entry.pins == 0 for entry in ds._cache._entries.values())


def test_corrupt_chunk_names_file_and_chunk(folder):
    ds = SplitDataset(folder)
    layout = ds.layout(1)
    offset = int(layout.chunk_offset[3])
    with open(folder / "0001.h5", "r+b") as handle:
        handle.seek(offset)
        handle.write(b"\xff" * 16)  # destroys the blosc header
    with pytest.raises(ChunkReadError, match=r"0001.h5: chunk \(0, 1, 1, 0\)") as error:
        SplitDataset(folder)[2:4]
    assert "blosc" in str(error.value)


@pytest.mark.parametrize("compression", ["blosc", "blosc:lz4", "blosc:zstd", "zlib", "gzip"])
def test_mutated_chunks_never_crash(tmp_path, compression):
    """Fuzz: random byte flips inside chunks give the right data or a ChunkReadError."""
    rng = np.random.default_rng(7)
    array = rng.integers(0, 50, (4, 3, 32, 32)).astype(np.uint16)
    folder = write_split_dataset(tmp_path / "ds", array, (2, 3, 32, 32), (1, 1, 16, 32), compression)
    pristine = {p.name: p.read_bytes() for p in folder.glob("*.h5")}
    layout = SplitDataset(folder).layout(0)
    outcomes = set()
    for trial in range(60):
        for name, data in pristine.items():
            (folder / name).write_bytes(data)
        mutated = bytearray(pristine["0000.h5"])
        chunk = rng.integers(len(layout.chunk_offset))
        start, size = int(layout.chunk_offset[chunk]), int(layout.chunk_size[chunk])
        for _ in range(rng.integers(1, 6)):
            mutated[start + rng.integers(size)] = rng.integers(256)
        (folder / "0000.h5").write_bytes(bytes(mutated))
        try:
            result = SplitDataset(folder)[...]
        except ChunkReadError as error:
            assert "0000.h5" in str(error)
            outcomes.add("error")
        else:
            assert result.shape == array.shape
            outcomes.add("read")
    assert "error" in outcomes


def test_folder_without_stack_opens_but_cannot_read(tmp_path):
    folder = tmp_path / "traces"
    folder.mkdir()
    for i in range(2):
        with h5py.File(folder / f"{i:04d}.h5", "w") as handle:
            handle["traces"] = np.zeros((5, 3))
    (folder / "stack_metadata.json").write_text(
        json.dumps({"shape_full": [10, 3], "shape_block": [5, 3]})
    )
    ds = SplitDataset(folder)
    assert ds.shape == (10, 3)
    with pytest.raises(NoStackError, match="no 'stack' dataset"):
        ds[0]


def test_out_of_bounds_index_message(folder):
    with pytest.raises(IndexError, match="index 6 is out of bounds for axis 0 with size 6"):
        SplitDataset(folder)[6]


def test_natural_sort_beyond_9999_files(tmp_path):
    """10,001 one-element blocks: 10000.h5 must come after 9999.h5, not after 1000.h5."""
    folder = tmp_path / "long"
    folder.mkdir()
    template = folder / "template.h5"
    with h5py.File(template, "w") as handle:
        handle.create_dataset("stack_1D", data=np.array([0], dtype=np.uint32))
        offset = handle["stack_1D"].id.get_offset()
    data = bytearray(template.read_bytes())
    template.unlink()
    n = 10_001
    for i in range(n):
        data[offset : offset + 4] = np.uint32(i).tobytes()
        (folder / f"{i:04d}.h5").write_bytes(data)
    (folder / "stack_metadata.json").write_text(json.dumps({"shape_full": [n], "shape_block": [1]}))
    ds = SplitDataset(folder)
    assert ds.files[10000].name == "10000.h5"
    np.testing.assert_array_equal(ds[9990:], np.arange(9990, n, dtype=np.uint32))
    np.testing.assert_array_equal(ds[[10000, 1000, 9999]], [10000, 1000, 9999])


def test_hidden_files_next_to_the_blocks_are_not_blocks(folder, array):
    """macOS leaves ``._0000.h5`` beside each file copied from its disks: not a second
    numbering, not a block."""
    for name in ("0000.h5", "0001.h5"):
        (folder / f"._{name}").write_bytes(b"\x00\x05\x16\x07" + bytes(60))
    np.testing.assert_array_equal(SplitDataset(folder)[:], array)


def test_two_numberings_in_one_folder_are_refused_with_their_names(folder):
    shutil.copy(folder / "0000.h5", folder / "other0000.h5")
    with pytest.raises(NotASplitDatasetError, match=r"several name prefixes \(''.*'other'\)"):
        SplitDataset(folder)
    assert SplitDataset(folder, prefix="").shape == (6, 4, 20, 16)
