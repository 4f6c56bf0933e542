"""HDF5's direct chunk write with the GIL released while HDF5 copies the bytes to the file.

h5py's ``write_direct_chunk`` holds the GIL for the whole call, most of which is the copy of
the compressed bytes into the page cache. The writer's store thread makes these calls back to
back, so the compressing threads, which need the GIL for a moment between chunks, waited for
it up to a switch interval each time: a third of the cores sat idle in a 2-thread save.

This calls the same C function, ``H5Dwrite_chunk``, of the very HDF5 library h5py loaded,
through ctypes (which releases the GIL during foreign calls), under h5py's own lock: HDF5 is
still called by one thread at a time, as h5py guarantees. Where that library cannot be found
(another platform, an HDF5 older than 1.10.3), h5py's call is used.
"""

from __future__ import annotations

import ctypes
import functools
import os
from collections.abc import Sequence
from typing import Any

H5P_DEFAULT = 0


@functools.cache
def _hdf5_write_chunk() -> Any | None:
    """``H5Dwrite_chunk`` of the HDF5 library loaded by h5py, or None."""
    import h5py

    if h5py.version.hdf5_version_tuple < (1, 10, 3):
        return None
    path = _loaded_hdf5_path()
    if path is None:
        return None
    try:
        function = ctypes.CDLL(path).H5Dwrite_chunk
    except (OSError, AttributeError):
        return None
    function.argtypes = [
        ctypes.c_int64,  # hid_t dset_id
        ctypes.c_int64,  # hid_t dxpl_id
        ctypes.c_uint32,  # filter mask
        ctypes.POINTER(ctypes.c_uint64),  # hsize_t offset[rank]
        ctypes.c_size_t,
        ctypes.c_char_p,  # const void *buf (bytes are passed without a copy)
    ]
    function.restype = ctypes.c_int
    return function


def _loaded_hdf5_path() -> str | None:
    """The file of the HDF5 library mapped into this process (h5py's wheel bundles its own,
    under a hashed name), from ``/proc/self/maps``."""
    import h5py.h5d  # noqa: F401  (h5py's extension loads its HDF5)

    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                path = line.rstrip("\n").split(maxsplit=5)[-1]
                name = os.path.basename(path)
                if name.startswith(("libhdf5.so", "libhdf5-")) and ".so" in name:
                    return path
    except OSError:
        pass
    return None


def write_chunks(dataset: Any, chunks: Sequence[Any], path: os.PathLike | str) -> None:
    """Store each chunk (``offset``, ``data`` bytes, ``filter_mask``) of an h5py dataset as it
    is, in order; ``path`` names the file in errors."""
    write_chunk = _hdf5_write_chunk()
    if write_chunk is None:
        dataset_id = dataset.id
        for chunk in chunks:
            dataset_id.write_direct_chunk(chunk.offset, chunk.data, filter_mask=chunk.filter_mask)
        return
    from h5py._objects import phil

    offset_type = ctypes.c_uint64 * dataset.ndim
    with phil:  # HDF5 is not thread-safe: h5py's lock keeps every other call out meanwhile
        dataset_hid = dataset.id.id
        for chunk in chunks:
            status = write_chunk(
                dataset_hid,
                H5P_DEFAULT,
                chunk.filter_mask,
                offset_type(*chunk.offset),
                len(chunk.data),
                chunk.data,
            )
            if status < 0:
                raise OSError(
                    f"{path}: HDF5 could not write chunk {tuple(chunk.offset)} of "
                    f"'{dataset.name}' ({len(chunk.data)} bytes; disk full?)"
                )
