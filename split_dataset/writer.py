"""Writing split datasets that every existing reader opens (0.4.x, flammkuchen/PyTables, h5py).

Files are ``{:04d}.h5`` from 0000 in C order over the block grid, one array per file under
``stack_{N}D`` (``stack`` for block-by-block saving), blosc filter 32001 with byte shuffle or
uncompressed, small inner chunks so that one plane or one pixel over time is cheap to read.
Each block file is written under a temporary name and renamed when complete, and the JSON is
replaced atomically, so a crash never leaves a half-written file under a block's name.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .blocks import Blocks
from .metadata import StackMetadata, write_json_metadata

# Inner chunks of about this size: a 512 x 512 uint16 plane is four chunks (decoded in
# parallel), a pixel over time costs one small chunk per time point.
TARGET_CHUNK_BYTES = 128 * 1024

_BLOSC_COMPRESSORS = ("blosclz", "lz4", "lz4hc", "zlib", "zstd")


def default_chunk_shape(block_shape: Sequence[int], itemsize: int) -> tuple[int, ...]:
    """One chunk per row band of a plane: ``(1, ..., 1, rows, width)`` near the target size."""
    shape = [max(1, int(s)) for s in block_shape]
    if len(shape) == 1:
        return (max(1, min(shape[0], TARGET_CHUNK_BYTES // itemsize)),)
    width = shape[-1]
    rows = max(1, min(shape[-2], TARGET_CHUNK_BYTES // (itemsize * width)))
    return (1,) * (len(shape) - 2) + (rows, width)


def compression_options(compression: Any, level: int | None = None) -> dict[str, Any]:
    """h5py ``create_dataset`` keywords for a compression name as flammkuchen spells it."""
    if compression in (None, False, "none", "raw"):
        return {}
    if compression is True:
        compression = "blosc"
    if isinstance(compression, tuple):  # flammkuchen style ("blosc:lz4", 5)
        compression, level = compression
    name = str(compression)
    if name == "zlib":
        return dict(compression="gzip", compression_opts=9 if level is None else level, shuffle=True)
    if name.startswith("blosc"):
        import hdf5plugin

        codec = name.split(":", 1)[1] if ":" in name else "blosclz"
        if codec not in _BLOSC_COMPRESSORS:
            raise ValueError(f"unknown blosc compressor {codec!r}; use one of {_BLOSC_COMPRESSORS}")
        return dict(
            hdf5plugin.Blosc(cname=codec, clevel=9 if level is None else level,
                             shuffle=hdf5plugin.Blosc.SHUFFLE)
        )
    raise ValueError(f"unknown compression {compression!r}: use 'blosc', 'blosc:lz4', "
                     f"'blosc:zstd', 'zlib' or None")


def write_block_file(
    path: Path,
    data: np.ndarray,
    key: str,
    compression: Any = "blosc",
    level: int | None = None,
    chunk_shape: Sequence[int] | None = None,
) -> None:
    """Write one block under a temporary name, fsync, then rename into place."""
    import h5py

    data = np.ascontiguousarray(data)
    temporary = path.with_name(path.name + ".tmp")
    options = compression_options(compression, level)
    # Tiny blocks stay contiguous and uncompressed, as PyTables does below 300 elements.
    chunked = bool(options) and data.size > 300
    with h5py.File(temporary, "w") as handle:
        if chunked:
            chunks = tuple(chunk_shape) if chunk_shape else default_chunk_shape(data.shape, data.itemsize)
            chunks = tuple(max(1, min(c, s)) for c, s in zip(chunks, data.shape))
            handle.create_dataset(key, data=data, chunks=chunks, **options)
        else:
            handle.create_dataset(key, data=data)
    with open(temporary, "rb+") as raw:
        os.fsync(raw.fileno())
    os.replace(temporary, path)


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

    def finalize(self):
        from .dataset import SplitDataset

        write_json_metadata(self.root, self.metadata())
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
):
    """Save any sliceable array (NumPy, h5py, zarr, another SplitDataset) block by block.

    Only one block is in memory at a time. Returns the written dataset, opened.
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
    for file_name, (_, slices) in blocks:
        write_block_file(
            target.root / file_name, np.asarray(data[slices]), key, compression,
            compression_level, chunk_shape,
        )
    return target.finalize()
