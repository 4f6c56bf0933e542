"""Written datasets read back identically through every existing reader."""

from __future__ import annotations

import json
import zlib
import os

import flammkuchen
import h5py
import hdf5plugin  # noqa: F401
import numpy as np
import pytest
import tables
from format_fixtures import FIXTURES

from split_dataset import EmptySplitDataset, SplitDataset, save_to_split_dataset
from split_dataset.file_layout import Codec

COMPRESSIONS = ["blosc", "blosc:lz4", "blosc:zstd", ("blosc:lz4", 3), "zlib", None]


@pytest.fixture(scope="module")
def movie():
    rng = np.random.default_rng(3)
    return (rng.poisson(200, (7, 5, 64, 48)) + np.arange(48)).astype(np.uint16)


@pytest.mark.parametrize("compression", COMPRESSIONS, ids=str)
def test_round_trip_through_every_reader(tmp_path, movie, compression):
    ds = save_to_split_dataset(
        movie, tmp_path, block_size=(3, 5, 64, 48), compression=compression,
        resolution=(0.5, 2, 0.6, 0.6), frequency=3.5, axis_order="tzyx",
    )
    np.testing.assert_array_equal(ds[...], movie)
    assert [p.name for p in ds.files.ravel()] == ["0000.h5", "0001.h5", "0002.h5"]
    for index, path in enumerate(ds.files.ravel()):
        expected = movie[3 * index : 3 * index + 3]
        with tables.open_file(str(path)) as handle:
            np.testing.assert_array_equal(handle.root.stack_4D[:], expected)
        np.testing.assert_array_equal(flammkuchen.load(str(path))["stack_4D"], expected)
        with h5py.File(path, "r") as handle:
            np.testing.assert_array_equal(handle["stack_4D"][:], expected)
    metadata = json.loads((ds.root / "stack_metadata.json").read_text())
    assert metadata["shape_full"] == [7, 5, 64, 48]
    assert metadata["shape_block"] == [3, 5, 64, 48]
    assert metadata["crop_start"] == metadata["crop_end"] == metadata["padding"] == [0] * 4
    assert metadata["resolution"] == [0.5, 2.0, 0.6, 0.6]
    assert all(isinstance(r, float) for r in metadata["resolution"])
    assert metadata["axis_order"] == "tzyx"
    assert metadata["frequency"] == 3.5
    assert ds.frequency == 3.5


@pytest.mark.parametrize("compression", ["blosc", "blosc:lz4", "blosc:zstd"])
def test_blosc_files_use_filter_32001_with_byte_shuffle_and_small_chunks(tmp_path, movie, compression):
    ds = save_to_split_dataset(movie, tmp_path, block_size=(3, 5, 64, 48), compression=compression)
    layout = ds.layout(0)
    assert layout.codec == Codec.BLOSC
    (filter_id, values), = layout.filters
    assert filter_id == 32001 and values[5] == 1
    assert layout.chunk_shape[:2] == (1, 1)  # one plane or one pixel over time stays cheap
    with h5py.File(layout.path, "r") as handle:
        first_chunk = handle["stack_4D"].id.read_direct_chunk((0, 0, 0, 0))[1]
    assert first_chunk[0] == 2  # Blosc1 format, which every old reader decodes


def test_int_block_size_splits_the_first_axis(tmp_path, movie):
    ds = save_to_split_dataset(movie, tmp_path, block_size=2)
    assert tuple(ds.shape_block) == (2, 5, 64, 48)
    assert ds.files.shape == (4, 1, 1, 1)
    np.testing.assert_array_equal(ds[...], movie)


def test_save_from_a_split_dataset_and_an_h5py_dataset(tmp_path):
    source = SplitDataset(FIXTURES / "sd_blosc_4d")
    expected = np.load(FIXTURES / "sd_blosc_4d.npy")
    copy = save_to_split_dataset(source, tmp_path / "a", block_size=(5, 3, 64, 48))
    np.testing.assert_array_equal(copy[...], expected)
    with h5py.File(tmp_path / "single.h5", "w") as handle:
        handle["data"] = expected
    with h5py.File(tmp_path / "single.h5", "r") as handle:
        other = save_to_split_dataset(handle["data"], tmp_path / "b", block_size=(1, 6, 64, 48))
    np.testing.assert_array_equal(other[...], expected)


def test_padding_is_written_as_overlap_and_read_once(tmp_path):
    data = np.arange(8 * 30 * 26, dtype=np.uint16).reshape(8, 30, 26)
    ds = save_to_split_dataset(data, tmp_path, block_size=(4, 12, 13), padding=(1, 2, 2))
    assert ds.layout(0).shape == (5, 14, 15)
    np.testing.assert_array_equal(ds[...], data)


def test_empty_split_dataset_block_by_block(tmp_path):
    data = np.random.default_rng(0).integers(0, 999, (10, 4, 32, 32)).astype(np.uint16)
    target = EmptySplitDataset(tmp_path, "esd", shape_full=data.shape, shape_block=(3, 4, 32, 32),
                               resolution=(0.5, 2.0, 0.6, 0.6))
    assert target.files == ["0000.h5", "0001.h5", "0002.h5", "0003.h5"]
    for (index, slices), _ in zip(target.slices(as_tuples=True), target.files):
        linear = target.cartesian_to_linear(index)
        target.save_block_data(linear, data[target.block_to_slices(slices)])
    ds = target.finalize()
    assert ds.data_key == "stack"
    np.testing.assert_array_equal(ds[...], data)
    assert ds.resolution == (0.5, 2.0, 0.6, 0.6)


def test_tiny_blocks_stay_contiguous(tmp_path):
    data = np.arange(180, dtype=np.uint16).reshape(3, 3, 4, 5)
    ds = save_to_split_dataset(data, tmp_path, block_size=(3, 3, 4, 5))
    assert ds.layout(0).contiguous
    np.testing.assert_array_equal(ds[...], data)


def test_unknown_compression_is_refused(tmp_path, movie):
    with pytest.raises(ValueError, match="unknown compression"):
        save_to_split_dataset(movie, tmp_path, block_size=3, compression="bzip9")
    with pytest.raises(ValueError, match="unknown blosc compressor"):
        save_to_split_dataset(movie, tmp_path, block_size=3, compression="blosc:brotli")


def _write_block(target, linear, data):
    target.save_block_data(linear, data)
    return linear


def test_empty_split_dataset_blocks_from_worker_processes(tmp_path):
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    data = np.random.default_rng(2).integers(0, 999, (9, 2, 24, 24)).astype(np.uint16)
    target = EmptySplitDataset(tmp_path, "parallel", shape_full=data.shape, shape_block=(2, 2, 24, 24))
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(2, mp_context=context) as pool:
        futures = [
            pool.submit(_write_block, target, target.cartesian_to_linear(index), data[slices])
            for index, slices in target.slices()
        ]
        assert sorted(f.result() for f in futures) == list(range(5))
    np.testing.assert_array_equal(target.finalize()[...], data)


@pytest.mark.parametrize("durable", [True, False])
def test_durable_fsyncs_every_file_and_durable_false_none(tmp_path, movie, monkeypatch, durable):
    """Both writers: fsync before each rename by default; ``durable=False`` never fsyncs and
    still publishes whole files under their final names only."""
    from split_dataset import SplitDatasetWriter

    real_fsync, calls = os.fsync, []

    def counting_fsync(fd):
        calls.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", counting_fsync)
    saved = save_to_split_dataset(movie, tmp_path / "whole", block_size=3, durable=durable)
    with SplitDatasetWriter(tmp_path / "stream", movie.shape[1:], movie.dtype, 3,
                            durable=durable) as writer:
        writer.append(movie)
    n_files = len(saved.file_names)
    assert (len(calls) >= 2 * n_files) if durable else not calls
    for folder in ("whole", "stream"):
        assert not list((tmp_path / folder).glob("*.tmp"))
        np.testing.assert_array_equal(SplitDataset(tmp_path / folder)[...], movie)


@pytest.mark.parametrize(
    "shape, chunks",
    [
        ((3, 100, 70), (1, 33, 70)),  # row bands, a short band at the edge
        ((4, 9, 11), (2, 9, 11)),  # whole planes, a short one at the edge
        ((3, 100, 70), (2, 33, 20)),  # not byte ranges: sliced and padded on every axis
        ((1000,), (300,)),
    ],
)
@pytest.mark.parametrize("dtype", ["u2", "f4"])
@pytest.mark.parametrize("in_one_call", [True, False], ids=["compiled", "chunk by chunk"])
def test_stored_chunks_are_numcodecs_blosc_of_the_zero_padded_chunks(
    shape, chunks, dtype, in_one_call, monkeypatch
):
    from numcodecs import Blosc

    from split_dataset import blosc1
    from split_dataset.block_file import block_encoding, compress_chunks

    if in_one_call:
        assert blosc1.compress_ctx_address() is not None
    else:
        monkeypatch.setattr(blosc1, "compress_ctx_address", lambda: None)

    rng = np.random.default_rng(11)
    block = rng.poisson(40, shape).astype(dtype)
    # random bytes in the first chunk: incompressible, stored raw
    first_chunk = tuple(slice(0, c) for c in chunks[:-1]) + (slice(0, chunks[-1] * block.itemsize),)
    noise = block.view(np.uint8)[first_chunk]
    noise[...] = rng.integers(0, 256, noise.shape, dtype=np.uint8)
    encoding = block_encoding(block, "stack", "blosc:lz4", 5, chunks)
    codec = Blosc("lz4", 5, Blosc.SHUFFLE, typesize=block.itemsize)
    stored = compress_chunks(block, encoding).chunks()
    origins = list(np.ndindex(*(-(-s // c) for s, c in zip(shape, chunks))))
    assert [c.offset for c in stored] == [tuple(o * c for o, c in zip(i, chunks)) for i in origins]
    assert {c.filter_mask for c in stored} == {0, 1}
    for chunk in stored:
        expected = np.zeros(chunks, block.dtype)
        region = block[tuple(slice(o, o + c) for o, c in zip(chunk.offset, chunks))]
        expected[tuple(slice(0, n) for n in region.shape)] = region
        if chunk.filter_mask:
            assert chunk.data == expected.tobytes()
        else:
            assert chunk.data == codec.encode(expected)
        assert chunk.crc == zlib.crc32(chunk.data)


def test_stored_buffers_lend_a_buffer_only_once_given_back():
    from split_dataset.block_file import StoredBuffers

    buffers = StoredBuffers()
    first, second = buffers.take(1000), buffers.take(1000)
    assert first is not second and first.nbytes >= 1000
    buffers.give(first)
    assert buffers.take(600) is first  # large enough: lent again
    assert buffers.take(600) is not second  # still lent: never handed out twice
    buffers.give(second)
    bigger = buffers.take(5000)
    assert bigger is not second and bigger.nbytes >= 5000


def test_saves_reuse_the_compressed_chunks_memory_without_mixing_blocks(tmp_path, monkeypatch):
    from split_dataset import block_file

    taken, given = [], []
    real_take, real_give = block_file.StoredBuffers.take, block_file.StoredBuffers.give

    def take(self, nbytes):
        buffer = real_take(self, nbytes)
        taken.append(id(buffer))
        return buffer

    def give(self, buffer):
        given.append(id(buffer))
        real_give(self, buffer)

    monkeypatch.setattr(block_file.StoredBuffers, "take", take)
    monkeypatch.setattr(block_file.StoredBuffers, "give", give)
    rng = np.random.default_rng(5)
    # blocks that compress to very different sizes, so that a buffer reused too early shows
    data = (np.arange(24 * 64 * 64).reshape(24, 64, 64) % 7).astype(np.uint16)
    data[1::3] = rng.integers(0, 65535, (8, 64, 64))
    save_to_split_dataset(data, tmp_path / "ds", block_size=(2, 64, 64), threads=2)
    assert len(taken) == 12 and sorted(given) == sorted(taken)  # every block's came back
    assert len(set(taken)) < len(taken)  # and was lent again
    np.testing.assert_array_equal(SplitDataset(tmp_path / "ds")[...], data)
