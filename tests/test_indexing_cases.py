"""Table-driven indexing corner cases, against NumPy, on generated data and every real fixture.

Each case is a function ``(shape, block_shape) -> index`` so the same corner (a block boundary,
the partial last block, a step longer than a block...) is placed correctly on every dataset:
a generated 4-D uint16 dataset written with several compressions, and every format fixture of
``fixture_manifest()``. Each row also says whether NumPy accepts the index or which exception
it raises, so a row cannot silently test something else. Everything runs under both planners.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from format_fixtures import FIXTURES, fixture_manifest
from datasets import write_split_dataset
from split_dataset import IncompleteDatasetWarning, SplitDataset

GENERATED_SHAPE = (13, 5, 37, 21)
GENERATED_BLOCK = (4, 2, 16, 21)
GENERATED_CHUNK = (1, 1, 8, 21)
GENERATED_COMPRESSIONS = ("blosc", "blosc:zstd", "zlib", "raw", "contiguous", "lzf")
# Fixtures whose metadata announce more than the files hold: opening them warns.
STOPPED_EARLY = {"sashimi_stopped"}

SOURCES = [f"generated-{c}" for c in GENERATED_COMPRESSIONS] + sorted(fixture_manifest())


def _generated_array() -> np.ndarray:
    # 50505 elements: every uint16 value is distinct, so a misplaced element cannot hide.
    return np.arange(np.prod(GENERATED_SHAPE), dtype=np.uint16).reshape(GENERATED_SHAPE)


def _open_fixture(name: str) -> SplitDataset:
    if name in STOPPED_EARLY:
        with pytest.warns(IncompleteDatasetWarning):
            return SplitDataset(FIXTURES / name)
    with warnings.catch_warnings():
        warnings.simplefilter("error", IncompleteDatasetWarning)
        return SplitDataset(FIXTURES / name)


@pytest.fixture(scope="module")
def open_source(tmp_path_factory):
    """``open_source(source) -> (SplitDataset, array)``, each opened once per module."""
    root = tmp_path_factory.mktemp("indexing_cases")
    opened: dict[str, tuple[SplitDataset, np.ndarray]] = {}

    def get(source: str):
        if source not in opened:
            if source.startswith("generated-"):
                compression = source.split("-", 1)[1]
                array = _generated_array()
                folder = root / compression.replace(":", "_")
                write_split_dataset(folder, array, GENERATED_BLOCK, GENERATED_CHUNK, compression)
                ds = SplitDataset(folder)
            else:
                ds = _open_fixture(source)
                array = np.load(FIXTURES / f"{source}.npy")
            assert ds.shape == array.shape and ds.dtype == array.dtype
            opened[source] = (ds, array)
        return opened[source]

    return get


def assert_like_numpy(ds: SplitDataset, array: np.ndarray, index) -> None:
    try:
        expected = array[index]
    except Exception as error:  # noqa: BLE001 - the type is what is compared
        with pytest.raises(type(error)):
            ds[index]
        return
    got = ds[index]
    assert np.shape(got) == np.shape(expected)
    assert np.asarray(got).dtype == expected.dtype
    assert np.array_equal(got, expected)


# --- the table ---------------------------------------------------------------------------------
# (id, index(shape, block), None if NumPy accepts it else the exception type NumPy raises)


def _unsorted_repeated(s, b, axis) -> list[int]:
    """Unsorted, repeated, negative coordinates spanning the first, second and last block."""
    n, b = s[axis], min(b[axis], s[axis] - 1)  # the axis may be a single block
    return [n - 1, 0, b, b, 1, -1, b - 1, 0, -n]


def _last_block(s, b, axis) -> int:
    """The first coordinate of the last (often partial) block along ``axis``."""
    return (s[axis] - 1) // b[axis] * b[axis]


def _boundary(s, b, axis=0) -> int:
    """The first coordinate of the second block along ``axis`` (or the last one)."""
    return min(b[axis], s[axis] - 1)


def _apart(s, first, second):
    """``first`` and ``second`` as advanced indices of axes 0 and 1, NOT adjacent in the index.

    A slice separates them on 3-D and more, a new axis on 2-D.
    """
    return (first, slice(None), second) if len(s) > 2 else (first, None, second)


def _adjacent(s, first, second):
    """``first`` and ``second`` on the last two axes, next to each other in the index."""
    return (slice(None),) * (len(s) - 2) + (first, second) if len(s) > 2 else (first, second)


def _full_mask(shape):
    return (np.arange(int(np.prod(shape))).reshape(shape) % 7) == 3


CASES = [
    # slices
    ("empty_slice", lambda s, b: slice(2, 2), None),
    ("empty_slice_stop_before_start", lambda s, b: (slice(None), slice(3, 1)), None),
    ("empty_slice_reversed", lambda s, b: slice(1, 3, -1), None),
    ("step_longer_than_block", lambda s, b: slice(None, None, b[0] + 1), None),
    ("step_longer_than_block_inner", lambda s, b: (..., slice(1, None, b[-1] + 2)), None),
    ("on_block_boundary", lambda s, b: min(b[0], s[0] - 1), None),
    ("before_block_boundary", lambda s, b: b[0] - 1, None),
    ("slice_across_boundary", lambda s, b: slice(b[0] - 1, b[0] + 1), None),
    ("inner_on_block_boundary", lambda s, b: (slice(None), min(b[1], s[1] - 1)), None),
    ("partial_last_block", lambda s, b: slice(_last_block(s, b, 0), None), None),
    ("partial_last_block_inner", lambda s, b: (..., slice(_last_block(s, b, -1), None)), None),
    ("reversed", lambda s, b: slice(None, None, -1), None),
    ("negative_step_across_blocks", lambda s, b: slice(-2, None, -(b[0] + 1)), None),
    ("negative_step_inner", lambda s, b: (slice(None), ..., slice(None, None, -3)), None),
    ("negative_step_around_boundary", lambda s, b: slice(b[0] + 1, max(b[0] - 3, 0), -1), None),
    ("slice_beyond_end", lambda s, b: slice(s[0] - 2, s[0] + 50), None),
    # integers
    ("last", lambda s, b: -1, None),
    ("int_drops_axis", lambda s, b: 3, None),
    ("int_drops_inner_axis", lambda s, b: (slice(None), 1), None),
    ("all_ints", lambda s, b: tuple(n - 1 for n in s), None),
    ("numpy_int_scalars", lambda s, b: (np.int64(2), np.uint8(1)), None),
    ("numpy_negative_int", lambda s, b: np.int32(-2), None),
    ("zero_d_arrays", lambda s, b: (np.array(1), np.array(-1)), None),
    # Ellipsis and new axes
    ("ellipsis_middle", lambda s, b: (1, ..., 2), None),
    ("ellipsis_middle_slices", lambda s, b: (slice(None, None, 2), ..., slice(-3, None)), None),
    ("ellipsis_alone", lambda s, b: ..., None),
    ("empty_tuple", lambda s, b: (), None),
    ("none_first", lambda s, b: None, None),
    ("none_several_places", lambda s, b: (None, 0, None, ..., None), None),
    ("none_between_slices", lambda s, b: (slice(1, 3), None, 1, None), None),
    ("none_with_all_ints", lambda s, b: (None,) + tuple(0 for _ in s) + (None,), None),
    # vectors
    ("list_vector", lambda s, b: [2, 0], None),
    ("empty_list", lambda s, b: [], None),
    ("unsorted_repeated_vector", lambda s, b: _unsorted_repeated(s, b, 0), None),
    ("unsorted_repeated_inner", lambda s, b: (slice(None, 2), _unsorted_repeated(s, b, 1)), None),
    ("unsorted_repeated_last", lambda s, b: (..., np.int16(_unsorted_repeated(s, b, -1))), None),
    ("vector_with_int_after", lambda s, b: (_unsorted_repeated(s, b, 0), 1), None),
    ("2d_int_array", lambda s, b: np.array([[0, -1], [_boundary(s, b), 1], [-1, 0]]), None),
    ("2d_int_array_inner", lambda s, b: (slice(1, 3), ..., [[0, -1, 2], [2, 2, 0]]), None),
    # several advanced indices: NumPy's broadcasting and axis placement
    ("two_advanced_separated_by_slice", lambda s, b: _apart(s, [0, -1, 1], [1, 0, 1]), None),
    ("two_advanced_adjacent", lambda s, b: _adjacent(s, [1, 0, 1], [-1, 2, 0]), None),
    ("advanced_broadcast", lambda s, b: (np.array([[0], [_boundary(s, b)], [-1]]), [1, 0]), None),
    ("int_and_vector_separated", lambda s, b: _apart(s, 0, [1, 0, 1]), None),
    ("vector_and_int_separated", lambda s, b: _apart(s, [2, 0, 2], -1), None),
    (
        "advanced_separated_by_empty_ellipsis",
        lambda s, b: (slice(None),) * (len(s) - 2) + ([1, 0, 1], Ellipsis, [2, 2, 0]),
        None,
    ),
    ("vector_and_none_separated", lambda s, b: (None, [1, 0], None, [0, 1]), None),
    # NumPy only checks the coordinates it uses: none, the broadcast shape being (0,)
    ("oob_vector_in_empty_broadcast", lambda s, b: (np.zeros(0, int), np.array([s[1] + 5])), None),
    # boolean masks
    ("full_mask", lambda s, b: _full_mask(s), None),
    ("mask_axis0", lambda s, b: np.arange(s[0]) % 3 != 1, None),
    ("mask_inner_list", lambda s, b: (slice(None), [i % 2 == 0 for i in range(s[1])]), None),
    ("mask_leading_axes", lambda s, b: _full_mask(s[:2]), None),
    ("mask_after_ellipsis", lambda s, b: (..., np.arange(s[-1]) % 4 == 0), None),
    ("mask_and_vector", lambda s, b: _apart(s, np.arange(s[0]) < 3, [0, 1, 0]), None),
    ("all_false_mask", lambda s, b: np.zeros(s[0], bool), None),
    ("empty_mask", lambda s, b: np.zeros(0, bool), None),
    ("bool_scalar_true", lambda s, b: True, None),
    ("bool_scalar_false", lambda s, b: (False, ...), None),
    ("bool_scalar_with_vector", lambda s, b: (0, True, [1, 0]), None),
    # invalid
    ("too_many_indices", lambda s, b: (0,) * (len(s) + 1), IndexError),
    ("too_many_with_ellipsis", lambda s, b: (..., 0) + (slice(None),) * len(s), IndexError),
    ("two_ellipses", lambda s, b: (..., 0, ...), IndexError),
    ("wrong_length_mask", lambda s, b: np.ones(s[0] + 1, bool), IndexError),
    ("wrong_length_inner_mask", lambda s, b: (slice(None), np.ones(s[1] - 1, bool)), IndexError),
    ("mask_too_many_dims", lambda s, b: np.ones(s + (2,), bool), IndexError),
    ("oob_int", lambda s, b: s[0], IndexError),
    ("oob_negative_int", lambda s, b: -s[0] - 1, IndexError),
    ("oob_inner_int", lambda s, b: (0, s[1]), IndexError),
    ("oob_vector", lambda s, b: [0, s[0]], IndexError),
    ("oob_negative_vector", lambda s, b: (slice(None), [1, -s[1] - 1]), IndexError),
    ("broadcast_mismatch", lambda s, b: _apart(s, [0, 1], [0, 1, 0]), IndexError),
    ("broadcast_mismatch_adjacent", lambda s, b: ([0, 1], [0, 1, 0]), IndexError),
    ("float_int", lambda s, b: 1.0, IndexError),
    ("float_vector", lambda s, b: np.array([0.0, 1.0]), IndexError),
    ("float_list", lambda s, b: [0.5], IndexError),
    ("string", lambda s, b: "0", IndexError),
    ("zero_step", lambda s, b: slice(None, None, 0), ValueError),
    ("float_slice_bound", lambda s, b: slice(0.5, None), TypeError),
    ("ragged_list", lambda s, b: [[0], [0, 1]], ValueError),
]


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize(
    "make_index, numpy_raises", [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_case(planner, open_source, source, make_index, numpy_raises):
    ds, array = open_source(source)
    index = make_index(array.shape, tuple(ds.shape_block))
    if numpy_raises is None:  # the table itself is right about NumPy
        array[index]
    else:
        with pytest.raises(numpy_raises):
            array[index]
    assert_like_numpy(ds, array, index)


# --- whole-array protocols -----------------------------------------------------------------------


@pytest.mark.parametrize("source", SOURCES)
def test_asarray_and_len(planner, open_source, source):
    ds, array = open_source(source)
    whole = np.asarray(ds)
    assert whole.shape == array.shape and whole.dtype == array.dtype
    assert np.array_equal(whole, array)
    assert np.array_equal(np.asarray(ds, dtype=np.float64), array.astype(np.float64))
    assert len(ds) == len(array)


@pytest.mark.parametrize("source", SOURCES)
def test_full_integer_index_returns_numpy_scalar(planner, open_source, source):
    """NumPy returns a scalar (np.generic), not a 0-d array, for an integer on every axis."""
    ds, array = open_source(source)
    index = tuple(n // 2 for n in array.shape)
    got, expected = ds[index], array[index]
    assert type(got) is type(expected)
    assert got == expected


# --- read(out=...) -----------------------------------------------------------------------------


@pytest.mark.parametrize("source", SOURCES)
def test_out_reused_for_playback(planner, open_source, source):
    """One buffer for every frame, like a viewer playing the first axis."""
    ds, array = open_source(source)
    frame = np.empty(array.shape[1:], dtype=array.dtype)
    for t in range(array.shape[0]):
        returned = ds.read(t, out=frame)
        assert returned is frame
        assert np.array_equal(frame, array[t])
    plane = np.empty(array.shape[2:], dtype=array.dtype)
    for t in range(array.shape[0] - 1, -1, -1):  # backwards, one plane of each time point
        assert ds.read((t, -1), out=plane) is plane
        assert np.array_equal(plane, array[t, -1])


OUT_INDICES = [
    ("basic", lambda s, b: (slice(1, None, 2), ..., slice(None, None, -1))),
    ("with_new_axis", lambda s, b: (None, slice(b[0] - 1, b[0] + 2), 0)),
    ("vector", lambda s, b: (slice(None), [1, 0, 1])),
    ("2d_vector", lambda s, b: np.array([[0, -1], [_boundary(s, b), 1]])),
    ("advanced_separated", lambda s, b: _apart(s, [0, -1, 1], [1, 0, 1])),
    ("mask", lambda s, b: _full_mask(s[:2])),
]


def _strided_slice(shape, dtype):
    """Every other element of a bigger array, starting at 2: gaps the read must not touch."""
    base = np.zeros(tuple(2 * n + 3 for n in shape), dtype)
    inside = tuple(slice(2, 2 + 2 * n, 2) for n in shape) + (Ellipsis,)
    outside = np.ones(base.shape, bool)
    outside[inside] = False
    return base[inside], base, outside


def _whole(make):
    def view(shape, dtype):
        out = make(shape, dtype)
        base = out if out.base is None else out.base
        return out, base, np.zeros(base.shape, bool)

    return view


def _reversed(shape, dtype):
    return np.zeros(shape, dtype)[(slice(None, None, -1),) * len(shape) + (...,)]


OUT_VIEWS = [
    ("strided_slice", _strided_slice),
    ("transposed", _whole(lambda shape, dt: np.zeros(shape[::-1], dt).T)),
    ("reversed", _whole(_reversed)),
    ("fortran", _whole(lambda shape, dt: np.zeros(shape, dt, order="F"))),
]


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("make_view", [v[1] for v in OUT_VIEWS], ids=[v[0] for v in OUT_VIEWS])
@pytest.mark.parametrize("make_index", [c[1] for c in OUT_INDICES], ids=[c[0] for c in OUT_INDICES])
def test_out_non_contiguous_view(planner, open_source, source, make_view, make_index):
    ds, array = open_source(source)
    index = make_index(array.shape, tuple(ds.shape_block))
    expected = array[index]
    out, base, outside = make_view(expected.shape, array.dtype)
    assert out.shape == expected.shape
    info = np.iinfo(array.dtype) if array.dtype.kind in "iu" else np.finfo(array.dtype)
    for sentinel in (info.max, info.min):  # an element left unwritten shows with one of them
        base[...] = sentinel
        returned = ds.read(index, out=out)
        assert returned is out
        assert np.array_equal(out, expected)
        assert np.all(base[outside] == sentinel)  # nothing written between the view's elements


def test_out_wrong_shape(planner, open_source):
    ds, array = open_source("generated-blosc")
    with pytest.raises(ValueError):
        ds.read(0, out=np.empty(array.shape[1:-1] + (array.shape[-1] + 1,), array.dtype))
    with pytest.raises(ValueError):  # same size, other shape
        ds.read(0, out=np.empty((int(np.prod(array.shape[1:])),), array.dtype))
    with pytest.raises(ValueError):  # a missing new axis
        ds.read((None, 0), out=np.empty(array.shape[1:], array.dtype))


def test_out_wrong_dtype(planner, open_source):
    ds, array = open_source("generated-blosc")
    for dtype in (np.int16, np.uint32, np.float32):
        with pytest.raises(ValueError):
            ds.read(0, out=np.empty(array.shape[1:], dtype))


def test_out_read_only(planner, open_source):
    ds, array = open_source("generated-blosc")
    out = np.zeros(array.shape[1:], array.dtype)
    out.flags.writeable = False
    with pytest.raises(ValueError):
        ds.read(0, out=out)
    assert not out.any()
