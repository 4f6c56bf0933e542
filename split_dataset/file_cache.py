"""Open block files and their chunk indexes, kept in a bounded LRU cache.

A dataset of 20,000 files must not hold 20,000 descriptors: the cache counts the descriptors
its files hold (one for ``pread``, one more for an h5py handle while a file's chunk index is
still being filled in) and closes the least recently used files beyond ``capacity``, keeping
their layouts (a partial chunk index detached: it holds no descriptor between lookups). A file in
use by a read (pinned) is closed only once that read is done; readers pin at most half the
capacity at a time (``files_per_batch``).
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
import weakref
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from . import forking
from ._ext import _chunk_reader, _listing
from ._ext._chunk_reader import Codec
from .errors import BlockFileError
from .file_layout import FileLayout, file_identity, read_file_layout, reopen_stack

if TYPE_CHECKING:
    from ._ext._chunk_reader import ReadContext

# One for pread, one for the h5py handle of a chunk index being filled in.
MAX_DESCRIPTORS_PER_FILE = 2
REOPEN_ATTEMPTS = 3  # a file replaced while it was being opened is opened again
# Compressed chunks are decoded straight from a mapping of the file, not first copied out of
# the page cache with pread (hot full and strided reads of blosc and lz4 files: 0.86-0.91x
# the time, interleaved A/B). The gain is the mapping's page tables kept from one read to
# the next, so mappings live as long as the open file; the pages they hold count in the
# process's resident set (they are the page cache, there anyway). Raw chunks gain nothing:
# pread copies them into the output directly. False: no file is mapped (one cache:
# ``FileCache.mapped_budget = 0``).
MAP_COMPRESSED_FILES = True
MAPPED_CODECS = frozenset({Codec.BLOSC, Codec.DEFLATE, Codec.SHUFFLE_DEFLATE})
# A cache keeps at most this share of the machine's memory mapped: beyond it, the least
# recently used files no read is using are unmapped (mapped again when next read); a file
# larger than that is read with pread.
MAPPED_SHARE_OF_MEMORY = 1 / 8
# Checked read contexts of small plans kept for the next read of the same plan in the same
# file (reader._execute): after a 5 ms pause, making a context cost 36 us of a 250 us raw
# plane read, copying a kept one far less. At most READ_TEMPLATES_PER_FILE per file (enough
# for every plane of a block of 10 time points x 25 z: a viewer scrubbing z kept too few with
# 32) and READ_TEMPLATES_KEPT in a cache, those of the least recently read files dropped
# first (a template takes about 4 KB).
READ_TEMPLATES_PER_FILE = 256
READ_TEMPLATES_KEPT = 4096
# The layouts (chunk tables) of files closed to keep the descriptors within the capacity are
# kept, up to this many bytes of tables, for the next opening of the same file version: a
# read across more files than the cache keeps open (a pixel's trace through 10,000 block
# files) reopened every file and parsed its HDF5 layout again, 795 us a file. A partial lazy
# index is kept detached (``LazyChunkIndex.detached``): it opens the file for new lookups only.
CLOSED_LAYOUTS_BYTES = 64 << 20


_caches: weakref.WeakSet[FileCache] = weakref.WeakSet()


def default_mapped_budget() -> int:
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        memory = 8 << 30
    return int(memory * MAPPED_SHARE_OF_MEMORY)


def default_max_open_files() -> int:
    """Descriptors a dataset may hold: a quarter of the process's limit, at most 256."""
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (ImportError, OSError, ValueError):
        return 256
    if soft == resource.RLIM_INFINITY:
        return 256
    return max(MAX_DESCRIPTORS_PER_FILE * 2, min(256, soft // 4))


class OpenBlockFile:
    """A block file's layout and a read-only descriptor for ``pread``, of one file version.

    The descriptor is opened first and the layout read after; if the path names another file
    by then (replaced on disk meanwhile), both are read again, so that the layout always
    describes the very file the descriptor reads.
    """

    def __init__(self, path: Path, key: str | None, kept: KeptLayout | None = None) -> None:
        """``kept``: the layout of this file when it was last open; used if the file opened
        now is that same version (device, inode, size and modification time), else read."""
        self.pins = 0
        self.evicted = False
        self.checked_blocks: set[int] = set()  # blocks whose geometry was checked against it
        # (id(plan), verify_checksums) -> (plan, ReadContext template): reader._execute
        self.read_templates: dict[tuple[int, bool], tuple[object, ReadContext]] = {}
        self.fd = -1  # until opened; close() may run on a half-made entry (from __del__)
        self._description: _chunk_reader.FileDescription | None = None
        # the whole file mapped read-only (``_chunk_reader.map_file``), or 0
        self.mapped_address, self.mapped_size = 0, 0
        self.codec_mappable = False  # whether the codec's files are mapped, once indexed
        for _ in range(REOPEN_ATTEMPTS):
            fd = _open(path)
            try:
                stat = os.fstat(fd)
                if kept is not None and kept.identity == file_identity(stat):
                    layout, self._description = kept.layout, kept.description
                else:
                    layout = read_file_layout(path, key, lazy=True, stat=stat)
            except BaseException:
                os.close(fd)
                raise
            if file_identity(_stat(path)) == file_identity(stat):
                self.fd, self.layout, self.identity = fd, layout, file_identity(stat)
                # asked at every pin: an Enum's hash is Python code (0.3 us a file a read)
                self.codec_mappable = layout.codec in MAPPED_CODECS and layout.file_size > 0
                return
            os.close(fd)
            if layout.lazy is not None:
                layout.lazy.close()
            kept = None  # the path names another file now
        raise BlockFileError(f"{path}: the file keeps changing while it is being opened")

    def kept_layout(self) -> KeptLayout:
        """This file version's layout to keep once the file is closed; a partial lazy index
        goes with it detached, to open this file version again for the chunks it lacks."""
        layout, lazy = self.layout, self.layout.lazy
        if lazy is not None and not lazy.complete:
            reopen = functools.partial(reopen_stack, layout.path, layout.key, self.identity)
            layout = replace(layout, lazy=lazy.detached(reopen))
        return KeptLayout(self.identity, layout, self._description)

    @property
    def description(self) -> _chunk_reader.FileDescription:
        """The layout as the reader's workers see it, described at the first read (not at
        opening: an empty dataset is opened, never read) and kept: a read across 100 files
        copies 100 descriptions instead of describing every file again."""
        if self._description is None:
            self._description = _chunk_reader.FileDescription(self.layout)
        return self._description

    @property
    def mappable(self) -> bool:
        return MAP_COMPRESSED_FILES and self.fd >= 0 and self.codec_mappable

    def map(self) -> int:
        """Map the file for the readers (no read of it may be running); the bytes mapped."""
        if self.mapped_address or not self.mappable:
            return 0
        # Chunks are checked against the size the layout was read at: the mapping covers every
        # chunk a read can reach. Contexts kept from before point to no mapping: made again.
        size = self.layout.file_size
        self.read_templates.clear()
        self.mapped_address = _chunk_reader.map_file(self.fd, size)
        self.mapped_size = size if self.mapped_address else 0
        return self.mapped_size

    def unmap(self) -> int:
        """Undo ``map`` (no read of it may be running); the bytes unmapped."""
        address, size = self.mapped_address, self.mapped_size
        if not address:
            return 0
        self.read_templates.clear()  # they point into the mapping
        self.mapped_address, self.mapped_size = 0, 0
        _chunk_reader.unmap_file(address, size)
        return size

    @property
    def descriptors(self) -> int:
        lazy = self.layout.lazy
        return (self.fd >= 0) + (lazy is not None and lazy.holds_file)

    def close(self) -> None:
        self.unmap()
        fd, self.fd = self.fd, -1
        if fd >= 0:
            os.close(fd)
        layout: FileLayout | None = getattr(self, "layout", None)
        if layout is not None and layout.lazy is not None:
            layout.lazy.close()

    def __del__(self) -> None:  # a dataset dropped without close() must not leak descriptors
        with contextlib.suppress(Exception):  # at interpreter exit h5py may be half torn down
            self.close()


@dataclass(frozen=True, slots=True)
class KeptLayout:
    """The layout of a closed block file, for its next opening (``OpenBlockFile``'s
    ``kept``): valid only for the file version of ``identity``."""

    identity: bytes
    layout: FileLayout
    description: _chunk_reader.FileDescription | None

    @property
    def nbytes(self) -> int:
        layout = self.layout
        tables = (layout.chunk_offset, layout.chunk_size, layout.chunk_mask, layout.chunk_crc)
        return sum(table.nbytes for table in tables if table is not None)


def _open(path: Path) -> int:
    try:
        return os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError as error:
        raise BlockFileError(f"{path}: block file is missing or unreadable: {error}") from error


def _stat(path: Path) -> os.stat_result:
    try:
        return os.stat(path)
    except OSError as error:
        raise BlockFileError(f"{path}: block file is missing or unreadable: {error}") from error


def current_identity(path: Path) -> bytes:
    """``file_identity`` of the file ``path`` names now (``BlockFileError`` if none): the
    check of every read of one file (0.5 us faster than through ``os.stat``)."""
    identity = _listing.stat_identities((path,))[0]
    if identity is None:  # gone or unreadable: os.stat says why
        identity = file_identity(_stat(path))
    return identity


def release_mappings() -> None:
    """``FileCache.release_mappings`` of every cache in the process: before dropping files
    from the page cache (cold-cache benchmarks and tests), or to shrink the resident set."""
    for cache in list(_caches):
        cache.release_mappings()


class FileCache:
    """LRU of ``OpenBlockFile`` keyed by path, bounded in descriptors; thread-safe."""

    def __init__(self, capacity: int | None = None) -> None:
        self.capacity = max(MAX_DESCRIPTORS_PER_FILE, int(capacity or default_max_open_files()))
        self.mapped_budget = default_mapped_budget()  # bytes the cached files may keep mapped
        self._entries: OrderedDict[Path, OpenBlockFile] = OrderedDict()
        # layouts of files closed to bound the descriptors, least recently closed first (by
        # path, as the open entries are)
        self._closed: OrderedDict[Path, KeptLayout] = OrderedDict()
        self._closed_bytes = 0
        # The bookkeeping of each opening is O(1), not a sum over every cached file (a read
        # across 10,000 files, 128 kept open, spent most of its time summing): the entries
        # whose lazy index still holds a second descriptor, and an upper bound of the bytes
        # mapped (unmappings outside ``_map`` only lower the true figure), recounted when
        # the bound passes the budget.
        self._indexing: set[OpenBlockFile] = set()
        self._mapped_bound = 0
        self._lock = threading.Lock()
        # templates kept since they were last counted: never fewer than the entries hold
        self._templates_added = 0
        forking.reset_after_fork(self)
        _caches.add(self)

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def files_per_batch(self) -> int:
        """Files one read may hold open at once (each batch is planned and read on its own)."""
        return max(1, self.capacity // (2 * MAX_DESCRIPTORS_PER_FILE))

    def batches(self, paths: Sequence[Path]) -> Iterator[slice]:
        """Runs of ``paths`` that one read pins at once, in order, each decided when the run
        before it is done: a run opens at most ``files_per_batch`` files that are not open
        yet and holds at most as many files as the cache keeps (a file open already costs
        no new descriptor), so descriptors stay within twice the capacity. Splitting a read
        whose files were all open cost 2-7 % of a plane across 100 files: each run waits
        for its slowest task alone."""
        most = max(1, self.capacity // MAX_DESCRIPTORS_PER_FILE)
        if len(paths) <= most:
            # the usual read: every file open already, one run (the loop below asked each
            # path in 0.2 us)
            with self._lock:
                entries = self._entries
                all_open = all(path in entries for path in paths)
            if all_open:
                yield slice(0, len(paths))
                return
        start = 0
        while start < len(paths):
            with self._lock:
                stop, opening = start, 0
                while stop < len(paths) and stop - start < most:
                    if paths[stop] not in self._entries:
                        if opening == self.files_per_batch:
                            break
                        opening += 1
                    stop += 1
            yield slice(start, stop)
            start = stop

    def descriptors(self) -> int:
        """Descriptors held by the cached files (pinned ones that were evicted not counted)."""
        with self._lock:
            return sum(entry.descriptors for entry in self._entries.values())

    def pin(self, path: Path, key: str | None = None) -> OpenBlockFile:
        """The file's entry, open until ``unpin``: the one read as it is on disk now (a file
        replaced or changed since it was indexed is indexed again)."""
        identity = current_identity(path)
        with self._lock:
            entry = self._pin_if_current(path, identity)
            if entry is not None:
                return entry
        # Replaced or grown since it was indexed, or new: (re)build the index outside the lock
        # (or take the one kept when it was closed, if the file is that version still).
        with self._lock:
            kept = self._closed.pop(path, None)
            if kept is not None:
                self._closed_bytes -= kept.nbytes
        fresh = OpenBlockFile(path, key, kept)
        with self._lock:
            fresh.pins = 1
            stale = self._entries.pop(path, None)
            if stale is not None:
                self._indexing.discard(stale)
                self._retire(stale)
            self._entries[path] = fresh
            if fresh.descriptors > 1:
                self._indexing.add(fresh)
            self._map(fresh)
            self._evict()
        return fresh

    def pin_all(self, paths: Sequence[Path], key: str | None = None) -> list[OpenBlockFile]:
        """``pin`` of every path, in order: the files open already and unchanged under one
        hold of the lock (a read across 100 files took it 200 times), the others one by one
        (``pin`` names a file that cannot be stat-ed). The files are stat-ed in one compiled
        call: 1.5 us a file instead of 2.3."""
        identities = _listing.stat_identities(paths)
        entries: list[OpenBlockFile | None] = []
        with self._lock:
            for path, identity in zip(paths, identities):
                entries.append(None if identity is None else self._pin_if_current(path, identity))
        try:
            for index, entry in enumerate(entries):
                if entry is None:
                    entries[index] = self.pin(paths[index], key)
        except BaseException:
            self.unpin_all([entry for entry in entries if entry is not None])
            raise
        return entries  # type: ignore[return-value]  # every None was pinned above

    def _pin_if_current(self, path: Path, identity: bytes) -> OpenBlockFile | None:
        """The open entry of ``path`` pinned, if it is the file version ``identity`` names;
        else None (lock held)."""
        entry = self._entries.get(path)
        if entry is None or entry.identity != identity:
            return None
        self._entries.move_to_end(path)
        if entry.pins == 0 and entry.codec_mappable:
            self._map(entry)
        entry.pins += 1
        return entry

    def keep_read_template(self, entry: OpenBlockFile, key: tuple[int, bool], kept: tuple) -> None:
        """Keep ``kept`` (plan, template) for the entry's next read of that plan, within
        READ_TEMPLATES_PER_FILE and READ_TEMPLATES_KEPT."""
        with self._lock:
            templates = entry.read_templates
            if len(templates) >= READ_TEMPLATES_PER_FILE:
                templates.clear()
            templates[key] = kept
            self._templates_added += 1
            if self._templates_added > READ_TEMPLATES_KEPT:
                self._drop_templates()

    def templates_kept(self) -> int:
        with self._lock:
            return self._templates_held()

    def _templates_held(self) -> int:
        return sum(len(entry.read_templates) for entry in self._entries.values())

    def _drop_templates(self) -> None:
        """Drop the templates of the least recently read files until half the bound is left
        (lock held)."""
        kept = self._templates_held()
        for entry in self._entries.values():
            if kept <= READ_TEMPLATES_KEPT // 2:
                break
            kept -= len(entry.read_templates)
            entry.read_templates.clear()
        self._templates_added = kept

    @property
    def mapped_bytes(self) -> int:
        """Bytes the cached files keep mapped."""
        return sum(entry.mapped_size for entry in self._entries.values())

    def _map(self, entry: OpenBlockFile) -> None:
        """Map an entry no read is using, unmapping the least recently used unpinned entries
        beyond the budget (lock held)."""
        if entry.mapped_address or entry.layout.file_size > self.mapped_budget:
            return
        added = entry.map()
        if not added:
            return
        self._mapped_bound += added
        if self._mapped_bound <= self.mapped_budget:
            return
        mapped = self.mapped_bytes
        for other in self._entries.values():
            if mapped <= self.mapped_budget:
                break
            if other.pins == 0 and other is not entry:
                mapped -= other.unmap()
        self._mapped_bound = mapped

    def release_mappings(self) -> None:
        """Unmap every file no read is using: their pages leave the process's resident set
        and the kernel may drop them (``posix_fadvise(DONTNEED)`` and ``drop_caches`` skip
        mapped pages). They are mapped again when next read."""
        with self._lock:
            for entry in self._entries.values():
                if entry.pins == 0:
                    entry.unmap()

    def _evict(self) -> None:
        """Close least recently used files until the descriptors fit (lock held). Pinned files
        stay open until their read is done but no longer count against the cache."""
        indexing = self._indexing
        indexing.difference_update([entry for entry in indexing if entry.descriptors < 2])
        held = len(self._entries) + len(indexing)  # one each, two while indexing
        while held > self.capacity and len(self._entries) > 1:
            path, oldest = self._entries.popitem(last=False)
            held -= oldest.descriptors
            indexing.discard(oldest)
            self._keep_layout(path, oldest)
            self._retire(oldest)

    def _keep_layout(self, path: Path, entry: OpenBlockFile) -> None:
        """Keep the layout of a file closed for lack of descriptors, within
        CLOSED_LAYOUTS_BYTES (lock held)."""
        kept = entry.kept_layout()
        if kept.nbytes > CLOSED_LAYOUTS_BYTES:
            return
        previous = self._closed.pop(path, None)
        if previous is not None:
            self._closed_bytes -= previous.nbytes
        self._closed[path] = kept
        self._closed_bytes += kept.nbytes
        while self._closed_bytes > CLOSED_LAYOUTS_BYTES:
            _, dropped = self._closed.popitem(last=False)
            self._closed_bytes -= dropped.nbytes

    @staticmethod
    def _retire(entry: OpenBlockFile) -> None:
        entry.evicted = True
        if entry.pins == 0:
            entry.close()

    def unpin(self, entry: OpenBlockFile) -> None:
        self.unpin_all((entry,))

    def unpin_all(self, entries: Sequence[OpenBlockFile]) -> None:
        with self._lock:
            for entry in entries:
                entry.pins -= 1
                if entry.evicted and entry.pins == 0:
                    entry.close()

    @contextmanager
    def acquire(
        self, paths: Sequence[Path], key: str | None = None
    ) -> Iterator[list[OpenBlockFile]]:
        """The files' layouts and descriptors, kept open until the block exits."""
        entries = self.pin_all(paths, key)
        try:
            yield entries
        finally:
            self.unpin_all(entries)

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
            self._indexing.clear()
            self._closed.clear()
            self._closed_bytes = 0
            for entry in entries:
                self._retire(entry)

    def _after_fork_in_child(self) -> None:
        # Threads that pinned files or held the lock do not exist here: start over. The files
        # are closed by the next clear() of their entries, not now (no h5py calls in a fork
        # handler); their descriptors are the child's own copies.
        self._lock = threading.Lock()
        self._closed.clear()  # their lazy indexes' locks may be held by the parent's threads
        self._closed_bytes = 0
        for entry in self._entries.values():
            entry.pins = 0
            if entry.layout.lazy is not None:
                entry.layout.lazy.after_fork_in_child()
