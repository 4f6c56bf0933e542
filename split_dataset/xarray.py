"""The xarray bridge: a split dataset (or a view) as a lazy ``DataArray`` with named dims,
physical coordinates and its metadata, and a backend so that
``xarray.open_dataarray(path, engine="split_dataset")`` opens a dataset folder.

Imported only when used: xarray stays an optional extra.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .dataset import SplitDataset
from .discovery import find_metadata_file
from .errors import SplitDatasetError

DIM_NAMES = {"t": "t", "c": "c", "z": "z", "y": "y", "x": "x"}


def dims_of(axis_order: str | None, ndim: int) -> tuple[str, ...]:
    """Dimension names from ``axis_order`` (``"tzyx"`` -> t, z, y, x), else dim_0, dim_1..."""
    if axis_order is not None and len(axis_order) == ndim and len(set(axis_order)) == ndim:
        return tuple(DIM_NAMES.get(letter, letter) for letter in axis_order)
    return tuple(f"dim_{axis}" for axis in range(ndim))


def coordinates(array: Any, dims: tuple[str, ...]) -> dict[str, Any]:
    """Physical coordinates where the step is known: space from the resolution, time (the
    first axis, in seconds) from the frequency; a crop's coordinates continue those of the
    recording it was cut from (its ``origin``)."""
    origin = getattr(array, "origin", None)
    if origin is not None:
        placed = [(s, d) for s, d in zip(origin.start, origin.step) if d != 0]
    else:
        placed = [(0, 1)] * len(array.shape)
    coords: dict[str, Any] = {}
    for axis, (dim, size) in enumerate(zip(dims, array.shape)):
        start, step = placed[axis]
        positions = start + step * np.arange(size)  # in the recording's own indices
        if axis == 0 and array.frequency is not None:
            coords[dim] = (dim, positions / (array.frequency * abs(step)), {"units": "s"})
        elif array.resolution[axis] is not None:
            unit_step = array.resolution[axis] / abs(step)
            coords[dim] = (dim, positions * unit_step)
    return coords


def attributes(array: Any) -> dict[str, Any]:
    """The metadata, as attributes (unknown entries stay None)."""
    metadata = array.metadata
    attrs: dict[str, Any] = {
        "resolution": list(array.resolution),
        "frequency": array.frequency,
        "axis_order": array.axis_order,
        "source": str(getattr(array, "source", array).root),
    }
    if metadata.origin is not None:
        attrs["origin"] = metadata.origin.to_json()
    attrs.update({k: v for k, v in metadata.extra.items() if k not in attrs})
    return attrs


def to_xarray(array: Any, chunks: Any = None):
    """``array`` as a lazy, dask-backed ``xarray.DataArray`` (chunks as in ``to_dask``)."""
    import xarray as xr

    dims = dims_of(array.axis_order, len(array.shape))
    source = getattr(array, "source", array)
    return xr.DataArray(
        array.to_dask(chunks),
        dims=dims,
        coords=coordinates(array, dims),
        attrs=attributes(array),
        name=Path(source.root).name,
    )


# --- the backend: xarray.open_dataarray(path, engine="split_dataset") -------------------------


def _backend():
    """The backend classes, made when xarray asks for them (it imports the entry point)."""
    from xarray.backends import BackendArray, BackendEntrypoint
    from xarray.core import indexing

    class SplitDatasetArray(BackendArray):
        """Lazy indexing by xarray, reads by the fast reader: at most one index array per read
        (xarray finishes the rest) and integers kept as length-one slices until the read is
        done, so that NumPy's rules (by which an integer beside an array moves the array's
        axis to the front) give xarray's orthogonal result."""

        def __init__(self, dataset: SplitDataset) -> None:
            self.dataset = dataset
            self.shape = dataset.shape
            self.dtype = dataset.dtype

        def __getitem__(self, key):
            return indexing.explicit_indexing_adapter(
                key, self.shape, indexing.IndexingSupport.OUTER_1VECTOR, self._read_outer
            )

        def _read_outer(self, key: tuple) -> np.ndarray:
            integer = [isinstance(item, (int, np.integer)) for item in key]
            kept = tuple(slice(i, i + 1) if flag else i for i, flag in zip(key, integer))
            data = self.dataset.read(kept)
            return data[tuple(0 if flag else slice(None) for flag in integer)]

    class SplitDatasetBackend(BackendEntrypoint):
        description = "Split datasets: folders of numbered HDF5 blocks + stack_metadata.json"
        open_dataset_parameters = ("filename_or_obj", "drop_variables")

        def guess_can_open(self, filename_or_obj) -> bool:
            try:
                path = Path(filename_or_obj)
            except TypeError:
                return False
            folder = path.parent if path.name.endswith("stack_metadata.json") else path
            return folder.is_dir() and find_metadata_file(folder) is not None

        def open_dataset(self, filename_or_obj, *, drop_variables=None):
            import xarray as xr

            path = Path(filename_or_obj)
            if path.name.endswith("stack_metadata.json"):
                path = path.parent
            try:
                dataset = SplitDataset(path)
            except SplitDatasetError as error:
                raise ValueError(str(error)) from error
            dims = dims_of(dataset.axis_order, dataset.ndim)
            data = indexing.LazilyIndexedArray(SplitDatasetArray(dataset))
            name = path.name
            variable = xr.Variable(dims, data, attrs=attributes(dataset))
            variables = {} if drop_variables and name in drop_variables else {name: variable}
            coords = {
                dim: xr.Variable(*spec) if isinstance(spec, tuple) else spec
                for dim, spec in coordinates(dataset, dims).items()
            }
            result = xr.Dataset(variables, coords=coords)
            result.set_close(dataset.close)
            return result

    return SplitDatasetBackend


def __getattr__(name: str):
    if name == "SplitDatasetBackend":  # the xarray.backends entry point
        return _backend()
    raise AttributeError(name)
