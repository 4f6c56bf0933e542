"""Lazy views of a dataset: ``ds.view[key]`` for basic keys (integers, slices with any step,
``Ellipsis``).

A view reads nothing until it is indexed, and then reads through its dataset's planner and
reader: an index into the view is mapped onto the dataset's axes (``AxisMap``), so a view reads
exactly the chunks it needs, and playback of a view uses the dataset's read-ahead. A view knows
where it lies in its dataset (``origin``) and carries the physical metadata transformed with it:
resolution scaled by the step, frequency divided by the time step, the axes it dropped removed.
"""

from __future__ import annotations

import operator
from concurrent.futures import Future
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from .array_like import ArrayLike
from .metadata import Origin, StackMetadata
from .selection import IntTerm, SliceTerm, Term, VectorTerm, normalize

if TYPE_CHECKING:
    from .dataset import SplitDataset

_BASIC_ONLY = (
    "a view takes integers, slices and Ellipsis (a lazy crop); for other indices read the "
    "data: view_or_dataset[index]"
)


@dataclass(frozen=True)
class AxisMap:
    """How one axis of the dataset appears in a view.

    ``step == 0``: the axis is fixed at ``start`` (an integer index; the view has no such
    axis). Otherwise view coordinate ``i`` (``0 <= i < count``) is dataset coordinate
    ``start + step * i``; ``step`` may be negative.
    """

    start: int
    step: int
    count: int

    @property
    def kept(self) -> bool:
        return self.step != 0

    def source_coordinate(self, i: int) -> int:
        return self.start + self.step * i

    def narrowed(self, term: IntTerm | SliceTerm) -> AxisMap:
        """This axis after a view-level integer or slice term."""
        if isinstance(term, IntTerm):
            return AxisMap(self.source_coordinate(term.index), 0, 1)
        if term.count == 0:
            return AxisMap(self.start, 1, 0)
        first = term.start + term.step * (term.count - 1) if term.reverse else term.start
        step = -term.step if term.reverse else term.step
        return AxisMap(self.source_coordinate(first), self.step * step, term.count)

    def map_term(self, term: Term) -> Term:
        """A view-level term of the canonical selection, in dataset coordinates."""
        if isinstance(term, IntTerm):
            return IntTerm(self.source_coordinate(term.index))
        if isinstance(term, VectorTerm):
            return VectorTerm(self.start + self.step * term.coords)
        if term.count <= 1 or self.step > 0:
            step = 1 if term.count <= 1 else self.step * term.step
            return SliceTerm(self.source_coordinate(term.start), step, term.count, term.reverse)
        last = self.source_coordinate(term.start + term.step * (term.count - 1))
        return SliceTerm(last, -self.step * term.step, term.count, not term.reverse)

    def source_slice(self, item: slice) -> slice:
        """A view-level slice as a slice of the dataset's axis."""
        found = range(*item.indices(self.count))
        if not found:
            return slice(0, 0)
        first = self.source_coordinate(found.start)
        step = self.step * found.step
        stop = first + step * len(found)
        return slice(first, stop if stop >= 0 else None, step)


def identity_maps(shape: tuple[int, ...]) -> tuple[AxisMap, ...]:
    return tuple(AxisMap(0, 1, size) for size in shape)


class ViewIndexer:
    """``ds.view[key]``: a lazy view (see ``DatasetView``)."""

    def __init__(self, source: SplitDataset, axes: tuple[AxisMap, ...]) -> None:
        self._source = source
        self._axes = axes

    def __getitem__(self, key: Any) -> DatasetView:
        shape = tuple(m.count for m in self._axes if m.kept)
        items = key if isinstance(key, tuple) else (key,)
        for item in items:
            if item is None or not (
                item is Ellipsis or isinstance(item, slice) or _is_integer(item)
            ):
                raise TypeError(f"{_BASIC_ONLY}; got {item!r}")
        selection = normalize(key, shape)
        terms = iter(selection.terms)
        axes = tuple(
            m.narrowed(next(terms)) if m.kept else m  # type: ignore[arg-type]
            for m in self._axes
        )
        return DatasetView(self._source, axes)


def _is_integer(item: Any) -> bool:
    if isinstance(item, (bool, np.bool_)):
        return False
    if isinstance(item, (int, np.integer)):
        return True
    return not isinstance(item, (np.ndarray, list, tuple, float, str, bytes)) and hasattr(
        item, "__index__"
    )


class DatasetView(ArrayLike):
    """A lazy crop of a ``SplitDataset``: the dataset's reading interface, over part of it.

    ``shape``, ``dtype``, ``ndim``, ``len()``, full NumPy indexing (``view[k]`` equals
    ``np.asarray(view)[k]``), ``read(key, out=)``, ``prefetch``, ``view`` (a view of the view),
    ``to_dask``, ``to_xarray``; ``origin`` says where it lies in the dataset and
    ``resolution``, ``frequency``, ``axis_order`` are transformed with it. Pickles small.
    """

    def __init__(self, source: SplitDataset, axes: tuple[AxisMap, ...]) -> None:
        self._source = source
        self._axes = axes
        self._kept = tuple(a for a, m in enumerate(axes) if m.kept)

    # --- what it is ---------------------------------------------------------------------------

    @property
    def source(self) -> SplitDataset:
        return self._source

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self._axes[a].count for a in self._kept)

    @property
    def dtype(self) -> np.dtype:
        return self._source.dtype

    def __repr__(self) -> str:
        spans = []
        for m in self._axes:
            if not m.kept:
                spans.append(str(m.start))
            else:
                stop = m.start + m.step * m.count
                spans.append(f"{m.start}:{stop if stop >= 0 else ''}:{m.step}")
        return (
            f"DatasetView('{self._source.root}'[{', '.join(spans)}], shape={self.shape}, "
            f"dtype={self._source.dtype})"
        )

    # --- where it lies, and its physical metadata ---------------------------------------------

    @property
    def origin(self) -> Origin:
        """Where the view lies: start and step per axis of the original recording (step 0:
        an axis the view fixed), composed with the dataset's own origin if it is a saved crop."""
        local = Origin(
            str(self._source.root.resolve()),
            tuple(m.start for m in self._axes),
            tuple(m.step for m in self._axes),
            self._source.shape,
        )
        parent = self._source.origin
        return local if parent is None else parent.compose(local)

    @property
    def metadata(self) -> StackMetadata:
        """The dataset's metadata as it applies to the view (what saving the view writes)."""
        return view_metadata(self._source.metadata, self._source.shape, self._axes, self.origin)

    @property
    def shape_block(self) -> tuple[int, ...]:
        """The dataset's block shape along the view's axes (what saving the view uses)."""
        return self.metadata.shape_block

    @property
    def resolution(self) -> tuple[float | None, ...]:
        return self.metadata.resolution

    @property
    def voxel_size(self) -> tuple[float | None, ...]:
        return self.resolution[-3:]

    @property
    def frequency(self) -> float | None:
        return self.metadata.frequency

    @property
    def axis_order(self) -> str | None:
        return self.metadata.axis_order

    @property
    def chunks(self) -> tuple[tuple[int, ...], ...]:
        """Per axis, the lengths of the runs of view coordinates that fall in one block of the
        dataset (dask's chunks: reading one of them touches one file along that axis)."""
        from .blocks import block_of

        runs = []
        for a in self._kept:
            m = self._axes[a]
            coords = m.start + m.step * np.arange(m.count, dtype=np.int64)
            blocks = block_of(coords, self._source.shape_block[a], self._source.blocks_grid[a])
            edges = np.flatnonzero(np.diff(blocks)) + 1
            runs.append(tuple(int(n) for n in np.diff(np.r_[0, edges, m.count])) or (0,))
        return tuple(runs)

    # --- reading ------------------------------------------------------------------------------

    def read(
        self, key: Any = (), out: np.ndarray | None = None, threads: int | None = None
    ) -> np.ndarray:
        """``view[key]``, optionally into ``out``; any NumPy index."""
        source_key = self._source_key(key)
        if source_key is not None:  # basic: the dataset's own fast path and read-ahead
            return self._source.read(source_key, out, threads)
        selection = normalize(key, self.shape)
        terms = self._source_terms(selection.terms)
        return self._source._read_selection(selection, terms, out, threads)

    def prefetch(self, key: Any) -> Future:
        """Read ``key`` of the view ahead, in the background (see ``SplitDataset.prefetch``)."""
        source_key = self._source_key(key)
        if source_key is None:
            normalize(key, self.shape)  # a bad index raises NumPy's error here
            raise TypeError(f"read-ahead takes integers, slices, None and Ellipsis; got {key!r}")
        return self._source.prefetch(source_key)

    @property
    def view(self) -> ViewIndexer:
        """``view.view[key]``: a view of this view (composed: still one step from the data)."""
        return ViewIndexer(self._source, self._axes)

    def to_dask(self, chunks: Any = None):
        from .dask import to_dask

        return to_dask(self, chunks)

    def to_xarray(self, chunks: Any = None):
        from .xarray import to_xarray

        return to_xarray(self, chunks)

    def __reduce__(self):
        return (DatasetView, (self._source, self._axes))

    # --- mapping indices onto the dataset --------------------------------------------------

    def _source_terms(self, terms: tuple[Term, ...]) -> tuple[Term, ...]:
        mapped = iter(terms)
        return tuple(m.map_term(next(mapped)) if m.kept else IntTerm(m.start) for m in self._axes)

    def _source_key(self, key: Any) -> tuple | None:
        """A basic index of the view (integers, slices, None, Ellipsis) as the same basic index
        of the dataset, or None for anything else. (Integers the view fixed go in as integers:
        with no index arrays around, NumPy places no axis for them, wherever they are.)"""
        items = key if isinstance(key, tuple) else (key,)
        if any(
            not (i is None or i is Ellipsis or isinstance(i, slice) or _is_integer(i))
            for i in items
        ):
            return None
        ellipses = sum(i is Ellipsis for i in items)
        consumed = sum(i is not None and i is not Ellipsis for i in items)
        if ellipses > 1 or consumed > self.ndim:
            return None  # normalize raises NumPy's error
        expanded: list[Any] = []
        for item in items:
            if item is Ellipsis:
                expanded.extend([slice(None)] * (self.ndim - consumed))
            else:
                expanded.append(item)
        if not ellipses:
            expanded.extend([slice(None)] * (self.ndim - consumed))
        source: list[Any] = []
        position = 0  # in ``expanded``
        for m in self._axes:
            if not m.kept:
                source.append(m.start)
                continue
            while expanded[position] is None:  # new axes before this view axis
                source.append(None)
                position += 1
            item = expanded[position]
            position += 1
            if isinstance(item, slice):
                source.append(m.source_slice(item))
            else:
                index = operator.index(item)
                if not -m.count <= index < m.count:
                    return None  # normalize raises NumPy's error, with the view's sizes
                source.append(m.source_coordinate(index % m.count if m.count else index))
        source.extend(expanded[position:])  # trailing new axes
        return tuple(source)


def _scaled(step: float | None, factor: int) -> float | None:
    return None if step is None else step * factor


def view_metadata(
    metadata: StackMetadata, shape: tuple[int, ...], axes: tuple[AxisMap, ...], origin: Origin
) -> StackMetadata:
    """A dataset's metadata transformed to a view of it: steps scale the resolution, a time
    step divides the frequency, fixed axes leave ``axis_order``; unknown stays unknown."""
    kept = [a for a, m in enumerate(axes) if m.kept]
    resolution = tuple(_scaled(metadata.resolution[a], abs(axes[a].step)) for a in kept)
    frequency = None
    if metadata.frequency is not None and 0 in kept:  # the first axis is time
        frequency = metadata.frequency / abs(axes[0].step)
    axis_order = None
    if metadata.axis_order is not None:
        axis_order = "".join(metadata.axis_order[a] for a in kept)
    view_shape = tuple(axes[a].count for a in kept)
    crop_start, crop_end = [], []
    for a in kept:  # 0.4.x's crop: what was cut at each end, where the view steps by 1
        m = axes[a]
        if m.step == 1:
            crop_start.append(m.start)
            crop_end.append(shape[a] - m.start - m.count)
        else:
            crop_start.append(0)
            crop_end.append(0)
    return replace(
        metadata,
        shape_full=view_shape,
        shape_block=tuple(min(metadata.shape_block[a], max(1, axes[a].count)) for a in kept),
        padding=(0,) * len(kept),
        resolution=resolution,
        axis_order=axis_order,
        frequency=frequency,
        files=None,
        crop_start=tuple(max(0, c) for c in crop_start),
        crop_end=tuple(max(0, c) for c in crop_end),
        origin=origin,
    )
