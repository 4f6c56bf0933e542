"""Memory for large read outputs, reused once the caller has let go of an earlier one.

A fresh output of hundreds of MB costs a page fault and a zeroed page per 4 KiB (per 2 MiB
with transparent huge pages) on its first touch; on a VM that reports free pages to its host,
far more (benchmarks/RESULTS_profile.md: hot 1 GB reads took 1.2-4x as long into a fresh
array as into a reused one). glibc hands allocations above 32 MiB back to the kernel when they
are freed, so a loop of reads of one size (``for t in ...: x = ds[t : t + 100]``) paid that on
every read. Here the buffers of such outputs are kept and lent again:

- an output is an array over a ``_Lease`` of a kept buffer: the lease is the output's base,
  and every view, slice or reshape of the output refers to the output (NumPy stops there,
  at an array whose base is no array), a buffer export too, so the lease lives exactly as
  long as any of them. Only when it is gone is the buffer lent again: a read can never write
  into memory that an array someone holds still shows;
- at most ``IDLE_BUFFERS`` idle buffers, together at most ``SHARE_OF_MEMORY`` of the
  machine's memory (two, so that ``x = ds[...]`` in a loop, where the last result is still
  held while the next is read, takes turns between two warm buffers), and a buffer is lent
  only to an output of at least half its size;
- idle buffers go back to the system after ``IDLE_SECONDS`` unused (a thread looks while any
  are kept), or at once with ``release()``.

Smaller outputs, and dtypes with objects or fields, are plain ``np.empty`` arrays (glibc's heap
already reuses the small ones).
"""

from __future__ import annotations

import math
import os
import threading
import time
import weakref
from typing import Any

import numpy as np

MIN_BYTES = 32 << 20
IDLE_BUFFERS = 2
SHARE_OF_MEMORY = 1 / 16
IDLE_SECONDS = 5.0


def _memory_bytes() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 8 << 30


class _Lease:
    """An output's hold on a kept buffer: the base NumPy records for every array over it."""

    __slots__ = ("__array_interface__", "buffer", "__weakref__")

    def __init__(self, buffer: np.ndarray, shape: tuple[int, ...], dtype: np.dtype) -> None:
        self.buffer = buffer
        self.__array_interface__: dict[str, Any] = {
            "data": (buffer.ctypes.data, False),
            "shape": tuple(shape),
            "typestr": dtype.str,
            "version": 3,
        }


class OutputMemory:
    """The kept buffers and which of them are lent (one per process: ``new_output``)."""

    def __init__(self, budget: int | None = None, idle_seconds: float = IDLE_SECONDS) -> None:
        self.budget = int(_memory_bytes() * SHARE_OF_MEMORY) if budget is None else budget
        self.idle_seconds = idle_seconds
        # a lease's end is noticed in whatever thread drops the last array, maybe while this
        # thread holds the lock (an array freed inside new_output): reentrant
        self._lock = threading.RLock()
        self._idle: dict[int, tuple[np.ndarray, float]] = {}  # id -> (buffer, idle since)
        self._lent: dict[int, np.ndarray] = {}
        self._sweeper: threading.Thread | None = None

    def new_output(self, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        """An uninitialized array of ``shape`` and ``dtype``, as ``np.empty`` makes."""
        dtype = np.dtype(dtype)
        # every read comes here, a viewer's frames too: small ones leave at once (np.prod
        # and the shape's conversion cost 28x np.empty's time on a 512 x 512 plane)
        nbytes = math.prod(shape) * dtype.itemsize
        if nbytes < MIN_BYTES or nbytes > self.budget or dtype.hasobject or dtype.fields:
            return np.empty(shape, dtype)
        shape = tuple(int(n) for n in shape)
        with self._lock:
            buffer = self._take_idle(nbytes)
            if buffer is None:
                buffer = np.empty(nbytes, np.uint8)
            self._lent[id(buffer)] = buffer
        lease = _Lease(buffer, shape, dtype)
        weakref.finalize(lease, self._returned, buffer).atexit = False
        return np.asarray(lease)

    def after_fork_in_child(self) -> None:
        """A fork's child has no sweeper, and the lock may have been held by a thread the
        child does not have."""
        self._lock = threading.RLock()
        self._sweeper = None

    def release(self) -> int:
        """Hand every idle buffer back to the system; returns the bytes released."""
        with self._lock:
            return self._drop_idle(0)

    @property
    def kept_bytes(self) -> int:
        """Bytes of the buffers kept, lent or idle."""
        with self._lock:
            return sum(b.nbytes for b in self._lent.values()) + self.idle_bytes

    @property
    def idle_bytes(self) -> int:
        with self._lock:
            return sum(b.nbytes for b, _ in self._idle.values())

    def _returned(self, buffer: np.ndarray) -> None:
        """The last array over ``buffer`` is gone: it may be lent again."""
        with self._lock:
            if self._lent.pop(id(buffer), None) is None:
                return
            self._idle[id(buffer)] = (buffer, time.monotonic())
            self._drop_idle(IDLE_BUFFERS)
            self._start_sweeper()

    # --- under the lock --------------------------------------------------------------------

    def _take_idle(self, nbytes: int) -> np.ndarray | None:
        fitting = [b for b, _ in self._idle.values() if nbytes <= b.nbytes <= 2 * nbytes]
        if not fitting:
            return None
        buffer = min(fitting, key=lambda b: b.nbytes)
        del self._idle[id(buffer)]
        return buffer

    def _drop_idle(self, keep: int) -> int:
        """Drop idle buffers, longest idle first, until at most ``keep`` are idle and they
        fit the budget; returns the bytes dropped."""
        released, idle = 0, self.idle_bytes
        for key, (buffer, _) in sorted(self._idle.items(), key=lambda item: item[1][1]):
            if len(self._idle) <= keep and idle <= self.budget:
                break
            del self._idle[key]
            idle -= buffer.nbytes
            released += buffer.nbytes
        return released

    def _start_sweeper(self) -> None:
        if self._sweeper is None or not self._sweeper.is_alive():
            self._sweeper = threading.Thread(
                target=self._sweep, name="split_dataset_output_memory", daemon=True
            )
            self._sweeper.start()

    def _sweep(self) -> None:
        """Hand back buffers idle for ``idle_seconds``; ends when no buffer is idle."""
        while True:
            time.sleep(self.idle_seconds / 4)
            with self._lock:
                now = time.monotonic()
                for key, (_, since) in list(self._idle.items()):
                    if now - since >= self.idle_seconds:
                        del self._idle[key]
                if not self._idle:
                    self._sweeper = None
                    return


_memory = OutputMemory()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_memory.after_fork_in_child)


def new_output(shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """An output array for a read: ``np.empty``, or an array over a buffer lent again."""
    return _memory.new_output(shape, dtype)


def release() -> int:
    """Hand the idle buffers of earlier outputs back to the system now (they go by themselves
    after ``IDLE_SECONDS`` unused); returns the bytes released."""
    return _memory.release()
