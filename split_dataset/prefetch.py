"""Read-ahead for playback: selections read in the background, handed over when asked for.

Background reads run on one thread of their own and yield to foreground reads between chunks
(see ``_chunk_reader``), so reading ahead does not delay what a viewer asks for now.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np


def selection_token(key: Any) -> Hashable | None:
    """A hashable stand-in for an index made of ints, slices, None and Ellipsis, else None."""
    items = key if isinstance(key, tuple) else (key,)
    token: list[Hashable] = []
    for item in items:
        if item is None or item is Ellipsis:
            token.append(item)
        elif isinstance(item, slice):
            token.append(("slice", item.start, item.stop, item.step))
        elif isinstance(item, (int, np.integer)) and not isinstance(item, (bool, np.bool_)):
            token.append(int(item))
        else:
            return None
    return tuple(token)


class Prefetcher:
    """Keeps at most ``capacity`` selections read ahead, oldest dropped first."""

    def __init__(self, read: Callable[[Any], np.ndarray], capacity: int = 32) -> None:
        self._read = read
        self._capacity = capacity
        self._futures: OrderedDict[Hashable, Future] = OrderedDict()
        self._lock = threading.Lock()
        self._closed = False
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="split_dataset-prefetch")

    def submit(self, key: Any) -> Future | None:
        """The future of ``key``'s read (started now, or earlier); None once shut down."""
        token = selection_token(key)
        with self._lock:
            if self._closed:
                return None
            if token is not None and token in self._futures:
                return self._futures[token]
            future = self._executor.submit(self._read, key)
            if token is not None:
                self._futures[token] = future
                while len(self._futures) > self._capacity:
                    _, dropped = self._futures.popitem(last=False)
                    dropped.cancel()
        return future

    def take(self, key: Any) -> np.ndarray | None:
        """The prefetched result for ``key`` (waiting if it is being read), or None."""
        token = selection_token(key)
        if token is None:
            return None
        with self._lock:
            future = self._futures.pop(token, None)
        if future is None or future.cancel():  # not started yet: the caller reads it now
            return None
        return future.result()

    def clear(self) -> None:
        with self._lock:
            for future in self._futures.values():
                future.cancel()
            self._futures.clear()

    def shutdown(self) -> None:
        with self._lock:
            self._closed = True  # no submission gets past here any more
        self.clear()
        self._executor.shutdown(wait=True)
