"""Writing whole split datasets that every existing reader opens (0.4.x, flammkuchen/PyTables,
h5py): from an array-like (``save_to_split_dataset``) or block by block (``EmptySplitDataset``).

Files are ``{:04d}.h5`` from 0000 in C order over the block grid, one array per file under
``stack_{N}D`` (``stack`` for block-by-block saving), blosc filter 32001 with byte shuffle or
uncompressed, small inner chunks so that one plane or one pixel over time is cheap to read.

Crash safety: ``stack_metadata.json`` is written first, marked incomplete, and rewritten
without the mark once every block is in; each block file is written under a temporary name,
fsynced and renamed when complete. Killed or out of disk midway, the folder opens with its
complete blocks (and says it is incomplete), ``resume=True`` finishes it, and a dataset that
was being replaced (``overwrite=True``) is still there, whole (see ``destination``).
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from . import destination as destinations
from .block_file import (
    PreparedBlock,
    StoredBuffers,
    block_encoding,
    parse_compression,
    prepare_block,
    publish_temporary,
    temporary_name,
    write_block_file,
)
from .blocks import Blocks
from .destination import INCOMPLETE_KEY
from .discovery import find_metadata_file
from .errors import BlockWriteError, DestinationError
from .metadata import Origin, StackMetadata, read_json_metadata, write_json_metadata
from .threads import effective_threads


class EmptySplitDataset(Blocks):
    """A dataset being written block by block (0.4.x API): ``files``, ``slices()``,
    ``save_block_data(n, data)``, then ``finalize()`` writes the final metadata and opens it.

    Blocks may be written by several worker processes at once: each writes its own files.
    The folder must not hold a dataset already: ``overwrite=True`` replaces one (atomically,
    at ``finalize``), ``resume=True`` continues an interrupted write of the same geometry
    (``missing_blocks()`` says which blocks are still to write).

    ``*args, **kwargs``: the block grid, as ``Blocks`` takes it (``shape_full``,
    ``shape_block``, ``padding``, ``crop``...). ``dtype``: recorded in the JSON, so that the
    folder opens before any block is written. ``like``: metadata of what is being saved,
    carried over where not given (resolution, frequency, axis order, other keys, origin);
    ``source_path``: where a ``crop`` is cut from, for its ``origin``.
    """

    def __init__(
        self,
        root: str | Path,
        name: str,
        *args: Any,
        resolution: Sequence[float | None] | None = None,
        frequency: float | None = None,
        axis_order: str | None = None,
        compression: Any = "blosc",
        dtype: Any = None,
        overwrite: bool = False,
        resume: bool = False,
        durable: bool = True,
        like: StackMetadata | None = None,
        source_path: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        parse_compression(compression)  # a bad name fails here, before the folder is touched
        self.final_root = Path(root) / name
        self.resolution = resolution
        self.frequency = frequency
        self.axis_order = axis_order
        self.compression = compression
        self.durable = durable
        self.like = like  # the metadata of what is saved, carried over where not given
        self.source_path = source_path  # what a crop was cut from (its origin's path)
        # recorded in the JSON when known (else learned from the first block saved here)
        self.dtype: np.dtype | None = None if dtype is None else np.dtype(dtype)
        self.files = [f"{i:04d}.h5" for i in range(self.n_blocks)]
        if resume:
            self._check_resumable()
        self._destination = destinations.prepare(self.final_root, overwrite, resume=resume)
        self.root = self._destination.folder
        # From now on the folder says what it will hold, and that it is not complete yet.
        write_json_metadata(self.root, self.metadata(incomplete=True), durable=durable)

    def _check_resumable(self) -> None:
        path = find_metadata_file(self.final_root) if self.final_root.is_dir() else None
        found = None if path is None else read_json_metadata(path)
        if found is None or INCOMPLETE_KEY not in found.extra:
            raise DestinationError(
                f"{self.final_root}: holds no interrupted write to resume"
                + ("" if found is None else " (its stack_metadata.json is complete)")
            )
        expected = self.metadata()
        if (found.shape_full, found.shape_block, found.padding) != (
            expected.shape_full,
            expected.shape_block,
            expected.padding,
        ):
            raise DestinationError(
                f"{self.final_root}: the interrupted write there has shape {found.shape_full} in "
                f"blocks of {found.shape_block}, not {expected.shape_full} in "
                f"{expected.shape_block}: not the same dataset, not resuming"
            )
        if (
            found.dtype is not None
            and self.dtype is not None
            and np.dtype(found.dtype) != self.dtype
        ):
            raise DestinationError(
                f"{self.final_root}: the interrupted write there is {np.dtype(found.dtype)}, "
                f"this one {self.dtype}: not resuming"
            )

    def missing_blocks(self) -> list[int]:
        """Blocks whose file is not written yet (all of them, unless resuming)."""
        return [n for n, name in enumerate(self.files) if not (self.root / name).is_file()]

    def block_start(self, n: int) -> tuple[int, ...]:
        """Where block ``n`` starts in the dataset's array."""
        return tuple(i * b for i, b in zip(self.linear_to_cartesian(n), self.shape_block))

    def save_block_data(self, n: int, data: np.ndarray, verbose: bool = False) -> None:
        if not 0 <= n < self.n_blocks:
            raise IndexError(f"block {n} is out of range for {self.n_blocks} blocks")
        if verbose:
            print("Saving", self.root / self.files[n])
        data = np.asarray(data)
        if self.dtype is None:
            self.dtype = data.dtype
        path = self.root / self.files[n]
        try:
            write_block_file(
                path,
                data,
                "stack",
                self.compression,
                block_start=self.block_start(n),
                durable=self.durable,
            )
        except OSError as error:
            raise BlockWriteError.for_block(error, path, n) from error

    def metadata(self, incomplete: bool = False) -> StackMetadata:
        """What ``stack_metadata.json`` says: what was given, else what the source said
        (``like``); nothing is invented (unknown resolution entries are null, no axis order
        is guessed). A crop records its amounts (0.4.x's ``crop_start``/``crop_end``) and where
        it lies in the source (``origin``)."""
        ndim = len(self.shape_cropped)
        like = self.like
        resolution = self.resolution
        if resolution is None:
            resolution = like.resolution if like is not None else (None,) * ndim
        if len(resolution) != ndim:
            raise ValueError(f"resolution has {len(resolution)} entries for a {ndim}-d dataset")
        axis_order = self.axis_order or (like.axis_order if like is not None else None)
        if axis_order is not None and len(axis_order) != ndim:
            raise ValueError(f"axis_order {axis_order!r} does not fit a {ndim}-d dataset")
        frequency = self.frequency
        if frequency is None and like is not None:
            frequency = like.frequency
        extra: dict[str, Any] = (
            {} if like is None else {k: v for k, v in like.extra.items() if k != INCOMPLETE_KEY}
        )
        cropped = any(lo or hi for lo, hi in self.crop)
        crop_start = tuple(lo for lo, _ in self.crop) if cropped else None
        crop_end = tuple(hi for _, hi in self.crop) if cropped else None
        origin = like.origin if like is not None else None
        if crop_start is not None:
            local = Origin(self.source_path, crop_start, (1,) * ndim, tuple(self.shape_full))
            origin = local if origin is None else origin.compose(local)
        elif like is not None:
            crop_start, crop_end = like.crop_start, like.crop_end
        if incomplete:
            extra[INCOMPLETE_KEY] = {
                "writer": "split_dataset",
                "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            }
        return StackMetadata(
            shape_full=tuple(self.shape_cropped),
            shape_block=tuple(self.shape_block),
            padding=tuple(self.padding),
            resolution=tuple(None if r is None else float(r) for r in resolution),
            axis_order=axis_order,
            frequency=frequency,
            files=None,
            crop_start=crop_start or (0,) * ndim,
            crop_end=crop_end or (0,) * ndim,
            extra=extra,
            dtype=None if self.dtype is None else self.dtype.str,
            origin=origin,
        )

    def finalize(self, durable: bool | None = None):
        """Write the final metadata (atomically; fsynced if ``durable``), put the dataset in
        its place (replacing an old one if asked) and open it."""
        from .dataset import SplitDataset

        durable = self.durable if durable is None else durable
        missing = self.missing_blocks()
        if missing:
            raise BlockWriteError(
                f"{self.root}: blocks {missing[:10]}{'...' if len(missing) > 10 else ''} "
                f"({len(missing)} of {self.n_blocks}) were never written; the folder stays "
                f"marked incomplete"
            )
        write_json_metadata(self.root, self.metadata(), durable=durable)
        self._destination.commit(durable)
        self.root = self._destination.folder
        return SplitDataset(self.root)

    def abandon(self) -> None:
        """After a failure: remove our temporary files, and a folder written aside (the
        dataset it would have replaced stays untouched). Complete blocks of a write in place
        stay, with the metadata marked incomplete, for ``resume``; with none, nothing stays."""
        published = len(self.missing_blocks()) < self.n_blocks
        self._destination.abandon(published)


def source_paths(data: Any) -> list[Path]:
    """The files or folders an array-like reads from (a split dataset, an h5py dataset, a
    memory-mapped .npy), so that no writer writes over them."""
    paths = []
    for candidate in (
        getattr(data, "root", None),  # a SplitDataset
        getattr(getattr(data, "source", None), "root", None),  # a view of one
        getattr(data, "filename", None),  # a memory-mapped .npy
        getattr(getattr(data, "file", None), "filename", None),  # an h5py dataset
    ):
        if isinstance(candidate, (str, os.PathLike)):
            paths.append(Path(candidate))
    return paths


def save_to_split_dataset(
    data: Any,
    root_name: str | Path,
    block_size: Sequence[int] | int | None = None,
    crop: Sequence[tuple[int, int]] | None = None,
    padding: Sequence[int] | int = 0,
    prefix: str = "",
    compression: Any = "blosc",
    resolution: Sequence[float | None] | None = None,
    frequency: float | None = None,
    axis_order: str | None = None,
    compression_level: int | None = None,
    chunk_shape: Sequence[int] | None = None,
    progress: bool = False,
    threads: int | None = None,
    durable: bool = True,
    overwrite: bool = False,
    resume: bool = False,
):
    """Save any sliceable array (NumPy, h5py, zarr, another SplitDataset) block by block into
    ``root_name/prefix``; returns the written dataset, opened.

    Blocks are read one at a time and compressed on ``threads`` worker threads (default: the
    package default), so memory holds a few blocks, never the whole array. Each block file is
    written under a temporary name and renamed when complete; ``durable`` (default) also
    fsyncs each one before the rename, so that they survive a power cut too (``durable=False``
    writes at page-cache speed).

    Metadata not given (``resolution``, ``frequency``, ``axis_order``, other keys) is carried
    over from ``data`` when it is a split dataset or a view of one; a view (or ``crop``)
    records where it lies in its source (``origin``, and 0.4.x's ``crop_start``/``crop_end``).
    The destination must not hold a dataset (``overwrite=True`` replaces it, atomically, once
    the new one is complete) and must not be where ``data`` is read from. Killed midway, the
    folder holds the blocks written so far and says it is incomplete; ``resume=True`` (same
    data, same settings) writes the rest.
    """
    if block_size is None:
        block_size = getattr(data, "shape_block", None)
    if block_size is None:
        raise ValueError("block_size is required unless data has a shape_block")
    name = prefix + ("_cropped" if crop is not None else "")
    sources = source_paths(data)
    destinations.check_not_source(Path(root_name) / name, sources)
    like = getattr(data, "metadata", None)
    target = EmptySplitDataset(
        root_name,
        name,
        shape_full=tuple(data.shape),
        shape_block=block_size,
        crop=crop,
        padding=padding,
        resolution=resolution,
        frequency=frequency,
        axis_order=axis_order,
        compression=compression,
        dtype=data.dtype,
        overwrite=overwrite,
        resume=resume,
        durable=durable,
        like=like if isinstance(like, StackMetadata) else None,
        source_path=str(sources[0].resolve()) if sources else None,
    )
    try:
        _write_blocks(target, data, compression_level, chunk_shape, progress, threads, durable)
    except BaseException:
        target.abandon()
        raise
    return target.finalize(durable)


def _write_blocks(
    target: EmptySplitDataset,
    data: Any,
    compression_level: int | None,
    chunk_shape: Sequence[int] | None,
    progress: bool,
    threads: int | None,
    durable: bool,
) -> None:
    """Read the blocks still missing from ``data`` (in order) and write them.

    The source is read here, one block at a time (h5py and zarr sources are not thread-safe).
    Three stages, each bounded to two blocks per worker in flight: ``threads`` workers
    compress; one thread writes the HDF5 files (HDF5 serializes its calls anyway); one more
    fsyncs and renames them, in block order, so that an interrupted write leaves a prefix.
    Compression never waits for HDF5 or for the disk.
    """
    key = f"stack_{len(target.shape_cropped)}D"
    todo = set(target.missing_blocks())
    blocks = [
        (n, name, slices)
        for n, (name, (_, slices)) in enumerate(zip(target.files, target.slices()))
        if n in todo
    ]
    if progress:
        from tqdm import tqdm

        blocks = tqdm(blocks, desc="writing blocks", unit="file")
    n_threads = effective_threads(threads)
    stored_buffers = StoredBuffers()
    compressing: deque[Future] = deque()
    storing: deque[Future] = deque()
    published: list[Future] = []
    with (
        ThreadPoolExecutor(1, thread_name_prefix="split_dataset_fsync") as durability,
        ThreadPoolExecutor(1, thread_name_prefix="split_dataset_store") as store,
        ThreadPoolExecutor(n_threads, thread_name_prefix="split_dataset_save") as pool,
    ):

        def compress(n: int, path: Path, block: np.ndarray) -> tuple[int, Path, PreparedBlock]:
            block = np.ascontiguousarray(block)
            encoding = block_encoding(
                block, key, target.compression, compression_level, chunk_shape
            )
            try:
                prepared = prepare_block(
                    temporary_name(path), block, encoding, target.block_start(n), stored_buffers
                )
                return (n, path, prepared)
            except OSError as error:
                raise BlockWriteError.for_block(error, temporary_name(path), n) from error

        def write(n: int, path: Path, prepared: PreparedBlock) -> Future:
            try:
                return durability.submit(publish, n, prepared.store(), path)
            except OSError as error:
                raise BlockWriteError.for_block(error, prepared.temporary, n) from error

        def publish(n: int, temporary: Path, path: Path) -> None:
            try:
                publish_temporary(temporary, path, durable)
            except OSError as error:
                raise BlockWriteError.for_block(error, temporary, n) from error

        def advance(limit: int) -> None:
            while len(compressing) > limit:
                storing.append(store.submit(write, *compressing.popleft().result()))
            while len(storing) > limit:
                published.append(storing.popleft().result())

        for n, file_name, slices in blocks:
            advance(2 * n_threads - 1)
            compressing.append(
                pool.submit(compress, n, target.root / file_name, np.asarray(data[slices]))
            )
        advance(0)
        for future in published:
            future.result()
