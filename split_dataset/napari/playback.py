"""Playback in napari: a layer's data that reads ahead along time while the slider moves.

napari reads the displayed plane (or volume, in 3-D view) with ``data[key]``, where ``key``
holds an integer or a one-wide slice per slider axis. When two reads in a row are one time
step apart (the slider is stepping or playing), the next step in the same direction is read
ahead in the background (``SplitDataset.prefetch``, which gives way to foreground reads), so
the next frame is usually in memory when napari asks for it. One frame ahead at most: when
the slider stops, read-ahead stops.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..array_like import ArrayLike


def _time_index(key: Any) -> int | None:
    """The time step a napari key selects (an integer or a one-wide slice on axis 0)."""
    first = key[0] if isinstance(key, tuple) and key else key
    if isinstance(first, (int, np.integer)) and not isinstance(first, bool):
        return int(first)
    one_wide = isinstance(first, slice) and first.step in (None, 1) and first.start is not None
    if one_wide and first.stop == first.start + 1:
        return int(first.start)
    return None


def _at_time(key: Any, key_time: int, time: int) -> tuple:
    """``key`` with its time step moved to ``time`` (same form: integer or slice)."""
    items = key if isinstance(key, tuple) else (key,)
    first = items[0]
    moved = slice(time, time + 1, first.step) if isinstance(first, slice) else time
    return (moved,) + tuple(items[1:])


class ReadAheadArray(ArrayLike):
    """A dataset as napari layer data: reads through the fast reader, reads ahead in time."""

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset
        self._last_time: int | None = None
        self.read_ahead = 0  # frames submitted ahead (for tests and benchmarks)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.dataset.shape

    @property
    def dtype(self) -> np.dtype:
        return self.dataset.dtype

    def read(
        self, key: Any = (), out: np.ndarray | None = None, threads: int | None = None
    ) -> np.ndarray:
        result = self.dataset.read(key, out, threads)
        time = _time_index(key)
        if time is not None and self.shape:
            step = None if self._last_time is None else time - self._last_time
            self._last_time = time
            if step in (1, -1) and 0 <= time + step < self.shape[0]:
                self.dataset.prefetch(_at_time(key, time, time + step))
                self.read_ahead += 1
        return result

    def __repr__(self) -> str:
        return f"ReadAheadArray({self.dataset!r})"
