"""Large outputs reuse the memory of earlier ones only once nothing refers to it: a read must
never write into memory an array someone holds still shows."""

from __future__ import annotations

import gc
import pickle
import time

import numpy as np
import pytest
from datasets import write_split_dataset

from split_dataset import SplitDataset, output_memory
from split_dataset.output_memory import MIN_BYTES, OutputMemory

SHAPE = (MIN_BYTES // 2 // (256 * 256) + 1, 256, 256)  # just over MIN_BYTES of uint16


@pytest.fixture
def memory():
    return OutputMemory(budget=1 << 30, idle_seconds=3600)


def address(array: np.ndarray) -> int:
    return array.__array_interface__["data"][0]


def test_a_released_output_is_lent_again(memory):
    first = memory.new_output(SHAPE, np.uint16)
    where = address(first)
    del first
    second = memory.new_output(SHAPE, np.uint16)
    assert address(second) == where
    assert second.shape == SHAPE and second.dtype == np.uint16 and second.flags.writeable
    assert second.flags.c_contiguous


@pytest.mark.parametrize(
    "keep",
    [
        lambda a: a[3:5, ::2],  # a slice
        lambda a: a.reshape(-1).view(np.uint8),  # a reshape, another dtype
        lambda a: a.T,
        lambda a: memoryview(a),  # a buffer export
        lambda a: np.frombuffer(a, np.uint16),  # an array over an export
        lambda a: [a],  # the output itself, elsewhere
    ],
    ids=["slice", "reshape-view", "transpose", "memoryview", "frombuffer", "container"],
)
def test_memory_any_array_still_shows_is_never_lent(memory, keep):
    first = memory.new_output(SHAPE, np.uint16)
    first[...] = 7
    held = keep(first)
    where = address(first)
    del first
    gc.collect()
    for _ in range(3):  # new outputs get other memory, and writing them leaves ours alone
        other = memory.new_output(SHAPE, np.uint16)
        assert address(other) != where
        other[...] = 9
    assert (np.asarray(held[0] if isinstance(held, list) else held) != 9).all()
    del held, other
    gc.collect()
    assert address(memory.new_output(SHAPE, np.uint16)) == where  # now it is free


def test_only_outputs_of_at_least_half_a_buffer_borrow_it(memory):
    big = memory.new_output((3 * MIN_BYTES,), np.uint8)
    where = address(big)
    del big
    assert address(memory.new_output((int(1.2 * MIN_BYTES),), np.uint8)) != where  # < half
    assert address(memory.new_output((int(1.6 * MIN_BYTES),), np.uint8)) == where


def test_small_outputs_and_object_dtypes_are_plain_arrays(memory):
    small = memory.new_output((4, 4), np.uint16)
    assert small.flags.owndata
    assert memory.new_output(SHAPE, object).flags.owndata
    assert memory.kept_bytes == 0


def test_idle_buffers_are_bounded_and_released(memory):
    outputs = [memory.new_output(SHAPE, np.uint16) for _ in range(4)]
    nbytes = outputs[0].nbytes
    assert memory.kept_bytes == 4 * nbytes
    del outputs
    gc.collect()
    assert memory.idle_bytes == output_memory.IDLE_BUFFERS * nbytes  # the others went back
    assert memory.release() == output_memory.IDLE_BUFFERS * nbytes
    assert memory.kept_bytes == 0


def test_the_budget_bounds_what_is_kept_idle():
    memory = OutputMemory(budget=3 * MIN_BYTES, idle_seconds=3600)
    first = memory.new_output((3 * MIN_BYTES // 2,), np.uint16)  # the whole budget
    del first
    assert memory.idle_bytes == 3 * MIN_BYTES
    second = memory.new_output((MIN_BYTES // 2,), np.uint16)  # too small to borrow it
    assert memory.idle_bytes == 3 * MIN_BYTES and memory.kept_bytes == 4 * MIN_BYTES
    del second
    assert memory.idle_bytes == MIN_BYTES  # the longest idle went to make room
    assert memory.new_output((4 * MIN_BYTES,), np.uint8).flags.owndata  # never kept: plain


def test_a_loop_holding_the_last_result_takes_turns_between_two_buffers(memory):
    addresses = []
    result = None
    for _ in range(6):
        result = memory.new_output(SHAPE, np.uint16)  # the last one is held meanwhile
        addresses.append(address(result))
    assert len(set(addresses)) == 2 and addresses[0::2] == [addresses[0]] * 3


def test_idle_buffers_go_back_by_themselves():
    memory = OutputMemory(budget=1 << 30, idle_seconds=0.2)
    output = memory.new_output(SHAPE, np.uint16)
    del output
    assert memory.idle_bytes > 0
    deadline = time.monotonic() + 10
    while memory.idle_bytes and time.monotonic() < deadline:
        time.sleep(0.05)
    assert memory.idle_bytes == 0


def test_reads_into_lent_memory_are_exact_and_independent(tmp_path):
    """Reads of one size back to back through the dataset: each result is exact, a result
    kept stays as it was while later reads reuse the memory of the ones let go."""
    array = (
        (np.arange(8 * 4 * 1024 * 1024, dtype=np.uint32) * 2654435761 % 65521)
        .astype(np.uint16)
        .reshape(8, 4, 1024, 1024)
    )
    folder = write_split_dataset(tmp_path / "ds", array, (1, 4, 1024, 1024), (1, 1, 256, 1024))
    kept = []
    with SplitDataset(folder) as ds:
        for repeat in range(3):
            for t in range(0, 8, 4):
                key = (slice(t, t + 4),)
                result = ds[key]
                assert result.nbytes >= MIN_BYTES
                np.testing.assert_array_equal(result, array[key])
                if repeat == 0:
                    kept.append(result[1:, ::3])  # a view keeps its memory out of reuse
        for t, view in zip(range(0, 8, 4), kept):
            np.testing.assert_array_equal(view, array[t : t + 4][1:, ::3])
        np.testing.assert_array_equal(ds[::-1], array[::-1])
        restored = pickle.loads(pickle.dumps(ds[:4]))
        np.testing.assert_array_equal(restored, array[:4])
