"""The Blosc1 encoder our writers use: numcodecs' c-blosc 1.x, reached from compiled code.

Every reader of these files (PyTables, h5py + hdf5plugin, the 0.4.x package) reads Blosc1
chunks, and numcodecs ships the c-blosc 1.x that writes them. Its ``blosc_compress_ctx`` is
the function numcodecs' own ``compress`` calls (with the arguments ``compress_block`` passes);
the compiled writer calls it directly, for all chunks of a block in one call without the GIL.
Where the symbol cannot be found, numcodecs' Python function is used chunk by chunk.
"""

from __future__ import annotations

import ctypes
import functools


@functools.cache
def compress_ctx_address() -> int | None:
    """The address of ``blosc_compress_ctx`` in numcodecs' blosc extension, or None."""
    import numcodecs.blosc

    try:
        function = ctypes.CDLL(numcodecs.blosc.__file__).blosc_compress_ctx
    except (OSError, AttributeError):
        return None
    return ctypes.cast(function, ctypes.c_void_p).value
