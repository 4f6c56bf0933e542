"""Property tests: ``SplitDataset[index]`` behaves exactly like NumPy's ``array[index]``.

Every test draws a small array, splits it into blocks (and HDF5 chunks, with one of the
compressions of ``datasets.COMPRESSIONS``) on disk, then draws several indices for it and checks
the result (values, shape, dtype) or the exception type against NumPy on the in-memory array.
All tests run against both planners through the ``planner`` fixture.

Writing the HDF5 files is the slow part, so the arrays are tiny, several indices are drawn per
written dataset, and written datasets are cached for the session (the "ci" profile is
derandomized, so both planners see the same datasets).
"""

from __future__ import annotations

import math
import warnings
import zlib

import numpy as np
import pytest
from hypothesis import Phase, given, note, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as npst

from datasets import COMPRESSIONS, write_split_dataset
from split_dataset import SplitDataset

DTYPES = ("uint16", "int16", "float32", "float64", "uint8")
INDEX_DTYPES = (np.int8, np.int16, np.int32, np.int64, np.intp, np.uint8, np.uint32, np.uint64)
MAX_ELEMENTS = 3000  # per dataset
MAX_FILES = 24  # per dataset
MAX_CHUNKS = 300  # per dataset, over all files
INDICES_PER_DATASET = 6
# Shrinking (which writes a dataset per step) is the slow part: shrink one bug per test and skip
# the "explain" phase, so a red run stays within the time budget too. The last "Draw" of a
# failure report is the failing index.
ONE_BUG = settings(
    report_multiple_bugs=False,
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
)


# --- datasets ----------------------------------------------------------------------------------


@st.composite
def dataset_specs(draw):
    """(shape, block_shape, chunk_shape or None, compression, dtype, max_open_files, padding),
    small; padding (the 0.4.x overlap of a block's file with the next block) on some axes."""
    ndim = draw(st.integers(1, 5))
    shape = draw(st.lists(st.integers(1, 12), min_size=ndim, max_size=ndim))
    # Shrink the largest axes until the array is tiny (deterministic, so shrinking still works).
    while math.prod(shape) > MAX_ELEMENTS:
        largest = shape.index(max(shape))
        shape[largest] = max(1, shape[largest] // 2)
    # Sometimes a size-0 axis.
    if draw(st.integers(0, 7)) == 0:
        shape[draw(st.integers(0, ndim - 1))] = 0
    block = [draw(st.integers(1, max(1, side))) for side in shape]

    def n_files(block):
        return math.prod(max(1, -(-s // b)) for s, b in zip(shape, block))

    while n_files(block) > MAX_FILES:
        grid = [max(1, -(-s // b)) for s, b in zip(shape, block)]
        axis = grid.index(max(grid))
        block[axis] = min(max(1, shape[axis]), block[axis] * 2)
    chunk = None
    if draw(st.integers(0, 4)):
        chunk = [draw(st.integers(1, b)) for b in block]

        def n_chunks(chunk):
            per_file = math.prod(-(-min(b, max(s, 1)) // c) for s, b, c in zip(shape, block, chunk))
            return per_file * n_files(block)

        while n_chunks(chunk) > MAX_CHUNKS:
            ratio = [-(-b // c) for b, c in zip(block, chunk)]
            axis = ratio.index(max(ratio))
            chunk[axis] = min(block[axis], chunk[axis] * 2)
        chunk = tuple(chunk)
    compression = draw(st.sampled_from(COMPRESSIONS))
    dtype = draw(st.sampled_from(DTYPES))
    # Few open files at once make the reader plan and read the files in batches.
    max_open_files = draw(st.sampled_from([128, 2, 5]))
    padding = tuple(
        draw(st.integers(1, 3)) if b < s and draw(st.integers(0, 2)) == 0 else 0
        for s, b in zip(shape, block)
    )
    return tuple(shape), tuple(block), chunk, compression, dtype, max_open_files, padding


def _make_array(shape: tuple[int, ...], dtype: str) -> np.ndarray:
    rng = np.random.default_rng(zlib.crc32(repr((shape, dtype)).encode()))
    dt = np.dtype(dtype)
    if dt.kind == "f":
        return (rng.standard_normal(shape) * 1000).astype(dt)
    info = np.iinfo(dt)
    return rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dt)


@pytest.fixture(scope="session")
def make_dataset(tmp_path_factory):
    """``make(spec) -> (SplitDataset, array)``; each dataset is written once per session."""
    root = tmp_path_factory.mktemp("indexing_properties")
    written: dict = {}

    def make(spec):
        shape, block, chunk, compression, dtype, max_open_files, padding = spec
        key = spec[:5] + (padding,)
        if key not in written:
            array = _make_array(shape, dtype)
            folder = root / f"ds{len(written):05d}"
            write_split_dataset(folder, array, block, chunk, compression, padding=padding)
            written[key] = (folder, array)
        folder, array = written[key]
        note(
            f"dataset: shape={shape} block={block} chunk={chunk} {compression} {dtype} "
            f"max_open_files={max_open_files} padding={padding}"
        )
        return SplitDataset(folder, max_open_files=max_open_files), array

    return make


# --- comparison --------------------------------------------------------------------------------


def _numpy(array: np.ndarray, index):
    """NumPy's result, or the exception it raises (warnings are errors: NumPy's deprecations)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            return array[index], None
        except Exception as error:  # noqa: BLE001 - any exception type is compared
            return None, error


def assert_like_numpy(ds: SplitDataset, array: np.ndarray, index) -> bool:
    """``ds[index]`` equals ``array[index]`` or raises the same exception type. True if valid."""
    expected, error = _numpy(array, index)
    if error is not None:
        with pytest.raises(type(error)):
            ds[index]
        return False
    got = ds[index]
    # A 0-d ndarray is accepted for NumPy's scalar here; the scalar type has its own case test.
    assert isinstance(got, (np.ndarray, np.generic))
    assert np.shape(got) == np.shape(expected), (np.shape(got), np.shape(expected))
    assert np.asarray(got).dtype == expected.dtype
    assert np.array_equal(got, expected)
    return True


# --- index strategies --------------------------------------------------------------------------


# the shape of an index array (and so of the result's advanced dimensions)
INDEX_SHAPES = npst.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)


def basic_indices(shape):
    return npst.basic_indices(shape, min_dims=0, allow_newaxis=True, allow_ellipsis=True)


def _coordinate(size: int):
    """A valid coordinate along an axis of ``size`` (negative ones too); size 0 has none."""
    return st.integers(-size, size - 1)


def int_vectors(size: int, max_len: int = 8):
    """An integer vector for one axis: list or array of any int dtype, unsorted, repeated."""
    if size == 0:
        return st.sampled_from([[], np.array([], dtype=np.intp), np.zeros(0, dtype=np.uint8)])
    values = st.lists(_coordinate(size), min_size=0, max_size=max_len)

    def as_array(values_and_dtype):
        values, dtype = values_and_dtype
        info = np.iinfo(dtype)
        if values and (min(values) < info.min or max(values) > info.max):
            return np.array(values, dtype=np.int64)
        return np.array(values, dtype=dtype)

    return st.one_of(
        values,  # a plain Python list
        st.tuples(values, st.sampled_from(INDEX_DTYPES)).map(as_array),
        values.map(lambda v: [np.int64(x) for x in v]),  # a list of NumPy scalars
    )


def int_arrays(size: int, index_shape: tuple[int, ...], dtype=np.intp):
    """An integer array of ``index_shape`` with valid coordinates (negative ones too).

    Along a size-0 axis there are none: zeros, out of bounds unless the array is empty.
    """
    if size == 0 or 0 in index_shape:
        return st.just(np.zeros(index_shape, dtype=dtype))
    return npst.arrays(dtype, index_shape, elements=_coordinate(size))


@st.composite
def plain_items(draw, size: int):
    """A basic index item for one axis of ``size``: int (Python or NumPy) or slice."""
    kinds = ["slice"] + (["int", "npint"] if size else [])
    kind = draw(st.sampled_from(kinds))
    if kind == "slice":
        bound = st.one_of(st.none(), st.integers(-size - 3, size + 3))
        step = st.one_of(st.none(), st.integers(-size - 2, size + 2).filter(bool))
        return slice(draw(bound), draw(bound), draw(step))
    value = draw(_coordinate(size))
    if kind == "npint":
        return draw(st.sampled_from([np.int8, np.int32, np.int64, np.intp]))(value)
    return value


@st.composite
def list_indices(draw, shape):
    """One integer vector (list/array) at some axis, basic items around it."""
    ndim = len(shape)
    axis = draw(st.integers(0, ndim - 1))
    before = [draw(st.one_of(st.just(slice(None)), plain_items(s))) for s in shape[:axis]]
    n_after = draw(st.integers(0, ndim - axis - 1))
    after = [draw(plain_items(s)) for s in shape[axis + 1 : axis + 1 + n_after]]
    vector = draw(int_vectors(shape[axis]))
    index = tuple(before) + (vector,) + tuple(after)
    if not before and not after and draw(st.booleans()):
        return vector  # not wrapped in a tuple
    return index


@st.composite
def array_indices(draw, shape):
    """``integer_array_indices`` on a run of consecutive axes, maybe with slices around."""
    ndim = len(shape)
    first = draw(st.integers(0, ndim - 1))
    last = draw(st.integers(first, ndim - 1))
    sub = tuple(shape[first : last + 1])
    if 0 in sub:
        arrays = tuple(np.zeros((0,), dtype=np.intp) for _ in sub)
    else:
        arrays = draw(
            npst.integer_array_indices(
                sub,
                result_shape=INDEX_SHAPES,
                dtype=np.dtype(draw(st.sampled_from([np.int64, np.int32, np.int8])))
                if max(sub) <= 127
                else np.dtype(np.int64),
            )
        )
    before = tuple(draw(plain_items(s)) for s in shape[:first])
    if draw(st.booleans()):
        return (Ellipsis,) + arrays if draw(st.booleans()) else arrays
    return before + arrays


@st.composite
def mask_indices(draw, shape):
    """Boolean masks: full shape, one axis, or a run of axes; arrays or lists; bool scalars."""
    ndim = len(shape)
    kind = draw(st.sampled_from(["full", "axis", "run", "scalar", "empty"]))
    if kind == "full":
        mask = draw(npst.arrays(np.bool_, shape))
        return mask if draw(st.booleans()) else (mask,)
    if kind == "scalar":
        items = [draw(plain_items(s)) for s in shape][: draw(st.integers(0, ndim))]
        position = draw(st.integers(0, len(items)))
        scalar = draw(st.sampled_from([True, False, np.True_, np.False_, np.array(True)]))
        items.insert(position, scalar)
        return tuple(items)
    if kind == "empty":
        # A size-0 mask: NumPy lets a length-0 boolean axis stand for an axis of any length.
        first = draw(st.integers(0, ndim - 1))
        last = draw(st.integers(first, ndim - 1))
        sides = [draw(st.sampled_from([0, s])) for s in shape[first : last + 1]]
        sides[draw(st.integers(0, len(sides) - 1))] = 0
        mask = np.zeros(tuple(sides), dtype=bool)
        if len(sides) == 1 and draw(st.booleans()):
            mask = np.array([], dtype=bool)
        return tuple(draw(plain_items(s)) for s in shape[:first]) + (mask,)
    if kind == "axis":
        axis = draw(st.integers(0, ndim - 1))
        mask = draw(npst.arrays(np.bool_, (shape[axis],)))
        if draw(st.booleans()):
            mask = mask.tolist()
        before = tuple(draw(plain_items(s)) for s in shape[:axis])
        n_after = draw(st.integers(0, ndim - axis - 1))
        after = tuple(draw(plain_items(s)) for s in shape[axis + 1 : axis + 1 + n_after])
        return before + (mask,) + after
    first = draw(st.integers(0, ndim - 1))
    last = draw(st.integers(first, ndim - 1))
    mask = draw(npst.arrays(np.bool_, tuple(shape[first : last + 1])))
    if first and draw(st.booleans()):
        return (Ellipsis, mask) + (slice(None),) * (ndim - 1 - last)
    return tuple(draw(plain_items(s)) for s in shape[:first]) + (mask,)


@st.composite
def mixed_indices(draw, shape):
    """Several advanced indices (arrays, lists, masks, ints) with slices, ints, None, ... between.

    Items are drawn for the first ``covered`` axes (often all of them), then an Ellipsis (which
    may stand for no axis at all), new axes and bool scalars are inserted anywhere: this hits
    NumPy's adjacency rule (advanced dimensions in place vs first) from every side. Array shapes
    are drawn broadcast-compatible most of the time, not always, so broadcast errors are hit too.
    """
    ndim = len(shape)
    broadcast = draw(npst.array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=3))
    covered = ndim if draw(st.booleans()) else draw(st.integers(0, ndim))
    items = []
    axis = 0
    while axis < covered:
        size = shape[axis]
        kind = draw(st.sampled_from(["array", "array", "list", "mask", "slice", "int"]))
        if kind == "slice":
            item = draw(plain_items(size))
            items.append(item if isinstance(item, slice) else slice(None))
        elif kind == "int":
            value = draw(_coordinate(size)) if size else 0  # (out of bounds on a size-0 axis)
            items.append(np.array(value) if draw(st.booleans()) else value)
        elif kind == "list":
            items.append(draw(int_vectors(size, max_len=4)))
        elif kind == "mask":
            mask_axes = draw(st.integers(1, min(2, covered - axis)))
            items.append(draw(npst.arrays(np.bool_, tuple(shape[axis : axis + mask_axes]))))
            axis += mask_axes
            continue
        else:
            # A shape broadcastable to ``broadcast``: a suffix, with some sides set to 1.
            keep = draw(st.integers(0, len(broadcast)))
            own = [1 if draw(st.booleans()) else s for s in broadcast[len(broadcast) - keep :]]
            if draw(st.integers(0, 9)) == 0:  # sometimes not broadcastable
                own = own + [draw(st.integers(2, 4))]
            if 0 in broadcast and 0 not in own and draw(st.integers(0, 4)) == 0:
                # Out of bounds: an error unless another array makes the broadcast empty (NumPy
                # only checks the coordinates it uses).
                items.append(np.full(tuple(own), size + draw(st.integers(0, 3)), dtype=np.intp))
            else:
                items.append(draw(int_arrays(size, tuple(own))))
        axis += 1
    # Items that consume no axis, anywhere.
    if draw(st.booleans()):
        items.insert(draw(st.integers(0, len(items))), Ellipsis)
    for _ in range(draw(st.integers(0, 2))):
        items.insert(draw(st.integers(0, len(items))), None)
    if draw(st.integers(0, 3)) == 0:
        scalar = draw(st.sampled_from([True, False, np.True_]))
        items.insert(draw(st.integers(0, len(items))), scalar)
    if len(items) == 1 and draw(st.booleans()):
        return items[0]
    return tuple(items)


@st.composite
def invalid_indices(draw, shape):
    """Indices NumPy rejects: IndexError, ValueError or TypeError."""
    ndim = len(shape)
    axis = draw(st.integers(0, ndim - 1))
    size = shape[axis]
    lead = (slice(None),) * axis
    kind = draw(
        st.sampled_from(
            [
                "int_oob", "array_oob", "list_oob", "too_many", "too_many_mask", "mask_length",
                "full_mask_shape", "float", "float_list", "float_array", "float_in_tuple",
                "broadcast", "two_ellipsis", "zero_step", "float_slice", "string", "ragged",
                "object",
            ]
        )
    )
    if kind == "int_oob":
        value = draw(st.one_of(st.integers(size, size + 5), st.integers(-size - 5, -size - 1)))
        return lead + (draw(st.sampled_from([int, np.int64, np.int32]))(value),)
    if kind in ("array_oob", "list_oob"):
        good = draw(st.lists(_coordinate(size), max_size=4)) if size else []
        bad = draw(st.one_of(st.integers(size, size + 5), st.integers(-size - 5, -size - 1)))
        values = draw(st.permutations(good + [bad]))
        vector = list(values) if kind == "list_oob" else np.array(values, dtype=np.int64)
        return lead + (vector,)
    if kind == "too_many":
        extra = draw(st.integers(1, 3))
        item = draw(st.sampled_from([slice(None), 0])) if size else slice(None)
        items = [item] * (ndim + extra)
        if draw(st.booleans()):
            items.insert(draw(st.integers(0, len(items))), Ellipsis)
        if draw(st.booleans()):
            items.insert(draw(st.integers(0, len(items))), None)
        return tuple(items)
    if kind == "too_many_mask":
        mask = np.ones(tuple(shape) + (draw(st.integers(1, 3)),), dtype=bool)
        return mask if draw(st.booleans()) else (slice(None),) * draw(st.integers(0, 1)) + (mask,)
    if kind == "mask_length":
        # Not length 0: NumPy accepts a size-0 boolean array along an axis of any length.
        wrong = draw(st.sampled_from([n for n in (size - 1, size + 1, size + 4) if n > 0]))
        mask = draw(npst.arrays(np.bool_, (wrong,)))
        return lead + (mask.tolist() if draw(st.booleans()) and wrong else mask,)
    if kind == "full_mask_shape":
        wrong = list(shape)
        wrong[axis] += draw(st.sampled_from([1, 2]))
        return draw(npst.arrays(np.bool_, tuple(wrong)))
    if kind == "float":
        return lead + (draw(st.sampled_from([0.0, 1.5, -1.0, np.float64(0.0), np.float32(1.0)])),)
    if kind == "float_list":
        return lead + ([0.0, 1.0],)
    if kind == "float_array":
        dtype = draw(st.sampled_from([np.float32, np.float64]))
        return lead + (np.zeros(draw(st.integers(0, 3)), dtype=dtype),)
    if kind == "float_in_tuple":
        return (0.5,) + (slice(None),) * draw(st.integers(0, ndim - 1))
    if kind == "broadcast":
        if ndim < 2 or 0 in shape[:2]:  # too many indices / out of bounds: IndexError too
            return (np.zeros(2, dtype=np.intp), np.zeros(3, dtype=np.intp))
        a = draw(st.integers(2, 4))
        b = draw(st.integers(2, 4).filter(lambda n: n != a))
        first = np.zeros(a, dtype=np.intp)
        second = np.zeros(b, dtype=np.intp)
        between = draw(st.sampled_from([(), (slice(None),)])) if ndim >= 3 else ()
        return (first,) + between + (second,)
    if kind == "two_ellipsis":
        return (Ellipsis, Ellipsis)
    if kind == "zero_step":
        return lead + (slice(None, None, 0),)
    if kind == "float_slice":
        return lead + (slice(draw(st.sampled_from([0.5, 1.0])), None),)
    if kind == "string":
        return lead + (draw(st.sampled_from(["a", b"a", "0"])),)
    if kind == "ragged":
        return lead + ([[0], [0, 0]],)
    return lead + (np.array([0, "a"], dtype=object),)


def valid_indices(shape):
    strategies = [
        basic_indices(shape),
        list_indices(shape),
        mask_indices(shape),
        mixed_indices(shape),
    ]
    if 0 not in shape:
        strategies.append(npst.integer_array_indices(shape, result_shape=INDEX_SHAPES))
    strategies.append(array_indices(shape))
    return st.one_of(strategies)


# --- properties --------------------------------------------------------------------------------


@ONE_BUG
@given(spec=dataset_specs())
def test_whole_array(planner, make_dataset, spec):
    ds, array = make_dataset(spec)
    assert ds.shape == array.shape
    assert ds.dtype == array.dtype
    assert_like_numpy(ds, array, ...)
    assert np.array_equal(np.asarray(ds), array)


@ONE_BUG
@given(spec=dataset_specs(), data=st.data())
def test_basic_indices(planner, make_dataset, spec, data):
    ds, array = make_dataset(spec)
    for _ in range(INDICES_PER_DATASET):
        index = data.draw(basic_indices(array.shape))
        assert_like_numpy(ds, array, index)


@ONE_BUG
@given(spec=dataset_specs(), data=st.data())
def test_integer_array_indices(planner, make_dataset, spec, data):
    ds, array = make_dataset(spec)
    for _ in range(INDICES_PER_DATASET):
        if 0 not in array.shape and data.draw(st.booleans()):
            index = data.draw(npst.integer_array_indices(array.shape, result_shape=INDEX_SHAPES))
        else:
            index = data.draw(array_indices(array.shape))
        assert_like_numpy(ds, array, index)


@ONE_BUG
@given(spec=dataset_specs(), data=st.data())
def test_integer_lists(planner, make_dataset, spec, data):
    ds, array = make_dataset(spec)
    for _ in range(INDICES_PER_DATASET):
        assert_like_numpy(ds, array, data.draw(list_indices(array.shape)))


@ONE_BUG
@given(spec=dataset_specs(), data=st.data())
def test_boolean_masks(planner, make_dataset, spec, data):
    ds, array = make_dataset(spec)
    for _ in range(INDICES_PER_DATASET):
        assert_like_numpy(ds, array, data.draw(mask_indices(array.shape)))


@ONE_BUG
@given(spec=dataset_specs(), data=st.data())
def test_mixed_advanced_indices(planner, make_dataset, spec, data):
    ds, array = make_dataset(spec)
    for _ in range(INDICES_PER_DATASET):
        assert_like_numpy(ds, array, data.draw(mixed_indices(array.shape)))


@ONE_BUG
@given(spec=dataset_specs(), data=st.data())
def test_invalid_indices(planner, make_dataset, spec, data):
    ds, array = make_dataset(spec)
    for _ in range(INDICES_PER_DATASET):
        index = data.draw(invalid_indices(array.shape))
        valid = assert_like_numpy(ds, array, index)
        assert not valid, f"the strategy drew an index NumPy accepts: {index!r}"


# --- read(out=...) -----------------------------------------------------------------------------


def _out_buffer(data, shape: tuple[int, ...], dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """An array of exactly ``shape`` and ``dtype``: contiguous, strided view, transposed, reversed.

    Also returns a mask of the elements of its base array that are not part of it (the gaps of
    the strided view), which a read must leave alone.
    """
    outside = np.zeros(0, dtype=bool)
    kinds = ["contiguous", "fortran", "strided", "transposed", "reversed"]
    kind = data.draw(st.sampled_from(kinds))
    note(f"out buffer: {kind}")
    if kind == "contiguous":
        out = np.empty(shape, dtype)
    elif kind == "fortran":
        out = np.empty(shape, dtype, order="F")
    elif kind == "strided":  # a slice of a bigger array, every other element along every axis
        big = np.empty(tuple(2 * s + 1 for s in shape), dtype)
        inside = tuple(slice(1, None, 2) for _ in shape) + (Ellipsis,)
        out = big[inside]
        outside = np.ones(big.shape, dtype=bool)
        outside[inside] = False
    elif kind == "transposed":
        order = data.draw(st.permutations(range(len(shape))))
        inverse = np.argsort(order)
        out = np.empty(tuple(shape[o] for o in order), dtype).transpose(inverse)
    else:
        out = np.empty(shape, dtype)[tuple(slice(None, None, -1) for _ in shape) + (Ellipsis,)]
    assert out.shape == tuple(shape)
    return out, outside


def _sentinels(dtype: np.dtype) -> tuple:
    """Two fill values: an element the read forgets to write shows up with one of them."""
    dtype = np.dtype(dtype)
    info = np.iinfo(dtype) if dtype.kind in "iu" else np.finfo(dtype)
    return info.max, info.min


@ONE_BUG
@given(spec=dataset_specs(), data=st.data())
def test_read_into_out(planner, make_dataset, spec, data):
    ds, array = make_dataset(spec)
    for _ in range(INDICES_PER_DATASET // 2):
        index = data.draw(valid_indices(array.shape))
        expected, error = _numpy(array, index)
        if error is not None:
            with pytest.raises(type(error)):
                ds.read(index, out=np.empty(0, dtype=array.dtype))
            continue
        expected = np.asarray(expected)
        out, outside = _out_buffer(data, expected.shape, array.dtype)
        for fill in _sentinels(array.dtype):
            if outside.size:
                out.base[...] = fill
            out[...] = fill
            returned = ds.read(index, out=out)
            assert returned is out
            assert np.array_equal(out, expected)
            if outside.size:  # nothing written between the elements of a strided view
                assert np.all(out.base[outside] == fill)


@ONE_BUG
@given(spec=dataset_specs(), data=st.data())
def test_threads_agree(planner, make_dataset, spec, data):
    ds, array = make_dataset(spec)
    for _ in range(INDICES_PER_DATASET // 2):
        index = data.draw(valid_indices(array.shape))
        expected, error = _numpy(array, index)
        if error is not None:
            for threads in (1, 2):
                with pytest.raises(type(error)):
                    ds.read(index, threads=threads)
            continue
        one = ds.read(index, threads=1)
        two = ds.read(index, threads=2)
        assert np.shape(one) == np.shape(two) == np.shape(expected)
        assert np.array_equal(one, expected)
        assert np.array_equal(two, expected)
