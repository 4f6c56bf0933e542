"""Opening the arrays ``split-dataset convert`` reads from, lazily, as sliceable arrays.

A source is anything with ``shape``, ``dtype`` and NumPy slicing, read one block at a time:
another split dataset, an HDF5 dataset (``file.h5:/key``), a ``.npy`` file (memory-mapped), a
TIFF stack (tifffile, optional) or a zarr array (zarr, optional).
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import SplitDatasetError


def open_source(spec: str, stack: ExitStack) -> Any:
    """The array named by ``spec``; files it opens are closed when ``stack`` closes."""
    path, key = Path(spec), ""
    if not path.exists() and ":" in spec:  # file.h5:/group/key
        path_text, key = spec.rsplit(":", 1)
        path = Path(path_text)
    if path.is_dir():
        if (path / "zarr.json").is_file() or (path / ".zarray").is_file():
            return _zarr(path)
        from ..dataset import SplitDataset

        return SplitDataset(path)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return np.load(path, mmap_mode="r")
    if suffix in (".tif", ".tiff"):
        return _tiff(path)
    if suffix in (".h5", ".hdf5", ".hdf"):
        return _hdf5(path, key, stack)
    raise SplitDatasetError(
        f"{spec}: not a split dataset folder, .npy, .h5[:key], .tif or zarr array"
    )


def _hdf5(path: Path, key: str, stack: ExitStack) -> Any:
    import h5py
    import hdf5plugin  # noqa: F401

    handle = stack.enter_context(h5py.File(path, "r"))
    if key:
        if key not in handle:
            raise SplitDatasetError(f"{path}: no dataset '{key}' (found: {', '.join(handle)})")
        return handle[key]
    datasets: list[str] = []
    handle.visititems(
        lambda name, item: datasets.append(name) if isinstance(item, h5py.Dataset) else None
    )
    if len(datasets) != 1:
        raise SplitDatasetError(
            f"{path}: holds {len(datasets)} datasets ({', '.join(datasets[:5])}); name one as "
            f"{path}:KEY"
        )
    return handle[datasets[0]]


def _tiff(path: Path) -> Any:
    try:
        import tifffile
    except ImportError as error:
        raise SplitDatasetError("reading TIFF needs tifffile: pip install tifffile") from error
    try:
        return tifffile.memmap(path, mode="r")  # uncompressed stacks: no copy at all
    except ValueError:
        import zarr

        return zarr.open(tifffile.imread(path, aszarr=True), mode="r")


def _zarr(path: Path) -> Any:
    try:
        import zarr
    except ImportError as error:
        raise SplitDatasetError("reading zarr needs zarr: pip install zarr") from error
    return zarr.open_array(path, mode="r")
