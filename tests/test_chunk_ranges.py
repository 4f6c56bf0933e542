"""The byte range of every chunk of a C-order array (reader's virtual chunks, CRCs of
contiguous blocks, the writer's row bands) against NumPy slicing."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from split_dataset.chunk_ranges import chunk_byte_ranges, chunks_are_byte_ranges


@st.composite
def shapes_and_chunks(draw):
    shape = draw(st.lists(st.integers(1, 9), min_size=1, max_size=4))
    chunk = [draw(st.integers(1, s)) for s in shape]
    return tuple(shape), tuple(chunk)


@settings(max_examples=300, deadline=None)
@given(shapes_and_chunks())
def test_byte_ranges_are_the_numpy_chunks(shape_and_chunk):
    shape, chunk = shape_and_chunk
    array = np.arange(int(np.prod(shape)), dtype=np.uint16).reshape(shape)
    grid = [-(-s // c) for s, c in zip(shape, chunk)]
    regions = [
        array[tuple(slice(i * c, (i + 1) * c) for i, c in zip(index, chunk))]
        for index in np.ndindex(*grid)
    ]
    one_range_each = all(
        region.flags.c_contiguous and (region.size == 0 or np.all(np.diff(region.reshape(-1)) == 1))
        for region in regions
    )
    assert chunks_are_byte_ranges(shape, chunk) == one_range_each
    if not one_range_each:
        return
    flat = array.reshape(-1).view(np.uint8)
    origins, starts, lengths = chunk_byte_ranges(shape, chunk, array.itemsize)
    assert len(origins) == len(regions)
    for index, origin, start, length, region in zip(
        np.ndindex(*grid), origins, starts, lengths, regions
    ):
        assert tuple(origin) == tuple(i * c for i, c in zip(index, chunk))
        assert flat[start : start + length].tobytes() == region.tobytes()
