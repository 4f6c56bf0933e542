"""Writing split datasets that every existing reader opens (0.4.x, flammkuchen/PyTables, h5py).

Files are ``{:04d}.h5`` from 0000 in C order over the block grid, one array per file under
``stack_{N}D`` (``stack`` for block-by-block saving), blosc filter 32001 with byte shuffle or
uncompressed, small inner chunks so that one plane or one pixel over time is cheap to read.
Each block file is written under a temporary name and renamed when complete, and the JSON is
replaced atomically, so a crash never leaves a half-written file under a block's name.
"""

from __future__ import annotations

import re
import warnings
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from .block_file import (
    PreparedBlock,
    block_encoding,
    prepare_block,
    publish_temporary,
    temporary_name,
    write_block_file,
)
from .blocks import Blocks
from .metadata import METADATA_SUFFIX, StackMetadata, write_json_metadata
from .threads import effective_threads

_NUMBERED_H5 = re.compile(r"^.*\d+\.h5$")


def prepare_destination(path: Path, overwrite: bool) -> None:
    """Create the folder of a new dataset; an existing dataset there is refused or removed.

    With ``overwrite``, the metadata goes first (a folder left half-cleaned by a crash is then
    no dataset at all rather than a shorter, silently wrong one), then every numbered ``.h5``
    (each is a block to the reader) and leftover temporary files; other files are kept.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise FileExistsError(f"{path}: exists and is not a folder")
    if path.is_dir() and any(path.iterdir()):
        if not overwrite:
            raise FileExistsError(
                f"{path}: folder exists and is not empty; pass overwrite=True to replace "
                f"the dataset in it"
            )
        stale = sorted(path.glob(f"*{METADATA_SUFFIX}"))
        stale += sorted(path.glob(f"*{METADATA_SUFFIX}.tmp"))
        stale += [p for p in sorted(path.glob("*.h5")) if _NUMBERED_H5.match(p.name)]
        stale += sorted(path.glob("*.h5.tmp"))
        for file in stale:
            if file.is_file() or file.is_symlink():
                file.unlink()
    path.mkdir(parents=True, exist_ok=True)


class EmptySplitDataset(Blocks):
    """A dataset being written block by block (0.4.x API): ``files``, ``slices()``,
    ``save_block_data(n, data)``, then ``finalize()`` writes the metadata and reopens it.

    Blocks may be written by several worker processes at once: each writes its own files.
    """

    def __init__(
        self,
        root: str | Path,
        name: str,
        *args: Any,
        resolution: Sequence[float] | None = None,
        frequency: float | None = None,
        axis_order: str | None = None,
        compression: Any = "blosc",
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.root = Path(root) / name
        if self.root.is_dir() and any(self.root.iterdir()):
            warnings.warn(f"{self.root}: writing into a folder that is not empty", stacklevel=2)
        self.root.mkdir(parents=True, exist_ok=True)
        self.files = [f"{i:04d}.h5" for i in range(self.n_blocks)]
        self.resolution = resolution
        self.frequency = frequency
        self.axis_order = axis_order
        self.compression = compression
        self.dtype: np.dtype | None = None  # recorded in the JSON when known

    def save_block_data(self, n: int, data: np.ndarray, verbose: bool = False) -> None:
        if not 0 <= n < self.n_blocks:
            raise IndexError(f"block {n} is out of range for {self.n_blocks} blocks")
        if verbose:
            print("Saving", self.root / self.files[n])
        write_block_file(self.root / self.files[n], np.asarray(data), "stack", self.compression)

    def metadata(self) -> StackMetadata:
        ndim = len(self.shape_cropped)
        resolution = self.resolution if self.resolution is not None else (None,) * ndim
        if len(resolution) != ndim:
            raise ValueError(f"resolution has {len(resolution)} entries for a {ndim}-d dataset")
        axis_order = self.axis_order or ("tzyx" if ndim == 4 else "zyx"[-ndim:] if ndim <= 3 else None)
        return StackMetadata(
            shape_full=tuple(self.shape_cropped),
            shape_block=tuple(self.shape_block),
            padding=tuple(self.padding),
            resolution=tuple(None if r is None else float(r) for r in resolution),
            axis_order=axis_order,
            frequency=self.frequency,
            files=None,
            crop_start=(0,) * ndim,
            crop_end=(0,) * ndim,
            dtype=None if self.dtype is None else self.dtype.str,
        )

    def finalize(self, durable: bool = True):
        """Write the metadata (atomically; fsynced if ``durable``) and open the dataset."""
        from .dataset import SplitDataset

        write_json_metadata(self.root, self.metadata(), durable=durable)
        return SplitDataset(self.root)


def save_to_split_dataset(
    data: Any,
    root_name: str | Path,
    block_size: Sequence[int] | int | None = None,
    crop: Sequence[tuple[int, int]] | None = None,
    padding: Sequence[int] | int = 0,
    prefix: str = "",
    compression: Any = "blosc",
    resolution: Sequence[float] | None = None,
    frequency: float | None = None,
    axis_order: str | None = None,
    compression_level: int | None = None,
    chunk_shape: Sequence[int] | None = None,
    progress: bool = False,
    threads: int | None = None,
    durable: bool = True,
):
    """Save any sliceable array (NumPy, h5py, zarr, another SplitDataset) block by block.

    Blocks are read one at a time and compressed on ``threads`` worker threads (default: the
    package default), so memory holds a few blocks, never the whole array. Each block file is
    written under a temporary name and renamed when complete, so that a killed process leaves
    only whole files; ``durable`` (default) also fsyncs each one before the rename, so that
    they survive a power cut too (``durable=False`` writes at page-cache speed). Returns the
    written dataset, opened.
    """
    if block_size is None:
        block_size = getattr(data, "shape_block", None)
    if block_size is None:
        raise ValueError("block_size is required unless data has a shape_block")
    name = prefix + ("_cropped" if crop is not None else "")
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
    )
    target.dtype = np.dtype(data.dtype)
    key = f"stack_{len(target.shape_cropped)}D"
    blocks = zip(target.files, target.slices())
    if progress:
        from tqdm import tqdm

        blocks = tqdm(blocks, total=target.n_blocks, desc="writing blocks", unit="file")
    # The source is read here, one block at a time (h5py and zarr sources are not thread-safe).
    # Three stages, each bounded to two blocks per worker in flight: ``threads`` workers
    # compress; one thread writes the HDF5 files (HDF5 serializes its calls anyway); one more
    # fsyncs and renames them. Compression never waits for HDF5 or for the disk.
    n_threads = effective_threads(threads)
    compressing: deque[Future] = deque()
    storing: deque[Future] = deque()
    published: list[Future] = []
    with ThreadPoolExecutor(1, thread_name_prefix="split_dataset_fsync") as durability, \
            ThreadPoolExecutor(1, thread_name_prefix="split_dataset_store") as store, \
            ThreadPoolExecutor(n_threads, thread_name_prefix="split_dataset_save") as pool:

        def compress(path: Path, block: np.ndarray) -> tuple[Path, PreparedBlock]:
            block = np.ascontiguousarray(block)
            encoding = block_encoding(block, key, compression, compression_level, chunk_shape)
            return path, prepare_block(temporary_name(path), block, encoding)

        def write(path: Path, prepared: PreparedBlock) -> Future:
            return durability.submit(publish_temporary, prepared.store(), path, durable)

        def advance(limit: int) -> None:
            while len(compressing) > limit:
                storing.append(store.submit(write, *compressing.popleft().result()))
            while len(storing) > limit:
                published.append(storing.popleft().result())

        for file_name, (_, slices) in blocks:
            advance(2 * n_threads - 1)
            compressing.append(pool.submit(compress, target.root / file_name,
                                           np.asarray(data[slices])))
        advance(0)
        for future in published:
            future.result()
    return target.finalize(durable)
