"""Regression tests of the faults an outside probe found: corrupt input never yields silently
wrong values or poisons later reads, files that contradict the metadata are refused, and every
error about a file is a package error that names it. (Forks, threads and resources:
test_concurrency.py and test_resources.py; writers: test_write_safety.py.)"""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import sys
import textwrap

import h5py
import hdf5plugin  # noqa: F401  (h5py reads blosc, as a user's h5py would)
import numpy as np
import pytest
from datasets import write_split_dataset
from format_fixtures import FIXTURES

from split_dataset import (
    BlockFileError,
    ChunkReadError,
    MetadataError,
    NoStackError,
    SplitDataset,
)
from split_dataset._ext import _chunk_reader
from split_dataset.chunk_index import LazyChunkIndex

BLOSC_FIXTURE = "sd_blosc_4d"


@pytest.fixture
def blosc_copy(tmp_path):
    """A copy of the blosclz fixture, and its true array."""
    folder = shutil.copytree(FIXTURES / BLOSC_FIXTURE, tmp_path / BLOSC_FIXTURE)
    return folder, np.load(FIXTURES / f"{BLOSC_FIXTURE}.npy")


def compressed_chunk(ds: SplitDataset, block: int = 0) -> tuple[int, int]:
    """(offset, size) of the first blosc-compressed (not raw-stored) chunk of a block file."""
    layout = ds.layout(block)
    for offset, size, mask in zip(layout.chunk_offset, layout.chunk_size, layout.chunk_mask):
        if offset >= 0 and not mask & 1:
            return int(offset), int(size)
    raise AssertionError("no compressed chunk")


def patch(path, offset: int, new_bytes: bytes) -> None:
    with open(path, "r+b") as handle:
        handle.seek(offset)
        handle.write(new_bytes)


def set_blosc_flags(folder, bits: int) -> None:
    """``flags |= bits`` in the header of chunk 1 of 0000.h5 (as in the probe's reproduction)."""
    layout = SplitDataset(folder).layout(0)
    offset = int(layout.chunk_offset[1])
    data = bytearray((folder / "0000.h5").read_bytes())
    data[offset + 2] |= bits
    (folder / "0000.h5").write_bytes(bytes(data))


# --- 1. one corrupt chunk must not poison later reads ---------------------------------------


@pytest.mark.parametrize("threads", [1, 2])
def test_a_corrupt_chunk_does_not_poison_later_reads(blosc_copy, threads):
    folder, truth = blosc_copy
    set_blosc_flags(folder, 0x04)  # both shuffle bits: c-blosc2 fails on it
    for _ in range(3):  # on this thread and, with threads=2, on pool workers
        with pytest.raises(ChunkReadError, match="0000.h5"):
            SplitDataset(folder).read(..., threads=threads)
    for _ in range(3):
        np.testing.assert_array_equal(SplitDataset(FIXTURES / BLOSC_FIXTURE).read(..., threads=threads), truth)


def test_a_blosc_context_that_failed_never_decodes_again(blosc_copy):
    """The same chunk past the header checks (straight into c-blosc2): the thread's context
    fails, and must be thrown away, or the next valid chunks decode wrongly."""
    folder, truth = blosc_copy
    ds = SplitDataset(FIXTURES / BLOSC_FIXTURE)
    offset, size = int(ds.layout(0).chunk_offset[1]), int(ds.layout(0).chunk_size[1])
    chunk = bytearray((FIXTURES / BLOSC_FIXTURE / "0000.h5").read_bytes()[offset : offset + size])
    chunk[2] |= 0x04
    nbytes = int(np.prod(ds.layout(0).chunk_shape)) * 2
    assert _chunk_reader.blosc_decode_unchecked(np.frombuffer(bytes(chunk), np.uint8), nbytes) < 0
    np.testing.assert_array_equal(ds.read(..., threads=1), truth)


# --- 2. Blosc1 headers: what Blosc1 never writes is refused ----------------------------------


HEADER_CORRUPTIONS = {
    # name: (byte, function of the old value)
    "delta-flag": (2, lambda v: v | 0x08),  # c-blosc2: delta coding; h5py: filter failure
    "both-shuffles": (2, lambda v: v | 0x04),
    "compressor-7": (2, lambda v: v | 0xE0),
    "blosc2-version": (0, lambda v: 5),
    "version-1": (0, lambda v: 1),
    "typesize": (3, lambda v: 4),
    "blocksize-zero": (8, lambda v: 0),
    "cbytes": (12, lambda v: v ^ 0x01),
}


@pytest.mark.parametrize("name", sorted(HEADER_CORRUPTIONS))
def test_blosc1_headers_with_values_blosc1_never_writes_are_refused(blosc_copy, name):
    folder, truth = blosc_copy
    ds = SplitDataset(folder)
    offset, _ = compressed_chunk(ds)
    byte, change = HEADER_CORRUPTIONS[name]
    original = (folder / "0000.h5").read_bytes()[offset + byte]
    patch(folder / "0000.h5", offset + byte, bytes([change(original) & 0xFF]))
    if name == "blocksize-zero":  # all four bytes of the little-endian blocksize
        patch(folder / "0000.h5", offset + 8, bytes(4))
    with pytest.raises(ChunkReadError, match="0000.h5.*Blosc1 header"):
        SplitDataset(folder)[...]
    np.testing.assert_array_equal(SplitDataset(folder)[1:], truth[1:])  # other files still read


def test_the_delta_flag_is_what_h5py_refuses_too(blosc_copy):
    """Parity with h5py's filter (c-blosc 1.x), which never decodes flag 0x08 either."""
    folder, _ = blosc_copy
    set_blosc_flags(folder, 0x08)
    with h5py.File(folder / "0000.h5", "r") as handle, pytest.raises(OSError):
        handle["stack_4D"][...]
    with pytest.raises(ChunkReadError, match="Blosc1 header"):
        SplitDataset(folder)[...]


@pytest.mark.parametrize("cname", ["blosclz", "lz4", "lz4hc", "zlib", "zstd"])
@pytest.mark.parametrize("shuffle", [0, 1, 2], ids=["noshuffle", "shuffle", "bitshuffle"])
@pytest.mark.parametrize("dtype", ["u1", "<i2", "<f4", "<c16"])
def test_every_blosc1_chunk_the_hdf5_filter_writes_is_accepted(tmp_path, cname, shuffle, dtype):
    """The header checks refuse nothing c-blosc 1.x (here hdf5plugin's filter) writes, with
    odd chunk sizes, memcpy'ed chunks (level 0, tiny chunks) and incompressible data."""
    rng = np.random.default_rng(len(cname) + shuffle)
    array = (rng.integers(0, 40, (5, 37, 29)) * (rng.random((5, 37, 29)) < 0.3)).astype(dtype)
    array[3] = rng.integers(0, 255, (37, 29)).astype(dtype)  # incompressible
    folder = tmp_path / "ds"
    folder.mkdir()
    for clevel, name in ((5, "0000.h5"), (0, "0001.h5")):
        with h5py.File(folder / name, "w") as handle:
            handle.create_dataset("stack_3D", data=array, chunks=(1, 11, 7),
                                  **hdf5plugin.Blosc(cname=cname, clevel=clevel, shuffle=shuffle))
    (folder / "stack_metadata.json").write_text(
        json.dumps({"shape_full": [10, 37, 29], "shape_block": [5, 37, 29]})
    )
    np.testing.assert_array_equal(SplitDataset(folder)[...], np.concatenate([array, array]))


# --- 4. chunks the lazy index did not look up, malformed plans --------------------------------


def test_a_chunk_the_index_never_looked_up_is_an_error_not_zeros(tmp_path, monkeypatch):
    array = np.arange(4 * 64 * 64, dtype=np.uint16).reshape(4, 64, 64) + 1
    folder = write_split_dataset(tmp_path / "ds", array, (4, 64, 64), (1, 8, 64), "blosc")
    # the reader's list of chunks to look up and the chunks it decodes disagree (a bug)
    monkeypatch.setattr(LazyChunkIndex, "ensure", lambda self, chunks: None)
    with pytest.raises(ChunkReadError, match="0000.h5.*not looked up"):
        SplitDataset(folder)[1, 8:20]


MALFORMED_PLAN_SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    from dataclasses import replace
    from split_dataset import SplitDataset
    from split_dataset._ext._chunk_reader import ReadContext
    from split_dataset.planning import plan_blocks, plan_chunks
    from split_dataset.selection import normalize

    ds = SplitDataset(sys.argv[1])
    selection = normalize((slice(None), 1, slice(None, None, 3)), ds.shape)
    block_plan = plan_blocks(selection.terms, ds._grid.block_shape, ds._grid.blocks_grid)
    with ds._cache.acquire([ds._grid.files[f] for f in block_plan.files], ds.data_key) as files:
        plan = plan_chunks(block_plan, {f: e.layout.chunk_shape for f, e in zip(block_plan.files, files)})
        out = np.empty(selection.result_shape, ds.dtype)
        ReadContext(plan, out, files)  # the good plan is accepted

        def bad(name, **changes):
            broken = {}
            for key, (index, value) in changes.items():
                broken[key] = getattr(plan, key).copy()
                broken[key][index] = value
            try:
                ReadContext(replace(plan, **broken), out, files)
            except ValueError as error:
                print(name, "refused:", error)
            else:
                print(name, "ACCEPTED")

        bad("task_file", task_file=(0, 99))
        bad("task_group", task_groups=((0, 0), 10**6))
        bad("group_start", group_start=(0, 10**9))
        bad("in_coord", in_coords=(0, 10**6))
        bad("out_coord", out_coords=(-1, 10**6))
        bad("chunk", group_chunk=(0, 10**6))
        strided = int(np.flatnonzero((plan.group_contiguous == 0) & (plan.group_count > 1))[0])
        bad("contiguous", group_contiguous=(strided, 1))
    """
)


def test_malformed_plans_are_refused_before_any_worker_runs(blosc_copy, tmp_path):
    """Each malformed plan used to be a segfault: checked once, in a child process."""
    folder, _ = blosc_copy
    script = tmp_path / "plans.py"
    script.write_text(MALFORMED_PLAN_SCRIPT)
    result = subprocess.run([sys.executable, str(script), str(folder)], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 7 and all("refused" in line for line in lines), result.stdout


def test_malformed_layouts_and_mismatched_plans_are_refused_by_name(blosc_copy):
    """A block file's layout is described for the workers once (``FileDescription``, kept by
    the open file): a layout whose tables contradict its grid is refused naming the file, and
    so is a context whose plan has other axes or another item size than the kept one."""
    from dataclasses import replace

    from split_dataset.planning import IntTerm, SliceTerm, plan_in_block

    folder, _ = blosc_copy
    ds = SplitDataset(folder)
    ds[0, 0]
    with ds._cache.acquire([ds._grid.files[0]], ds.data_key) as (entry,):
        layout = entry.layout
        assert entry.description.layout is layout
        short = layout.chunk_offset[:-1].copy()
        for broken, message in [
            (replace(layout, chunk_offset=short), "chunk tables differ in length"),
            (replace(layout, chunk_offset=layout.chunk_offset.astype(np.int32)), "int64"),
            (replace(layout, chunk_grid=(1,) * len(layout.chunk_grid)), "0000.h5: .* entries"),
            (replace(layout, chunk_shape=layout.chunk_shape[1:]), "0000.h5: chunk shape"),
        ]:
            with pytest.raises(ValueError, match=message):
                _chunk_reader.FileDescription(broken)
        terms = (IntTerm(0),) * (len(layout.chunk_shape) - 1) + (SliceTerm(0, 1, 2),)
        plan = plan_in_block(terms, layout.chunk_shape)
        _chunk_reader.ReadContext(plan, np.empty(2, ds.dtype), [entry])  # the plan fits
        with pytest.raises(ValueError, match="0000.h5: items of 2 bytes, out has 4"):
            _chunk_reader.ReadContext(plan, np.empty(2, np.uint32), [entry])
        other_axes = plan_in_block(terms[1:], layout.chunk_shape[1:])
        with pytest.raises(ValueError, match="0000.h5: chunks are 4-d, the plan 3-d"):
            _chunk_reader.ReadContext(other_axes, np.empty(2, ds.dtype), [entry])


def test_stored_sizes_beyond_the_file_are_refused_before_memory_grows(blosc_copy):
    folder, _ = blosc_copy
    ds = SplitDataset(folder)
    layout = ds.layout(0)
    file_size = (folder / "0000.h5").stat().st_size
    layout.chunk_size[0] = 2**31 - 100  # a corrupt index: each thread would allocate 2 GiB
    with pytest.raises(ChunkReadError, match="0000.h5.*outside the file"):
        ds[0]
    layout.chunk_size[0] = file_size - layout.chunk_offset[0]  # inside the file, but too large
    with pytest.raises(ChunkReadError, match="stored size"):
        ds[0]


# --- 7. files that contradict the metadata ------------------------------------------------------


@pytest.fixture
def grid_folder(tmp_path):
    array = np.arange(8 * 3 * 10 * 12, dtype=np.uint16).reshape(8, 3, 10, 12)
    return write_split_dataset(tmp_path / "ds", array, (2, 3, 10, 12), (1, 1, 5, 12)), array


def rewrite_metadata(folder, **changes) -> None:
    path = folder / "stack_metadata.json"
    metadata = json.loads(path.read_text())
    metadata.update(changes)
    path.write_text(json.dumps(metadata))


def test_a_deleted_first_file_is_an_error_not_a_shift(grid_folder):
    folder, _ = grid_folder
    (folder / "0000.h5").unlink()
    with pytest.raises(BlockFileError, match="start at 0001.h5.*0000.h5 is missing"):
        SplitDataset(folder)


def test_files_numbered_from_two_are_an_error(grid_folder):
    folder, _ = grid_folder
    for name in ("0000.h5", "0001.h5"):
        (folder / name).unlink()
    with pytest.raises(BlockFileError, match="start at 0002.h5"):
        SplitDataset(folder)


def test_one_based_numbering_with_every_block_still_opens():
    expected = np.load(FIXTURES / "jl_one_based.npy")
    np.testing.assert_array_equal(SplitDataset(FIXTURES / "jl_one_based")[...], expected)


def test_a_block_shape_smaller_than_the_files_is_an_error(grid_folder):
    folder, _ = grid_folder
    rewrite_metadata(folder, shape_block=[1, 3, 10, 12])  # 4 files of 2 would read as 4 of 1
    with pytest.raises(BlockFileError, match=r"0000.h5.*\(2, 3, 10, 12\).*shape_block \(1, 3, 10, 12\)"):
        SplitDataset(folder)


def test_a_block_shape_larger_than_the_files_is_an_error(grid_folder):
    folder, _ = grid_folder
    rewrite_metadata(folder, shape_full=[12, 3, 10, 12], shape_block=[3, 3, 10, 12])
    with pytest.raises(BlockFileError, match=r"0000.h5.*needs at least \(3, 3, 10, 12\)"):
        SplitDataset(folder)


def test_a_middle_file_that_contradicts_the_metadata_is_refused_when_read(grid_folder):
    folder, array = grid_folder
    with h5py.File(folder / "0002.h5", "w") as handle:
        handle["stack_4D"] = np.zeros((3, 3, 10, 12), np.uint16)  # one time point too many
    ds = SplitDataset(folder)
    np.testing.assert_array_equal(ds[:4], array[:4])
    with pytest.raises(BlockFileError, match="0002.h5.*larger than the metadata's shape_block"):
        ds[4]


def test_swapped_block_files_written_by_us_are_detected(tmp_path):
    from split_dataset import save_to_split_dataset

    array = np.arange(6 * 4 * 8, dtype=np.uint16).reshape(6, 4, 8)
    ds = save_to_split_dataset(array, tmp_path, block_size=(2, 4, 8), prefix="ds")
    (ds.root / "0000.h5").rename(ds.root / "swap")
    (ds.root / "0001.h5").rename(ds.root / "0000.h5")
    (ds.root / "swap").rename(ds.root / "0001.h5")
    with pytest.raises(BlockFileError, match="block starting at .*swapped"):
        SplitDataset(ds.root)[...]


# --- 10. errors that name the file --------------------------------------------------------------


def test_a_flipped_chunk_btree_key_is_a_block_file_error(grid_folder):
    """A B-tree key naming a chunk outside the dataset used to surface as an IndexError."""
    folder, _ = grid_folder
    data = bytearray((folder / "0001.h5").read_bytes())
    node = data.index(b"TREE", data.index(b"TREE") + 1)  # the chunk B-tree (after the groups')
    assert data[node + 4] == 1  # node type 1: raw data chunks
    first_key = node + 4 + 1 + 1 + 2 + 8 + 8  # signature, type, level, entries, siblings
    struct.pack_into("<Q", data, first_key + 8, 1025 * 5)  # axis 0 coordinate of chunk 0
    (folder / "0001.h5").write_bytes(bytes(data))
    with pytest.raises(BlockFileError, match="0001.h5.*chunk index is corrupt"):
        SplitDataset(folder)[2:4]


def test_a_group_named_like_the_stack_key_names_the_file(grid_folder):
    folder, _ = grid_folder
    with h5py.File(folder / "0002.h5", "w") as handle:
        handle.create_group("stack_4D")
    with pytest.raises(NoStackError, match="0002.h5"):
        SplitDataset(folder)[4]


def test_metadata_that_is_not_utf8_is_a_metadata_error(grid_folder):
    folder, _ = grid_folder
    (folder / "stack_metadata.json").write_bytes(b'{"shape_full": [8, 3, 10, 12], "x": "\xff"}')
    with pytest.raises(MetadataError, match="stack_metadata.json.*UTF-8"):
        SplitDataset(folder)


@pytest.mark.parametrize("key, value", [
    ("resolution", ["a", 1, 1, 1]),
    ("resolution", "fast"),
    ("voxel_size", [{}, 1, 1]),
    ("frequency", "2 Hz"),
    ("files", [1, 2]),
    ("shape_full", [8.5, 3, 10, 12]),
    ("shape_block", [2, 3, 10, 2**70]),
])
def test_bad_metadata_values_name_the_key(grid_folder, key, value):
    folder, _ = grid_folder
    rewrite_metadata(folder, **{key: value})
    with pytest.raises(MetadataError, match=f"stack_metadata.json.*'{key}'"):
        SplitDataset(folder)


# --- checksums of what we write --------------------------------------------------------------


@pytest.mark.parametrize("compression", ["blosc:lz4", None, "zlib"])
def test_bit_rot_inside_a_chunk_we_wrote_is_found_by_its_checksum(tmp_path, compression, capsys):
    """4 KB overwritten inside a chunk: no reader of the format can tell (blosc carries no
    checksum, raw data none at all), but the CRC-32 our writer recorded can."""
    from split_dataset import save_to_split_dataset
    from split_dataset.tools.cli import main as command_line

    rng = np.random.default_rng(2)
    array = rng.integers(0, 50, (6, 2, 128, 128)).astype(np.uint16)
    ds = save_to_split_dataset(array, tmp_path, block_size=(2, 2, 128, 128), prefix="ds",
                               compression=compression)
    assert command_line(["verify", str(ds.root)]) == 0
    layout = ds.layout(1)
    assert layout.chunk_crc is not None and (layout.chunk_crc >= 0).all()
    biggest = int(np.argmax(layout.chunk_size))
    start = int(layout.chunk_offset[biggest]) + int(layout.chunk_size[biggest]) // 2 - 2048
    patch(ds.root / "0001.h5", start, bytes(4096))
    ds.close()
    assert command_line(["verify", str(ds.root)]) == 1
    assert "0001.h5" in capsys.readouterr().out
    with pytest.raises(ChunkReadError, match="0001.h5.*checksum mismatch"):
        SplitDataset(ds.root, verify_checksums=True)[...]
    np.testing.assert_array_equal(SplitDataset(ds.root, verify_checksums=True)[::4], array[::4])


def test_raw_blocks_are_read_by_the_virtual_chunks_their_checksums_are_over(
    tmp_path, monkeypatch
):
    """Raw blocks written while virtual chunks were 256 KiB keep being checked after the
    reader's default changed: it reads them by the chunks their CRCs are over (read by other
    chunks, the CRCs would be ignored and bit rot pass unseen)."""
    from split_dataset import file_layout, save_to_split_dataset

    array = np.random.default_rng(8).integers(0, 50, (4, 4, 256, 512)).astype(np.uint16)
    monkeypatch.setattr(file_layout, "VIRTUAL_CHUNK_BYTES", 256 * 1024)
    ds = save_to_split_dataset(
        array, tmp_path, block_size=(2, 4, 256, 512), prefix="ds", compression=None
    )
    root = ds.root
    ds.close()
    monkeypatch.setattr(file_layout, "VIRTUAL_CHUNK_BYTES", 512 * 1024)
    assert file_layout.virtual_chunk_shape((2, 4, 256, 512), 2) == (1, 2, 256, 512)
    ds = SplitDataset(root)
    layout = ds.layout(1)
    assert layout.chunk_shape == (1, 1, 256, 512)  # as written, not today's default
    assert layout.chunk_crc is not None and (layout.chunk_crc >= 0).all()
    np.testing.assert_array_equal(ds[...], array)
    np.testing.assert_array_equal(ds[3, 1:3, 7], array[3, 1:3, 7])
    ds.close()
    patch(root / "0001.h5", int(layout.chunk_offset[5]) + 1000, bytes(4096))
    with pytest.raises(ChunkReadError, match="0001.h5.*checksum mismatch"):
        SplitDataset(root, verify_checksums=True)[...]


@pytest.mark.parametrize(
    "record",
    [(1, 1, 128, 256), (1, 1, 1, 256), (2, 4, 256), (1, 1, 512, 512), (1, 0, 256, 512)],
    ids=["not-byte-ranges", "too-small", "other-ndim", "larger-than-the-block", "empty"],
)
def test_a_recorded_chunk_shape_that_is_no_virtual_chunking_is_ignored(tmp_path, record):
    from split_dataset import file_layout, save_to_split_dataset

    array = np.random.default_rng(9).integers(0, 50, (2, 4, 256, 512)).astype(np.uint16)
    ds = save_to_split_dataset(array, tmp_path, block_size=(1, 4, 256, 512), prefix="ds",
                               compression=None)
    root = ds.root
    ds.close()
    with h5py.File(root / "0000.h5", "r+") as handle:
        handle["stack_4D"].attrs["split_dataset_crc32_chunk"] = np.asarray(record, np.int64)
    ds = SplitDataset(root, verify_checksums=True)
    layout = ds.layout(0)
    assert layout.chunk_shape == file_layout.virtual_chunk_shape((1, 4, 256, 512), 2)
    assert layout.chunk_crc is None  # over other chunks: not checkable, not misapplied
    np.testing.assert_array_equal(ds[...], array)


@pytest.mark.parametrize(
    "value",
    ["(1, 1, 64, 64)", np.float64(3.5), h5py.Empty("f4"), np.asarray([[1, 1], [64, 64]])],
    ids=["a-string", "a-float", "empty", "2-d"],
)
def test_checksum_attributes_of_other_types_are_no_checksums(tmp_path, value):
    """The attributes are read through h5py's low-level API for speed: one another tool wrote
    under our name, of another type, means no checksums (as h5py's ``attrs`` read it), not
    an error, and the values are read right."""
    from split_dataset import save_to_split_dataset

    array = np.arange(4 * 64 * 64, dtype=np.uint16).reshape(4, 64, 64) + 1
    ds = save_to_split_dataset(array, tmp_path, block_size=(2, 64, 64), prefix="ds")
    root = ds.root
    assert ds.layout(0).chunk_crc is not None  # ours: recorded and read
    ds.close()
    with h5py.File(root / "0000.h5", "r+") as handle:
        del handle["stack_3D"].attrs["split_dataset_crc32_chunk"]
        handle["stack_3D"].attrs["split_dataset_crc32_chunk"] = value
    ds = SplitDataset(root, verify_checksums=True)
    assert ds.layout(0).chunk_crc is None and ds.layout(1).chunk_crc is not None
    np.testing.assert_array_equal(ds[...], array)


def test_a_chunk_we_wrote_that_the_index_lost_is_an_error_not_zeros(tmp_path):
    """A damaged chunk index can lose a chunk (h5py reads the fill value, zeros); our writer
    recorded that chunk's checksum, so it was written: refused, with or without
    verify_checksums."""
    from split_dataset import save_to_split_dataset

    array = np.arange(4 * 64 * 64, dtype=np.uint16).reshape(4, 64, 64) + 1
    ds = save_to_split_dataset(array, tmp_path, block_size=(2, 64, 64), prefix="ds")
    ds.layout(0).chunk_offset[0] = -1  # as a corrupt B-tree lookup reports it
    with pytest.raises(ChunkReadError, match="0000.h5.*never written.*checksum"):
        ds[0]
    np.testing.assert_array_equal(ds[2:], array[2:])


# --- index edge cases where NumPy's behaviour is easy to miss -------------------------------


class _RaisingIndex:
    def __index__(self):
        raise ZeroDivisionError("an __index__ that fails")


EDGE_KEYS = {
    "2**63": 2**63,  # NumPy: OverflowError (it converts to int64 first)
    "2**64-1": 2**64 - 1,
    "2**64": 2**64,  # beyond: not an index at all (IndexError)
    "-2**63-1": -(2**63) - 1,
    "uint64 2**63": np.uint64(2**63),
    "axis 1 2**63": (slice(None), 2**63),
    "step 2**63": slice(None, None, 2**63),
    "step -2**63": slice(None, None, -(2**63)),
    "huge bounds": slice(-(2**70), 2**70, 2**63),
    "range": range(1, 4),
    "range on axis 1": (0, range(2)),
    "memoryview of ints": memoryview(np.array([0, 2])),
    "memoryview of bytes": memoryview(b"\x00\x01"),
    "raising __index__": _RaisingIndex(),
    "raising __index__ on axis 1": (0, _RaisingIndex()),
    "raising __index__ in a slice": slice(_RaisingIndex(), None),
}


@pytest.mark.parametrize("name", sorted(EDGE_KEYS))
def test_index_edge_cases_behave_like_numpy(name):
    ds = SplitDataset(FIXTURES / BLOSC_FIXTURE)
    array = np.load(FIXTURES / f"{BLOSC_FIXTURE}.npy")
    key = EDGE_KEYS[name]
    try:
        expected = array[key]
    except Exception as error:  # noqa: BLE001 - the type NumPy raises is the spec
        with pytest.raises(type(error)):
            ds[key]
    else:
        np.testing.assert_array_equal(ds[key], expected)
        assert ds[key].shape == expected.shape
