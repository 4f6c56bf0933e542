"""HDF5's direct chunk write from the compiled writer (GIL released) stores exactly what
h5py's does."""

from __future__ import annotations

import subprocess
import sys

import h5py
import hdf5plugin
import numpy as np
import pytest

from split_dataset import direct_chunk_write
from split_dataset.block_file import block_encoding, compress_chunks


def _write(path, block, stored, dataset_chunks):
    with h5py.File(path, "w") as handle:
        dataset = handle.create_dataset(
            "stack", shape=block.shape, dtype=block.dtype, chunks=dataset_chunks, **hdf5plugin.Blosc()
        )
        direct_chunk_write.write_chunks(dataset, stored, path)


def _stored_chunks(path, count):
    with h5py.File(path, "r") as handle:
        dataset_id = handle["stack"].id
        infos = [dataset_id.get_chunk_info(i) for i in range(count)]
        return [(i.chunk_offset, i.filter_mask, dataset_id.read_direct_chunk(i.chunk_offset)) for i in infos]


def test_the_function_is_found_in_h5pys_own_hdf5():
    assert direct_chunk_write._hdf5_write_chunk() is not None


# PyTables bundles another HDF5. A lookup by library name (the first libhdf5 in
# /proc/self/maps, which lists the one mapped last first) found PyTables' H5Dwrite_chunk when
# PyTables was imported after h5py: it knows nothing of h5py's objects, every write failed.
HDF5_OF_TWO_PACKAGES = """
import sys
for package in sys.argv[2:]:
    __import__(package)
import numpy as np
from split_dataset import SplitDataset, direct_chunk_write, save_to_split_dataset
frames = (np.arange(3 * 2 * 64 * 64) % 1000).astype(np.uint16).reshape(3, 2, 64, 64)
save_to_split_dataset(frames, sys.argv[1], block_size=(1, 2, 64, 64), compression="blosc")
assert (SplitDataset(sys.argv[1])[:] == frames).all()
assert direct_chunk_write._hdf5_write_chunk() is not None  # written through the compiled path
"""


@pytest.mark.parametrize("order", [("h5py", "tables"), ("tables", "h5py")], ids="-then-".join)
def test_writes_use_h5pys_hdf5_whichever_package_loads_first(tmp_path, order):
    subprocess.run(
        [sys.executable, "-c", HDF5_OF_TWO_PACKAGES, str(tmp_path / "ds"), *order], check=True
    )


@pytest.mark.parametrize("compiled", [True, False])
def test_chunks_are_stored_as_h5py_stores_them(tmp_path, monkeypatch, compiled):
    rng = np.random.default_rng(5)
    block = rng.poisson(30, (3, 70, 40)).astype(np.uint16)
    block[0, :20] = rng.integers(0, 1 << 16, (20, 40))  # stored raw (filter mask 1)
    encoding = block_encoding(block, "stack", "blosc", None, (1, 20, 40))
    compressed = compress_chunks(block, encoding)
    stored = compressed.chunks()
    assert {c.filter_mask for c in stored} == {0, 1}
    with h5py.File(tmp_path / "h5py.h5", "w") as handle:
        dataset = handle.create_dataset(
            "stack", shape=block.shape, dtype=block.dtype, chunks=(1, 20, 40), **hdf5plugin.Blosc()
        )
        for chunk in stored:
            dataset.id.write_direct_chunk(chunk.offset, chunk.data, filter_mask=chunk.filter_mask)
    if not compiled:
        monkeypatch.setattr(direct_chunk_write, "_hdf5_write_chunk", lambda: None)
    _write(tmp_path / "ours.h5", block, compressed, (1, 20, 40))
    assert _stored_chunks(tmp_path / "ours.h5", len(stored)) == _stored_chunks(
        tmp_path / "h5py.h5", len(stored)
    )
    with h5py.File(tmp_path / "ours.h5", "r") as handle:
        np.testing.assert_array_equal(handle["stack"][:], block)


def test_a_failed_write_names_the_file_and_chunk(tmp_path):
    block = np.ones((2, 8, 8), np.uint16)
    stored = compress_chunks(block, block_encoding(block, "stack", "blosc", None, (1, 8, 8)))
    _write(tmp_path / "a.h5", block, stored, (1, 8, 8))
    with h5py.File(tmp_path / "a.h5", "r") as handle:  # read-only: HDF5 refuses the write
        with pytest.raises(OSError, match=r"a\.h5.*chunk \(0, 0, 0\) of '/stack'"):
            direct_chunk_write.write_chunks(handle["stack"], stored, tmp_path / "a.h5")
