"""Corruption fuzzer: damage real split datasets in many small ways and judge how we read them.

Each trial copies one fixture dataset (``shared/fixtures``, plus one written by our own writer)
into a temporary folder, applies one seeded mutation (flipped bytes in a chunk or a blosc
header, a damaged chunk index, a truncated file, a broken ``stack_metadata.json``, a deleted,
duplicated, swapped or foreign block file) and hands the copy to a long-lived worker
subprocess. The worker

1. opens the copy with ``SplitDataset`` and reads it (``ds[...]`` and a few smaller selections),
2. if the dataset carries our writer's chunk CRCs (``sd_writer_lz4``), reads the copy again with
   ``SplitDataset(folder, verify_checksums=True)``,
3. reads an untouched pristine copy of the same dataset, in the same process and thread, to see
   whether the corrupt reads poisoned later reads, and
4. reads every block file of the copy with plain h5py + hdf5plugin, the reference reader.

The parent restarts the worker when it dies (a crash) or overruns its time (a hang), and sorts
every trial into exactly one outcome (see ``OUTCOMES``). Everything is reproducible from
``(seed, trial)``::

    python tests/corruption_fuzz.py --trials 3000 --seed 1 --out REPORT.md --timeout 30
    python tests/corruption_fuzz.py --seed 1 --replay 1234 --keep /tmp/case   # one trial

From pytest: ``run_campaign(trials, seed, timeout)`` returns a ``Summary`` with ``counts`` and
``failures`` (``tests/test_fuzz_corruption.py``). The shared fixtures are only ever copied.

How a trial is judged (``classify``), in this order:

- crash / hang: the worker died (signal) or overran ``--timeout`` while *we* opened or read;
  h5py crashing or hanging on the damaged file afterwards is noted, not counted;
- later-reads-affected: the pristine copy, read right after the damaged one in the same
  thread, came back wrong or raised (state poisoned, e.g. a thread-local decoder context);
- any selection that returned wrong values, without an error:
  undetectable when no reader could tell (h5py returns the very same values; or the damaged
  JSON / block files still form a valid dataset by the format's rules, see
  ``consistent_reading``; or the read touches only block files that can pass for their
  blocks), else wrong-where-h5py-raises / wrong-where-h5py-right (damaged block file) or
  wrong-other (detectable JSON or folder damage; or h5py also wrong, but differently);
- an exception: ok-error if it is a SplitDatasetError that names the culprit (a damaged
  block file by its basename; JSON or folder damage by the folder path), else
  unclear-exception;
- ok-correct (the truth), or ok-warned-prefix (IncompleteDatasetWarning and the truth's
  leading time points).

The outcome judges the plain read. The checksummed read (step 2) counts as ours for crash,
hang and later-reads-affected; otherwise it is judged the same way, collapsed into one of
``CHECKSUM_EFFECTS`` (``judge_checksummed``), and only counted: how much of the damage that
reads wrong without checksums they catch. Raising where the plain read was right (damage in
HDF5 metadata, which no checksum covers, can still be noticed) is not a failure either.

Replays need the same fixtures and, for ``sd_writer_lz4``, the same writer: our writer
output is deterministic, but a changed writer changes that fixture's trials.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import itertools
import json
import os
import platform
import re
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

THIS_FILE = Path(__file__).resolve()
REPO = THIS_FILE.parents[1]
SHARED_FIXTURES = REPO.parent / "shared" / "fixtures"
FIXTURES_ROOT = Path(os.environ.get("SPLIT_DATASET_FIXTURES", SHARED_FIXTURES))

# --------------------------------------------------------------------------------------------
# Outcomes
# --------------------------------------------------------------------------------------------

OK_OUTCOMES = ("ok-correct", "ok-error", "ok-warned-prefix", "undetectable")
FAILURE_OUTCOMES = (
    "crash",  # the worker died from a signal while we opened or read (SIGSEGV, SIGABRT...)
    "hang",  # our open/read overran the timeout
    "wrong-where-h5py-raises",  # we returned wrong values, h5py raised on the damaged file
    "wrong-where-h5py-right",  # we returned wrong values, h5py read the right ones
    "wrong-other",  # wrong values for a detectable folder/JSON mutation, or unlike h5py's
    "later-reads-affected",  # the pristine copy read wrong after the corrupt read
    "unclear-exception",  # not a SplitDatasetError, or its message does not name the culprit
)
OUTCOMES = OK_OUTCOMES + FAILURE_OUTCOMES

# Phases of a trial in the worker: the first three are ours, the last is the reference reader.
# (Each phase's result lands in the ``Observation`` attribute of the same name.)
PHASE_OURS, PHASE_CHECKSUMS, PHASE_PRISTINE, PHASE_H5PY = (
    "ours", "checksummed", "pristine", "h5py")
OUR_PHASES = (PHASE_OURS, PHASE_CHECKSUMS, PHASE_PRISTINE)

# What reading with verify_checksums=True did (``judge_checksummed``); not outcomes of a trial.
CHECKSUM_EFFECTS = (
    "correct",  # the truth (or a warned prefix of it)
    "caught-by-checksum",  # a SplitDatasetError naming the culprit: "checksum mismatch"
    "caught-other",  # a SplitDatasetError naming the culprit, for another reason
    "wrong",  # wrong values without an error
    "unclear-error",  # not a SplitDatasetError, or not naming the culprit
    "crash",  # the checksummed read killed the worker (also the trial's outcome)
    "hang",  # the checksummed read overran the timeout (also the trial's outcome)
    "not-run",  # the plain read before it crashed or hung
)
# Outcomes of the plain read that returned wrong values, detectable or not.
WRONG_OUTCOMES = ("undetectable", "wrong-where-h5py-raises", "wrong-where-h5py-right",
                  "wrong-other")

DEFAULT_TIMEOUT = 30.0
WORKER_STARTUP_TIMEOUT = 180.0  # first import of h5py/hdf5plugin/the extension can be slow
START_ATTEMPTS, START_RETRY_SECONDS = 6, 30  # an import can fail while the package is rebuilt
WORKER_MEMORY_LIMIT = 6 << 30  # a huge allocation then fails with MemoryError, not the OOM killer
UNDER_ASAN = os.environ.get("SPLIT_DATASET_ASAN") == "1"  # set by tests/asan.sh

# The datasets mutated, one per codec / layout. "sd_writer_lz4" is written by our own writer.
WRITER_FIXTURE = "sd_writer_lz4"
DEFAULT_FIXTURES = (
    "sd_blosc_4d",  # blosc:blosclz, some chunks stored raw (filter mask set)
    "sd_blosc_lz4",  # blosc:lz4, planes over several chunks
    "sd_blosc_zstd",  # blosc:zstd
    "sd_zlib_3d_grid",  # HDF5 shuffle + deflate, split along every axis, float32
    "sd_raw_4d",  # contiguous, uncompressed, int16
    "sd_tiny_blocks",  # contiguous tiny blocks
    "legacy_no_json",  # metadata inside the last block file
    "sd_padded",  # blocks with overlap
    WRITER_FIXTURE,
)

# --------------------------------------------------------------------------------------------
# The pristine datasets: where their block files, chunks and owned regions are
# --------------------------------------------------------------------------------------------

BLOSC_FILTER = 32001
BLOSC_HEADER_BYTES = 16
JSON_NAME = "stack_metadata.json"
LEGACY_GROUP = "stack_metadata"


@dataclass
class BlockFile:
    """One block file of a pristine dataset, as plain h5py sees it."""

    name: str
    region: list[tuple[int, int]]  # [start, stop) per axis: the part of the array it owns
    key: str
    shape: tuple[int, ...]
    dtype: str
    contiguous: bool
    blosc: bool
    chunks: list[tuple[int, int, int]]  # (byte offset, stored bytes, filter mask); contiguous: one
    size: int  # bytes

    @property
    def owned_extent(self) -> tuple[int, ...]:
        return tuple(stop - start for start, stop in self.region)


@dataclass
class Fixture:
    """A pristine copy of a dataset (never mutated) and its true array."""

    name: str
    folder: Path
    truth_path: Path
    shape: tuple[int, ...]
    dtype: str
    files: list[BlockFile]
    has_json: bool
    shape_block: tuple[int, ...]
    padding: tuple[int, ...]
    checksums: bool = False  # some block file carries our writer's chunk CRCs


def copy_folder(source: Path, destination: Path) -> None:
    """Copy a flat dataset folder, leaving the copies writable (the fixtures are read-only)."""
    destination.mkdir(parents=True)
    for path in sorted(source.iterdir()):
        if path.is_file():
            shutil.copyfile(path, destination / path.name)


def numbered_h5(folder: Path) -> list[Path]:
    """Numbered ``*.h5`` files in number order (``shifts_sobel.h5`` is not a block)."""
    numbered = []
    for path in folder.glob("*.h5"):
        digits = re.search(r"(\d+)$", path.stem)
        if digits:
            numbered.append((int(digits.group(1)), path))
    return [path for _, path in sorted(numbered)]


def read_grid_metadata(folder: Path, files: list[Path]) -> dict[str, Any]:
    """``shape_block``, ``padding`` and ``files`` from the JSON, or from the legacy group."""
    json_path = folder / JSON_NAME
    if json_path.is_file():
        return json.loads(json_path.read_text())
    import h5py

    def items(group) -> list:
        values, index = [], 0
        while f"i{index}" in group.attrs:
            value = group.attrs[f"i{index}"]
            values.append(value.decode() if isinstance(value, bytes) else value.item())
            index += 1
        return values

    with h5py.File(files[-1], "r") as handle:
        group = handle[LEGACY_GROUP]
        raw = {"shape_block": items(group["block_size"])}
        if "files" in group:
            raw["files"] = items(group["files"])
    return raw


def owned_regions(shape: tuple[int, ...], block: list[int],
                  padding: list[int]) -> list[list[tuple[int, int]]]:
    """Per block in C order, the [start, stop) it owns along each axis: ``i * block`` up to the
    next block; the last block of an axis to the end of the array (padding included)."""
    per_axis = []
    for size, step, pad in zip(shape, block, padding):
        count = max(1, -(-(size - pad) // step)) if size > 0 else 1
        per_axis.append(
            [(i * step, size if i == count - 1 else (i + 1) * step) for i in range(count)]
        )
    return [list(region) for region in itertools.product(*per_axis)]


def describe_block_file(path: Path, region: list[tuple[int, int]]) -> BlockFile:
    """Chunk byte ranges, filters, shape and dtype of a block file, through plain h5py."""
    import h5py

    with h5py.File(path, "r") as handle:
        key = next(k for k in handle if "stack" in k and isinstance(handle.get(k), h5py.Dataset))
        dataset = handle[key]
        plist = dataset.id.get_create_plist()
        filters = [plist.get_filter(i)[0] for i in range(plist.get_nfilters())]
        if dataset.chunks is None:
            offset = dataset.id.get_offset()
            chunks = [] if offset is None else [(offset, dataset.id.get_storage_size(), 0)]
        else:
            chunks = []
            for index in range(dataset.id.get_num_chunks()):
                info = dataset.id.get_chunk_info(index)
                chunks.append((info.byte_offset, info.size, info.filter_mask))
        return BlockFile(
            name=path.name,
            region=[tuple(r) for r in region],
            key=key,
            shape=tuple(dataset.shape),
            dtype=dataset.dtype.str,
            contiguous=dataset.chunks is None,
            blosc=BLOSC_FILTER in filters,
            chunks=chunks,
            size=path.stat().st_size,
        )


def describe_fixture(name: str, folder: Path, truth_path: Path) -> Fixture:
    truth = np.load(truth_path, mmap_mode="r")
    paths = numbered_h5(folder)
    raw = read_grid_metadata(folder, paths)
    if raw.get("files"):
        paths = [folder / f for f in raw["files"]]
    padding = raw.get("padding") or [0] * truth.ndim
    regions = owned_regions(truth.shape, raw["shape_block"], padding)
    assert len(regions) == len(paths), f"{name}: {len(paths)} files for {len(regions)} blocks"
    files = [describe_block_file(p, r) for p, r in zip(paths, regions)]
    return Fixture(name, folder, truth_path, tuple(truth.shape), truth.dtype.str, files,
                   (folder / JSON_NAME).is_file(), tuple(raw["shape_block"]), tuple(padding),
                   carries_checksums(folder, len(files)))


def carries_checksums(folder: Path, n_files: int) -> bool:
    """Does any block file hold chunk CRCs that fit its chunk grid (only our writer's do)?"""
    from split_dataset import SplitDataset

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dataset = SplitDataset(folder)
    try:
        return any(dataset.layout(i).chunk_crc is not None for i in range(n_files))
    finally:
        dataset.close()


def writer_truth() -> np.ndarray:
    """A smooth movie with one incompressible time point (stored raw by blosc)."""
    rng = np.random.default_rng(20240601)
    t, z, y, x = np.meshgrid(*(np.arange(n) for n in (10, 3, 48, 40)), indexing="ij")
    array = (1000 + 50 * t + 20 * z + 7 * y + 3 * x).astype(np.uint16)
    array[4] = rng.integers(0, 65535, array[4].shape, dtype=np.uint16)
    return array


def write_writer_fixture(folder: Path) -> Path:
    """The dataset our own writer produces: blosc:lz4, 3 files (last one truncated)."""
    from split_dataset import save_to_split_dataset

    array = writer_truth()
    dataset = save_to_split_dataset(array, folder, block_size=(4, 3, 48, 40),
                                    compression="blosc:lz4", chunk_shape=(1, 1, 16, 40),
                                    durable=False)
    dataset.close()
    truth_path = folder.with_suffix(".npy")
    np.save(truth_path, array)
    return truth_path


def prepare_fixtures(root: Path, names: tuple[str, ...] = DEFAULT_FIXTURES) -> dict[str, Fixture]:
    """Pristine copies of the fixtures under ``root`` (the shared originals stay untouched)."""
    fixtures = {}
    for name in names:
        folder = root / name
        if name == WRITER_FIXTURE:
            root.mkdir(parents=True, exist_ok=True)
            truth_path = write_writer_fixture(folder)
        else:
            copy_folder(FIXTURES_ROOT / name, folder)
            truth_path = root / f"{name}.npy"
            shutil.copyfile(FIXTURES_ROOT / f"{name}.npy", truth_path)
        fixtures[name] = describe_fixture(name, folder, truth_path)
    return fixtures


# --------------------------------------------------------------------------------------------
# Mutations
# --------------------------------------------------------------------------------------------


@dataclass
class Mutation:
    """What a trial did to its copy. ``scope``: "file" (one block file damaged), "json" (the
    metadata file) or "folder" (block files deleted, added, swapped or replaced)."""

    fixture: str
    kind: str
    variant: str  # finer grain of the kind, e.g. "flags^0x08", used to group failures
    scope: str
    target: str  # the file at fault (basename), for error messages to name
    description: str
    details: dict[str, Any] = field(default_factory=dict)
    undetectable: str | None = None  # why no reader could notice, when that is known up front
    # folder and json: the regions (of the array as the damaged folder describes it) of the
    # blocks whose file now cannot pass for them; a read touching none of them sees only
    # plausible files (None: detectable as a whole, on opening)
    implausible_regions: list[list[tuple[int, int]]] | None = None


def flip_bytes(path: Path, positions: list[int], rng: np.random.Generator,
               bits_only: bool = False) -> list[tuple[int, int, int]]:
    """XOR the bytes at ``positions`` with random non-zero masks (single bits 0-6 if
    ``bits_only``, which keeps ASCII text ASCII); returns (position, old, new) per byte."""
    data = bytearray(path.read_bytes())
    changes = []
    for position in positions:
        mask = 1 << int(rng.integers(0, 7)) if bits_only else int(rng.integers(1, 256))
        old = data[position]
        data[position] = old ^ mask
        changes.append((position, old, data[position]))
    path.write_bytes(bytes(data))
    return changes


def pick_positions(rng: np.random.Generator, intervals: list[tuple[int, int]],
                   count: int) -> list[int]:
    """``count`` distinct byte positions drawn uniformly from a union of [start, stop)."""
    lengths = np.array([stop - start for start, stop in intervals], dtype=np.int64)
    total = int(lengths.sum())
    count = min(count, total)
    picks = rng.choice(total, size=count, replace=False)
    bounds = np.cumsum(lengths)
    positions = []
    for pick in sorted(int(p) for p in picks):
        which = int(np.searchsorted(bounds, pick, side="right"))
        before = int(bounds[which - 1]) if which else 0
        positions.append(intervals[which][0] + pick - before)
    return positions


def outside_chunks(block: BlockFile) -> list[tuple[int, int]]:
    """Byte ranges of a file holding no chunk data: superblock, object headers, B-trees..."""
    intervals, cursor = [], 0
    for offset, size, _ in sorted(block.chunks):
        if offset > cursor:
            intervals.append((cursor, offset))
        cursor = max(cursor, offset + size)
    if cursor < block.size:
        intervals.append((cursor, block.size))
    return intervals


def btree_nodes(data: bytes, rank: int) -> list[tuple[int, int, int]]:
    """Version-1 B-tree nodes ("TREE"): (position, node type, bytes in use).

    Type 1 indexes chunks: keys are chunk size (4), filter mask (4) and rank + 1 offsets (8
    each); type 0 indexes a group's symbol nodes (8-byte keys). Children are 8-byte addresses.
    """
    nodes = []
    for match in re.finditer(b"TREE", data):
        start = match.start()
        if start + 8 > len(data):
            continue
        node_type, entries = data[start + 4], int.from_bytes(data[start + 6 : start + 8], "little")
        key_bytes = 8 + 8 * (rank + 1) if node_type == 1 else 8
        used = 24 + entries * (key_bytes + 8) + key_bytes
        if node_type in (0, 1) and start + used <= len(data):
            nodes.append((start, node_type, used))
    return nodes


def random_file(rng: np.random.Generator, fixture: Fixture,
                predicate: Callable[[BlockFile], bool] = lambda f: True) -> BlockFile:
    candidates = [f for f in fixture.files if predicate(f)]
    return candidates[int(rng.integers(len(candidates)))]


def random_chunk(rng: np.random.Generator, block: BlockFile,
                 predicate: Callable[[tuple[int, int, int]], bool] = lambda c: c[1] > 0):
    candidates = [(i, c) for i, c in enumerate(block.chunks) if predicate(c)]
    return candidates[int(rng.integers(len(candidates)))]


def has_data(block: BlockFile) -> bool:
    return any(size > 0 for _, size, _ in block.chunks)


def blosc_compressed_chunk(chunk: tuple[int, int, int]) -> bool:
    """A chunk that went through the blosc filter (mask 0), so it starts with a blosc header."""
    return chunk[2] == 0 and chunk[1] >= BLOSC_HEADER_BYTES


def has_blosc_chunk(block: BlockFile) -> bool:
    return block.blosc and any(blosc_compressed_chunk(c) for c in block.chunks)


def chunk_label(index: int, block: BlockFile) -> str:
    return "contiguous data" if block.contiguous else f"chunk {index} of {len(block.chunks)}"


# --- file scope: damage inside one block file ----------------------------------------------


def mutate_chunk_flip(rng, fixture: Fixture, folder: Path) -> Mutation:
    """1-8 random bytes XOR-ed inside one chunk's stored data."""
    block = random_file(rng, fixture, has_data)
    index, (offset, size, mask) = random_chunk(rng, block)
    positions = pick_positions(rng, [(offset, offset + size)], int(rng.integers(1, 9)))
    changes = flip_bytes(folder / block.name, positions, rng)
    variant = "contiguous" if block.contiguous else "stored-raw" if mask else "compressed"
    return Mutation(
        fixture.name, "chunk-flip", variant, "file", block.name,
        f"{block.name}: {len(changes)} byte(s) flipped in {chunk_label(index, block)} "
        f"(bytes {offset}..{offset + size}, filter mask {mask}): "
        + ", ".join(f"@{p} {o:#04x}->{n:#04x}" for p, o, n in changes),
        {"chunk": index, "changes": changes},
    )


def mutate_chunk_truncate(rng, fixture: Fixture, folder: Path) -> Mutation:
    """The file cut short at a point inside one chunk's stored data."""
    block = random_file(rng, fixture, has_data)
    index, (offset, size, _) = random_chunk(rng, block)
    cut = offset + int(rng.integers(0, size))
    os.truncate(folder / block.name, cut)
    return Mutation(
        fixture.name, "chunk-truncate", "inside-chunk", "file", block.name,
        f"{block.name}: truncated to {cut} bytes (of {block.size}), inside "
        f"{chunk_label(index, block)} (bytes {offset}..{offset + size})",
        {"chunk": index, "cut": cut},
    )


# Flags byte of a Blosc1 header: 0x01 byte shuffle, 0x02 stored (memcpy), 0x04 bit shuffle,
# 0x08 reserved in Blosc1 (delta in Blosc2), 0x10 "don't split", 0xe0 the codec.
FLAG_BITS = (0x04, 0x08, 0x10, 0x01, 0x02, 0x20, 0x40, 0x80)
FLAG_WEIGHTS = (3, 3, 3, 1, 1, 1, 1, 1)
TYPESIZES = (0, 1, 3, 4, 8, 16, 255)


def mutate_blosc_header(rng, fixture: Fixture, folder: Path) -> Mutation:
    """A change in the 16-byte Blosc1 header of a compressed chunk: a flags bit, the typesize
    byte, or 1-4 random header bytes (version, sizes...)."""
    block = random_file(rng, fixture, has_blosc_chunk)
    index, (offset, size, _) = random_chunk(rng, block, blosc_compressed_chunk)
    path = folder / block.name
    data = bytearray(path.read_bytes())
    choice = rng.choice(["flags", "typesize", "random"], p=[0.4, 0.2, 0.4])
    if choice == "flags":
        weights = np.array(FLAG_WEIGHTS, dtype=float)
        bit = int(rng.choice(FLAG_BITS, p=weights / weights.sum()))
        old = data[offset + 2]
        data[offset + 2] ^= bit
        variant = f"flags^{bit:#04x}"
        what = f"flags byte {old:#04x} -> {data[offset + 2]:#04x} (^{bit:#04x})"
        changes = [(offset + 2, old, data[offset + 2])]
    elif choice == "typesize":
        old = data[offset + 3]
        new = int(rng.choice([t for t in TYPESIZES if t != old]))
        data[offset + 3] = new
        variant = "typesize"
        what = f"typesize byte {old} -> {new}"
        changes = [(offset + 3, old, new)]
    else:
        header = sorted(int(b) for b in rng.choice(BLOSC_HEADER_BYTES, int(rng.integers(1, 5)),
                                                  replace=False))
        changes = []
        for b in header:
            old = data[offset + b]
            data[offset + b] ^= int(rng.integers(1, 256))
            changes.append((offset + b, old, data[offset + b]))
        variant = "header-bytes"
        what = "header bytes " + ", ".join(
            f"{p - offset}: {o:#04x}->{n:#04x}" for p, o, n in changes)
    path.write_bytes(bytes(data))
    return Mutation(
        fixture.name, "blosc-header", variant, "file", block.name,
        f"{block.name}: chunk {index} of {len(block.chunks)} at byte {offset} ({size} bytes): "
        f"{what}",
        {"chunk": index, "changes": [(p, o, n) for p, o, n in changes]},
    )


def mutate_index_flip(rng, fixture: Fixture, folder: Path) -> Mutation:
    """1-8 bytes flipped outside chunk data: half the time inside a B-tree node (the chunk
    index, or a group's), otherwise anywhere in the HDF5 metadata (headers, heaps, free space)."""
    block = random_file(rng, fixture)
    path = folder / block.name
    count = int(rng.integers(1, 9))
    nodes = btree_nodes(path.read_bytes(), len(block.shape))
    if nodes and rng.random() < 0.5:
        chunk_nodes = [n for n in nodes if n[1] == 1] or nodes
        start, node_type, used = chunk_nodes[int(rng.integers(len(chunk_nodes)))]
        # skip the "TREE" signature itself: a broken signature is the easy case
        positions = pick_positions(rng, [(start + 4, start + used)], count)
        variant = "chunk-btree" if node_type == 1 else "group-btree"
        where = f"{variant} node at byte {start} ({used} bytes)"
    else:
        positions = pick_positions(rng, outside_chunks(block), count)
        variant, where = "metadata", "HDF5 metadata (outside chunk data)"
    changes = flip_bytes(path, positions, rng)
    return Mutation(
        fixture.name, "index-flip", variant, "file", block.name,
        f"{block.name}: {len(changes)} byte(s) flipped in {where}: "
        + ", ".join(f"@{p} {o:#04x}->{n:#04x}" for p, o, n in changes),
        {"changes": changes},
    )


def mutate_file_truncate(rng, fixture: Fixture, folder: Path) -> Mutation:
    block = random_file(rng, fixture)
    cut = int(rng.integers(0, block.size))
    os.truncate(folder / block.name, cut)
    return Mutation(fixture.name, "file-truncate", "anywhere", "file", block.name,
                    f"{block.name}: truncated to {cut} of {block.size} bytes", {"cut": cut})


# --- json scope: stack_metadata.json --------------------------------------------------------


def strict_ints(value: Any, length: int, minimum: int) -> list[int]:
    """A list of ``length`` JSON integers >= ``minimum``, else ValueError."""
    if (not isinstance(value, list) or len(value) != length
            or any(type(v) is not int or v < minimum for v in value)):
        raise ValueError(value)
    return value


Regions = list[list[tuple[int, int]]]  # per block, [start, stop) along each axis


def consistent_reading(raw: Any, files: list[BlockFile], fixture: Fixture
                       ) -> tuple[str | None, Regions | None]:
    """Do metadata ``raw`` and block files ``files`` (in the order a reader takes them) make a
    valid split dataset, damaged or not? Then no reader can tell it from an undamaged one.

    Valid, by the format's rules: the files are whole leading time blocks of the grid the
    metadata describes (a recording may stop early), all of one dtype and rank, each holding
    at least the part of the array its block owns and at most the block plus padding.
    Returns why the damage is undetectable (None if a careful reader can notice it) and the
    regions, in the damaged reading's coordinates, of the blocks whose file breaks the rules
    (None when the metadata or the file count alone give the damage away on opening).
    """
    try:
        ndim = len(fixture.shape)
        full = strict_ints(raw["shape_full"], ndim, 0)
        block = strict_ints(raw["shape_block"], ndim, 1)
        padding = strict_ints(raw.get("padding") or [0] * ndim, ndim, 0)
        if raw.get("dtype") and np.dtype(raw["dtype"]) != np.dtype(fixture.dtype):
            return None, None
    except Exception:  # noqa: BLE001 - missing keys, wrong types: detectable
        return None, None
    grid = [max(1, -(-(f - p) // b)) if f > 0 else 1 for f, b, p in zip(full, block, padding)]
    per_first = int(np.prod(grid[1:], dtype=object))
    if not files or len(files) > int(np.prod(grid, dtype=object)) or len(files) % per_first:
        return None, None
    if any(f.dtype != files[0].dtype or len(f.shape) != ndim for f in files):
        return None, None
    n_first = len(files) // per_first  # a recording stopped early holds fewer time blocks
    shape = list(full)
    shape[0] = min(full[0] if n_first == grid[0] else n_first * block[0],
                   (n_first - 1) * block[0] + files[-1].shape[0])
    last = [n_first - 1] + [g - 1 for g in grid[1:]]
    implausible = []
    for linear, file in enumerate(files):
        index = np.unravel_index(linear, grid)
        region = []
        for axis in range(ndim):
            start = int(index[axis]) * block[axis]
            end = shape[axis] if index[axis] == last[axis] else min(shape[axis],
                                                                    start + block[axis])
            region.append((start, max(start, end)))
        extent = [stop - start for start, stop in region]
        if not all(e <= s <= b + p for e, s, b, p in zip(extent, file.shape, block, padding)):
            implausible.append(region)
    if implausible:
        return None, implausible
    return "metadata and files still make a valid dataset (another valid reading of them)", []


def json_mutation(fixture: Fixture, folder: Path, kind: str, variant: str, data: bytes,
                  description: str, details: dict | None = None) -> Mutation:
    """Write the damaged JSON and describe it; judge whether it is still a valid reading."""
    (folder / JSON_NAME).write_bytes(data)
    try:
        reason, implausible = consistent_reading(json.loads(data.decode("utf-8")),
                                                 fixture.files, fixture)
    except ValueError:  # not UTF-8, not JSON: detectable on opening
        reason, implausible = None, None
    return Mutation(fixture.name, kind, variant, "json", JSON_NAME,
                    f"{JSON_NAME}: {description}", details or {}, undetectable=reason,
                    implausible_regions=implausible)


def mutate_json_flip(rng, fixture: Fixture, folder: Path) -> Mutation:
    """1-8 single-bit flips (bits 0-6, so the text stays ASCII) anywhere in the JSON."""
    path = folder / JSON_NAME
    original = path.read_bytes()
    positions = pick_positions(rng, [(0, len(original))], int(rng.integers(1, 9)))
    changes = flip_bytes(path, positions, rng, bits_only=True)
    data = path.read_bytes()
    return json_mutation(
        fixture, folder, "json-flip", "bits", data,
        "bits flipped: " + ", ".join(f"@{p} {chr(o)!r}->{chr(n)!r}" for p, o, n in changes),
        {"changes": changes, "text": data.decode("ascii", "replace")},
    )


def mutate_json_delete_key(rng, fixture: Fixture, folder: Path) -> Mutation:
    metadata = json.loads((folder / JSON_NAME).read_text())
    key = sorted(metadata)[int(rng.integers(len(metadata)))]
    del metadata[key]
    return json_mutation(fixture, folder, "json-delete-key", key, json.dumps(metadata).encode(),
                         f"key '{key}' deleted", {"key": key})


def mutate_json_number(rng, fixture: Fixture, folder: Path) -> Mutation:
    """One entry of shape_full or shape_block changed: off by one, doubled, halved, zero,
    negative, huge, or not an integer."""
    metadata = json.loads((folder / JSON_NAME).read_text())
    key = ("shape_full", "shape_block")[int(rng.integers(2))]
    axis = int(rng.integers(len(metadata[key])))
    old = metadata[key][axis]
    candidates = [old + 1, old - 1, old * 2, max(1, old // 2), 0, -1, 2**31, 2**40, old + 0.5]
    candidates = [c for c in candidates if c != old]
    new = candidates[int(rng.integers(len(candidates)))]
    metadata[key][axis] = new
    return json_mutation(fixture, folder, "json-number", key, json.dumps(metadata).encode(),
                         f"{key}[{axis}] {old} -> {new}", {"key": key, "axis": axis, "new": new})


NON_UTF8 = (b"\xff", b"\xfe", b"\xc3", b"\x80", b"\xe9", b"\xed\xa0\x80")


def mutate_json_non_utf8(rng, fixture: Fixture, folder: Path) -> Mutation:
    """A byte sequence that is not UTF-8, replacing a byte (often inside a string)."""
    data = (folder / JSON_NAME).read_bytes()
    position = int(rng.integers(len(data)))
    bad = NON_UTF8[int(rng.integers(len(NON_UTF8)))]
    damaged = data[:position] + bad + data[position + 1 :]
    return json_mutation(fixture, folder, "json-non-utf8", "non-utf8", damaged,
                         f"byte {position} ({chr(data[position])!r}) replaced by {bad!r}",
                         {"position": position, "bytes": bad.hex()})


def mutate_json_truncate(rng, fixture: Fixture, folder: Path) -> Mutation:
    data = (folder / JSON_NAME).read_bytes()
    cut = int(rng.integers(0, len(data)))
    return json_mutation(fixture, folder, "json-truncate", "truncate", data[:cut],
                         f"truncated to {cut} of {len(data)} bytes", {"cut": cut})


# --- folder scope: block files deleted, added, swapped, replaced ----------------------------


def fits_as(source: BlockFile, target: BlockFile, fixture: Fixture) -> bool:
    """A reader can take ``source`` for ``target``'s block without noticing: same dtype and
    rank, at least the extent the target block owns, at most a block plus padding."""
    return (source.dtype == target.dtype and len(source.shape) == len(target.shape)
            and all(s >= e for s, e in zip(source.shape, target.owned_extent))
            and all(s <= b + p for s, b, p in zip(source.shape, fixture.shape_block,
                                                  fixture.padding)))


def holds_legacy_metadata(fixture: Fixture, block: BlockFile) -> bool:
    return not fixture.has_json and block.name == fixture.files[-1].name


def replaced_blocks(fixture: Fixture, replacements: list[tuple[BlockFile, BlockFile]]
                    ) -> tuple[list, str | None]:
    """For (new content, block it stands in for) pairs: the regions of blocks whose new file
    cannot pass for them, and why the mutation is undetectable if every one can. Moving the
    legacy metadata out of the last file is detectable on opening: then None."""
    if any(holds_legacy_metadata(fixture, target) for _, target in replacements):
        return None, None
    implausible = [target.region for content, target in replacements
                   if not fits_as(content, target, fixture)]
    if implausible:
        return implausible, None
    return [], "every replaced file can pass for its block (same dtype, rank, enough shape)"


def mutate_block_delete(rng, fixture: Fixture, folder: Path) -> Mutation:
    index = int(rng.integers(len(fixture.files)))
    block = fixture.files[index]
    (folder / block.name).unlink()
    reason = None
    if index == 0 and fixture.has_json:  # (legacy: the listed 0000.h5 is missing, detectable)
        # numbering may start at 0001: the rest may pass for a one-based dataset stopped early
        metadata = json.loads((fixture.folder / JSON_NAME).read_text())
        reason, _ = consistent_reading(metadata, fixture.files[1:], fixture)
    return Mutation(fixture.name, "block-delete", "first" if index == 0 else
                    "last" if index == len(fixture.files) - 1 else "middle", "folder",
                    block.name, f"{block.name} deleted ({len(fixture.files)} block files)",
                    {"index": index}, undetectable=reason)


def mutate_block_duplicate(rng, fixture: Fixture, folder: Path) -> Mutation:
    """A block file copied either to a new file after the last one, or over the next block."""
    index = int(rng.integers(len(fixture.files)))
    source = fixture.files[index]
    last = numbered_h5(fixture.folder)[-1]
    if index + 1 < len(fixture.files) and rng.random() < 0.5:
        target = fixture.files[index + 1]
        shutil.copyfile(folder / source.name, folder / target.name)
        implausible, reason = replaced_blocks(fixture, [(source, target)])
        return Mutation(fixture.name, "block-duplicate", "over-next", "folder", target.name,
                        f"{source.name} copied over {target.name}",
                        {"source": source.name, "target": target.name}, undetectable=reason,
                        implausible_regions=implausible)
    digits = len(re.search(r"(\d+)$", last.stem).group(1))
    number = int(re.search(r"(\d+)$", last.stem).group(1)) + 1
    extra = re.sub(r"\d+$", f"{number:0{digits}d}", last.stem) + ".h5"
    shutil.copyfile(folder / source.name, folder / extra)
    return Mutation(fixture.name, "block-duplicate", "extra", "folder", extra,
                    f"{source.name} copied to a new file {extra}",
                    {"source": source.name, "target": extra})


def mutate_block_swap(rng, fixture: Fixture, folder: Path) -> Mutation:
    first, second = (fixture.files[int(i)] for i in rng.choice(len(fixture.files), 2,
                                                                replace=False))
    a, b, scratch = folder / first.name, folder / second.name, folder / "swap.tmp"
    os.replace(a, scratch)
    os.replace(b, a)
    os.replace(scratch, b)
    implausible, reason = replaced_blocks(fixture, [(first, second), (second, first)])
    return Mutation(fixture.name, "block-swap", "plausible" if reason else "implausible",
                    "folder", first.name, f"{first.name} and {second.name} swapped",
                    {"files": [first.name, second.name]}, undetectable=reason,
                    implausible_regions=implausible)


def mutate_block_foreign(rng, fixture: Fixture, folder: Path,
                         donors: list[tuple[str, BlockFile, Path]]) -> Mutation:
    """A block file of another dataset (other dtype or shape) under one of our block names."""
    target = random_file(rng, fixture)
    candidates = [(name, f, path) for name, f, path in donors
                  if name != fixture.name and (f.dtype, f.shape) != (target.dtype, target.shape)]
    donor_name, donor, donor_path = candidates[int(rng.integers(len(candidates)))]
    shutil.copyfile(donor_path, folder / target.name)
    implausible, reason = replaced_blocks(fixture, [(donor, target)])
    return Mutation(
        fixture.name, "block-foreign",
        "same-dtype" if donor.dtype == target.dtype else "other-dtype", "folder", target.name,
        f"{target.name} replaced by {donor_name}/{donor.name} ({donor.dtype} {donor.shape}, "
        f"ours {target.dtype} {target.shape})",
        {"donor": f"{donor_name}/{donor.name}"}, undetectable=reason,
        implausible_regions=implausible)


@dataclass(frozen=True)
class Kind:
    name: str
    weight: float
    applies: Callable[[Fixture], bool]
    mutate: Callable[..., Mutation]


def _any_file(test: Callable[[BlockFile], bool]) -> Callable[[Fixture], bool]:
    return lambda fixture: any(test(f) for f in fixture.files)


def _with_json(fixture: Fixture) -> bool:
    return fixture.has_json


KINDS = (
    Kind("chunk-flip", 3, _any_file(has_data), mutate_chunk_flip),
    Kind("chunk-truncate", 1, _any_file(has_data), mutate_chunk_truncate),
    Kind("blosc-header", 3, _any_file(has_blosc_chunk), mutate_blosc_header),
    Kind("index-flip", 3, lambda fixture: True, mutate_index_flip),
    Kind("file-truncate", 1, lambda fixture: True, mutate_file_truncate),
    Kind("json-flip", 1, _with_json, mutate_json_flip),
    Kind("json-delete-key", 1, _with_json, mutate_json_delete_key),
    Kind("json-number", 1, _with_json, mutate_json_number),
    Kind("json-non-utf8", 1, _with_json, mutate_json_non_utf8),
    Kind("json-truncate", 1, _with_json, mutate_json_truncate),
    Kind("block-delete", 1, lambda fixture: True, mutate_block_delete),
    Kind("block-duplicate", 1, lambda fixture: True, mutate_block_duplicate),
    Kind("block-swap", 1, lambda fixture: len(fixture.files) > 1, mutate_block_swap),
    Kind("block-foreign", 1, lambda fixture: True, mutate_block_foreign),
)
KIND_NAMES = tuple(k.name for k in KINDS)


def trial_rng(seed: int, trial: int) -> np.random.Generator:
    """Each trial's own stream: a trial replays alone, whatever ran before it."""
    return np.random.default_rng([seed, trial])


def make_mutation(seed: int, trial: int, fixtures: dict[str, Fixture], parent: Path,
                  kinds: tuple[str, ...] = KIND_NAMES) -> tuple[Mutation, Path]:
    """Copy a seeded choice of fixture to ``parent/<fixture name>`` and apply a seeded choice of
    mutation; the mutation and the damaged folder."""
    rng = trial_rng(seed, trial)
    names = sorted(fixtures)
    fixture = fixtures[names[int(rng.integers(len(names)))]]
    usable = [k for k in KINDS if k.name in kinds and k.applies(fixture)
              and (k.name != "block-foreign" or len(fixtures) > 1)]  # donors: other fixtures
    weights = np.array([k.weight for k in usable], dtype=float)
    kind = usable[int(rng.choice(len(usable), p=weights / weights.sum()))]
    folder = parent / fixture.name
    copy_folder(fixture.folder, folder)
    if kind.name == "block-foreign":
        donors = [(f.name, b, f.folder / b.name) for f in fixtures.values() for b in f.files]
        return kind.mutate(rng, fixture, folder, donors), folder
    return kind.mutate(rng, fixture, folder), folder


# --------------------------------------------------------------------------------------------
# The worker: reads a damaged copy with us, the pristine copy with us, the copy with h5py
# --------------------------------------------------------------------------------------------


def same_array(result: Any, expected: np.ndarray) -> bool:
    """Bit for bit: dtype, shape and bytes (NaNs compare equal, -0.0 differs from 0.0)."""
    result = np.asarray(result)
    return (result.dtype == expected.dtype and result.shape == expected.shape
            and result.tobytes() == np.ascontiguousarray(expected).tobytes())


def describe_exception(error: BaseException) -> dict[str, Any]:
    from split_dataset import SplitDatasetError

    frames = traceback.extract_tb(error.__traceback__)
    ours = [f for f in frames if f"{os.sep}split_dataset{os.sep}" in f.filename]
    frame = (ours or frames or [None])[-1]
    return {
        "type": f"{type(error).__module__}.{type(error).__qualname__}".replace("builtins.", ""),
        "message": str(error)[:2000],
        "split_dataset_error": isinstance(error, SplitDatasetError),
        "where": f"{Path(frame.filename).name}:{frame.lineno} {frame.name}" if frame else "",
    }


def selections(shape: tuple[int, ...]) -> Iterator[tuple[str, Any, int | None]]:
    """(label, index, threads): the whole array on the calling thread only (the thread whose
    state a later read reuses), on the default threads, then a few smaller selections."""
    yield "ds.read(..., threads=1)", Ellipsis, 1
    yield "ds[...]", Ellipsis, None
    if len(shape) >= 1 and shape[0] > 0:
        yield "ds[0]", 0, None
        yield "ds[-1]", -1, None
    if len(shape) >= 2 and shape[-1] > 0:
        yield "ds[:, ..., 0]", (slice(None), Ellipsis, 0), None


def absolute_index(index: Any, shape: tuple[int, ...]) -> tuple:
    """A basic index (ints, slices, one Ellipsis) on an array of ``shape``, rewritten with
    non-negative ints and explicit slices on every axis: the same elements on any array."""
    index = () if index is Ellipsis else index if isinstance(index, tuple) else (index,)
    if any(item is Ellipsis for item in index):
        at = next(n for n, item in enumerate(index) if item is Ellipsis)
        index = index[:at] + (slice(None),) * (len(shape) - len(index) + 1) + index[at + 1 :]
    index = index + (slice(None),) * (len(shape) - len(index))
    return tuple(slice(*item.indices(size)[:2]) if isinstance(item, slice) else item % size
                 for item, size in zip(index, shape))


def selection_box(index: Any, shape: tuple[int, ...]) -> list[tuple[int, int]]:
    """The [start, stop) per axis that a basic index reads from an array of ``shape``."""
    return [(item.start, item.stop) if isinstance(item, slice) else (item, item + 1)
            for item in absolute_index(index, shape)]


def expected_values(reference: np.ndarray, index: Any, shape: tuple[int, ...]) -> np.ndarray | None:
    """What ``index`` on a dataset of ``shape`` must return if the dataset is ``reference``
    (or its leading part); None if the selection reaches outside ``reference``."""
    if len(shape) != reference.ndim:
        return None
    if any(stop > size for (_, stop), size in zip(selection_box(index, shape), reference.shape)):
        return None
    return reference[absolute_index(index, shape)]


def judge_read(result: Any, index: Any, dataset_shape: tuple[int, ...],
               truth: np.ndarray) -> str:
    """"equal": the truth's values, on a dataset of the truth's shape; "right-part": the
    truth's values at those coordinates, but the dataset claims another shape (e.g. a
    recording stopped early); "wrong" otherwise."""
    expected = expected_values(truth, index, tuple(dataset_shape))
    if expected is None or not same_array(result, expected):
        return "wrong"
    return "equal" if tuple(dataset_shape) == truth.shape else "right-part"


def observe_ours(folder: Path, truth: np.ndarray, open_dataset: Callable | None = None
                 ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Open ``folder`` and read every selection; what happened, and the arrays we returned."""
    if open_dataset is None:
        from split_dataset import SplitDataset as open_dataset
    observed: dict[str, Any] = {"open_error": None, "shape": None, "reads": [], "warnings": [],
                                "truth_shape": list(truth.shape)}
    arrays: dict[str, np.ndarray] = {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            dataset = open_dataset(folder)
        except Exception as error:  # noqa: BLE001 - judged by the classifier
            observed["open_error"] = describe_exception(error)
            dataset = None
        if dataset is not None:
            try:
                shape = tuple(int(s) for s in dataset.shape)
                observed["shape"] = list(shape)
                for label, index, threads in selections(shape):
                    observed["reads"].append(
                        observe_read(dataset, label, index, threads, shape, truth, arrays))
            finally:
                dataset.close()
    observed["warnings"] = [
        {"category": w.category.__name__, "message": str(w.message)[:500]} for w in caught]
    return observed, arrays


def observe_read(dataset, label: str, index: Any, threads: int | None,
                 shape: tuple[int, ...], truth: np.ndarray, arrays: dict) -> dict[str, Any]:
    try:
        result = dataset[index] if threads is None else dataset.read(index, threads=threads)
    except Exception as error:  # noqa: BLE001
        return {"selection": label, "status": "error", "error": describe_exception(error)}
    arrays[label] = np.asarray(result)
    return {"selection": label, "status": judge_read(result, index, shape, truth),
            "shape": list(np.shape(result)), "dtype": np.asarray(result).dtype.str}


def observe_pristine(folder: Path, truth: np.ndarray) -> dict[str, Any]:
    """Read the untouched copy (fresh dataset, calling thread, then default threads)."""
    from split_dataset import SplitDataset

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dataset = SplitDataset(folder)
        try:
            for label, threads in (("threads=1", 1), ("default threads", None)):
                if not same_array(dataset.read(..., threads=threads), truth):
                    return {"status": "wrong", "selection": label}
        finally:
            dataset.close()
    except Exception as error:  # noqa: BLE001
        return {"status": "error", "error": describe_exception(error)}
    return {"status": "equal"}


def read_block_with_h5py(path: Path) -> np.ndarray:
    import h5py
    import hdf5plugin  # noqa: F401  (registers the blosc filter)

    with h5py.File(path, "r") as handle:
        key = next((k for k in handle if "stack" in k
                    and isinstance(handle.get(k), h5py.Dataset)), None)
        if key is None:
            raise KeyError(f"no 'stack' dataset in {path.name}")
        return handle[key][()]


def observe_h5py(folder: Path, files: list[dict], truth: np.ndarray, our_shape: list | None,
                 our_arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """Read every block file under its pristine name with plain h5py: per file "right",
    "wrong" or "error"; and whether each array we returned equals h5py's assembled array."""
    assembled = np.zeros_like(truth)
    verdicts: dict[str, dict] = {}
    for block in files:
        path = folder / block["name"]
        region = tuple(slice(start, stop) for start, stop in block["region"])
        extent = tuple(stop - start for start, stop in block["region"])
        if not path.exists():
            verdicts[block["name"]] = {"status": "missing"}
            continue
        try:
            data = read_block_with_h5py(path)
        except Exception as error:  # noqa: BLE001
            verdicts[block["name"]] = {"status": "error",
                                       "error": f"{type(error).__name__}: {str(error)[:300]}"}
            continue
        if (data.dtype != truth.dtype or data.ndim != truth.ndim
                or any(have < need for have, need in zip(data.shape, extent))):
            verdicts[block["name"]] = {"status": "wrong",
                                       "detail": f"{data.dtype} {data.shape}"}
            continue
        owned = data[tuple(slice(0, e) for e in extent)]
        assembled[region] = owned
        right = same_array(owned, truth[region])
        verdicts[block["name"]] = {"status": "right" if right else "wrong"}
    complete = all(v["status"] in ("right", "wrong") and "detail" not in v
                   for v in verdicts.values())
    matches: dict[str, bool] = {}
    if complete and our_shape is not None:
        for label, index, _ in selections(tuple(our_shape)):
            if label in our_arrays:
                expected = expected_values(assembled, index, tuple(our_shape))
                matches[label] = expected is not None and same_array(our_arrays[label], expected)
    return {"files": verdicts, "complete": complete, "ours_match_h5py": matches}


def verifying_checksums(folder: Path):
    """``SplitDataset(folder, verify_checksums=True)``."""
    from split_dataset import SplitDataset

    return SplitDataset(folder, verify_checksums=True)


class WorkerState:
    """What the worker keeps between trials: the fixtures' truths and block regions."""

    def __init__(self, setup: dict[str, Any]) -> None:
        self.fixtures = setup["fixtures"]
        self.truths = {name: np.load(f["truth"]) for name, f in self.fixtures.items()}

    def run_trial(self, request: dict[str, Any], emit: Callable[[dict], None]) -> None:
        name = request["fixture"]
        fixture, truth = self.fixtures[name], self.truths[name]
        folder = Path(request["folder"])
        emit({"event": "start", "phase": PHASE_OURS})
        ours, arrays = observe_ours(folder, truth)
        emit({"event": "result", "phase": PHASE_OURS, "data": ours})
        if fixture["checksums"]:
            emit({"event": "start", "phase": PHASE_CHECKSUMS})
            checked, _ = observe_ours(folder, truth, verifying_checksums)
            emit({"event": "result", "phase": PHASE_CHECKSUMS, "data": checked})
        emit({"event": "start", "phase": PHASE_PRISTINE})
        emit({"event": "result", "phase": PHASE_PRISTINE,
              "data": observe_pristine(Path(fixture["pristine"]), truth)})
        emit({"event": "start", "phase": PHASE_H5PY})
        emit({"event": "result", "phase": PHASE_H5PY,
              "data": observe_h5py(folder, fixture["files"], truth, ours["shape"], arrays)})
        emit({"event": "end"})


def worker_main() -> None:
    """JSON lines in on stdin, JSON lines out on the original stdout (fd 1 then goes to
    stderr, so that anything a library prints cannot garble the protocol)."""
    import faulthandler
    import resource

    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    faulthandler.enable(all_threads=True)
    if not UNDER_ASAN:  # ASan reserves terabytes of address space: no address-space limit
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        limit = (WORKER_MEMORY_LIMIT if hard == resource.RLIM_INFINITY
                 else min(WORKER_MEMORY_LIMIT, hard))
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))

    def emit(message: dict) -> None:
        protocol.write(json.dumps(message, default=str) + "\n")
        protocol.flush()

    state = None
    for line in sys.stdin:
        request = json.loads(line)
        if request["op"] == "setup":
            import h5py  # noqa: F401
            import hdf5plugin  # noqa: F401

            import split_dataset

            state = WorkerState(request)
            emit({"event": "ready", "pid": os.getpid(),
                  "package": str(Path(split_dataset.__file__).parent)})
        elif request["op"] == "trial":
            print(f"--- trial {request['trial']} {request['fixture']}", file=sys.stderr,
                  flush=True)
            try:
                state.run_trial(request, emit)
            except Exception:  # noqa: BLE001 - a bug of the fuzzer, not of the package
                emit({"event": "harness-error", "traceback": traceback.format_exc()})
        elif request["op"] == "selftest":  # lets the tests check crash and hang detection
            emit({"event": "start", "phase": PHASE_OURS})
            if request["action"] == "segfault":
                faulthandler._sigsegv()
            time.sleep(float(request.get("seconds", 0)))
            emit({"event": "end"})


# --------------------------------------------------------------------------------------------
# The parent's side of the worker: start, send a trial, notice crashes and hangs
# --------------------------------------------------------------------------------------------


@dataclass
class Observation:
    """Everything the worker reported for one trial, and how it ended."""

    ours: dict | None = None
    checksummed: dict | None = None  # the read with verify_checksums=True, if the data has CRCs
    pristine: dict | None = None
    h5py: dict | None = None
    died_in: str | None = None  # phase during which the worker died
    timed_out_in: str | None = None  # phase during which the timeout expired
    signal: str | None = None
    returncode: int | None = None
    stderr_tail: str = ""
    elapsed: float = 0.0


class WorkerDied(Exception):
    pass


class Worker:
    """A long-lived worker subprocess, restarted after a crash or a hang."""

    def __init__(self, fixtures: dict[str, Fixture], log_dir: Path) -> None:
        self.setup = {"op": "setup", "fixtures": {
            name: {"pristine": str(f.folder), "truth": str(f.truth_path),
                   "checksums": f.checksums,
                   "files": [{"name": b.name, "region": b.region} for b in f.files]}
            for name, f in fixtures.items()}}
        self.log_dir = log_dir
        self.process: subprocess.Popen | None = None
        self.starts = 0
        self.package = ""  # where the worker imported split_dataset from
        self._buffer = b""
        self._log_path: Path | None = None

    # --- lifecycle

    def start(self) -> None:
        """Start a worker; retried for a while, since the package may be being rebuilt."""
        for attempt in range(1, START_ATTEMPTS + 1):
            error = self._try_start()
            if error is None:
                return
            if attempt < START_ATTEMPTS:
                print(f"fuzz worker did not start (attempt {attempt}), retrying in "
                      f"{START_RETRY_SECONDS} s:\n{error}", file=sys.stderr, flush=True)
                time.sleep(START_RETRY_SECONDS)
        raise RuntimeError(f"the fuzz worker did not start:\n{error}")

    def _try_start(self) -> str | None:
        """None once the worker is ready, else what it printed."""
        self.starts += 1
        self._log_path = self.log_dir / f"worker-{self.starts}.log"
        self._log = open(self._log_path, "wb")  # noqa: SIM115 - the worker's stderr, until stop()
        self.process = subprocess.Popen(
            [sys.executable, str(THIS_FILE), "--worker"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=self._log, cwd=str(THIS_FILE.parent),
        )
        self._buffer = b""
        try:
            self._send(self.setup)
            ready = self._receive(time.monotonic() + WORKER_STARTUP_TIMEOUT)
        except WorkerDied:
            ready = None
        if ready is not None and ready.get("event") == "ready":
            self.package = ready["package"]
            return None
        self.kill()
        return self._stderr_tail(0) or "(no output)"

    def stop(self) -> None:
        """End our worker: close its stdin, wait, kill it (by its pid) if it lingers, reap."""
        if self.process is None:
            return
        with contextlib.suppress(OSError):
            self.process.stdin.close()
        try:
            self.process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process.stdout.close()
        self._log.close()
        self.process = None

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.stop()

    # --- one trial

    def run(self, request: dict, timeout: float) -> Observation:
        """Send a trial and collect its phases until "end", a death or the deadline."""
        if self.process is None:
            self.start()
        observation = Observation()
        log_start = self._log_path.stat().st_size
        began = time.monotonic()
        deadline = began + timeout
        phase = PHASE_OURS
        try:
            self._send(request)
            while True:
                message = self._receive(deadline)
                if message is None:  # the deadline passed
                    observation.timed_out_in = phase
                    self.kill()
                    break
                if message["event"] == "start":
                    phase = message["phase"]
                elif message["event"] == "result":
                    setattr(observation, message["phase"], message["data"])
                elif message["event"] == "end":
                    break
                elif message["event"] == "harness-error":
                    raise RuntimeError(f"the fuzz worker failed:\n{message['traceback']}")
        except WorkerDied:
            observation.died_in = phase
            observation.returncode = self.process.wait()
            if observation.returncode < 0:
                observation.signal = signal.Signals(-observation.returncode).name
            self.stop()
        observation.elapsed = time.monotonic() - began
        if observation.died_in or observation.timed_out_in:
            observation.stderr_tail = self._stderr_tail(log_start)
        return observation

    # --- pipes

    def _send(self, message: dict) -> None:
        try:
            self.process.stdin.write((json.dumps(message) + "\n").encode())
            self.process.stdin.flush()
        except (BrokenPipeError, OSError) as error:
            raise WorkerDied(str(error)) from error

    def _receive(self, deadline: float) -> dict | None:
        """The next JSON line; None once ``deadline`` passes; WorkerDied at end of file."""
        fd = self.process.stdout.fileno()
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            while b"\n" not in self._buffer:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not selector.select(remaining):
                    return None
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    raise WorkerDied("end of file")
                self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return json.loads(line)

    def _stderr_tail(self, start: int, lines: int = 25) -> str:
        """The worker's stderr (faulthandler's traceback after a crash) since ``start``."""
        with open(self._log_path, "rb") as log:
            log.seek(start)
            text = log.read().decode("utf-8", "replace")
        return "\n".join(text.splitlines()[-lines:])


# --------------------------------------------------------------------------------------------
# The classifier: one outcome per trial
# --------------------------------------------------------------------------------------------


@dataclass
class Verdict:
    outcome: str
    reason: str
    exception: dict | None = None  # the exception judged, if any

    @property
    def failed(self) -> bool:
        return self.outcome in FAILURE_OUTCOMES


def names_the_culprit(mutation: Mutation, message: str, folder: Path) -> bool:
    """Does an error message point at what was damaged?

    A damaged block file must be named by its basename (naming another file of the folder
    sends the user to the wrong file); a damaged JSON by its name or the folder; a folder-level
    change (files deleted, added, swapped, replaced) by the folder path or any file involved.
    """
    if mutation.scope == "file":
        return mutation.target in message
    if mutation.scope == "json":
        return JSON_NAME in message or str(folder) in message
    involved = [mutation.target, *mutation.details.get("files", []),
                mutation.details.get("source", "")]
    return str(folder) in message or any(name and name in message for name in involved)


def first_error(ours: dict) -> dict | None:
    if ours["open_error"] is not None:
        return ours["open_error"]
    return next((r["error"] for r in ours["reads"] if r["status"] == "error"), None)


def warned_incomplete(ours: dict) -> bool:
    return any(w["category"] == "IncompleteDatasetWarning" for w in ours["warnings"])


def classify(mutation: Mutation, observation: Observation, folder: Path) -> Verdict:
    """Sort a trial into exactly one of ``OUTCOMES``; failures first, wrong values before
    errors (a selection that silently returned wrong data outweighs one that raised)."""
    if observation.died_in in OUR_PHASES:
        return Verdict("crash", f"worker killed by {observation.signal or observation.returncode}"
                                f" during the {observation.died_in} phase")
    if observation.timed_out_in in OUR_PHASES:
        return Verdict("hang", f"no answer within the timeout ({observation.timed_out_in} phase)")
    pristine = observation.pristine
    if pristine["status"] != "equal":
        detail = pristine.get("error") or {"selection": pristine.get("selection")}
        return Verdict("later-reads-affected",
                       f"the pristine copy then read {pristine['status']}: {detail}",
                       pristine.get("error"))
    ours = observation.ours
    wrong = [r for r in ours["reads"] if r["status"] == "wrong"]
    if wrong:
        return judge_wrong_values(mutation, observation, wrong)
    error = first_error(ours)
    if error is not None:
        return judge_error(mutation, error, folder)
    full = ours["reads"][0]
    if full["status"] == "equal":
        return Verdict("ok-correct", "values equal the truth")
    shorter_axes = [a for a, (s, t) in enumerate(zip(ours["shape"], ours["truth_shape"])) if s < t]
    if shorter_axes == [0] and warned_incomplete(ours):
        return Verdict("ok-warned-prefix", f"warned, returned the first {ours['shape'][0]} "
                                           "time points of the truth")
    return judge_wrong_values(mutation, observation, [full])


def touches(box: list[tuple[int, int]], region: list[tuple[int, int]]) -> bool:
    return all(a < d and c < b for (a, b), (c, d) in zip(box, region))


def reads_only_plausible_files(mutation: Mutation, shape: list[int], read: dict) -> bool:
    """For folder or JSON damage: does this read touch only blocks whose file can pass for
    them? A reader cannot be asked to check files it does not read."""
    if mutation.implausible_regions is None or shape is None:
        return False
    index = {label: index for label, index, _ in selections(tuple(shape))}[read["selection"]]
    box = selection_box(index, tuple(shape))
    return not any(touches(box, region) for region in mutation.implausible_regions)


def judge_wrong_values(mutation: Mutation, observation: Observation, wrong: list[dict]) -> Verdict:
    labels = ", ".join(r["selection"] for r in wrong)
    if mutation.undetectable:
        return Verdict("undetectable", f"wrong values ({labels}), but {mutation.undetectable}")
    if mutation.scope in ("folder", "json") and all(
            reads_only_plausible_files(mutation, observation.ours["shape"], r) for r in wrong):
        return Verdict("undetectable", f"wrong values ({labels}), but these reads touch only "
                                       "block files that can pass for their blocks")
    if mutation.scope != "file":
        return Verdict("wrong-other", f"wrong values ({labels}) for a detectable "
                                      f"{mutation.scope}-level mutation, no error")
    h5 = observation.h5py
    if h5 is None:  # the reference reader crashed or hung on the file: it did not return data
        how = "crashed" if observation.died_in else "hung"
        return Verdict("wrong-where-h5py-raises", f"wrong values ({labels}); h5py {how} on it")
    target = h5["files"].get(mutation.target, {"status": "missing"})
    if target["status"] in ("error", "missing"):
        return Verdict("wrong-where-h5py-raises",
                       f"wrong values ({labels}); h5py raises: {target.get('error', 'missing')}")
    matches = h5["ours_match_h5py"]
    if h5["complete"] and all(matches.get(r["selection"]) for r in wrong):
        return Verdict("undetectable", f"wrong values ({labels}), the same ones h5py returns "
                                       "without an error")
    if target["status"] == "right":
        return Verdict("wrong-where-h5py-right", f"wrong values ({labels}); h5py reads the "
                                                 f"file right")
    return Verdict("wrong-other", f"wrong values ({labels}); h5py also returns wrong values "
                                  "without an error, but different ones")


def judge_error(mutation: Mutation, error: dict, folder: Path) -> Verdict:
    if not error["split_dataset_error"]:
        return Verdict("unclear-exception", f"{error['type']} is not a SplitDatasetError", error)
    if not names_the_culprit(mutation, error["message"], folder):
        culprit = mutation.target if mutation.scope == "file" else "the folder"
        return Verdict("unclear-exception", f"{error['type']} does not name {culprit}", error)
    return Verdict("ok-error", f"{error['type']} naming the culprit", error)


def judge_checksummed(mutation: Mutation, observation: Observation, folder: Path,
                      checksums: bool) -> str | None:
    """What the read with verify_checksums=True did, one of ``CHECKSUM_EFFECTS`` (None for
    data without checksums): judged by ``classify`` as if it were the plain read, collapsed."""
    if not checksums:
        return None
    if PHASE_CHECKSUMS in (observation.died_in, observation.timed_out_in):
        return "crash" if observation.died_in else "hang"
    if observation.checksummed is None:
        return "not-run"
    alone = replace(observation, ours=observation.checksummed, pristine={"status": "equal"},
                    died_in=None, timed_out_in=None)
    verdict = classify(mutation, alone, folder)
    if verdict.outcome in WRONG_OUTCOMES:
        return "wrong"
    if verdict.outcome == "ok-error":
        return ("caught-by-checksum" if "checksum mismatch" in verdict.exception["message"]
                else "caught-other")
    if verdict.outcome == "unclear-exception":
        return "unclear-error"
    return "correct"


# --------------------------------------------------------------------------------------------
# Campaign
# --------------------------------------------------------------------------------------------


@dataclass
class TrialRecord:
    seed: int
    trial: int
    mutation: Mutation
    verdict: Verdict
    observation: Observation
    command_options: str = ""  # --fixtures/--kinds when not the defaults, for the reproducer
    environment: str = ""  # PYTHONPATH=... when split_dataset came from outside this checkout
    checksum_effect: str | None = None  # the read with verify_checksums=True (CHECKSUM_EFFECTS)

    @property
    def outcome(self) -> str:
        return self.verdict.outcome

    @property
    def failed(self) -> bool:
        return self.verdict.failed

    @property
    def reproducer(self) -> str:
        return (f"{self.environment}python tests/corruption_fuzz.py --seed {self.seed} "
                f"--replay {self.trial}{self.command_options} --keep /tmp/fuzz-case")

    def h5py_verdict(self) -> str:
        """What h5py made of the file at fault (or why it could not tell)."""
        if self.observation.h5py is None:
            ended = self.observation.died_in or self.observation.timed_out_in
            if ended != PHASE_H5PY:
                return "h5py not run"
            return f"h5py {'crashed' if self.observation.died_in else 'hung'} on the copy"
        target = self.observation.h5py["files"].get(self.mutation.target)
        if target is None:
            return "file not in the pristine list"
        return target["status"] + (f": {target['error']}" if "error" in target else "")

    def our_reads(self) -> str:
        """What each of our reads of the damaged copy did, in one line."""
        ours = self.observation.ours
        if ours is None:
            return "no result (the worker died or hung)"
        if ours["open_error"] is not None:
            return f"opening raised {ours['open_error']['type']}"
        parts = [f"{r['selection']}: {r['status']}"
                 + (f" {r['error']['type']}" if r["status"] == "error" else "")
                 for r in ours["reads"]]
        if warned_incomplete(ours):
            parts.append("IncompleteDatasetWarning")
        return f"shape {tuple(ours['shape'])}; " + "; ".join(parts)

    def checksummed_reads(self) -> str:
        """The same for the read with verify_checksums=True (the first error's message)."""
        checked = self.observation.checksummed
        if checked is None:
            return f"not run ({self.checksum_effect or 'no checksums'})"
        error = first_error(checked)
        statuses = ", ".join(f"{r['selection']}: {r['status']}" for r in checked["reads"])
        return (f"{self.checksum_effect}; " + (statuses or "opening raised")
                + (f"; {error['type']}: {error['message'][:200]}" if error else ""))

    def cause(self) -> str:
        """A short key that groups trials failing for the same reason."""
        verdict, mutation = self.verdict, self.mutation
        if verdict.outcome in ("crash", "hang"):
            phase = self.observation.died_in or self.observation.timed_out_in
            return (f"{verdict.outcome} | {phase} read | {mutation.kind} | "
                    f"{self.observation.signal or ''}")
        if verdict.outcome == "later-reads-affected":
            after = f"after {mutation.kind} {mutation.variant}"
            if verdict.exception is not None:
                raised = verdict.exception["type"]
                return f"{verdict.outcome} | pristine read raised {raised} | {after}"
            return f"{verdict.outcome} | pristine read wrong | {after}"
        if verdict.exception is not None:
            error = verdict.exception
            return f"{verdict.outcome} | {error['type']} at {error['where']}"
        return f"{verdict.outcome} | {mutation.kind} {mutation.variant}"


def normalize_message(message: str, length: int = 90) -> str:
    """An exception message without its paths and numbers, to group similar ones."""
    message = re.sub(r"(/[^\s:'\"(),]+)+", "<path>", message)
    message = re.sub(r"0x[0-9a-fA-F]+|\d+", "N", message)
    return message[:length]


@dataclass
class Summary:
    seed: int
    trials: int
    timeout: float
    fixtures: tuple[str, ...]
    records: list[TrialRecord]
    wall_time: float
    worker_starts: int
    package: str = ""  # the split_dataset the worker imported
    commit: str = ""  # ``git_commit()`` when the campaign began (the package may change meanwhile)

    @property
    def counts(self) -> dict[str, int]:
        counted = Counter(r.outcome for r in self.records)
        return {outcome: counted.get(outcome, 0) for outcome in OUTCOMES}

    @property
    def failures(self) -> list[TrialRecord]:
        return [r for r in self.records if r.failed]

    def counts_by_pair(self) -> dict[tuple[str, str], Counter]:
        pairs: dict[tuple[str, str], Counter] = defaultdict(Counter)
        for record in self.records:
            pairs[(record.mutation.fixture, record.mutation.kind)][record.outcome] += 1
        return dict(sorted(pairs.items()))

    def failure_causes(self) -> list[tuple[str, list[TrialRecord]]]:
        """Failures grouped by ``TrialRecord.cause``, most frequent first."""
        groups: dict[str, list[TrialRecord]] = defaultdict(list)
        for record in self.failures:
            groups[record.cause()].append(record)
        return sorted(groups.items(), key=lambda item: (-len(item[1]), item[0]))

    def digest(self, limit: int = 30) -> str:
        """The failure causes and the first failures with reproducers, for an assertion."""
        lines = [f"{len(self.failures)} failures in {self.trials} trials (seed {self.seed}):"]
        lines += [f"  {len(records)}x {cause}" for cause, records in self.failure_causes()]
        for record in failures_to_list(self, limit):
            lines.append(f"- trial {record.trial} {record.outcome}: {record.mutation.fixture}: "
                         f"{record.mutation.description[:200]} -> {record.verdict.reason[:300]}"
                         f"\n    {record.reproducer}")
        return "\n".join(lines)

    def errors_where_h5py_reads_right(self) -> Counter:
        """Not failures, but worth a look: we raised on a damaged file that h5py reads right
        (e.g. a blosc header bit that c-blosc 1.x ignores); per (kind, variant)."""
        return Counter(
            f"{r.mutation.kind} {r.mutation.variant}" for r in self.records
            if r.outcome == "ok-error" and r.mutation.scope == "file"
            and r.observation.h5py is not None
            and r.observation.h5py["files"].get(r.mutation.target, {}).get("status") == "right")

    def checksummed(self) -> list[TrialRecord]:
        """Trials on data with chunk CRCs (also read with verify_checksums=True)."""
        return [r for r in self.records if r.checksum_effect is not None]

    def checksum_effects(self) -> dict[str, Counter]:
        """Per outcome of the plain read, what the checksummed read did."""
        table: dict[str, Counter] = defaultdict(Counter)
        for record in self.checksummed():
            table[record.outcome][record.checksum_effect] += 1
        return {o: table[o] for o in OUTCOMES if o in table}

    def h5py_incidents(self) -> list[TrialRecord]:
        """Trials where the reference reader itself crashed or hung (not our failure)."""
        return [r for r in self.records
                if PHASE_H5PY in (r.observation.died_in, r.observation.timed_out_in)]


def command_options(fixtures: tuple[str, ...], kinds: tuple[str, ...]) -> str:
    options = ""
    if tuple(fixtures) != DEFAULT_FIXTURES:
        options += f" --fixtures {','.join(fixtures)}"
    if tuple(kinds) != KIND_NAMES:
        options += f" --kinds {','.join(kinds)}"
    return options


def run_one_trial(seed: int, trial: int, fixtures: dict[str, Fixture], worker: Worker,
                  trials_root: Path, timeout: float, kinds: tuple[str, ...],
                  keep: Path | None = None) -> TrialRecord:
    """Mutate a fresh copy, have the worker read it, classify, clean up."""
    mutation, folder = make_mutation(seed, trial, fixtures, trials_root / f"{trial:06d}", kinds)
    request = {"op": "trial", "trial": trial, "fixture": mutation.fixture, "folder": str(folder)}
    observation = worker.run(request, timeout)
    verdict = classify(mutation, observation, folder)
    effect = judge_checksummed(mutation, observation, folder, fixtures[mutation.fixture].checksums)
    if verdict.outcome == "later-reads-affected":
        worker.kill()  # its state is poisoned: the next trial gets a fresh worker
    if keep is not None:
        shutil.copytree(folder, keep / folder.name, dirs_exist_ok=True)
    shutil.rmtree(folder.parent, ignore_errors=True)
    package = Path(worker.package) if worker.package else REPO / "split_dataset"
    environment = "" if package.parent == REPO else f"PYTHONPATH={package.parent} "
    return TrialRecord(seed, trial, mutation, verdict, observation,
                       command_options(tuple(fixtures), kinds), environment, effect)


def run_campaign(trials: int, seed: int, timeout: float = DEFAULT_TIMEOUT,
                 fixtures: tuple[str, ...] = DEFAULT_FIXTURES,
                 kinds: tuple[str, ...] = KIND_NAMES, first_trial: int = 0,
                 progress: Callable[[TrialRecord], None] | None = None,
                 keep: Path | None = None) -> Summary:
    """Run trials ``first_trial .. first_trial + trials - 1`` of campaign ``seed``."""
    began, commit = time.monotonic(), git_commit()
    records: list[TrialRecord] = []
    with tempfile.TemporaryDirectory(prefix="corruption_fuzz_") as tmp:
        root = Path(tmp)
        catalog = prepare_fixtures(root / "pristine", tuple(fixtures))
        worker = Worker(catalog, root)
        try:
            for trial in range(first_trial, first_trial + trials):
                record = run_one_trial(seed, trial, catalog, worker, root / "trials", timeout,
                                       tuple(kinds), keep)
                records.append(record)
                if progress is not None:
                    progress(record)
        finally:
            worker.stop()
    return Summary(seed, trials, timeout, tuple(fixtures), records,
                   time.monotonic() - began, worker.starts, worker.package, commit)


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


def git_commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True,
                              text=True, check=False).stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    changed = [line for line in git("status", "--porcelain", "--untracked-files=no").splitlines()
               if line]
    return commit + (f" (+ uncommitted changes in {len(changed)} files)" if changed else "")


def commit_during(summary: Summary) -> str:
    """The commit at the start of the campaign, and at its end if that differs."""
    at_end = git_commit()
    if summary.commit in ("", at_end):
        return at_end
    return f"{summary.commit} at the start, {at_end} at the end"


def library_versions() -> str:
    import h5py
    import hdf5plugin

    return (f"Python {platform.python_version()}, numpy {np.__version__}, h5py {h5py.__version__}"
            f" (HDF5 {h5py.version.hdf5_version}), hdf5plugin {hdf5plugin.version}")


def markdown_table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return lines


def code_span(text: str, length: int = 400) -> str:
    text = " ".join(str(text).split())[:length]
    return "`" + text.replace("`", "'").replace("|", "\\|") + "`"


def failures_to_list(summary: Summary, limit: int) -> list[TrialRecord]:
    """Up to ``limit`` failures, taken round-robin over the causes so each cause shows."""
    queues = [list(records) for _, records in summary.failure_causes()]
    chosen: list[TrialRecord] = []
    while len(chosen) < limit and any(queues):
        for queue in queues:
            if queue and len(chosen) < limit:
                chosen.append(queue.pop(0))
    return sorted(chosen, key=lambda r: r.trial)


def describe_failure(record: TrialRecord) -> list[str]:
    mutation, verdict = record.mutation, record.verdict
    title = (f"### trial {record.trial}: {verdict.outcome} "
             f"({mutation.fixture}, {mutation.kind} {mutation.variant})")
    lines = [
        title,
        "",
        f"- mutation: {code_span(mutation.description)}",
        f"- verdict: {verdict.reason}",
        f"- our reads: {code_span(record.our_reads(), 600)}",
    ]
    if verdict.exception is not None:
        error = verdict.exception
        lines.append(f"- exception: `{error['type']}` at `{error['where']}`: "
                     f"{code_span(error['message'])}")
    if mutation.scope == "file":
        lines.append(f"- h5py on {mutation.target}: {code_span(record.h5py_verdict(), 200)}")
    if record.checksum_effect is not None:
        lines.append(f"- verify_checksums=True: {code_span(record.checksummed_reads(), 400)}")
    lines.append(f"- reproduce: `{record.reproducer}`")
    if record.observation.stderr_tail:
        lines += ["", "```", record.observation.stderr_tail[-3000:], "```"]
    return lines + [""]


def checksum_section(summary: Summary, examples: int = 8) -> list[str]:
    """How much of the damage that reads wrong without checksums a read with
    verify_checksums=True catches, and what it does to the rest (counts, not failures)."""
    records = summary.checksummed()
    if not records:
        return []
    fixtures = ", ".join(sorted({r.mutation.fixture for r in records}))
    wrong = [r for r in records if r.outcome in WRONG_OUTCOMES]
    effects = Counter(r.checksum_effect for r in wrong)
    caught = effects["caught-by-checksum"] + effects["caught-other"]
    others = ", ".join(f"{effects[e]} {e}" for e in CHECKSUM_EFFECTS
                       if effects[e] and e not in ("caught-by-checksum", "caught-other", "wrong"))
    right = [r for r in records if r.outcome in ("ok-correct", "ok-warned-prefix")]
    raised = Counter(r.mutation.kind for r in right
                     if r.checksum_effect not in ("correct", "wrong", "not-run"))
    lines = [
        "", "## Reading with verify_checksums=True", "",
        f"{len(records)} trials on data with chunk CRCs ({fixtures}). Without checksums "
        f"**{len(wrong)}** returned wrong values "
        f"({sum(r.outcome == 'undetectable' for r in wrong)} of them undetectable); with "
        f"checksums **{caught}** of these raised a SplitDatasetError naming the culprit "
        f"({effects['caught-by-checksum']} a checksum mismatch) and **{effects['wrong']}** still "
        f"returned wrong values" + (f" ({others})" if others else "") + ". "
        f"Where the plain read was right ({len(right)}), the checksummed one returned wrong "
        f"values {sum(r.checksum_effect == 'wrong' for r in right)} times and raised "
        f"{sum(raised.values())} times"
        + (" (" + ", ".join(f"{kind} {n}" for kind, n in raised.most_common()) + ")"
           if raised else "") + ".",
        "",
    ]
    table = summary.checksum_effects()
    seen = [e for e in CHECKSUM_EFFECTS if any(c[e] for c in table.values())]
    lines += markdown_table(["plain read", "trials", *seen],
                            [[o, sum(c.values()), *(c[e] or "" for e in seen)]
                             for o, c in table.items()])
    by_variant: dict[str, Counter] = defaultdict(Counter)
    for record in wrong:
        by_variant[f"{record.mutation.kind} {record.mutation.variant}"][
            record.checksum_effect] += 1
    seen = [e for e in CHECKSUM_EFFECTS if effects[e]]
    lines += ["", "Wrong without checksums, by mutation:", ""]
    lines += markdown_table(["mutation", "trials", *seen],
                            [[what, sum(c.values()), *(c[e] or "" for e in seen)]
                             for what, c in sorted(by_variant.items())])
    missed: dict[str, TrialRecord] = {}
    for record in wrong:
        if record.checksum_effect == "wrong":
            missed.setdefault(f"{record.mutation.kind} {record.mutation.variant}", record)
    if missed:
        lines += ["", "Still wrong with checksums, one per mutation:", ""]
    for what, record in list(missed.items())[:examples]:
        lines.append(f"- {what}, trial {record.trial}: "
                     f"{code_span(record.mutation.description, 160)}: `{record.reproducer}`")
    return lines


def render_report(summary: Summary, command: str, max_failures: int = 50) -> str:
    counts = summary.counts
    per_thousand = summary.wall_time / max(1, summary.trials) * 1000
    uname = platform.uname()
    machine = f"{uname.system} {uname.release} {uname.machine}, {os.cpu_count()} CPUs"
    fixtures = ", ".join(summary.fixtures)
    lines = [
        "# Corruption fuzz report",
        "",
        f"- date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"- machine: {machine} ({uname.node})",
        f"- software: {library_versions()}",
        f"- split_dataset: commit {commit_during(summary)} of {REPO}; imported from "
        f"{summary.package}",
        f"- command: `{command}`",
        f"- seed {summary.seed}, {summary.trials} trials, timeout {summary.timeout:g} s",
        f"- fixtures: {fixtures}",
        f"- wall time: {summary.wall_time:.1f} s ({per_thousand:.1f} s per 1,000 trials); "
        + f"worker started {summary.worker_starts} times",
        f"- failures: **{len(summary.failures)}** in {len(summary.failure_causes())} causes",
        "",
        "## Outcomes",
        "",
    ]
    lines += markdown_table(
        ["outcome", "trials", "share", "failure?"],
        [[o, counts[o], f"{counts[o] / max(1, summary.trials):.1%}",
          "yes" if o in FAILURE_OUTCOMES else ""] for o in OUTCOMES],
    )
    seen = [o for o in OUTCOMES if counts[o]]
    lines += ["", "## By fixture and mutation kind", ""]
    lines += markdown_table(
        ["fixture", "kind", "trials", *seen],
        [[fixture, kind, sum(c.values()), *(c.get(o, "") for o in seen)]
         for (fixture, kind), c in summary.counts_by_pair().items()],
    )
    lines += checksum_section(summary)
    lines += ["", "## Distinct failure causes", ""]
    if not summary.failures:
        lines.append("None.")
    for cause, records in summary.failure_causes():
        example = records[0]
        fixtures = Counter(r.mutation.fixture for r in records)
        lines.append(f"- **{len(records)}×** {code_span(cause, 300)} (in "
                     + ", ".join(f"{name} {n}" for name, n in fixtures.most_common()) + ")")
        lines.append(f"  - e.g. trial {example.trial}, {example.mutation.fixture}: "
                     f"{code_span(example.mutation.description, 200)}: `{example.reproducer}`")
        messages = Counter(normalize_message(r.verdict.exception["message"])
                           for r in records if r.verdict.exception is not None)
        for message, n in messages.most_common(4):
            lines.append(f"  - {n}× message {code_span(message, 200)}")
    stricter = summary.errors_where_h5py_reads_right()
    if stricter:
        lines += ["", "## Errors where h5py reads the damaged file right (not failures)", "",
                  ", ".join(f"{what}: {n}" for what, n in stricter.most_common())]
    incidents = summary.h5py_incidents()
    if incidents:
        example = incidents[0]
        lines += ["", "## The reference reader (h5py) crashed or hung", "",
                  f"{len(incidents)} trials; not counted against us. E.g. trial {example.trial}: "
                  + code_span(example.mutation.description, 200)]
    listed = failures_to_list(summary, max_failures)
    heading = f"## Failures ({len(listed)} of {len(summary.failures)} listed, every cause shown)"
    lines += ["", heading, ""]
    for record in listed:
        lines += describe_failure(record)
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def print_progress(every: int) -> Callable[[TrialRecord], None]:
    began = time.monotonic()
    tally: Counter = Counter()

    def report(record: TrialRecord) -> None:
        tally[record.outcome] += 1
        done = sum(tally.values())
        if record.failed:
            print(f"  trial {record.trial}: {record.outcome}: {record.mutation.fixture} "
                  f"{record.mutation.kind} {record.mutation.variant}: "
                  f"{record.verdict.reason[:160]}",
                  flush=True)
        if done % every == 0:
            rate = (time.monotonic() - began) / done
            print(f"[{done} trials, {rate * 1000:.0f} ms/trial] "
                  + ", ".join(f"{o} {n}" for o, n in sorted(tally.items())), flush=True)

    return report


def record_as_dict(record: TrialRecord) -> dict[str, Any]:
    return {"seed": record.seed, "trial": record.trial, "outcome": record.outcome,
            "checksum_effect": record.checksum_effect, "reproducer": record.reproducer,
            "mutation": asdict(record.mutation),
            "verdict": asdict(record.verdict), "observation": asdict(record.observation)}


def replay(args: argparse.Namespace) -> int:
    """Run one trial and print everything about it."""
    keep = Path(args.keep) if args.keep else None
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
    summary = run_campaign(1, args.seed, args.timeout, tuple(args.fixtures), tuple(args.kinds),
                           first_trial=args.replay, keep=keep)
    record = summary.records[0]
    print(json.dumps(record_as_dict(record), indent=1, default=str))
    print(f"\noutcome: {record.outcome}: {record.verdict.reason}")
    if record.checksum_effect is not None:
        print(f"verify_checksums=True: {record.checksummed_reads()}")
    if keep is not None:
        print(f"damaged copy kept in {keep / record.mutation.fixture}")
    return 1 if record.failed else 0


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="corruption_fuzz_report.md", help="Markdown report")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT,
                        help="seconds per trial before it counts as a hang")
    parser.add_argument("--fixtures", type=lambda s: s.split(","), default=list(DEFAULT_FIXTURES))
    parser.add_argument("--kinds", type=lambda s: s.split(","), default=list(KIND_NAMES),
                        help=f"mutation kinds, of: {','.join(KIND_NAMES)}")
    parser.add_argument("--first-trial", type=int, default=0)
    parser.add_argument("--replay", type=int, help="run only this trial and print it in full")
    parser.add_argument("--keep", help="with --replay: copy the damaged folder here")
    parser.add_argument("--progress", type=int, default=250, help="print a line every N trials")
    parser.add_argument("--jsonl", help="also write every trial (mutation, verdict, observation)"
                                        " as JSON lines here")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    unknown = set(args.kinds) - set(KIND_NAMES)
    if unknown:
        parser.error(f"unknown kinds: {', '.join(sorted(unknown))}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    if args.worker:
        worker_main()
        return 0
    if args.replay is not None:
        return replay(args)
    command = "python tests/corruption_fuzz.py " + " ".join(
        sys.argv[1:] if argv is None else argv)
    summary = run_campaign(args.trials, args.seed, args.timeout, tuple(args.fixtures),
                           tuple(args.kinds), args.first_trial, print_progress(args.progress))
    Path(args.out).write_text(render_report(summary, command))
    if args.jsonl:
        with open(args.jsonl, "w") as out:
            out.writelines(json.dumps(record_as_dict(record), default=str) + "\n"
                           for record in summary.records)
    print(f"\n{summary.trials} trials in {summary.wall_time:.1f} s; "
          + ", ".join(f"{o} {n}" for o, n in summary.counts.items() if n))
    checked = summary.checksummed()
    if checked:
        wrong = Counter(r.checksum_effect for r in checked if r.outcome in WRONG_OUTCOMES)
        effects = ", ".join(f"{e} {n}" for e, n in wrong.most_common())
        print(f"{len(checked)} trials on checksummed data, {sum(wrong.values())} wrong without "
              "checksums" + (f"; with them: {effects}" if effects else ""))
    print(f"{len(summary.failures)} failures in {len(summary.failure_causes())} causes; "
          f"report: {args.out}")
    return 1 if summary.failures else 0


if __name__ == "__main__":
    sys.exit(main())
