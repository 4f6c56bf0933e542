"""HDF5's direct chunk write with the GIL released while HDF5 copies the bytes to the file.

h5py's ``write_direct_chunk`` holds the GIL for the whole call, most of which is the copy of
the compressed bytes into the page cache. The writer's store thread makes these calls back to
back, so the compressing threads, which need the GIL for a moment between chunks, waited for
it up to a switch interval each time: a third of the cores sat idle in a 2-thread save.

This calls the same C function, ``H5Dwrite_chunk``, of the very HDF5 library h5py is linked
to, from the compiled writer (all chunks of a block in one call, the GIL released), under
h5py's own lock: HDF5 is still called by one thread at a time, as h5py guarantees. Where
that function cannot be found (an HDF5 older than 1.10.3, a platform without it), h5py's
call is used.
"""

from __future__ import annotations

import ctypes
import functools
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .block_file import CompressedChunks


@functools.cache
def _hdf5_write_chunk() -> int | None:
    """The address of ``H5Dwrite_chunk`` in the HDF5 library h5py is linked to, or None.

    Looked up from h5py's own extension module: the dynamic linker then searches that module
    and the libraries it depends on, so it is h5py's HDF5 even when another one is loaded in
    the process (PyTables bundles its own: its functions know nothing of h5py's objects).
    """
    import h5py
    import h5py.defs

    if h5py.version.hdf5_version_tuple < (1, 10, 3):
        return None
    try:
        library = ctypes.CDLL(h5py.defs.__file__)
        function = library.H5Dwrite_chunk
        if _library_version(library) != tuple(h5py.version.hdf5_version_tuple[:3]):
            return None
    except (OSError, AttributeError, TypeError):
        return None
    return ctypes.cast(function, ctypes.c_void_p).value


def _library_version(library: Any) -> tuple[int, int, int]:
    """The version an HDF5 library reports (a check that the lookup found h5py's)."""
    parts = [ctypes.c_uint(), ctypes.c_uint(), ctypes.c_uint()]
    if library.H5get_libversion(*(ctypes.byref(p) for p in parts)) < 0:
        return (0, 0, 0)
    major, minor, release = (p.value for p in parts)
    return (major, minor, release)


def write_chunks(dataset: Any, compressed: CompressedChunks, path: os.PathLike | str) -> None:
    """Store every chunk of ``compressed`` in an h5py dataset as it is, in order; ``path``
    names the file in errors."""
    write_chunk = _hdf5_write_chunk()
    if write_chunk is None:
        dataset_id = dataset.id
        for chunk in compressed.chunks():
            dataset_id.write_direct_chunk(chunk.offset, chunk.data, filter_mask=chunk.filter_mask)
        return
    from h5py._objects import phil

    from ._ext import _chunk_writer

    with phil:  # HDF5 is not thread-safe: h5py's lock keeps every other call out meanwhile
        failed = _chunk_writer.write_chunks(
            write_chunk,
            dataset.id.id,
            compressed.origins,
            compressed.stored,
            compressed.offsets,
            compressed.sizes,
            compressed.masks,
        )
    if failed >= 0:
        origin = tuple(int(o) for o in compressed.origins[failed])
        raise OSError(
            f"{path}: HDF5 could not write chunk {origin} of '{dataset.name}' "
            f"({int(compressed.sizes[failed])} bytes; disk full?)"
        )
