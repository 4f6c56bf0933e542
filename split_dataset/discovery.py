"""Layout discovery: which files of a folder are the blocks, in which order, and the metadata."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import BlockFileError, MetadataError, NotASplitDatasetError
from .folder_listing import BLOCK_SUFFIX, FolderListing, NumberedNames, list_folder
from .metadata import (
    INCOMPLETE_KEY,
    METADATA_SUFFIX,
    StackMetadata,
    read_json_metadata,
    read_legacy_metadata,
)

# A block file's name: a prefix, digits, ".h5" (one name, or one per line of a listing: then
# findall gives (name, prefix, number)). Hidden files (macOS' ._0001.h5) are not blocks.
NUMBERED_NAME = re.compile(r"^(?P<name>(?!\.)(?P<prefix>.*?)(?P<number>\d+)\.h5)$", re.MULTILINE)


@dataclass(frozen=True)
class FolderContents:
    """The block files of a folder in block order, and where the metadata came from."""

    folder: Path
    block_names: Sequence[str]  # a NumberedNames for the usual run: no 10,000 strings
    metadata: StackMetadata
    metadata_path: Path
    legacy: bool  # metadata read from inside the last block file (no JSON)
    first_number: int | None = None  # number in the first block file's name (no 'files' list)

    def block_path(self, index: int) -> Path:
        return self.folder / self.block_names[index]


class _NumberingGap(BlockFileError):
    """A number is missing between two block files."""


def numbered_block_files(folder: Path, prefix: str | None = None) -> list[Path]:
    """``numbered_block_names`` as paths."""
    return [folder / name for name in numbered_block_names(folder, prefix)]


def numbered_block_names(
    folder: Path, prefix: str | None = None, names: list[str] | None = None
) -> list[str]:
    """Names of the ``*.h5`` files whose stem ends in digits, sorted by that number (not as
    strings). ``names``: the folder's listing, if the caller has it."""
    listing = list_folder(folder, prefix) if names is None else FolderListing(None, names)
    return list(_block_names(folder, listing, prefix))


def _block_names(folder: Path, listing: FolderListing, prefix: str | None) -> Sequence[str]:
    """``numbered_block_names`` of a listing; the usual run stays a ``NumberedNames``.

    Files without digits (``shifts_sobel.h5``) are not blocks. Without a prefix, all numbered
    files must share one name prefix, otherwise the choice is ambiguous and we refuse to guess.
    A directory listing is not atomic: while a writer renames ``0004.h5.tmp`` to ``0004.h5``
    and then ``0005.h5.tmp`` to ``0005.h5``, a listing can see the second and not the first
    (seen in a fifth of the listings of a 3,000-file folder being renamed in). So a number
    missing from the listing is looked up by name, which is atomic, before it is believed.
    """
    numbered: Sequence[str] | None = listing.run
    if numbered is None:
        numbered = _numbered_with_gaps_filled(folder, listing.others, prefix)
    if not numbered:
        return []
    # files before the first one listed, renamed in during the listing
    first_name = numbered[0]
    first = _number(first_name)
    earlier = []
    while first > 0 and _exists(folder, candidate := _same_pattern(first_name, first, first - 1)):
        first, first_name = first - 1, candidate
        earlier.append(candidate)
    if not earlier:
        return numbered
    extended = [*earlier[::-1], *numbered]
    return NumberedNames.of(extended) or extended


def _numbered_with_gaps_filled(folder: Path, names: list[str], prefix: str | None) -> list[str]:
    """``numbered_block_names`` for any listing: each name parsed, a missing number looked up."""
    # one regular expression over the whole listing: a loop over 10,000 names in Python cost
    # more than the listing itself
    found = NUMBERED_NAME.findall("\n".join(n for n in names if "\n" not in n))
    if prefix is not None:
        found = [f for f in found if f[1] == prefix]
    prefixes = {name_prefix for _, name_prefix, _ in found}
    if len(prefixes) > 1:
        raise NotASplitDatasetError(
            f"{folder}: block files with several name prefixes "
            f"({', '.join(repr(p) for p in sorted(prefixes))}); pass prefix= to choose"
        )
    numbers = np.fromiter((int(number) for _, _, number in found), np.int64, len(found))
    order = np.argsort(numbers, kind="stable")
    numbered = list(zip(numbers[order].tolist(), [found[i][0] for i in order.tolist()]))
    if numbers.size < 2 or np.all(np.diff(numbers[order]) == 1):
        return [name for _, name in numbered]  # no gap, no repeat: nothing to look up
    complete: list[tuple[int, str]] = numbered[:1]
    for number, name in numbered[1:]:
        previous, previous_name = complete[-1]
        if number == previous:
            raise BlockFileError(f"{folder}: {previous_name} and {name} have the same number")
        for missing in range(previous + 1, number):
            candidate = _same_pattern(previous_name, previous, missing)
            if not _exists(folder, candidate):
                raise _NumberingGap(
                    f"{folder}: block file number {missing} is missing "
                    f"(between {previous_name} and {name})"
                )
            complete.append((missing, candidate))
        complete.append((number, name))
    return [name for _, name in complete]


def _exists(folder: Path, name: str) -> bool:
    return os.path.isfile(os.path.join(folder, name))


def _same_pattern(name: str, number: int, other: int) -> str:
    """The name ``other`` would have, numbered like ``name`` (prefix, zero padding)."""
    match = NUMBERED_NAME.match(name)
    assert match is not None
    digits = match["number"]
    width = len(digits) if digits.startswith("0") or len(digits) > len(str(number)) else 1
    return f"{match['prefix']}{other:0{width}d}{BLOCK_SUFFIX}"


def find_metadata_file(
    folder: Path, prefix: str | None = None, names: list[str] | None = None
) -> Path | None:
    """The folder's ``*stack_metadata.json`` (``names``: its listing, if the caller has it;
    the names of a listing's ``others`` are enough: a block file's name is no metadata's)."""
    if prefix:
        candidate = folder / f"{prefix}{METADATA_SUFFIX}"
        if candidate.is_file():
            return candidate
    if names is None:
        names = os.listdir(folder)
    candidates = sorted(folder / n for n in names if n.endswith(METADATA_SUFFIX))
    if len(candidates) > 1:
        found = ", ".join(c.name for c in candidates)
        raise MetadataError(f"{folder}: several metadata files ({found}); pass prefix= to choose")
    return candidates[0] if candidates else None


def discover(folder: str | Path, prefix: str | None = None) -> FolderContents:
    """Find the metadata and the block files of a split dataset, touching as little as possible.

    Reads the JSON, or for the legacy layout only the ``/stack_metadata`` group of the last file.
    Never writes.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise NotASplitDatasetError(f"{folder}: not a folder")
    listing = list_folder(folder, prefix)
    metadata_path = find_metadata_file(folder, prefix, listing.others)
    try:
        numbered = _block_names(folder, listing, prefix)
    except _NumberingGap as gap:
        if metadata_path is not None and is_marked_incomplete(read_json_metadata(metadata_path)):
            raise BlockFileError(
                f"{gap}: a write that was interrupted (its {metadata_path.name} marks it "
                f"incomplete); finish it with resume=True (command line: convert --resume) "
                f"or delete it"
            ) from None
        raise
    legacy = metadata_path is None
    if legacy:
        if not numbered:
            inside = sorted(
                p.name
                for p in folder.iterdir()
                if p.is_dir() and any(p.glob(f"*{METADATA_SUFFIX}"))
            )
            hint = f"; its subfolders {', '.join(inside)} are split datasets" if inside else ""
            raise NotASplitDatasetError(
                f"{folder}: not a split dataset (no {METADATA_SUFFIX} and no numbered .h5 files)"
                + hint
            )
        metadata_path = folder / numbered[-1]
        metadata = read_legacy_metadata(metadata_path)
    else:
        assert metadata_path is not None
        metadata = read_json_metadata(metadata_path)
    if metadata.files is not None:
        block_names: Sequence[str] = list(metadata.files)
        # the listing answers for most names instead of a stat each; a name it lacks may have
        # been renamed in since, so that one is looked up
        listed = set(listing.names)
        missing = [n for n in block_names if n not in listed and not _exists(folder, n)]
        if missing:
            raise NotASplitDatasetError(
                f"{folder}: block files listed in the metadata are missing: "
                f"{', '.join(missing[:5])}"
                + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            )
        first_number = None
    else:
        block_names = numbered
        first_number = _number(numbered[0]) if numbered else None
    # A recording that has not completed its first block has a JSON (with the dtype, written by
    # this package) and no block file yet: it opens empty. Any other JSON needs its files.
    if not block_names and 0 not in metadata.shape_full and metadata.dtype is None:
        raise NotASplitDatasetError(f"{folder}: the metadata is there but no block file (*.h5) is")
    return FolderContents(folder, block_names, metadata, metadata_path, legacy, first_number)


def is_marked_incomplete(metadata: StackMetadata) -> bool:
    """Whether a whole-array write of this package is still running, or was interrupted."""
    return INCOMPLETE_KEY in metadata.extra


def _number(name: str) -> int:
    """The number in a block file's name."""
    match = NUMBERED_NAME.match(name)
    assert match is not None
    return int(match["number"])
