"""Normalization: any NumPy index into canonical per-axis terms, once, in Python.

The planner only ever sees the canonical form: for every axis of the array an ``IntTerm``
(the axis is dropped), a ``SliceTerm`` (positive step; ``reverse`` says the output runs
backwards) or a ``VectorTerm`` (non-negative coordinates in output order, maybe unsorted and
repeated). Everything NumPy does beyond an orthogonal read (new axes, where the dimensions of an
advanced index land, several advanced indices broadcast together) is expressed either as a view
of the output (``DirectSelection``) or, for several advanced indices, as a NumPy indexing of a
small orthogonal intermediate (``GatherSelection``).
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Union

import numpy as np

INT64_MIN, INT64_MAX, UINT64_MAX = -(2**63), 2**63 - 1, 2**64 - 1

_VALID_INDICES = (
    "only integers, slices (`:`), ellipsis (`...`), numpy.newaxis (`None`) and integer or "
    "boolean arrays are valid indices"
)


@dataclass(frozen=True)
class IntTerm:
    index: int

    @property
    def count(self) -> int:
        return 1


@dataclass(frozen=True)
class SliceTerm:
    start: int
    step: int  # > 0
    count: int
    reverse: bool = False  # output position of element k is count - 1 - k


@dataclass(frozen=True, eq=False)
class VectorTerm:
    coords: np.ndarray  # int64, 0 <= c < axis size, in output order

    @property
    def count(self) -> int:
        return int(self.coords.shape[0])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, VectorTerm) and np.array_equal(self.coords, other.coords)

    def __hash__(self) -> int:
        return hash(self.coords.tobytes())

    def __repr__(self) -> str:
        shown = np.array2string(self.coords, threshold=8, separator=", ")
        return f"VectorTerm({shown})"


Term = Union[IntTerm, SliceTerm, VectorTerm]  # noqa: UP007 - a runtime alias, on Python 3.10 too


def term_coordinates(term: Term) -> tuple[np.ndarray, np.ndarray]:
    """Source coordinates along the axis and the output position of each (reference form)."""
    if isinstance(term, IntTerm):
        return np.array([term.index], dtype=np.int64), np.zeros(1, dtype=np.int64)
    if isinstance(term, SliceTerm):
        coords = term.start + term.step * np.arange(term.count, dtype=np.int64)
        positions = np.arange(term.count, dtype=np.int64)
        return coords, positions[::-1].copy() if term.reverse else positions
    return term.coords, np.arange(term.count, dtype=np.int64)


@dataclass(frozen=True)
class DirectSelection:
    """The orthogonal read *is* the result, seen through a view.

    ``orthogonal_view(result)`` returns the view of a result-shaped array that has one axis per
    non-integer term, in axis order; the reader writes straight into it. It returns None when
    the result's strides allow no such view (a caller's ``out=`` with exotic strides).
    """

    terms: tuple[Term, ...]
    result_shape: tuple[int, ...]
    orthogonal_view: Callable[[np.ndarray], np.ndarray | None]
    returns_scalar: bool = False  # an integer on every axis and no Ellipsis: NumPy's scalar

    @property
    def orthogonal_shape(self) -> tuple[int, ...]:
        return tuple(t.count for t in self.terms if not isinstance(t, IntTerm))


@dataclass(frozen=True)
class GatherSelection:
    """Several advanced indices: read the orthogonal bounding selection, then let NumPy finish.

    Every axis keeps a dimension in the intermediate (integers become length-one vectors) and
    ``numpy_index`` is the original index re-expressed on that intermediate, so NumPy's own
    broadcasting and axis placement rules apply unchanged.
    """

    terms: tuple[Term, ...]
    result_shape: tuple[int, ...]
    numpy_index: tuple[Any, ...]

    @property
    def orthogonal_shape(self) -> tuple[int, ...]:
        return tuple(t.count for t in self.terms)


Selection = Union[DirectSelection, GatherSelection]  # noqa: UP007


# --- classification of index items -------------------------------------------------------------


@dataclass
class _Item:
    kind: str  # "int", "slice", "array", "mask", "boolscalar", "newaxis", "ellipsis"
    value: Any
    first_axis: int = -1  # first array axis consumed

    @property
    def consumed(self) -> int:  # array axes used; 0 for None, bool scalars and the Ellipsis
        if self.kind in ("int", "slice", "array"):
            return 1
        if self.kind == "mask":
            return self.value.ndim
        return 0

    @property
    def advanced(self) -> bool:
        return self.kind in ("array", "mask", "boolscalar")


def _classify(item: Any) -> _Item:
    if item is None:
        return _Item("newaxis", None)
    if item is Ellipsis:
        return _Item("ellipsis", None)
    if isinstance(item, slice):
        return _Item("slice", item)
    if isinstance(item, (bool, np.bool_)):
        return _Item("boolscalar", bool(item))
    if isinstance(item, (float, complex, str, bytes)):
        raise IndexError(_VALID_INDICES)
    if not isinstance(item, (np.ndarray, list, tuple)) and hasattr(item, "__index__"):
        try:
            return _Item("int", operator.index(item))
        except Exception:  # noqa: BLE001 - NumPy swallows it and refuses the index
            raise IndexError(_VALID_INDICES) from None
    array = np.asarray(item)  # lists, tuples, ranges, memoryviews, any array-like
    if array.dtype == np.bool_:
        if array.ndim == 0:
            return _Item("boolscalar", bool(array))
        return _Item("mask", array)
    if array.size == 0 and array.dtype.kind == "f" and not isinstance(item, np.ndarray):
        array = array.astype(np.intp)  # NumPy reads an empty list as an empty index
    if array.dtype.kind not in "iu":
        if array.ndim == 0:
            raise IndexError(_VALID_INDICES)
        raise IndexError("arrays used as indices must be of integer (or boolean) type")
    if array.ndim == 0:  # places its (empty) broadcast shape exactly like an integer
        return _Item("int", int(array))
    return _Item("array", array)


def _expand(key: Any, ndim: int) -> list[_Item]:
    items = [_classify(k) for k in (key if isinstance(key, tuple) else (key,))]
    if sum(i.kind == "ellipsis" for i in items) > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    consumed = sum(i.consumed for i in items)
    if consumed > ndim:
        raise IndexError(
            f"too many indices for array: array is {ndim}-dimensional, but {consumed} were indexed"
        )
    expanded: list[_Item] = []
    for item in items:
        if item.kind == "ellipsis":
            # The marker stays (consuming no axis): even an empty Ellipsis separates two
            # advanced indices for NumPy's placement rule.
            expanded.append(item)
            expanded.extend(_Item("slice", slice(None)) for _ in range(ndim - consumed))
        else:
            expanded.append(item)
    if not any(i.kind == "ellipsis" for i in items):
        expanded.extend(_Item("slice", slice(None)) for _ in range(ndim - consumed))
    axis = 0
    for item in expanded:
        item.first_axis = axis
        axis += item.consumed
    return expanded


def _check_int(value: int, axis: int, size: int) -> int:
    """An integer index, wrapped, raising as NumPy does (which converts it to an int64 first:
    values in [2**63, 2**64) overflow, values beyond are not indices at all)."""
    if not INT64_MIN <= value <= INT64_MAX:
        if INT64_MAX < value <= UINT64_MAX:
            raise OverflowError("Python int too large to convert to C long")
        raise IndexError(_VALID_INDICES)
    if not -size <= value < size:
        raise IndexError(f"index {value} is out of bounds for axis {axis} with size {size}")
    return value + size if value < 0 else value


def _canonical_vector(array: np.ndarray, axis: int, size: int) -> np.ndarray:
    flat = array.reshape(-1)
    if flat.size:
        low, high = int(flat.min()), int(flat.max())
        if low < -size:
            raise IndexError(f"index {low} is out of bounds for axis {axis} with size {size}")
        if high >= size:
            raise IndexError(f"index {high} is out of bounds for axis {axis} with size {size}")
    coords = flat.astype(np.int64, copy=True)
    if flat.size and low < 0:
        coords[coords < 0] += size
    return coords


def _slice_term(value: slice, size: int) -> SliceTerm:
    start, stop, step = value.indices(size)  # raises like NumPy for a zero step or bad types
    count = len(range(start, stop, step))
    if count <= 1:  # the step does not matter (and may not fit in 64 bits: 2**63)
        return SliceTerm(start if count else 0, 1, count)
    if step > 0:
        return SliceTerm(start, step, count)
    # Plan the positive stride over the same elements, reverse on the output side.
    last = start + step * (count - 1)
    return SliceTerm(last, -step, count, reverse=True)


def _check_mask(mask: np.ndarray, first_axis: int, shape: tuple[int, ...]) -> None:
    for offset, length in enumerate(mask.shape):
        axis = first_axis + offset
        if length != shape[axis] and length != 0:  # NumPy lets an empty mask axis through
            raise IndexError(
                f"boolean index did not match indexed array along axis {axis}; size of axis is "
                f"{shape[axis]} but size of corresponding boolean axis is {length}"
            )


def _identity_view(result: np.ndarray) -> np.ndarray:
    return result


def _plain_selection(key: Any, shape: tuple[int, ...]) -> DirectSelection | None:
    """Python ints and slices only (what a viewer sends every frame): no classification.

    None for anything else; the general path then handles it, errors included.
    """
    items = key if type(key) is tuple else (key,)
    if len(items) > len(shape):
        return None
    terms: list[Term] = []
    result_shape: list[int] = []
    for axis, item in enumerate(items):
        kind = type(item)
        if kind is int:  # not bool, which is an advanced index
            terms.append(IntTerm(_check_int(item, axis, shape[axis])))
        elif kind is slice:
            term = _slice_term(item, shape[axis])
            terms.append(term)
            result_shape.append(term.count)
        else:
            return None
    for size in shape[len(items) :]:
        terms.append(SliceTerm(0, 1, size))
        result_shape.append(size)
    return DirectSelection(tuple(terms), tuple(result_shape), _identity_view, not result_shape)


def normalize(key: Any, shape: tuple[int, ...]) -> Selection:
    """Turn ``key`` into a canonical selection of an array of ``shape``, raising like NumPy."""
    plain = _plain_selection(key, shape)
    if plain is not None:
        return plain
    items = _expand(key, len(shape))
    for item in items:
        if item.kind == "mask":
            _check_mask(item.value, item.first_axis, shape)
    advanced = [i for i in items if i.advanced]
    arrays = [i for i in items if i.kind in ("array", "mask")]
    if not advanced:
        return _basic_selection(items, shape)
    if len(advanced) == 1 and arrays and (arrays[0].kind == "array" or arrays[0].value.ndim == 1):
        return _single_vector_selection(items, shape)
    return _gather_selection(items, shape)


def _basic_selection(items: list[_Item], shape: tuple[int, ...]) -> DirectSelection:
    terms: list[Term] = []
    result_shape: list[int] = []
    new_axis_positions: list[int] = []
    for item in items:
        if item.kind == "ellipsis":
            continue
        if item.kind == "newaxis":
            new_axis_positions.append(len(result_shape))
            result_shape.append(1)
        elif item.kind == "int":
            axis = item.first_axis
            terms.append(IntTerm(_check_int(item.value, axis, shape[axis])))
        else:
            term = _slice_term(item.value, shape[item.first_axis])
            terms.append(term)
            result_shape.append(term.count)
    drop_new_axes = tuple(
        0 if position in new_axis_positions else slice(None)
        for position in range(len(result_shape))
    )

    def orthogonal_view(result: np.ndarray) -> np.ndarray:
        # the trailing Ellipsis keeps a 0-d result a view instead of a scalar
        return result[drop_new_axes + (Ellipsis,)] if new_axis_positions else result

    returns_scalar = not result_shape and not any(i.kind == "ellipsis" for i in items)
    return DirectSelection(tuple(terms), tuple(result_shape), orthogonal_view, returns_scalar)


def _advanced_positions_adjacent(items: list[_Item]) -> bool:
    positions = [p for p, i in enumerate(items) if i.advanced or i.kind == "int"]
    return positions == list(range(positions[0], positions[-1] + 1))


def _single_vector_selection(items: list[_Item], shape: tuple[int, ...]) -> Selection:
    """One integer array (any ndim) or one 1-d mask, plus integers, slices and new axes."""
    terms: list[Term] = []
    labels: list[Any] = []  # result axes: ("new",), ("axis", a) or the vector placeholder
    vector_shape: tuple[int, ...] = ()
    for item in items:
        axis = item.first_axis
        if item.kind == "ellipsis":
            continue
        if item.kind == "newaxis":
            labels.append(("new",))
        elif item.kind == "int":
            terms.append(IntTerm(_check_int(item.value, axis, shape[axis])))
        elif item.kind == "slice":
            term = _slice_term(item.value, shape[axis])
            terms.append(term)
            labels.append(("axis", axis))
        else:
            if item.kind == "mask":
                array = np.flatnonzero(item.value)
            else:
                array = item.value
            vector_shape = array.shape
            terms.append(VectorTerm(_canonical_vector(array, axis, shape[axis])))
            labels.append(("vector",))
    if not _advanced_positions_adjacent(items):
        labels.remove(("vector",))
        labels.insert(0, ("vector",))
    # Expand the placeholder into the vector's own dimensions.
    result_labels: list[Any] = []
    for label in labels:
        if label == ("vector",):
            result_labels.extend(("vector", d) for d in range(len(vector_shape)))
        else:
            result_labels.append(label)
    sizes = {("axis", a): t.count for a, t in enumerate(terms) if isinstance(t, SliceTerm)}
    result_shape = tuple(
        1 if label == ("new",) else vector_shape[label[1]] if label[0] == "vector" else sizes[label]
        for label in result_labels
    )
    orthogonal_labels = [
        ("vector",) if isinstance(t, VectorTerm) else ("axis", a)
        for a, t in enumerate(terms)
        if not isinstance(t, IntTerm)
    ]
    drop_new_axes = tuple(0 if label == ("new",) else slice(None) for label in result_labels)
    kept = [label for label in result_labels if label != ("new",)]
    vector_count = int(np.prod(vector_shape))

    def orthogonal_view(result: np.ndarray) -> np.ndarray | None:
        view = result[drop_new_axes + (Ellipsis,)] if ("new",) in result_labels else result
        # Merge the vector's dimensions (consecutive) into one axis.
        first = kept.index(("vector", 0))
        merged_shape = (
            view.shape[:first] + (vector_count,) + view.shape[first + len(vector_shape) :]
        )
        merged = _reshape_view(view, merged_shape)
        if merged is None:
            return None
        merged_labels = kept[:first] + [("vector",)] + kept[first + len(vector_shape) :]
        order = [merged_labels.index(label) for label in orthogonal_labels]
        return merged.transpose(order)

    return DirectSelection(tuple(terms), result_shape, orthogonal_view)


def _reshape_view(array: np.ndarray, shape: tuple[int, ...]) -> np.ndarray | None:
    """``array`` reshaped without copying, or None where its strides make that impossible."""
    view = array.view()
    try:
        view.shape = shape
    except AttributeError:
        return None
    return view


def _advanced_broadcast_shape(items: list[_Item]) -> tuple[int, ...]:
    """Broadcast shape of all advanced indices; bool scalars count as (1,) or (0,)."""
    shapes: list[tuple[int, ...]] = []
    for item in items:
        if item.kind == "boolscalar":
            shapes.append((int(item.value),))
        elif item.kind == "array":
            shapes.append(item.value.shape)
        elif item.kind == "mask":
            shapes.extend([(int(np.count_nonzero(item.value)),)] * item.value.ndim)
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        shown = " ".join(str(s).replace(" ", "") for s in shapes)
        raise IndexError(
            f"shape mismatch: indexing arrays could not be broadcast together with shapes {shown}"
        ) from None


def _gather_selection(items: list[_Item], shape: tuple[int, ...]) -> GatherSelection:
    # NumPy checks the bounds of index arrays only for the coordinates it uses: none when
    # they broadcast to an empty shape. Then nothing is read and the values do not matter.
    nothing_selected = 0 in _advanced_broadcast_shape(items)
    terms: list[Term] = []
    numpy_index: list[Any] = []
    for item in items:
        axis = item.first_axis
        if item.kind == "ellipsis":
            numpy_index.append(Ellipsis)  # covers no axis here, but keeps the separation
        elif item.kind == "newaxis":
            numpy_index.append(None)
        elif item.kind == "boolscalar":
            numpy_index.append(item.value)
        elif item.kind == "int":
            terms.append(VectorTerm(np.array([_check_int(item.value, axis, shape[axis])])))
            numpy_index.append(0)
        elif item.kind == "slice":
            term = _slice_term(item.value, shape[axis])
            if term.reverse:  # the intermediate runs forwards; reverse it in the NumPy step
                terms.append(SliceTerm(term.start, term.step, term.count))
                numpy_index.append(slice(None, None, -1))
            else:
                terms.append(term)
                numpy_index.append(slice(None))
        else:
            arrays = item.value.nonzero() if item.kind == "mask" else (item.value,)
            for offset, array in enumerate(arrays):
                if nothing_selected:
                    terms.append(VectorTerm(np.zeros(0, dtype=np.int64)))
                    numpy_index.append(np.zeros(array.shape, dtype=np.intp))
                    continue
                coords = _canonical_vector(array, axis + offset, shape[axis + offset])
                unique, positions = np.unique(coords, return_inverse=True)
                terms.append(VectorTerm(unique.astype(np.int64)))
                numpy_index.append(positions.reshape(array.shape).astype(np.intp))
    result_shape = _numpy_result_shape(tuple(numpy_index), [t.count for t in terms])
    return GatherSelection(tuple(terms), result_shape, tuple(numpy_index))


def _numpy_result_shape(index: tuple[Any, ...], sizes: list[int]) -> tuple[int, ...]:
    """NumPy's result shape for ``index`` (canonical: no Ellipsis, masks as integer arrays).

    The broadcast dimensions of the advanced indices (arrays, ints, bool scalars) replace the
    first of them when they are adjacent in the index, and go first otherwise.
    """
    advanced_shapes = []
    labels: list[Any] = []
    axis = 0
    for item in index:
        if item is Ellipsis:
            labels.append("separator")
        elif item is None:
            labels.append(1)
        elif isinstance(item, slice):
            labels.append(len(range(*item.indices(sizes[axis]))))
            axis += 1
        else:
            if isinstance(item, bool):
                advanced_shapes.append((int(item),))
            else:
                advanced_shapes.append(np.shape(item))
                axis += 1
            labels.append("advanced")
    positions = [p for p, label in enumerate(labels) if label == "advanced"]
    broadcast = list(np.broadcast_shapes(*advanced_shapes))
    if positions == list(range(positions[0], positions[-1] + 1)):
        before = [label for label in labels[: positions[0]] if label != "separator"]
        after = [
            label for label in labels[positions[0] :] if label not in ("advanced", "separator")
        ]
        return tuple(before + broadcast + after)
    return tuple(broadcast + [label for label in labels if label not in ("advanced", "separator")])
