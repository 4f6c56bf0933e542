"""``SplitDataset``: a folder of HDF5 blocks seen as one lazily loaded NumPy-like array."""

from __future__ import annotations

import re
import threading
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from . import forking
from .array_like import ArrayLike
from .blocks import Blocks, blocks_per_axis
from .discovery import FolderContents, discover, is_marked_incomplete
from .errors import BlockFileError, IncompleteDatasetWarning, NoStackError
from .file_cache import FileCache
from .file_layout import FileLayout, StackSummary, probe_stack
from .folder_listing import NumberedNames
from .metadata import Origin, StackMetadata
from .output_memory import new_output
from .prefetch import Prefetcher
from .reader import BlockGrid, BlockPaths, read_orthogonal, read_plain
from .selection import DirectSelection, Selection, Term, normalize
from .view import ViewIndexer, identity_maps


def _check_numbering(contents: FolderContents, grid: tuple[int, ...]) -> None:
    """Block files are numbered from 0, or from 1 by some writers (SplitDataset.jl). Files
    numbered from 1 and fewer than the grid's are either a 1-based dataset stopped early or a
    0-based one whose first file is gone: read the wrong way, every block would be shifted."""
    first = contents.first_number
    if not contents.block_names or first in (None, 0):
        return
    count, expected = len(contents.block_names), int(np.prod(grid))
    first_name = contents.block_names[0]
    if first == 1 and count == expected:
        return  # numbered from 1: the only layout consistent with every file
    missing = re.sub(r"\d+(?=\.h5$)", lambda m: "0" * len(m.group()), first_name)
    if is_marked_incomplete(contents.metadata):  # our own write, interrupted: say so
        raise BlockFileError(
            f"{contents.folder}: {missing} is missing (the block files start at {first_name}): "
            f"a write that was interrupted ({contents.metadata_path.name} marks it "
            f"incomplete); finish it with resume=True (command line: convert --resume) or "
            f"delete it"
        )
    if first == 1:
        raise BlockFileError(
            f"{contents.folder}: the block files start at {first_name} and there are {count} of "
            f"the {expected} blocks of shape_full {contents.metadata.shape_full}: either "
            f"{missing} is missing or a dataset numbered from 1 stopped early; not guessing "
            f"(the wrong guess reads every block shifted)"
        )
    raise BlockFileError(
        f"{contents.folder}: the block files start at {first_name}: {missing} and the "
        f"files after it are missing"
    )


def _complete_rows(contents: FolderContents, grid: tuple[int, ...]) -> FolderContents:
    """An interrupted whole-array write published its blocks in C order: keep the files of
    the complete rows of blocks along the first axis (a partial row cannot be opened)."""
    per_row = int(np.prod(grid[1:]))
    usable = len(contents.block_names) // per_row * per_row
    return replace(contents, block_names=contents.block_names[:usable])


def _real_shape(
    contents: FolderContents, grid: tuple[int, ...], last_layout: StackSummary | None
) -> tuple[int, ...]:
    """The shape the files really hold: recordings stopped early have fewer time points.

    Missing trailing files (whole time blocks never written) and a short last block both shrink
    the first axis; anything else missing is an error.
    """
    metadata = contents.metadata
    shape = list(metadata.shape_full)
    expected = int(np.prod(grid))
    n_files = len(contents.block_names)
    per_first_axis_block = int(np.prod(grid[1:]))
    if n_files > expected:
        extra = ", ".join(contents.block_names[expected : expected + 3])
        raise BlockFileError(
            f"{contents.folder}: {n_files} block files but the metadata's grid {grid} has "
            f"{expected}; unexpected: {extra}{'...' if n_files - expected > 3 else ''}"
        )
    if n_files < expected and n_files % per_first_axis_block:
        raise BlockFileError(
            f"{contents.folder}: {n_files} block files, expected {expected} for the grid {grid} "
            f"(a block file is missing)"
        )
    n_first = n_files // per_first_axis_block
    block = metadata.shape_block[0]
    first_of_last = (n_first - 1) * block
    if last_layout is not None:
        owned_end = shape[0] if n_first == grid[0] else n_first * block
        held = first_of_last + last_layout.shape[0]
        shape[0] = min(owned_end, held)
    elif n_first < grid[0]:
        shape[0] = n_first * block
    return tuple(shape)


def _check_probed(
    contents: FolderContents,
    metadata: StackMetadata,
    shape: tuple[int, ...],
    probed: tuple[StackSummary | None, StackSummary | None],
) -> None:
    """The first and last block files must fit the metadata's grid (checked at open: a block
    shape in the JSON smaller than the files' would read every block shifted)."""
    grid = blocks_per_axis(shape, metadata.shape_block, metadata.padding)
    geometry = BlockGrid(
        shape,
        np.dtype(np.uint8),
        metadata.shape_block,
        grid,
        metadata.padding,
        BlockPaths(contents.folder, []),
        None,
    )
    for summary, linear in zip(probed, (0, len(contents.block_names) - 1)):
        if summary is not None and linear < int(np.prod(grid)):
            geometry.check_shape(
                summary.path, summary.key, summary.shape, geometry.block_index(linear)
            )
    first, last = probed
    if first is not None and last is not None and first.dtype != last.dtype:
        raise BlockFileError(
            f"{first.path}: '{first.key}' has dtype {first.dtype}, but {last.path.name} has "
            f"{last.dtype}: one of them is damaged"
        )
    if first is not None and metadata.dtype is not None and first.dtype != np.dtype(metadata.dtype):
        raise BlockFileError(
            f"{first.path}: '{first.key}' has dtype {first.dtype}, but "
            f"{contents.metadata_path.name} says {np.dtype(metadata.dtype)}"
        )


def _fixed(name: str) -> property:
    """A settable property of the 0.4.x ``Blocks`` API that a dataset on disk refuses to set:
    its grid comes from its files, and reads would go on using the old one."""
    getter = getattr(Blocks, name).fget

    def refuse(self: SplitDataset, value: object) -> None:
        raise AttributeError(
            f"{name} of a SplitDataset comes from its files and cannot be set; to change the "
            f"block grid, save a copy: save_to_split_dataset(ds, ..., block_size=...)"
        )

    return property(getter, refuse, doc=getter.__doc__)


class SplitDataset(ArrayLike, Blocks):  # type: ignore[misc]  # ds[i] is data, not slices
    """A split dataset opened for reading; indexes like the NumPy array it stands for.

    ``ds[index]`` accepts every index NumPy accepts and returns exactly what NumPy returns for
    the in-memory array; ``ds.read(index, out=buffer)`` fills a caller's buffer instead.
    Opening reads the metadata and at most the first and last block files. The geometry
    (shape, block grid, files) is fixed when the dataset is opened; ``threads`` and
    ``verify_checksums`` may be changed at any time. ``with SplitDataset(path) as ds:`` closes
    the files at the end. (``ds[i]`` is data, as in 0.4.x: ``Blocks``' indexing by block is
    ``ds.block_to_slices`` / ``ds.slices()`` here.)
    """

    shape_full = _fixed("shape_full")
    shape_block = _fixed("shape_block")
    padding = _fixed("padding")
    crop = _fixed("crop")

    def __init__(
        self,
        root: str | Path,
        prefix: str | None = None,
        *,
        threads: int | None = None,
        max_open_files: int | None = None,
        verify_checksums: bool = False,
    ) -> None:
        self._root = Path(root)
        self._prefix = prefix
        self.threads = threads
        self.verify_checksums = verify_checksums
        self._max_open_files = max_open_files
        self._cache = FileCache(max_open_files)
        self._prefetcher: Prefetcher | None = None
        self._prefetcher_lock = threading.Lock()
        forking.reset_after_fork(self)
        contents = discover(self.root, prefix)
        metadata = contents.metadata
        grid = blocks_per_axis(metadata.shape_full, metadata.shape_block, metadata.padding)
        _check_numbering(contents, grid)
        incomplete = is_marked_incomplete(metadata)
        if incomplete:
            contents = _complete_rows(contents, grid)
        if contents.block_names:
            first = self._probe_first(contents.block_path(0))
            last = (
                first
                if len(contents.block_names) == 1
                else self._probe(contents.block_path(-1), None if first is None else first.key)
            )
            if (first is None) != (last is None):  # a folder of derived data has none at all
                lacking = contents.block_path(0 if first is None else -1)
                raise BlockFileError(
                    f"{lacking}: holds no 'stack' dataset, but {(first or last).path.name} does"  # type: ignore[union-attr]
                )
            shape = _real_shape(contents, grid, last)
            dtype = None if first is None else first.dtype
            key = None if first is None else first.key
            _check_probed(contents, metadata, shape, (first, last))
        else:  # a recording that has not completed its first block: empty, dtype from the JSON
            shape = (0,) + metadata.shape_full[1:]
            dtype = None if metadata.dtype is None else np.dtype(metadata.dtype)
            key = None
        if incomplete:
            warnings.warn(
                f"{self.root}: a write that was interrupted ({contents.metadata_path.name} "
                f"marks it incomplete); opening its {len(contents.block_names)} complete blocks, "
                f"shape {shape} of {metadata.shape_full}; finish it with resume=True "
                f"(command line: convert --resume)",
                IncompleteDatasetWarning,
                stacklevel=2,
            )
        elif shape != metadata.shape_full:
            warnings.warn(
                f"{self.root}: the metadata announces shape {metadata.shape_full} but the files "
                f"hold {shape} (recording stopped early?); opening with {shape}",
                IncompleteDatasetWarning,
                stacklevel=2,
            )
        self._setup(metadata, shape, contents.block_names, dtype, key, contents.legacy)

    def _probe_first(self, path: Path) -> StackSummary | None:
        """Key, shape and dtype of the first block, from the layout its first read will use:
        the file stays in the file cache, open and indexed, so that showing the first plane
        does not open it with h5py a second time."""
        try:
            entry = self._cache.pin(path)
        except NoStackError:
            return None
        try:
            layout = entry.layout
            return StackSummary(Path(path), layout.key, layout.shape, layout.dtype)
        finally:
            self._cache.unpin(entry)

    @staticmethod
    def _probe(path: Path, key: str | None = None) -> StackSummary | None:
        """Key, shape and dtype only; chunk indexes are built on first read."""
        try:
            return probe_stack(path, key)
        except NoStackError:
            return None

    def _setup(
        self,
        metadata: StackMetadata,
        shape: tuple[int, ...],
        file_names: Sequence[str],
        dtype: np.dtype | None,
        key: str | None,
        legacy: bool,
    ) -> None:
        super().__init__(shape, shape_block=metadata.shape_block, padding=metadata.padding)
        self._metadata = metadata
        self._legacy = legacy
        self._file_names = file_names
        self._dtype = dtype
        self._data_key = key
        self._shape = tuple(shape)
        paths = BlockPaths(self.root, file_names)
        self._grid = BlockGrid(
            self.shape,
            dtype if dtype is not None else np.dtype(np.uint8),
            tuple(self.shape_block),
            tuple(self.blocks_grid),
            tuple(self.padding),
            paths,
            key,
        )

    # --- metadata ----------------------------------------------------------------------------

    @property
    def root(self) -> Path:
        """The dataset's folder."""
        return self._root

    @property
    def prefix(self) -> str | None:
        return self._prefix

    @property
    def shape(self) -> tuple[int, ...]:
        """The shape the files hold (``planned_shape``: what the metadata announces)."""
        return self._shape

    @property
    def metadata(self) -> StackMetadata:
        """Everything ``stack_metadata.json`` (or the legacy in-file metadata) says."""
        return self._metadata

    @property
    def legacy(self) -> bool:
        """True for the layout without JSON (metadata inside the last block file)."""
        return self._legacy

    @property
    def origin(self) -> Origin | None:
        """For a saved crop: where it lies in the recording it was cut from, else None."""
        return self._metadata.origin

    @property
    def chunks(self) -> tuple[int, ...]:
        """The block shape, under the name array libraries look for (``da.from_array(ds)``
        then cuts its chunks along the files)."""
        return tuple(self.shape_block)

    @property
    def view(self) -> ViewIndexer:
        """``ds.view[key]``: a lazy crop (integers, slices with any step, Ellipsis) that reads
        nothing until indexed (``DatasetView``)."""
        return ViewIndexer(self, identity_maps(self.shape))

    def to_dask(self, chunks: Any = None):
        """A lazy dask array whose chunks are the blocks (see ``split_dataset.dask``)."""
        from .dask import to_dask

        return to_dask(self, chunks)

    def to_xarray(self, chunks: Any = None):
        """A lazy, dask-backed ``xarray.DataArray`` with dims, coordinates and metadata."""
        from .xarray import to_xarray

        return to_xarray(self, chunks)

    @property
    def data_key(self) -> str | None:
        """The name of the array in the block files (``stack_4D``...), None if they have none."""
        return self._data_key

    @property
    def dtype(self) -> np.dtype:
        if self._dtype is None:
            first = self._file_names[0] if self._file_names else "no file"
            raise NoStackError(
                f"{self.root}: the block files hold no 'stack' dataset ({first} has none)"
            )
        return self._dtype

    @property
    def has_stack(self) -> bool:
        """False for folders whose files hold no 'stack' dataset (e.g. derived traces)."""
        return self._dtype is not None

    @property
    def file_names(self) -> list[str]:
        """Block file names in block (C) order."""
        return list(self._file_names)

    @property
    def planned_shape(self) -> tuple[int, ...]:
        """``shape_full`` as the metadata says it (larger than ``shape`` if stopped early)."""
        return self.metadata.shape_full

    @property
    def files(self) -> np.ndarray:
        """Block file paths, shaped like the block grid."""
        paths = np.empty(len(self._file_names), dtype=object)
        paths[:] = self._grid.files[:]
        if not self._file_names:  # nothing written yet
            return paths.reshape((0,) + tuple(self.blocks_grid[1:]))
        return paths.reshape(self.blocks_grid)

    @property
    def resolution(self) -> tuple[float | None, ...]:
        """Physical step along each axis; None where unknown (missing, or 0.4.4's zeros)."""
        return self.metadata.resolution

    @property
    def voxel_size(self) -> tuple[float | None, ...]:
        return self.metadata.resolution[-3:]

    @property
    def axis_order(self) -> str | None:
        return self.metadata.axis_order

    @property
    def frequency(self) -> float | None:
        return self.metadata.frequency

    def __repr__(self) -> str:
        dtype = self._dtype if self._dtype is not None else "no stack"
        return (
            f"SplitDataset('{self.root}', shape={self.shape}, dtype={dtype}, "
            f"shape_block={tuple(self.shape_block)}, files={len(self._file_names)})"
        )

    # --- reading -----------------------------------------------------------------------------

    def read(
        self, key: Any = (), out: np.ndarray | None = None, threads: int | None = None
    ) -> np.ndarray:
        """``self[key]``, optionally into ``out`` (right shape and dtype, writable)."""
        if self._prefetcher is not None:
            ready = self._prefetcher.take(key)
            if ready is not None:
                if out is None:
                    return ready
                _check_out(out, ready.shape, self.dtype)
                out[...] = ready
                return out
        return self._read(key, out, threads)

    def prefetch(self, key: Any) -> Future:
        """Start reading ``key`` in the background; a later ``ds[key]`` takes the result.

        For playback: call ``ds.prefetch((t + 1, z))`` after showing ``ds[t, z]``. Read-ahead
        runs on one background thread and gives way to foreground reads between chunks.
        """
        normalize(key, self.shape)  # a bad index fails here, not later in the background
        while True:
            with self._prefetcher_lock:
                if self._prefetcher is None:
                    self._prefetcher = Prefetcher(
                        lambda k: self._read(k, None, threads=1, background=True)
                    )
                prefetcher = self._prefetcher
            future = prefetcher.submit(key)
            if future is not None:
                return future
            # close() shut that prefetcher down meanwhile: the next one reopens the files

    def _read(
        self, key: Any, out: np.ndarray | None, threads: int | None, background: bool = False
    ) -> np.ndarray:
        if out is None and self._dtype is not None:
            frame = read_plain(
                self._grid,
                self._cache,
                key,
                self.threads if threads is None else threads,
                background,
                self.verify_checksums,
            )
            if frame is not None:
                return frame
        selection = normalize(key, self.shape)
        return self._read_selection(selection, selection.terms, out, threads, background)

    def _read_selection(
        self,
        selection: Selection,
        terms: tuple[Term, ...],
        out: np.ndarray | None,
        threads: int | None,
        background: bool = False,
    ) -> np.ndarray:
        """Read a normalized selection whose per-axis ``terms`` are given in this dataset's
        coordinates (a view passes its selection with the terms mapped onto the dataset)."""
        threads = self.threads if threads is None else threads

        def fill(target: np.ndarray) -> None:
            read_orthogonal(
                self._grid,
                self._cache,
                terms,
                target,
                threads,
                background,
                verify_checksums=self.verify_checksums,
            )

        return read_selection(selection, self.dtype, out, fill)

    def __enter__(self) -> SplitDataset:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def layout(self, block: int = 0) -> FileLayout:
        """How block file ``block`` (linear index) is stored: chunks, filters, byte ranges."""
        return self._cache.layout(self._grid.files[block], self.data_key)

    def close(self) -> None:
        """Close the open block files (they reopen on the next read); stop read-ahead."""
        with self._prefetcher_lock:
            prefetcher, self._prefetcher = self._prefetcher, None
        if prefetcher is not None:
            prefetcher.shutdown()
        self._cache.clear()

    def _after_fork_in_child(self) -> None:
        # read-ahead threads of the parent do not exist here; their futures never complete
        self._prefetcher_lock = threading.Lock()
        self._prefetcher = None

    # --- pickling: cheap, and no file is touched until the next read -------------------------

    def __getstate__(self) -> dict[str, Any]:
        return dict(
            root=str(self.root),
            prefix=self.prefix,
            threads=self.threads,
            verify_checksums=self.verify_checksums,
            max_open_files=self._max_open_files,
            metadata=self.metadata,
            shape=self.shape,
            file_names=_pack_names(self._file_names),
            dtype=None if self._dtype is None else self._dtype.str,
            key=self.data_key,
            legacy=self.legacy,
        )

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._root = Path(state["root"])
        self._prefix = state["prefix"]
        self.threads = state["threads"]
        self.verify_checksums = state["verify_checksums"]
        self._max_open_files = state["max_open_files"]
        self._cache = FileCache(self._max_open_files)
        self._prefetcher = None
        self._prefetcher_lock = threading.Lock()
        forking.reset_after_fork(self)
        dtype = None if state["dtype"] is None else np.dtype(state["dtype"])
        self._setup(
            state["metadata"],
            state["shape"],
            state["file_names"],
            dtype,
            state["key"],
            state["legacy"],
        )


def read_selection(
    selection: Selection,
    dtype: np.dtype,
    out: np.ndarray | None,
    fill: Callable[[np.ndarray], None],
) -> np.ndarray:
    """NumPy's result of a selection, given ``fill(target)``, which reads the orthogonal
    selection (one axis per non-integer term, in axis order) into ``target``."""
    if out is None:
        result = new_output(selection.result_shape, dtype)
    else:
        _check_out(out, selection.result_shape, dtype)
        result = out
    if isinstance(selection, DirectSelection):
        if out is None and selection.returns_scalar:
            # NumPy returns a scalar, not a 0-d array, for an integer on every axis
            fill(result)
            return result[()]
        view = selection.orthogonal_view(result)
        if view is None:  # a caller's buffer whose strides allow no view: go through a copy
            result[...] = read_selection(selection, dtype, None, fill)
            return result
        fill(view)
        return result
    intermediate = new_output(selection.orthogonal_shape, dtype)
    fill(intermediate)
    result[...] = intermediate[selection.numpy_index]
    return result


def _pack_names(names: Sequence[str]) -> Sequence[str]:
    """Block file names as a ``NumberedNames`` when they are the usual run of numbers (a
    dataset of 20,000 files pickles in a few hundred bytes), else as a list."""
    return NumberedNames.of(names) or list(names)


def _check_out(out: np.ndarray, shape: tuple[int, ...], dtype: np.dtype) -> None:
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy array, got {type(out).__name__}")
    if out.shape != tuple(shape):
        raise ValueError(f"out has shape {out.shape}, the selection has shape {tuple(shape)}")
    if out.dtype != dtype:
        raise ValueError(f"out has dtype {out.dtype}, the dataset has dtype {dtype}")
    if not out.flags.writeable:
        raise ValueError("out is read-only")
