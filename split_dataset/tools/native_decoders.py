"""c-blosc2 and zlib-ng, the decoders the package links, called through ctypes.

The ceiling (``ceiling.py``) decodes chunks with them outside the package's read path: ctypes
releases the GIL during each call, so several threads decode in parallel. The libraries come
from the blosc2 wheel (which exports c-blosc2 and zlib-ng), else hdf5plugin's blosc2 plugin;
inflate falls back to the system's zlib.
"""

from __future__ import annotations

import ctypes
import threading
from pathlib import Path


def _libraries() -> list[Path]:
    """Shared libraries exporting c-blosc2 (and zlib-ng): blosc2's wheel, else hdf5plugin's."""
    candidates = []
    try:
        import blosc2

        candidates.append(Path(blosc2.__file__).parent / "lib" / "libblosc2.so")
    except ImportError:
        pass
    try:
        import hdf5plugin

        candidates.append(Path(hdf5plugin.__file__).parent / "plugins" / "libh5blosc2.so")
    except ImportError:
        pass
    return [c for c in candidates if c.is_file()]


class DecoderUnavailable(RuntimeError):
    """No shared library with the decoder this machine's ceiling needs."""


class _DParams(ctypes.Structure):
    _fields_ = [
        ("nthreads", ctypes.c_int16),
        ("schunk", ctypes.c_void_p),
        ("postfilter", ctypes.c_void_p),
        ("postparams", ctypes.c_void_p),
        ("typesize", ctypes.c_int32),
    ]


class NativeDecoders:
    """``blosc2_decompress_ctx`` (one context per thread), ``blosc2_unshuffle`` and inflate."""

    def __init__(self) -> None:
        lib = None
        for path in _libraries():
            try:
                candidate = ctypes.CDLL(str(path))
                candidate.blosc2_decompress_ctx  # noqa: B018  (raises if not exported)
                lib = candidate
                self.path = path
                break
            except (OSError, AttributeError):
                continue
        if lib is None:
            raise DecoderUnavailable("no shared library exporting blosc2_decompress_ctx found")
        lib.blosc2_init()
        pointer, int32 = ctypes.c_void_p, ctypes.c_int32
        lib.blosc2_create_dctx.argtypes = [_DParams]
        lib.blosc2_create_dctx.restype = pointer
        lib.blosc2_decompress_ctx.argtypes = [pointer, pointer, int32, pointer, int32]
        lib.blosc2_decompress_ctx.restype = ctypes.c_int
        lib.blosc2_unshuffle.argtypes = [int32, int32, pointer, pointer]
        lib.blosc2_unshuffle.restype = int32
        inflate = None
        loaders = (
            (lambda: lib, "zng_uncompress"),
            (lambda: ctypes.CDLL("libz.so.1"), "uncompress"),
        )
        for load, name in loaders:
            try:
                holder = load()
                inflate = getattr(holder, name)
                self.inflate_name = f"{name} ({Path(holder._name).name})"
                break
            except (OSError, AttributeError):
                continue
        if inflate is None:
            raise DecoderUnavailable("no inflate (zlib-ng or zlib) library found")
        inflate.argtypes = [pointer, ctypes.POINTER(ctypes.c_size_t), pointer, ctypes.c_size_t]
        inflate.restype = ctypes.c_int
        self.inflate = inflate
        self.lib = lib
        self._local = threading.local()

    def dctx(self) -> int:
        """This thread's decompression context (blosc2's are not to be shared)."""
        ctx = getattr(self._local, "dctx", None)
        if ctx is None:
            ctx = self.lib.blosc2_create_dctx(_DParams(1, None, None, None, 8))
            self._local.dctx = ctx
        return ctx

    def describe(self) -> str:
        return f"blosc2_decompress_ctx ({self.path.name}), {self.inflate_name}"


_DECODERS: NativeDecoders | None = None


def native_decoders() -> NativeDecoders:
    """The decoders, loaded once per process."""
    global _DECODERS
    if _DECODERS is None:
        _DECODERS = NativeDecoders()
    return _DECODERS


def describe_decoders() -> str:
    try:
        return native_decoders().describe()
    except DecoderUnavailable as error:
        return f"unavailable: {error}"
