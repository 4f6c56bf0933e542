"""Opening the arrays ``split-dataset convert`` reads from, lazily, as sliceable arrays.

A source is anything with ``shape``, ``dtype`` and NumPy slicing, read one block at a time:
another split dataset, a recording's folder of channels (stacked along a channel axis), an
HDF5 dataset (``file.h5:/key``), a ``.npy`` file (memory-mapped), a TIFF stack (tifffile,
optional) or a zarr array (zarr, optional). OME-Zarr images and OME-TIFFs come with their
metadata (resolution, frequency, axis order, a crop's origin, channel names), which
``convert`` carries over.
"""

from __future__ import annotations

from contextlib import ExitStack, closing
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
        if is_ome_zarr(path):
            from ..exports import read_ome_zarr

            return read_ome_zarr(path)
        if (path / "zarr.json").is_file() or (path / ".zarray").is_file():
            return _zarr(path)
        from ..channels import open_recording

        recording = stack.enter_context(closing(open_recording(path)))
        return recording.stacked() if len(recording) > 1 else recording[recording.channels[0]]
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


def is_ome_zarr(path: Path) -> bool:
    """A zarr group whose attributes describe an image (NGFF 0.5, or 0.4 with zarr v2)."""
    import json

    for name in ("zarr.json", ".zattrs"):
        try:
            attributes = json.loads((path / name).read_text())
        except (OSError, ValueError):
            continue
        attributes = attributes.get("attributes", attributes)
        if "multiscales" in attributes.get("ome", attributes):
            return True
    return False


def _tiff(path: Path) -> Any:
    try:
        import tifffile
    except ImportError as error:
        raise SplitDatasetError("reading TIFF needs tifffile: pip install tifffile") from error
    with tifffile.TiffFile(path) as tiff:
        ome = tiff.is_ome
    if ome:
        from ..exports import read_ome_tiff

        return read_ome_tiff(path)
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
