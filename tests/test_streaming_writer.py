"""The streaming writer: round trips through every reader, back-pressure, errors, crash safety."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import tracemalloc
import warnings
from collections import Counter
from pathlib import Path

import flammkuchen
import h5py
import hdf5plugin  # noqa: F401
import numpy as np
import pytest
import tables
from streaming_kill_child import FRAME_SHAPE as KILL_FRAME_SHAPE
from streaming_kill_child import expected_frames

from split_dataset import (
    IncompleteDatasetWarning,
    NotASplitDatasetError,
    SplitDataset,
    SplitDatasetWriter,
    save_to_split_dataset,
)
from split_dataset import streaming
from split_dataset.file_layout import Codec
from split_dataset import BlockWriteError

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent

COMPRESSIONS = ["blosc", "blosc:lz4", "blosc:zstd", None]
# batch sizes of successive appends (the last one is cut to what is left)
BATCHES = {
    "ones": [1],
    "odd": [3, 7, 1, 2, 11],
    "large": [12, 17],  # larger than a block: one append fills several blocks
}
PER_BLOCK = 5


@pytest.fixture(scope="module")
def movie():
    """23 time points of (3, 70, 48): the last block is truncated; time point 6 is pure noise,
    whose chunks blosc cannot shrink (stored raw)."""
    rng = np.random.default_rng(3)
    data = (rng.poisson(200, (23, 3, 70, 48)) + np.arange(48)).astype(np.uint16)
    data[6] = rng.integers(0, 65536, data.shape[1:], dtype=np.uint16)
    return data


def stream(folder, data, batches, **kwargs):
    kwargs.setdefault("frames_per_block", PER_BLOCK)
    with SplitDatasetWriter(folder, data.shape[1:], data.dtype, **kwargs) as writer:
        position, sizes = 0, list(batches)
        while position < len(data):
            count = sizes[0] if len(sizes) == 1 else sizes.pop(0)
            chunk = data[position : position + count]
            writer.append(chunk[0] if count == 1 else chunk)  # single frames without the axis
            position += count
    return writer


def open_quietly(folder) -> SplitDataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IncompleteDatasetWarning)
        return SplitDataset(folder)


def block_names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("*.h5"))


@pytest.mark.parametrize("batches", list(BATCHES))
@pytest.mark.parametrize("compression", COMPRESSIONS, ids=str)
def test_round_trip_through_every_reader(tmp_path, movie, compression, batches):
    folder = tmp_path / "ds"
    writer = stream(folder, movie, BATCHES[batches], compression=compression,
                    resolution=(0.5, 2, 0.6, 0.6), frequency=3.5)
    assert writer.frames_written == writer.frames_appended == len(movie) == 23
    ds = SplitDataset(folder)
    np.testing.assert_array_equal(ds[...], movie)
    assert block_names(folder) == [f"{i:04d}.h5" for i in range(5)]
    assert sorted(os.listdir(folder)) == block_names(folder) + ["stack_metadata.json"]  # no .tmp
    assert ds.layout(4).shape == (3, 3, 70, 48)  # the last block is stored truncated
    for index, path in enumerate(ds.files.ravel()):
        expected = movie[PER_BLOCK * index : PER_BLOCK * (index + 1)]
        with tables.open_file(str(path)) as handle:
            np.testing.assert_array_equal(handle.root.stack_4D[:], expected)
        np.testing.assert_array_equal(flammkuchen.load(str(path))["stack_4D"], expected)
        with h5py.File(path, "r") as handle:
            np.testing.assert_array_equal(handle["stack_4D"][:], expected)
    metadata = json.loads((folder / "stack_metadata.json").read_text())
    assert metadata["shape_full"] == [23, 3, 70, 48]
    assert metadata["shape_block"] == [5, 3, 70, 48]
    assert metadata["crop_start"] == metadata["crop_end"] == metadata["padding"] == [0] * 4
    assert metadata["resolution"] == [0.5, 2.0, 0.6, 0.6]
    assert all(isinstance(r, float) for r in metadata["resolution"])
    assert "axis_order" not in metadata  # not given: never guessed from the number of axes
    assert metadata["frequency"] == 3.5
    assert ds.frequency == 3.5 and ds.resolution == (0.5, 2.0, 0.6, 0.6)
    layout = ds.layout(1)
    if compression is None:
        assert layout.contiguous and layout.codec == Codec.RAW
    else:
        assert layout.codec == Codec.BLOSC and layout.chunk_shape == (1, 1, 70, 48)


@pytest.mark.parametrize("compression", ["blosc", "blosc:lz4", "blosc:zstd", ("blosc:lz4", 3)],
                         ids=str)
def test_blosc1_chunks_with_the_filter_settings_of_the_whole_array_writer(tmp_path, movie,
                                                                          compression):
    stream(tmp_path / "s", movie, [23], compression=compression)
    reference = save_to_split_dataset(movie, tmp_path / "w", block_size=(5, 3, 70, 48),
                                      compression=compression)
    with h5py.File(tmp_path / "s" / "0001.h5", "r") as mine, \
            h5py.File(reference.files.ravel()[1], "r") as theirs:
        ours, ref = mine["stack_4D"], theirs["stack_4D"]
        assert ours._filters == ref._filters  # cd_values: (2, 2, 2, chunk bytes, level, 1, code)
        assert ours.chunks == ref.chunks == (1, 1, 70, 48)
        masks = []
        for index in range(ours.id.get_num_chunks()):
            info = ours.id.get_chunk_info(index)
            masks.append(info.filter_mask)
            mask, chunk = ours.id.read_direct_chunk(info.chunk_offset)
            if mask == 0:
                assert chunk[0] == 2  # Blosc1 format: what hdf5plugin, PyTables and c-blosc 1 read
                assert chunk[2] & 1  # byte shuffle
                assert chunk[3] == 2  # typesize of uint16
    # time point 6 (block 1) is noise: its chunks are stored raw, filter marked as skipped
    assert masks == [0] * 3 + [1] * 3 + [0] * 9


def test_edge_chunks_and_other_dtypes_read_back_everywhere(tmp_path):
    rng = np.random.default_rng(5)
    cases = [
        # (frames, chunk_shape): edge chunks along rows and columns
        (rng.integers(0, 4000, (7, 2, 70, 48)).astype(np.uint16), (1, 1, 32, 32)),
        # default chunks of a wide frame: 64-row bands of 100 rows, the last band partial
        (rng.integers(0, 5000, (3, 100, 1024)).astype(np.uint16), None),
        (rng.integers(0, 50, (4, 30, 40)).astype(np.uint8), None),
        (rng.standard_normal((5, 33, 20)).astype(np.float32), None),
        (rng.integers(-9, 9, (9, 1000)).astype(np.int32), None),
    ]
    for number, (data, chunk_shape) in enumerate(cases):
        folder = tmp_path / str(number)
        stream(folder, data, [2], frames_per_block=3, chunk_shape=chunk_shape)
        ds = SplitDataset(folder)
        assert ds.dtype == data.dtype and ds.shape == data.shape
        np.testing.assert_array_equal(ds[...], data)
        key = f"stack_{data.ndim}D"
        for index, path in enumerate(ds.files.ravel()):
            expected = data[3 * index : 3 * index + 3]
            with tables.open_file(str(path)) as handle:
                np.testing.assert_array_equal(handle.get_node("/" + key)[:], expected)
            np.testing.assert_array_equal(flammkuchen.load(str(path))[key], expected)
            with h5py.File(path, "r") as handle:
                np.testing.assert_array_equal(handle[key][:], expected)
        assert ds.axis_order is None  # never guessed from the number of axes
    assert SplitDataset(tmp_path / "0").layout(0).chunk_shape == (1, 1, 32, 32)
    assert SplitDataset(tmp_path / "1").layout(0).chunk_shape == (1, 64, 1024)


def test_zlib_tiny_blocks_and_scalar_frames(tmp_path):
    data = np.arange(40 * 30, dtype=np.uint16).reshape(40, 30)
    stream(tmp_path / "zlib", data, [4], frames_per_block=16, compression="zlib")
    ds = SplitDataset(tmp_path / "zlib")
    assert ds.layout(0).codec == Codec.SHUFFLE_DEFLATE
    np.testing.assert_array_equal(ds[...], data)
    small = np.arange(60, dtype=np.int16).reshape(5, 3, 4)  # 60-element blocks: contiguous
    stream(tmp_path / "tiny", small, [1], frames_per_block=2)
    assert SplitDataset(tmp_path / "tiny").layout(0).contiguous
    np.testing.assert_array_equal(SplitDataset(tmp_path / "tiny")[...], small)
    series = np.arange(1000, dtype=np.float64)  # 1-d: a frame is a scalar
    with SplitDatasetWriter(tmp_path / "series", (), np.float64, 300) as writer:
        writer.append(series[0])
        writer.append(series[1:])
    np.testing.assert_array_equal(SplitDataset(tmp_path / "series")[...], series)


def test_append_copies_the_callers_frames(tmp_path):
    frame = np.zeros((16, 16), np.uint16)
    with SplitDatasetWriter(tmp_path / "ds", frame.shape, frame.dtype, 4) as writer:
        for value in range(10):  # a camera reusing one buffer
            frame[...] = value
            writer.append(frame)
    np.testing.assert_array_equal(SplitDataset(tmp_path / "ds")[:, 0, 0], np.arange(10))


def _stored_chunks(path: Path) -> dict:
    """Every chunk of a block file as HDF5 stores it: offset -> (filter mask, bytes)."""
    with h5py.File(path, "r") as handle:
        dataset = next(iter(handle.values()))
        chunks = {}
        for index in range(dataset.id.get_num_chunks()):
            offset = dataset.id.get_chunk_info(index).chunk_offset
            chunks[offset] = dataset.id.read_direct_chunk(offset)
        return chunks, dict(dataset.attrs)


@pytest.mark.parametrize("compression", ["blosc", "blosc:lz4"])
def test_runs_of_frames_make_the_files_one_block_makes(tmp_path, monkeypatch, compression):
    # every append a run of its own: a block is compressed in several parts, as they arrive
    monkeypatch.setattr(streaming, "RUN_BYTES", 1)
    rng = np.random.default_rng(3)
    data = (np.arange(13 * 3 * 40 * 48).reshape(13, 3, 40, 48) % 251).astype(np.uint16)
    data[4] = rng.integers(0, 65535, data.shape[1:])  # a frame blosc cannot shrink: kept raw
    with SplitDatasetWriter(tmp_path / "runs", data.shape[1:], data.dtype, 5,
                            compression=compression) as writer:
        for frame in data[:7]:  # one frame at a time, then the rest in one stack
            writer.append(frame)
        writer.append(data[7:])
    save_to_split_dataset(data, tmp_path / "whole", block_size=(5, 3, 40, 48),
                          compression=compression)
    names = block_names(tmp_path / "runs")
    assert names == block_names(tmp_path / "whole") == ["0000.h5", "0001.h5", "0002.h5"]
    for name in names:
        runs, runs_attrs = _stored_chunks(tmp_path / "runs" / name)
        whole, whole_attrs = _stored_chunks(tmp_path / "whole" / name)
        assert runs.keys() == whole.keys() and len(runs) == (5 if name != "0002.h5" else 3) * 3
        for offset in runs:  # same filter mask and the very same stored bytes
            assert runs[offset][0] == whole[offset][0]
            assert bytes(runs[offset][1]) == bytes(whole[offset][1]), (name, offset)
        for key in whole_attrs:  # the checksums and the block's place, as a block makes them
            np.testing.assert_array_equal(runs_attrs[key], whole_attrs[key])
    assert any(mask for mask, _ in _stored_chunks(tmp_path / "runs" / "0000.h5")[0].values())
    np.testing.assert_array_equal(SplitDataset(tmp_path / "runs")[...], data)


def test_frames_are_compressed_as_they_arrive(tmp_path, monkeypatch):
    monkeypatch.setattr(streaming, "RUN_BYTES", 1)
    real_prepare = streaming.prepare_block
    compressed = []

    def counting(path, block, encoding, **options):
        compressed.append((path.name, block.shape[0]))
        return real_prepare(path, block, encoding, **options)

    monkeypatch.setattr(streaming, "prepare_block", counting)
    data = np.arange(6 * 30 * 30, dtype=np.uint16).reshape(6, 30, 30)
    with SplitDatasetWriter(tmp_path / "ds", (30, 30), np.uint16, 4, threads=1) as writer:
        for frame in data[:3]:
            writer.append(frame)
        deadline = time.monotonic() + 10
        while len(compressed) < 3:  # the block is not full, its frames are compressed already
            assert time.monotonic() < deadline
            time.sleep(0.005)
        assert writer.blocks_written == 0 and not (tmp_path / "ds" / "0000.h5").exists()
        writer.append(data[3:])
    assert compressed == [("0000.h5.tmp", 1)] * 4 + [("0001.h5.tmp", 2)]
    np.testing.assert_array_equal(SplitDataset(tmp_path / "ds")[...], data)


def test_a_failed_run_leaves_its_block_unpublished(tmp_path, monkeypatch):
    monkeypatch.setattr(streaming, "RUN_BYTES", 1)
    real_prepare = streaming.prepare_block
    calls = Counter()

    def second_run_of_block_1_fails(path, block, encoding, **options):
        calls[path.name] += 1
        if path.name == "0001.h5.tmp" and calls[path.name] == 2:
            raise OSError(28, "No space left on device")
        return real_prepare(path, block, encoding, **options)

    monkeypatch.setattr(streaming, "prepare_block", second_run_of_block_1_fails)
    data = np.arange(12 * 30 * 30, dtype=np.uint16).reshape(12, 30, 30)
    writer = SplitDatasetWriter(tmp_path / "ds", (30, 30), np.uint16, 4, threads=2)
    with pytest.raises(BlockWriteError, match=r"0001\.h5\.tmp.*No space left"):
        for frame in data:
            writer.append(frame)
        writer.close()
    writer.close()
    assert writer.pending_blocks == 0  # every slot came back
    assert block_names(tmp_path / "ds") == ["0000.h5"]
    assert not list((tmp_path / "ds").glob("*.tmp"))
    np.testing.assert_array_equal(SplitDataset(tmp_path / "ds")[...], data[:4])


def test_back_pressure_bounds_the_blocks_in_flight(tmp_path, monkeypatch):
    real_write = streaming.prepare_block
    lock, active, peak = threading.Lock(), [0], [0]

    def slow_disk(path, block, encoding, **options):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        try:
            time.sleep(0.02)
            return real_write(path, block, encoding, **options)
        finally:
            with lock:
                active[0] -= 1

    monkeypatch.setattr(streaming, "prepare_block", slow_disk)
    frames = np.arange(40 * 32 * 32, dtype=np.uint16).reshape(40, 32, 32)
    writer = SplitDatasetWriter(tmp_path / "ds", (32, 32), np.uint16, 2, threads=2,
                                max_pending_blocks=3)
    pending = []
    started = time.perf_counter()
    for frame in frames:
        writer.append(frame)
        pending.append(writer.pending_blocks)
    appending = time.perf_counter() - started
    writer.close()
    assert max(pending) <= 3 and writer.max_pending_seen == 3
    assert peak[0] <= 2  # never more writes at once than workers
    # 20 blocks at >= 20 ms each on 2 workers: with 3 in flight at most, append had to wait
    # for at least (20 - 3 - 2) / 2 slow writes
    assert appending >= 0.13
    np.testing.assert_array_equal(SplitDataset(tmp_path / "ds")[...], frames)


def test_memory_stays_bounded_when_the_disk_is_slow(tmp_path, monkeypatch):
    real_write = streaming.prepare_block

    def slow_disk(path, block, encoding, **options):
        time.sleep(0.005)
        return real_write(path, block, encoding, **options)

    monkeypatch.setattr(streaming, "prepare_block", slow_disk)
    frame_shape, per_block, pending, blocks = (256, 256), 4, 2, 60
    block_bytes = per_block * 256 * 256 * 2
    frame = np.random.default_rng(0).integers(0, 999, frame_shape).astype(np.uint16)
    # warm up: the first blosc block imports numcodecs and hdf5plugin, not counted below
    stream(tmp_path / "warm", np.zeros((2, 32, 32), np.uint16), [2], compression="blosc:lz4")
    tracemalloc.start()
    try:
        with SplitDatasetWriter(tmp_path / "ds", frame_shape, np.uint16, per_block, threads=2,
                                max_pending_blocks=pending, compression="blosc:lz4") as writer:
            for _ in range(blocks * per_block):  # 30 MiB
                writer.append(frame)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert writer.max_pending_seen == pending
    # the buffers of the blocks in flight and of the full one waiting for a slot, the
    # compressed chunks of the blocks in flight (at most their raw size), per worker the
    # temporaries of one 128 KiB chunk (~240 KiB measured: numcodecs' output buffer, the
    # compressed bytes), and 4 MiB for the interpreter's own tables (its interned-strings dict
    # may be resized meanwhile, by more the longer the test session has run); whereas the
    # stream was 60 blocks (30 MiB), which an unbounded writer would hold
    chunk_bytes = 256 * 256 * 2
    bound = (2 * pending + 1) * block_bytes + 2 * 2 * chunk_bytes + 4 * 2**20
    assert peak < bound, (peak / block_bytes, bound / block_bytes)
    assert SplitDataset(tmp_path / "ds").shape == (blocks * per_block, 256, 256)


def test_blocks_finishing_out_of_order_are_published_in_order(tmp_path, monkeypatch):
    real_write = streaming.prepare_block
    release = threading.Event()

    def block_1_is_slow(path, block, encoding, **options):
        if path.name == "0001.h5.tmp":
            assert release.wait(10)
        return real_write(path, block, encoding, **options)

    monkeypatch.setattr(streaming, "prepare_block", block_1_is_slow)
    data = np.arange(8 * 40 * 40, dtype=np.uint16).reshape(8, 40, 40)
    writer = SplitDatasetWriter(tmp_path / "ds", (40, 40), np.uint16, 2, threads=2,
                                max_pending_blocks=4)
    writer.append(data)  # four blocks
    deadline = time.monotonic() + 10
    while not (tmp_path / "ds" / "0003.h5.tmp").exists() or writer.blocks_written < 1:
        assert time.monotonic() < deadline
        time.sleep(0.005)
    # blocks 2 and 3 are done, but stay temporary files until block 1 is there
    assert block_names(tmp_path / "ds") == ["0000.h5"]
    assert writer.frames_written == 2
    ds = SplitDataset(tmp_path / "ds")  # the JSON says 2 frames: no warning
    np.testing.assert_array_equal(ds[...], data[:2])
    release.set()
    writer.close()
    np.testing.assert_array_equal(SplitDataset(tmp_path / "ds")[...], data)


def test_folder_opens_at_every_moment_while_writing(tmp_path):
    data = np.arange(30 * 24 * 24, dtype=np.uint16).reshape(30, 24, 24) * 3
    folder = tmp_path / "ds"
    opened = 0
    with SplitDatasetWriter(folder, (24, 24), np.uint16, 2, threads=2) as writer:
        for t in range(len(data)):
            writer.append(data[t])
            written = writer.frames_written
            if written:  # races with the workers committing blocks
                ds = open_quietly(folder)
                assert written <= ds.shape[0] and ds.shape[0] % 2 == 0
                np.testing.assert_array_equal(ds[...], data[: ds.shape[0]])
                opened += 1
    assert opened > 10
    np.testing.assert_array_equal(SplitDataset(folder)[...], data)


# --- errors ----------------------------------------------------------------------------------


def test_wrong_dtype_or_shape_is_refused_with_what_was_expected(tmp_path):
    with SplitDatasetWriter(tmp_path / "ds", (64, 48), np.uint16, 4) as writer:
        with pytest.raises(ValueError, match=r"dtype float32, expected uint16"):
            writer.append(np.zeros((64, 48), np.float32))
        with pytest.raises(ValueError, match=r"shape \(48, 64\), expected one frame of shape "
                                             r"\(64, 48\)"):
            writer.append(np.zeros((48, 64), np.uint16))
        with pytest.raises(ValueError, match=r"shape \(2, 3, 64, 48\)"):
            writer.append(np.zeros((2, 3, 64, 48), np.uint16))
        writer.append(np.ones((3, 64, 48), np.uint16))
    assert SplitDataset(tmp_path / "ds").shape == (3, 64, 48)
    with pytest.raises(ValueError, match="closed"):
        writer.append(np.ones((64, 48), np.uint16))
    with pytest.raises(ValueError, match="unknown compression"):
        SplitDatasetWriter(tmp_path / "x", (4, 4), np.uint16, 2, compression="bzip9")
    with pytest.raises(ValueError, match="resolution has 3 entries"):
        SplitDatasetWriter(tmp_path / "y", (4, 4, 4), np.uint16, 2, resolution=(1, 1, 1))


def test_existing_folder_needs_overwrite_which_removes_the_stale_dataset(tmp_path, movie):
    old = save_to_split_dataset(movie, tmp_path / "ds", block_size=(5, 3, 70, 48))
    folder = old.root
    (folder / "0009.h5.tmp").write_bytes(b"half a block")
    (folder / "notes.txt").write_text("kept")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        SplitDatasetWriter(folder, (3, 70, 48), np.uint16, 2)
    assert len(block_names(folder)) == 5  # untouched
    writer = SplitDatasetWriter(folder, (3, 70, 48), np.uint16, 2, overwrite=True)
    # removed before anything is written: old blocks never mix into the new dataset, which
    # starts as an empty one
    assert sorted(os.listdir(folder)) == ["notes.txt", "stack_metadata.json"]
    assert SplitDataset(folder).shape == (0, 3, 70, 48)
    writer.append(movie[:3])
    writer.close()
    assert block_names(folder) == ["0000.h5", "0001.h5"]
    ds = SplitDataset(folder)
    np.testing.assert_array_equal(ds[...], movie[:3])
    assert ds.shape_block[0] == 2
    empty = tmp_path / "empty"
    empty.mkdir()
    SplitDatasetWriter(empty, (4,), np.uint8, 2).close()  # an empty folder is fine
    (tmp_path / "file").write_text("x")
    with pytest.raises(FileExistsError):
        SplitDatasetWriter(tmp_path / "file", (4,), np.uint8, 2, overwrite=True)


def test_worker_failure_is_raised_with_the_file_name_and_earlier_blocks_stay(tmp_path):
    folder = tmp_path / "ds"
    data = np.arange(12 * 50 * 50, dtype=np.uint16).reshape(12, 50, 50)
    writer = SplitDatasetWriter(folder, (50, 50), np.uint16, 2, threads=1)
    (folder / "0002.h5.tmp").mkdir()  # a real failure: HDF5 cannot create the block file
    with pytest.raises(BlockWriteError, match=r"0002\.h5\.tmp") as raised:
        for t in range(0, 12, 2):
            writer.append(data[t : t + 2])  # the append after block 2 failed raises
            while writer.pending_blocks:
                time.sleep(0.001)
    assert writer.frames_appended == 6  # raised by the fourth append, before taking its frames
    assert isinstance(raised.value, OSError) and raised.value.filename.endswith("0002.h5.tmp")
    with pytest.raises(BlockWriteError):  # the writer cannot go on
        writer.append(data[0])
    writer.close()  # already reported: not raised twice
    assert block_names(folder) == ["0000.h5", "0001.h5"]
    assert not [p for p in folder.glob("*.h5.tmp") if p.is_file()]  # unpublishable blocks removed
    ds = SplitDataset(folder)
    np.testing.assert_array_equal(ds[...], data[:4])


def test_failure_in_the_last_block_is_raised_by_close(tmp_path, monkeypatch):
    def full_disk(path, block, encoding, **options):
        raise OSError(28, "No space left on device")

    data = np.ones((5, 20, 20), np.uint16)
    with pytest.raises(BlockWriteError, match=r"0000\.h5\.tmp.*No space left") as raised:
        with SplitDatasetWriter(tmp_path / "ds", (20, 20), np.uint16, 8) as writer:
            writer.append(data)
            monkeypatch.setattr(streaming, "prepare_block", full_disk)
    assert raised.value.errno == 28
    assert writer.frames_written == 0


def test_blocks_before_a_failed_one_are_still_published(tmp_path, monkeypatch):
    real_write = streaming.prepare_block

    def block_1_slow_block_2_fails(path, block, encoding, **options):
        if path.name == "0001.h5.tmp":
            time.sleep(0.2)  # finishes long after block 2 failed
        if path.name == "0002.h5.tmp":
            raise PermissionError(13, "Permission denied")
        return real_write(path, block, encoding, **options)

    monkeypatch.setattr(streaming, "prepare_block", block_1_slow_block_2_fails)
    data = np.arange(8 * 30 * 30, dtype=np.uint16).reshape(8, 30, 30)
    writer = SplitDatasetWriter(tmp_path / "ds", (30, 30), np.uint16, 2, threads=2)
    with pytest.raises(BlockWriteError, match=r"0002\.h5\.tmp.*Permission denied"):
        writer.append(data)  # four blocks (raises if block 2 failed before block 3 was handed)
        writer.close()
    writer.close()  # waits for block 1; the error is not raised twice
    assert block_names(tmp_path / "ds") == ["0000.h5", "0001.h5"]
    assert writer.frames_written == 4 and writer.pending_blocks == 0
    np.testing.assert_array_equal(SplitDataset(tmp_path / "ds")[...], data[:4])


def test_failure_while_publishing_keeps_the_published_prefix(tmp_path, monkeypatch):
    real_fsync = streaming.fsync_path

    def fsync_fails_for_block_3(path):
        if path.name == "0003.h5.tmp":
            raise OSError(5, "Input/output error")
        real_fsync(path)

    monkeypatch.setattr(streaming, "fsync_path", fsync_fails_for_block_3)
    data = np.arange(20 * 30 * 30, dtype=np.uint16).reshape(20, 30, 30)
    with pytest.raises(BlockWriteError, match=r"0003\.h5\.tmp.*Input/output error"):
        with SplitDatasetWriter(tmp_path / "ds", (30, 30), np.uint16, 2, threads=2) as writer:
            for frame in data:
                writer.append(frame)
    assert writer.pending_blocks == 0  # every slot came back: no append could hang
    assert block_names(tmp_path / "ds") == ["0000.h5", "0001.h5", "0002.h5"]
    assert not list((tmp_path / "ds").glob("*.tmp"))
    np.testing.assert_array_equal(open_quietly(tmp_path / "ds")[...], data[:6])


# --- crash safety ----------------------------------------------------------------------------

KILL_RUNS = 24
KILL_FRAMES = 48
KILL_CHILD = TESTS / "streaming_kill_child.py"


def _start_child(folder: Path, seed: int, per_block: int, compression: str, durable: str):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT), str(TESTS)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
    )
    return subprocess.Popen(
        [sys.executable, str(KILL_CHILD), str(folder), str(seed), str(KILL_FRAMES),
         str(per_block), compression, durable],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
    )


def _check_after_kill(folder: Path, lines: list[str], per_block: int) -> str:
    """The folder holds exactly the frames of the committed blocks, all correct."""
    closed = any(line.startswith("closed") for line in lines)
    # the child may die in the middle of printing a line: only whole "appended written" lines
    progress = [
        tuple(map(int, line.split())) for line in lines
        if line[:1].isdigit() and len(line.split()) == 2
    ]
    committed = max((written for _, written in progress), default=0)
    if not folder.is_dir() or not list(folder.glob("*.h5")):
        assert committed == 0 and not closed  # killed before the first block was published
        if (folder / "stack_metadata.json").is_file():  # opens, empty, with its dtype
            ds = open_quietly(folder)  # the JSON may announce frames no block holds yet
            assert ds.shape == (0,) + KILL_FRAME_SHAPE and ds.dtype == np.uint16
        elif folder.is_dir():  # killed before the writer had set the folder up
            with pytest.raises(NotASplitDatasetError):
                SplitDataset(folder)
        return "no block yet"
    names = block_names(folder)
    assert names == [f"{i:04d}.h5" for i in range(len(names))]
    ds = open_quietly(folder)
    n = ds.shape[0]
    assert ds.shape[1:] == KILL_FRAME_SHAPE and ds.dtype == np.uint16
    assert committed <= n  # nothing the writer reported as written is lost
    if closed:
        assert n == KILL_FRAMES
    elif n != KILL_FRAMES:  # (killed after close published the last block, before "closed")
        assert n % per_block == 0 and n == per_block * len(names)
    assert len(names) == -(-n // per_block)
    # JSON first, then the renames (several blocks at once in a group commit): never behind
    announced = json.loads((folder / "stack_metadata.json").read_text())["shape_full"][0]
    assert n <= announced <= KILL_FRAMES
    assert announced % per_block == 0 or announced == KILL_FRAMES
    np.testing.assert_array_equal(ds[...], expected_frames(n))  # the right frames, complete
    return "closed" if closed else "mid-stream"


def test_sigkill_at_random_moments_leaves_a_readable_dataset(tmp_path):
    """Kill a streaming child with SIGKILL at seeded random points of its stream (by frames
    appended, plus a random delay), 24 times; some runs are killed only after ``close``."""
    plans = []
    for run in range(KILL_RUNS):
        rng = np.random.default_rng(1000 + run)
        per_block = (1, 3, 4, 5)[run % 4]
        compression = ("blosc", "blosc:lz4", "none", "blosc:zstd", "blosc")[run % 5]
        durable = "no-fsync" if run % 3 == 1 else "durable"  # renames alone survive a kill
        target = KILL_FRAMES + 1 if run % 8 == 7 else int(rng.integers(0, KILL_FRAMES))
        plans.append((tmp_path / f"run{run:02d}", 1000 + run, per_block, compression, durable,
                      target, float(rng.uniform(0, 0.01))))
    outcomes: Counter = Counter()
    leftover_tmp = 0
    started = time.perf_counter()
    child = _start_child(*plans[0][:5])
    following = None
    try:
        for run, (folder, seed, per_block, compression, _, target, delay) in enumerate(plans):
            assert child.stdout.readline().strip() == "ready", "the child failed to start"
            child.stdin.write("go\n")
            child.stdin.flush()
            if run + 1 < KILL_RUNS:  # the next child imports while this one streams
                following = _start_child(*plans[run + 1][:5])
            lines = []
            while True:  # let it stream until `target` frames are appended (or it closed)
                line = child.stdout.readline()
                if not line:
                    break
                lines.append(line.strip())
                if line.startswith("closed") or (line[0].isdigit()
                                                 and int(line.split()[0]) >= target):
                    break
            time.sleep(delay)
            child.kill()
            child.wait()
            lines += [line.strip() for line in child.stdout.read().splitlines() if line.strip()]
            child.stdout.close()
            child.stdin.close()
            outcomes[_check_after_kill(folder, lines, per_block)] += 1
            leftover_tmp += bool(list(folder.glob("*.tmp")))
            child, following = following, None
    finally:
        for process in (child, following):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
    elapsed = time.perf_counter() - started
    # the targets spread the kills over the stream, whatever the speed of the disk
    assert outcomes["mid-stream"] >= KILL_RUNS // 3, outcomes
    assert outcomes["closed"] >= 3, outcomes
    print(f"{KILL_RUNS} kills in {elapsed:.1f} s: {dict(outcomes)}, "
          f"{leftover_tmp} with unfinished .tmp files")


def test_folder_opens_as_an_empty_dataset_before_the_first_block(tmp_path):
    from split_dataset import SplitDataset, SplitDatasetWriter

    writer = SplitDatasetWriter(tmp_path / "live", (3, 8, 8), np.uint16, frames_per_block=4)
    try:
        writer.append(np.zeros((3, 3, 8, 8), dtype=np.uint16))  # less than one block
        ds = SplitDataset(tmp_path / "live")
        assert ds.shape == (0, 3, 8, 8)
        assert ds.dtype == np.uint16
        assert ds[...].shape == (0, 3, 8, 8)
        assert ds.files.size == 0
    finally:
        writer.close()
    assert SplitDataset(tmp_path / "live").shape == (3, 3, 8, 8)
