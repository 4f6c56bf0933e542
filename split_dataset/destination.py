"""Where writers write: never over a source, never over a dataset unless told, then atomically.

Rules every writer follows (``save_to_split_dataset``, ``EmptySplitDataset``,
``SplitDatasetWriter``, ``split-dataset convert``):

- A folder that holds a split dataset is not written into unless ``overwrite`` is given.
  Other files (notes, ``shifts.h5``) are no reason to refuse, and are kept.
- The destination is never the source being read, nor inside it, nor around it.
- ``overwrite`` replaces the old dataset atomically: the new one is written in a sibling folder
  and exchanged with the old one in one step (``renameat2(RENAME_EXCHANGE)`` on Linux), then the
  old one is deleted. Killed at any moment, the destination holds the complete old dataset or
  the complete new one, never a mix. (The streaming writer exchanges at the start, so that a
  live recording is at its path, and deletes the old dataset when it is closed.)
- A whole-array write marks its ``stack_metadata.json`` incomplete until its last block is in
  (``INCOMPLETE_KEY``): killed midway, the folder opens with its complete blocks and says it is
  incomplete; ``resume`` finishes it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import re
import shutil
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .block_file import fsync_path
from .errors import DestinationError
from .metadata import INCOMPLETE_KEY, METADATA_SUFFIX

__all__ = ["INCOMPLETE_KEY", "Destination", "check_not_source", "dataset_files", "prepare"]
_BLOCK_FILE = re.compile(r"^.*\d+\.h5$")


def dataset_files(folder: Path) -> list[Path]:
    """The files of ``folder`` that belong to a split dataset: numbered ``.h5`` blocks, the
    metadata and our temporary files. Everything else in a dataset folder is the user's."""
    if not folder.is_dir():
        return []
    return sorted(
        p
        for p in folder.iterdir()
        if _BLOCK_FILE.match(p.name) or p.name.endswith(METADATA_SUFFIX) or p.name.endswith(".tmp")
    )


def check_not_source(destination: Path, sources: Iterable[Path | str | None]) -> None:
    """Refuse a destination that is a source being read, or inside one, or around one."""
    target = Path(destination).resolve()
    for source in sources:
        if source is None:
            continue
        origin = Path(source).resolve()
        if target == origin or origin in target.parents or target in origin.parents:
            raise DestinationError(
                f"{destination}: is "
                f"{'the source' if target == origin else 'nested with the source'} {source}; "
                f"writing there would destroy what is being read. Write elsewhere."
            )


@dataclass
class Destination:
    """A writer's destination folder: ``folder`` is where it writes now (``final`` itself, or
    a sibling that ``swap`` exchanges with ``final``)."""

    final: Path
    folder: Path
    replaced: Path | None = None  # after a swap: where the old dataset went, until removed
    created: bool = False  # the folder did not exist before: abandoning it may remove it

    @property
    def aside(self) -> bool:
        return self.folder != self.final

    def commit(self, durable: bool = True) -> None:
        """Put the finished dataset at ``final``, replacing (and deleting) the old one."""
        if self.aside:
            self.swap(durable)
        elif durable:
            fsync_path(self.folder)
        self.remove_replaced()

    def swap(self, durable: bool = True) -> None:
        """Exchange the folder written aside with the old dataset at ``final``, in one step.
        The user's other files in the old folder move to the new one first."""
        for path in self.final.iterdir():
            if path not in dataset_files(self.final):
                os.replace(path, self.folder / path.name)
        if durable:
            fsync_path(self.folder)
        exchange(self.folder, self.final)
        if durable:
            fsync_path(self.final.parent)
        self.replaced, self.folder = self.folder, self.final

    def remove_replaced(self) -> None:
        if self.replaced is not None:
            shutil.rmtree(self.replaced, ignore_errors=True)
            self.replaced = None

    def abandon(self, published: bool) -> None:
        """After a failure: delete a folder written aside (the old dataset stays untouched), or
        our temporary files, and the metadata too if no block was ``published``."""
        if self.aside:
            shutil.rmtree(self.folder, ignore_errors=True)
            return
        for leftover in self.folder.glob("*.tmp"):
            leftover.unlink(missing_ok=True)
        if not published:
            for metadata in self.folder.glob(f"*{METADATA_SUFFIX}"):
                metadata.unlink(missing_ok=True)
            if self.created and not any(self.folder.iterdir()):
                self.folder.rmdir()


def prepare(path: Path | str, overwrite: bool = False, *, resume: bool = False) -> Destination:
    """Where to write a dataset that should end up at ``path``.

    A missing or empty folder, or one without a dataset in it: written in place. A folder with
    a dataset: refused unless ``overwrite`` (then written aside and exchanged by ``commit``) or
    ``resume`` (then written in place, the caller checks the dataset is its own interrupted
    write).
    """
    final = Path(path)
    if final.exists() and not final.is_dir():
        raise DestinationError(f"{final}: exists and is not a folder")
    existing = dataset_files(final)
    if not existing or resume:
        created = not final.exists()
        final.mkdir(parents=True, exist_ok=True)
        return Destination(final, final, created=created)
    if not overwrite:
        raise DestinationError(
            f"{final}: holds a split dataset ({', '.join(p.name for p in existing[:3])}"
            f"{'...' if len(existing) > 3 else ''}); pass overwrite=True (command line: "
            f"--overwrite) to replace it"
        )
    remove_stale_asides(final)
    aside = final.parent / f".{final.name}.writing-{uuid.uuid4().hex[:12]}"
    aside.mkdir()
    return Destination(final, aside)


def remove_stale_asides(final: Path) -> None:
    """Folders left by writes aside to ``final`` that were killed before their commit."""
    for stale in final.parent.glob(f".{final.name}.writing-*"):
        shutil.rmtree(stale, ignore_errors=True)


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _renameat2():
    library = ctypes.util.find_library("c")
    if library is None:
        return None
    function = getattr(ctypes.CDLL(library, use_errno=True), "renameat2", None)
    if function is not None:
        function.argtypes = [
            ctypes.c_int,
            ctypes.c_char_p,
            ctypes.c_int,
            ctypes.c_char_p,
            ctypes.c_uint,
        ]
    return function


def exchange(first: Path, second: Path) -> None:
    """Swap two folders' names, atomically where the system can (Linux ``renameat2``);
    elsewhere in two renames, between which ``second`` briefly does not exist."""
    function = _renameat2()
    if function is not None:
        status = function(
            _AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE
        )
        if status == 0:
            return
        code = ctypes.get_errno()
        if code not in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
            raise OSError(code, f"cannot exchange {first} and {second}: {os.strerror(code)}")
    parked = second.parent / f".{second.name}.replaced-{uuid.uuid4().hex[:12]}"
    os.rename(second, parked)
    os.rename(first, second)
    os.rename(parked, first)
