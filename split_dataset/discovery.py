"""Layout discovery: which files of a folder are the blocks, in which order, and the metadata."""

from __future__ import annotations

import re
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
    """A number is missing between two block files."""


def numbered_block_files(folder: Path, prefix: str | None = None) -> list[Path]:
    """``*.h5`` files whose stem ends in digits, sorted by that number (not as strings).

    Files without digits (``shifts_sobel.h5``) are not blocks. Without a prefix, all numbered
    files must share one name prefix, otherwise the choice is ambiguous and we refuse to guess.
    A directory listing is not atomic: while a writer renames ``0004.h5.tmp`` to ``0004.h5``
    and then ``0005.h5.tmp`` to ``0005.h5``, a listing can see the second and not the first
    (seen in a fifth of the listings of a 3,000-file folder being renamed in). So a number
    missing from the listing is looked up by name, which is atomic, before it is believed.
    """
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
    numbered = sorted(next(iter(by_prefix.values()), []))
    if numbered:  # files before the first one listed, renamed in during the listing
        first, first_path = numbered[0]
        while first > 0 and (earlier := _same_pattern(first_path, first, first - 1)).is_file():
            first, first_path = first - 1, earlier
            numbered.insert(0, (first, first_path))
    complete: list[tuple[int, Path]] = numbered[:1]
    for number, path in numbered[1:]:
        previous, previous_path = complete[-1]
        if number == previous:
            raise BlockFileError(
                f"{folder}: {previous_path.name} and {path.name} have the same number"
            )
        for missing in range(previous + 1, number):
            candidate = _same_pattern(previous_path, previous, missing)
            if not candidate.is_file():
                raise _NumberingGap(
                    f"{folder}: block file number {missing} is missing "
                    f"(between {previous_path.name} and {path.name})"
                )
            complete.append((missing, candidate))
        complete.append((number, path))
    return [path for _, path in complete]


def _same_pattern(path: Path, number: int, other: int) -> Path:
    """The name ``other`` would have, numbered like ``path`` (prefix, zero padding)."""
    match = _NUMBERED_STEM.match(path.stem)
    assert match is not None
    digits = match["number"]
    width = len(digits) if digits.startswith("0") or len(digits) > len(str(number)) else 1
    return path.with_name(f"{match['prefix']}{other:0{width}d}{path.suffix}")


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
                f"{folder}: block files listed in the metadata are missing: "
                f"{', '.join(missing[:5])}"
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
