"""A folder's listing, with its block files recognised as one run of numbered names.

Writers name blocks ``{prefix}{number:0{width}d}.h5`` with no number missing. A folder of
10,000 such files is read in compiled code (``_ext/_listing.pyx``): the block names stay a
``NumberedNames`` (four numbers, each name made when asked for) and only the other names
become strings. Any other listing comes from ``os.listdir``, for ``discovery``'s general rule.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import overload

BLOCK_SUFFIX = ".h5"


@dataclass(frozen=True)
class NumberedNames(Sequence[str]):
    """The names ``{prefix}{number:0{width}d}.h5`` for ``length`` numbers from ``first``."""

    prefix: str
    width: int
    first: int
    length: int

    def __len__(self) -> int:
        return self.length

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[str]: ...
    def __getitem__(self, index: int | slice) -> str | Sequence[str]:
        numbers = range(self.first, self.first + self.length)[index]  # IndexError, negatives
        if isinstance(numbers, range):
            if numbers.step == 1:
                return NumberedNames(self.prefix, self.width, numbers.start, len(numbers))
            return [self._name(n) for n in numbers]
        return self._name(numbers)

    def __iter__(self) -> Iterator[str]:
        return (self._name(n) for n in range(self.first, self.first + self.length))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, NumberedNames):
            return (self.prefix, self.width, self.first, self.length) == (
                other.prefix,
                other.width,
                other.first,
                other.length,
            ) or (self.length == other.length == 0)
        if isinstance(other, (list, tuple)):
            return len(other) == self.length and all(a == b for a, b in zip(self, other))
        return NotImplemented

    def __hash__(self) -> int:  # empty runs are all equal: one hash
        return hash((self.prefix, self.width, self.first, self.length) if self.length else ())

    def _name(self, number: int) -> str:
        return f"{self.prefix}{number:0{self.width}d}{BLOCK_SUFFIX}"

    @classmethod
    def of(cls, names: Sequence[str]) -> NumberedNames | None:
        """``names`` as a run, if they are exactly one (how writers name blocks), else None."""
        if isinstance(names, NumberedNames):
            return names
        if not names or not names[0].endswith(BLOCK_SUFFIX):
            return None
        stem = names[0][: -len(BLOCK_SUFFIX)]
        digits = len(stem) - len(stem.rstrip("0123456789"))
        if digits == 0:
            return None
        run = cls(stem[:-digits], digits, int(stem[-digits:]), len(names))
        return run if run == list(names) else None


@dataclass(frozen=True)
class FolderListing:
    """What a folder holds: ``run``, its ``.h5`` names when they are one numbered run (then
    ``others`` is every other name), or None (then ``others`` is every name)."""

    run: NumberedNames | None
    others: list[str]

    @property
    def names(self) -> list[str]:
        """Every name (a run's names made one by one: the general rule's input)."""
        return [*self.run, *self.others] if self.run is not None else self.others


def list_folder(folder: Path, prefix: str | None = None) -> FolderListing:
    """The listing of ``folder``; ``prefix``: the block files' name prefix asked for, if any.
    Raises what ``os.listdir`` raises for a folder that cannot be read."""
    from ._ext import _listing

    scanned = _listing.scan_numbered_run(
        os.fsencode(folder), None if prefix is None else os.fsencode(prefix)
    )
    if scanned is None:
        return FolderListing(None, os.listdir(folder))
    run_prefix, width, first, length, others = scanned
    return FolderListing(NumberedNames(os.fsdecode(run_prefix), width, first, length), others)
