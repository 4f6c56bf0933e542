"""Open block files and their chunk indexes, kept in a bounded LRU cache.

A dataset of 10,000 files must not hold 10,000 descriptors: at most ``capacity`` files stay
open; a file still in use by a read (pinned) is closed only once that read is done.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from .errors import BlockFileError
from .file_layout import FileLayout, read_file_layout

DEFAULT_OPEN_FILES = 128


class OpenBlockFile:
    """A block file's layout and a read-only descriptor for ``pread``."""

    def __init__(self, layout: FileLayout, stat: os.stat_result) -> None:
        self.layout = layout
        self.identity = (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)
        self.pins = 0
        self.evicted = False
        self.checked_blocks: set[int] = set()  # blocks whose shape/dtype were checked against it
        self._fd: int | None = None

    @property
    def fd(self) -> int:
        if self._fd is None:
            try:
                self._fd = os.open(self.layout.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
            except OSError as error:
                raise BlockFileError(f"{self.layout.path}: cannot open: {error}") from error
        return self._fd

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self.layout.lazy is not None:
            self.layout.lazy.close()

    def __del__(self) -> None:  # a dataset dropped without close() must not leak descriptors
        try:
            self.close()
        except Exception:  # noqa: BLE001 - at interpreter exit h5py may be half torn down
            pass


def _stat(path: Path) -> os.stat_result:
    try:
        return os.stat(path)
    except OSError as error:
        raise BlockFileError(f"{path}: block file is missing or unreadable: {error}") from error


class FileCache:
    """LRU of ``OpenBlockFile`` keyed by path; safe to use from several threads."""

    def __init__(self, capacity: int = DEFAULT_OPEN_FILES) -> None:
        self.capacity = max(1, int(capacity))
        self._entries: OrderedDict[Path, OpenBlockFile] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def _get(self, path: Path, key: str | None) -> OpenBlockFile:
        stat = _stat(path)
        identity = (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)
        with self._lock:
            entry = self._entries.get(path)
            if entry is not None and entry.identity == identity:
                self._entries.move_to_end(path)
                entry.pins += 1
                return entry
        # Replaced or grown since it was indexed, or new: (re)build the index outside the lock.
        fresh = OpenBlockFile(read_file_layout(path, key, lazy=True), stat)
        fresh.pins = 1
        with self._lock:
            stale = self._entries.pop(path, None)
            if stale is not None:
                self._retire(stale)
            self._entries[path] = fresh
            while len(self._entries) > self.capacity:
                _, oldest = self._entries.popitem(last=False)
                self._retire(oldest)
        return fresh

    @staticmethod
    def _retire(entry: OpenBlockFile) -> None:
        entry.evicted = True
        if entry.pins == 0:
            entry.close()

    def _release(self, entry: OpenBlockFile) -> None:
        with self._lock:
            entry.pins -= 1
            if entry.evicted and entry.pins == 0:
                entry.close()

    @contextmanager
    def acquire(self, paths: Sequence[Path], key: str | None = None) -> Iterator[list[OpenBlockFile]]:
        """The files' layouts and descriptors, kept open until the block exits."""
        entries: list[OpenBlockFile] = []
        try:
            for path in paths:
                entries.append(self._get(path, key))
            yield entries
        finally:
            for entry in entries:
                self._release(entry)

    def layout(self, path: Path, key: str | None = None) -> FileLayout:
        """The file's layout with every chunk indexed."""
        with self.acquire([path], key) as (entry,):
            if entry.layout.lazy is not None:
                entry.layout.lazy.ensure_all()
            return entry.layout

    def clear(self) -> None:
        with self._lock:
            entries = list(self._entries.values())
            self._entries.clear()
            for entry in entries:
                self._retire(entry)
