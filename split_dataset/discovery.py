"""Layout discovery: which files of a folder are the blocks, in which order, and the metadata."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

from .errors import BlockFileError, MetadataError, NotASplitDatasetError
from .metadata import (
    INCOMPLETE_KEY,
    METADATA_SUFFIX,
    StackMetadata,
    read_json_metadata,
    read_legacy_metadata,
)

_NUMBERED_STEM = re.compile(r"^(?P<prefix>.*?)(?P<number>\d+)$")


@dataclass(frozen=True)
class FolderContents:
    """The block files of a folder in block order, and where the metadata came from."""

    folder: Path
    block_files: tuple[Path, ...]
    metadata: StackMetadata
    metadata_path: Path
    legacy: bool  # metadata read from inside the last block file (no JSON)
    first_number: int | None = None  # number in the first block file's name (no 'files' list)


class _NumberingGap(BlockFileError):
    """A number is missing between two block files (maybe only while a writer renames)."""


LISTING_ATTEMPTS = 5  # a folder listed while a writer renames files in may show a false gap


def numbered_block_files(folder: Path, prefix: str | None = None) -> list[Path]:
    """``*.h5`` files whose stem ends in digits, sorted by that number (not as strings).

    Files without digits (``shifts_sobel.h5``) are not blocks. Without a prefix, all numbered
    files must share one name prefix, otherwise the choice is ambiguous and we refuse to guess.
    A directory listing is not atomic: while a writer renames ``0004.h5.tmp`` to ``0004.h5``
    and then ``0005.h5.tmp`` to ``0005.h5``, a listing can see the second and not the first.
    A gap is therefore only believed once the folder has been listed again.
    """
    for attempt in range(LISTING_ATTEMPTS):
        try:
            return _list_numbered(folder, prefix)
        except _NumberingGap:
            if attempt == LISTING_ATTEMPTS - 1:
                raise
            time.sleep(0.001 * (attempt + 1))
    raise AssertionError("unreachable")


def _list_numbered(folder: Path, prefix: str | None) -> list[Path]:
    by_prefix: dict[str, list[tuple[int, Path]]] = {}
    for path in folder.glob("*.h5"):
        match = _NUMBERED_STEM.match(path.stem)
        if match is None:
            continue
        name_prefix = match["prefix"]
        if prefix is not None and name_prefix != prefix:
            continue
        by_prefix.setdefault(name_prefix, []).append((int(match["number"]), path))
    if len(by_prefix) > 1:
        names = ", ".join(repr(p) for p in sorted(by_prefix))
        raise NotASplitDatasetError(
            f"{folder}: block files with several name prefixes ({names}); pass prefix= to choose"
        )
    numbered = next(iter(by_prefix.values()), [])
    numbered.sort()
    for (number, path), (next_number, next_path) in zip(numbered, numbered[1:]):
        if next_number > number + 1:
            raise _NumberingGap(
                f"{folder}: block file number {number + 1} is missing "
                f"(between {path.name} and {next_path.name})"
            )
        if next_number == number:
            raise BlockFileError(f"{folder}: {path.name} and {next_path.name} have the same number")
    return [path for _, path in numbered]


def find_metadata_file(folder: Path, prefix: str | None = None) -> Path | None:
    if prefix:
        candidate = folder / f"{prefix}{METADATA_SUFFIX}"
        if candidate.is_file():
            return candidate
    candidates = sorted(folder.glob(f"*{METADATA_SUFFIX}"))
    if len(candidates) > 1:
        names = ", ".join(c.name for c in candidates)
        raise MetadataError(f"{folder}: several metadata files ({names}); pass prefix= to choose")
    return candidates[0] if candidates else None


def discover(folder: str | Path, prefix: str | None = None) -> FolderContents:
    """Find the metadata and the block files of a split dataset, touching as little as possible.

    Reads the JSON, or for the legacy layout only the ``/stack_metadata`` group of the last file.
    Never writes.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise NotASplitDatasetError(f"{folder}: not a folder")
    metadata_path = find_metadata_file(folder, prefix)
    try:
        numbered = numbered_block_files(folder, prefix)
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
            inside = sorted(p.name for p in folder.iterdir() if p.is_dir() and any(p.glob(f"*{METADATA_SUFFIX}")))
            hint = f"; its subfolders {', '.join(inside)} are split datasets" if inside else ""
            raise NotASplitDatasetError(
                f"{folder}: not a split dataset (no {METADATA_SUFFIX} and no numbered .h5 files)"
                + hint
            )
        metadata_path = numbered[-1]
        metadata = read_legacy_metadata(metadata_path)
    else:
        assert metadata_path is not None
        metadata = read_json_metadata(metadata_path)
    if metadata.files is not None:
        block_files = [folder / name for name in metadata.files]
        missing = [p.name for p in block_files if not p.is_file()]
        if missing:
            raise NotASplitDatasetError(
                f"{folder}: block files listed in the metadata are missing: {', '.join(missing[:5])}"
                + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            )
        first_number = None
    else:
        block_files = numbered
        first_number = _first_number(numbered[0]) if numbered else None
    # A recording that has not completed its first block has a JSON (with the dtype, written by
    # this package) and no block file yet: it opens empty. Any other JSON needs its files.
    if not block_files and 0 not in metadata.shape_full and metadata.dtype is None:
        raise NotASplitDatasetError(f"{folder}: the metadata is there but no block file (*.h5) is")
    return FolderContents(folder, tuple(block_files), metadata, metadata_path, legacy, first_number)


def is_marked_incomplete(metadata: StackMetadata) -> bool:
    """Whether a whole-array write of this package is still running, or was interrupted."""
    return INCOMPLETE_KEY in metadata.extra


def _first_number(path: Path) -> int:
    match = _NUMBERED_STEM.match(path.stem)
    assert match is not None
    return int(match["number"])
