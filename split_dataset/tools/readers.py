"""The readers a benchmark compares: plain h5py with open files, and this package.

Both have ``read(index)`` and ``open_and_read(index)`` (the workloads' interface):

- ``H5pyReader``: the plain way: h5py + hdf5plugin, every block file kept open, ``dset[sel]``
  per file (one strided slice per file for a slice along time) and a NumPy copy into the
  output. Datasets split along the first axis only; others raise ``NotImplementedError``.
- ``PackageReader``: ``SplitDataset(folder, threads=n)[index]``, or ``ds.read(index,
  out=buffer)`` into a buffer kept between calls.
- ``UncheckedFilesReader``: a diagnostic, not a setting: ``PackageReader`` without the check,
  on every read, that each block file is still the one it opened (one ``stat`` per file),
  to measure what that check costs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import file_cache
from ..dataset import SplitDataset
from .workloads import result_shape


@dataclass(frozen=True)
class FilesAlongTime:
    """What the plain h5py way needs: the block files in time order and the array's geometry."""

    paths: tuple[Path, ...]
    key: str
    shape: tuple[int, ...]
    time_points_per_file: int

    @classmethod
    def of(cls, ds: SplitDataset) -> FilesAlongTime:
        if any(n != 1 for n in ds.blocks_grid[1:]):
            raise NotImplementedError(
                f"the h5py baseline reads datasets split along the first axis only (this one "
                f"is split into a grid of {tuple(ds.blocks_grid)} blocks)"
            )
        key = ds.data_key if ds.data_key is not None else ds.layout(0).key
        return cls(tuple(Path(p) for p in ds.files.ravel()), key, ds.shape, ds.shape_block[0])

    def file_of(self, t: int) -> int:
        """The file owning time point ``t`` (the last one also owns a padding-length tail)."""
        return min(t // self.time_points_per_file, len(self.paths) - 1)


def _in_file(item: Any, extent: int) -> Any:
    """An index along an axis the files do not split, as h5py takes it."""
    if isinstance(item, slice):
        start, stop, step = item.indices(extent)
        if step < 0:
            raise NotImplementedError("h5py reads no negative steps")
        return slice(start, stop, step)
    if isinstance(item, (list, np.ndarray)):
        raise NotImplementedError("the h5py baseline takes index lists on the first axis only")
    return int(item) % extent


class H5pyReader:
    """h5py + hdf5plugin, files and datasets kept open, ``dset[sel]`` per file and a copy into
    the output. HDF5's chunk cache is off (``rdcc_nbytes=0``), so that no repetition of a
    selection is served from an earlier one's chunks: emptying it by reopening each dataset
    before every read gave h5py a fresh ``Dataset`` on every timed read, 34-62 us more per
    plane than a user holding one (measured on 512 x 512 planes)."""

    def __init__(self, source: str | Path | FilesAlongTime) -> None:
        import h5py
        import hdf5plugin  # noqa: F401  (registers the blosc filter)

        if isinstance(source, FilesAlongTime):
            self.geometry = source
        else:
            with SplitDataset(source) as ds:
                self.geometry = FilesAlongTime.of(ds)
        self.shape = self.geometry.shape
        self.files = []
        try:
            for path in self.geometry.paths:
                self.files.append(h5py.File(path, "r", rdcc_nbytes=0))
        except OSError:
            self.close()
            raise
        self.dsets = [f[self.geometry.key] for f in self.files]
        self.dtype = self.dsets[0].dtype

    def close(self) -> None:
        for f in self.files:
            f.close()

    def note(self, workload: str) -> str:
        return ""

    def read(self, index: tuple) -> np.ndarray:
        index = tuple(index) + (slice(None),) * (len(self.shape) - len(index))
        first = index[0]
        rest = tuple(_in_file(item, extent) for item, extent in zip(index[1:], self.shape[1:]))
        T, tpf = self.shape[0], self.geometry.time_points_per_file
        file_of = self.geometry.file_of
        if isinstance(first, (int, np.integer)):
            t = int(first) % T
            file = file_of(t)
            return self.dsets[file][(t - file * tpf,) + rest]  # one file: h5py's array as is
        if isinstance(first, slice):
            times = np.arange(*first.indices(T))
        else:
            times = np.asarray(first, dtype=np.int64) % T
        files = np.minimum(times // tpf, len(self.files) - 1)
        out = np.empty(result_shape(index, self.shape), dtype=self.dtype)
        if isinstance(first, slice) and (first.step or 1) > 0:
            # per file, one strided slice
            step = first.step or 1
            i = 0
            while i < len(times):
                file = int(files[i])
                j = i
                while j < len(times) and files[j] == file:
                    j += 1
                start = file * tpf
                local = slice(int(times[i]) - start, int(times[j - 1]) - start + 1, step)
                out[i:j] = self.dsets[file][(local,) + rest]
                i = j
            return out
        for i, (t, file) in enumerate(zip(times.tolist(), files.tolist())):
            out[i] = self.dsets[file][(t - file * tpf,) + rest]  # by point: list, step < 0
        return out

    def open_and_read(self, index: tuple) -> np.ndarray:
        reader = H5pyReader(self.geometry)
        try:
            return reader.read(index)
        finally:
            reader.close()


class PackageReader:
    """This package; ``reuse_out`` reads into a buffer kept between calls."""

    def __init__(self, folder: str | Path, threads: int, reuse_out: bool = False) -> None:
        self.folder = Path(folder)
        self.threads = threads
        self.reuse_out = reuse_out
        self.ds = SplitDataset(self.folder, threads=threads)
        for i in range(len(self.ds.files.ravel())):  # index every file once, like open h5py files
            self.ds.layout(i)
        self._buffers: dict = {}

    def note(self, workload: str) -> str:
        return "out= reused" if self.reuse_out else ""

    def read(self, index: tuple) -> np.ndarray:
        if not self.reuse_out:
            return self.ds[index]
        # one buffer per result shape: the selections of a workload (a plane across time at
        # each z, say) share it, so every read after the first is into reused memory
        shape = result_shape(index, self.ds.shape)
        buffer = self._buffers.get(shape)
        if buffer is None:
            buffer = np.empty(shape, dtype=self.ds.dtype)
            if len(self._buffers) > 2:
                self._buffers.clear()
            self._buffers[shape] = buffer
        return self.ds.read(index, out=buffer)

    def open_and_read(self, index: tuple) -> np.ndarray:
        return SplitDataset(self.folder, threads=self.threads)[index]

    def close(self) -> None:
        self.ds.close()


class UncheckedFilesReader(PackageReader):
    """``PackageReader`` whose reads skip the ``stat`` of each block file's path that notices a
    file replaced or changed since it was opened: each path is stat-ed once, and that answer
    is reused. Benchmarks only, to show what the check costs; a file replaced meanwhile would
    be read stale, which is why no setting of the package turns the check off."""

    def __init__(self, folder: str | Path, threads: int) -> None:
        super().__init__(folder, threads)
        self._first_identities: dict[Path, bytes] = {}

    def note(self, workload: str) -> str:
        return "diagnostic: files not re-checked"

    def read(self, index: tuple) -> np.ndarray:
        with self._first_identity_reused():
            return super().read(index)

    @contextlib.contextmanager
    def _first_identity_reused(self) -> Iterator[None]:
        checking = file_cache.current_identity
        first_identities = self._first_identities

        def first_identity(path: Path) -> bytes:
            found = first_identities.get(path)
            if found is None:
                found = first_identities[path] = checking(path)
            return found

        file_cache.current_identity = first_identity
        try:
            yield
        finally:
            file_cache.current_identity = checking
