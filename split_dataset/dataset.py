"""``SplitDataset``: a folder of HDF5 blocks seen as one lazily loaded NumPy-like array."""

from __future__ import annotations

import warnings
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import numpy as np

from .blocks import Blocks, blocks_per_axis
from .discovery import FolderContents, discover
from .errors import BlockFileError, IncompleteDatasetWarning, NoStackError
from .file_cache import DEFAULT_OPEN_FILES, FileCache
from .file_layout import FileLayout, StackSummary, probe_stack
from .metadata import StackMetadata
from .prefetch import Prefetcher
from .reader import BlockGrid, read_orthogonal
from .selection import DirectSelection, normalize


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
    n_files = len(contents.block_files)
    per_first_axis_block = int(np.prod(grid[1:]))
    if n_files > expected:
        extra = ", ".join(p.name for p in contents.block_files[expected : expected + 3])
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


class SplitDataset(Blocks):
    """A split dataset opened for reading; indexes like the NumPy array it stands for.

    ``ds[index]`` accepts every index NumPy accepts and returns exactly what NumPy returns for
    the in-memory array; ``ds.read(index, out=buffer)`` fills a caller's buffer instead.
    Opening reads the metadata and at most the first and last block files.
    """

    def __init__(
        self,
        root: str | Path,
        prefix: str | None = None,
        *,
        threads: int | None = None,
        max_open_files: int = DEFAULT_OPEN_FILES,
    ) -> None:
        self.root = Path(root)
        self.prefix = prefix
        self.threads = threads
        self._max_open_files = max_open_files
        self._cache = FileCache(max_open_files)
        self._prefetcher: Prefetcher | None = None
        contents = discover(self.root, prefix)
        metadata = contents.metadata
        grid = blocks_per_axis(metadata.shape_full, metadata.shape_block, metadata.padding)
        if contents.block_files:
            first = self._probe(contents.block_files[0])
            last = self._probe(contents.block_files[-1], None if first is None else first.key)
            shape = _real_shape(contents, grid, last)
            dtype = None if first is None else first.dtype
            key = None if first is None else first.key
        else:  # a recording that has not completed its first block: empty, dtype from the JSON
            shape = (0,) + metadata.shape_full[1:]
            dtype = None if metadata.dtype is None else np.dtype(metadata.dtype)
            key = None
        if shape != metadata.shape_full:
            warnings.warn(
                f"{self.root}: the metadata announces shape {metadata.shape_full} but the files "
                f"hold {shape} (recording stopped early?); opening with {shape}",
                IncompleteDatasetWarning,
                stacklevel=2,
            )
        self._setup(
            metadata, shape, [p.name for p in contents.block_files], dtype, key, contents.legacy
        )

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
        file_names: list[str],
        dtype: np.dtype | None,
        key: str | None,
        legacy: bool,
    ) -> None:
        super().__init__(shape, shape_block=metadata.shape_block, padding=metadata.padding)
        self.metadata = metadata
        self.legacy = legacy
        self._file_names = file_names
        self._dtype = dtype
        self.data_key = key
        self.shape = tuple(shape)
        paths = [self.root / name for name in file_names]
        self._grid = BlockGrid(
            self.shape,
            dtype if dtype is not None else np.dtype(np.uint8),
            tuple(self.shape_block),
            tuple(self.blocks_grid),
            paths,
            key,
        )

    # --- metadata ----------------------------------------------------------------------------

    @property
    def dtype(self) -> np.dtype:
        if self._dtype is None:
            raise NoStackError(f"{self.root}: the block files hold no 'stack' dataset")
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
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    @property
    def planned_shape(self) -> tuple[int, ...]:
        """``shape_full`` as the metadata says it (larger than ``shape`` if stopped early)."""
        return self.metadata.shape_full

    @property
    def files(self) -> np.ndarray:
        """Block file paths, shaped like the block grid."""
        paths = np.empty(len(self._file_names), dtype=object)
        paths[:] = [self.root / name for name in self._file_names]
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

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d dataset")
        return self.shape[0]

    def __repr__(self) -> str:
        dtype = self._dtype if self._dtype is not None else "no stack"
        return (
            f"SplitDataset('{self.root}', shape={self.shape}, dtype={dtype}, "
            f"shape_block={tuple(self.shape_block)}, files={len(self._file_names)})"
        )

    # --- reading -----------------------------------------------------------------------------

    def __getitem__(self, key: Any) -> np.ndarray:
        return self.read(key)

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
        if self._prefetcher is None:
            self._prefetcher = Prefetcher(
                lambda k: self._read(k, None, threads=1, background=True)
            )
        normalize(key, self.shape)  # a bad index fails here, not later in the background
        return self._prefetcher.submit(key)

    def _read(
        self, key: Any, out: np.ndarray | None, threads: int | None, background: bool = False
    ) -> np.ndarray:
        selection = normalize(key, self.shape)
        dtype = self.dtype
        if out is None:
            result = np.empty(selection.result_shape, dtype=dtype)
        else:
            _check_out(out, selection.result_shape, dtype)
            result = out
        threads = self.threads if threads is None else threads
        if isinstance(selection, DirectSelection):
            if out is None and selection.returns_scalar:
                # NumPy returns a scalar, not a 0-d array, for an integer on every axis
                read_orthogonal(self._grid, self._cache, selection.terms, result, threads, background)
                return result[()]
            view = selection.orthogonal_view(result)
            if view is None:  # a caller's buffer whose strides allow no view: go through a copy
                result[...] = self._read(key, None, threads, background)
                return result
            read_orthogonal(self._grid, self._cache, selection.terms, view, threads, background)
            return result
        intermediate = np.empty(selection.orthogonal_shape, dtype=dtype)
        read_orthogonal(
            self._grid, self._cache, selection.terms, intermediate, threads, background
        )
        result[...] = intermediate[selection.numpy_index]
        return result

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        data = self.read(...)
        return data if dtype is None else data.astype(dtype, copy=False)

    def layout(self, block: int = 0) -> FileLayout:
        """How block file ``block`` (linear index) is stored: chunks, filters, byte ranges."""
        return self._cache.layout(self._grid.files[block], self.data_key)

    def close(self) -> None:
        """Close the open block files (they reopen on the next read); stop read-ahead."""
        if self._prefetcher is not None:
            self._prefetcher.shutdown()
            self._prefetcher = None
        self._cache.clear()

    # --- pickling: cheap, and no file is touched until the next read -------------------------

    def __getstate__(self) -> dict[str, Any]:
        return dict(
            root=str(self.root),
            prefix=self.prefix,
            threads=self.threads,
            max_open_files=self._max_open_files,
            metadata=self.metadata,
            shape=self.shape,
            file_names=self._file_names,
            dtype=None if self._dtype is None else self._dtype.str,
            key=self.data_key,
            legacy=self.legacy,
        )

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.root = Path(state["root"])
        self.prefix = state["prefix"]
        self.threads = state["threads"]
        self._max_open_files = state["max_open_files"]
        self._cache = FileCache(self._max_open_files)
        self._prefetcher = None
        dtype = None if state["dtype"] is None else np.dtype(state["dtype"])
        self._setup(
            state["metadata"], state["shape"], state["file_names"], dtype, state["key"],
            state["legacy"],
        )


def _check_out(out: np.ndarray, shape: tuple[int, ...], dtype: np.dtype) -> None:
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy array, got {type(out).__name__}")
    if out.shape != tuple(shape):
        raise ValueError(f"out has shape {out.shape}, the selection has shape {tuple(shape)}")
    if out.dtype != dtype:
        raise ValueError(f"out has dtype {out.dtype}, the dataset has dtype {dtype}")
    if not out.flags.writeable:
        raise ValueError("out is read-only")
