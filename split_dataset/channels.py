"""Recordings with several channels: one split dataset per channel in subfolders
(``original/green/``, ``original/red/``), opened by one call, by name or stacked.

    rec = open_recording("recording/original")   # a folder of channels, or a plain dataset
    rec.channels                                  # ("green", "red")
    rec["green"][10, 5]                           # one channel, a SplitDataset
    both = rec.stacked()                          # a lazy (t, c, z, y, x) array
    both[10, :, 5]                                # a plane of every channel
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .array_like import ArrayLike
from .dataset import SplitDataset, read_selection
from .discovery import find_metadata_file, numbered_block_files
from .errors import NotASplitDatasetError, SplitDatasetError
from .selection import IntTerm, normalize, term_coordinates


def channel_folders(folder: Path) -> list[Path]:
    """The channels of a recording folder, by name: its subfolders, when every one of them
    (hidden ones aside) is a split dataset with JSON metadata and they all announce the same
    shape. Anything else (a folder of unrelated recordings, say) has none."""
    subfolders = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    shapes = set()
    for subfolder in subfolders:
        metadata = find_metadata_file(subfolder)
        if metadata is None:
            return []
        try:
            shapes.add(tuple(json.loads(metadata.read_text()).get("shape_full") or ()))
        except (OSError, ValueError, AttributeError):
            return []
    return subfolders if len(shapes) == 1 else []


class Recording(Mapping[str, SplitDataset]):
    """The channels of a recording by name (a plain dataset is one channel, named after its
    folder); ``stacked()`` puts them along a channel axis."""

    def __init__(self, folder: str | Path, **options: Any) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise NotASplitDatasetError(f"{self.folder}: not a folder")
        if find_metadata_file(self.folder) is not None or numbered_block_files(self.folder):
            self._channels = {self.folder.name: SplitDataset(self.folder, **options)}
        else:
            found = channel_folders(self.folder)
            if not found:
                raise NotASplitDatasetError(
                    f"{self.folder}: neither a split dataset nor a folder of channels "
                    f"(subfolders that are all split datasets of one shape)"
                )
            self._channels = {p.name: SplitDataset(p, **options) for p in found}

    @property
    def channels(self) -> tuple[str, ...]:
        return tuple(self._channels)

    def __getitem__(self, name: str) -> SplitDataset:
        return self._channels[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._channels)

    def __len__(self) -> int:
        return len(self._channels)

    def __repr__(self) -> str:
        return f"Recording('{self.folder}', channels={list(self._channels)})"

    def stacked(self, axis: int | None = None) -> ChannelStack:
        """The channels along a new axis: after time (axis 1) when the first axis is time
        (or unknown), else first."""
        return ChannelStack(self.channels, list(self._channels.values()), axis)

    def close(self) -> None:
        for dataset in self._channels.values():
            dataset.close()


def open_recording(path: str | Path, **options: Any) -> Recording:
    """A recording folder: its channels by name, or a plain dataset as its one channel.
    ``options`` go to each ``SplitDataset`` (``threads``, ``verify_checksums``...)."""
    return Recording(path, **options)


class ChannelStack(ArrayLike):
    """Channels of equal shape and dtype stacked lazily along a channel axis: indexes like
    the stacked NumPy array, reads each channel through its dataset."""

    def __init__(
        self, names: tuple[str, ...], datasets: list[SplitDataset], axis: int | None = None
    ) -> None:
        first = datasets[0]
        for name, dataset in zip(names, datasets):
            if dataset.shape != first.shape or dataset.dtype != first.dtype:
                raise SplitDatasetError(
                    f"{dataset.root}: channel '{name}' is {dataset.shape} {dataset.dtype}, "
                    f"channel '{names[0]}' {first.shape} {first.dtype}: they do not stack"
                )
        if axis is None:
            order = first.axis_order
            axis = 1 if first.ndim and (order is None or order[0] == "t") else 0
        if not 0 <= axis <= first.ndim:
            raise ValueError(f"a channel axis {axis} does not fit a {first.ndim}-d dataset")
        self.names = names
        self.datasets = datasets
        self.axis = axis
        self._shape = first.shape[:axis] + (len(datasets),) + first.shape[axis:]
        self._dtype = first.dtype

    @property
    def shape(self) -> tuple[int, ...]:
        return self._shape

    @property
    def dtype(self) -> np.dtype:
        return self._dtype

    @property
    def axis_order(self) -> str | None:
        order = self.datasets[0].axis_order
        return None if order is None else order[: self.axis] + "c" + order[self.axis :]

    @property
    def resolution(self) -> tuple[float | None, ...]:
        steps = self.datasets[0].resolution
        return steps[: self.axis] + (None,) + steps[self.axis :]

    @property
    def frequency(self) -> float | None:
        return self.datasets[0].frequency if self.axis > 0 else None

    def read(
        self, key: Any = (), out: np.ndarray | None = None, threads: int | None = None
    ) -> np.ndarray:
        selection = normalize(key, self.shape)
        terms = selection.terms
        channel, rest = terms[self.axis], terms[: self.axis] + terms[self.axis + 1 :]
        # where the channel axis lies among the target's axes (one per non-integer term)
        target_axis = sum(not isinstance(t, IntTerm) for t in terms[: self.axis])

        def fill(target: np.ndarray) -> None:
            if isinstance(channel, IntTerm):
                self._read_channel(channel.index, rest, target, threads)
                return
            coords, positions = term_coordinates(channel)
            for c, position in zip(coords.tolist(), positions.tolist()):
                part = target[(slice(None),) * target_axis + (position,)]
                self._read_channel(c, rest, part, threads)

        return read_selection(selection, self.dtype, out, fill)

    def _read_channel(
        self, index: int, terms: tuple, target: np.ndarray, threads: int | None
    ) -> None:
        from .reader import read_orthogonal

        dataset = self.datasets[index]
        read_orthogonal(
            dataset._grid,
            dataset._cache,
            terms,
            target,
            dataset.threads if threads is None else threads,
            verify_checksums=dataset.verify_checksums,
        )

    def to_dask(self, chunks: Any = None):
        """The channels' block-aligned dask arrays, stacked along the channel axis."""
        import dask.array as da

        return da.stack([d.to_dask(chunks) for d in self.datasets], axis=self.axis)

    def to_xarray(self, chunks: Any = None):
        import xarray as xr

        from .xarray import coordinates, dims_of

        first = self.datasets[0].to_xarray(chunks)
        dims = (
            dims_of(self.axis_order, self.ndim)
            if self.axis_order
            else (first.dims[: self.axis] + ("c",) + first.dims[self.axis :])
        )
        coords = dict(coordinates(self.datasets[0], first.dims))
        coords["c"] = ("c", list(self.names))
        return xr.DataArray(
            self.to_dask(chunks),
            dims=dims,
            coords=coords,
            attrs=dict(first.attrs, channels=list(self.names)),
        )

    def close(self) -> None:
        for dataset in self.datasets:
            dataset.close()
