"""Which files of a folder are the blocks, in which order: the fast rule for one zero-padded
run of numbers against the general rule that parses every name, on generated listings, and
on real folders."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from split_dataset import SplitDataset, save_to_split_dataset
from split_dataset.discovery import (
    _numbered_with_gaps_filled,
    _one_zero_padded_run,
    numbered_block_names,
)
from split_dataset.errors import BlockFileError, NotASplitDatasetError

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"
NOWHERE = Path("/nonexistent-split-dataset-folder")  # the general rule's lookups find nothing

# names a real folder holds besides the blocks, and names that look like blocks but must not
# pass as one zero-padded run: hidden copies, other widths, other prefixes, other scripts' digits
OTHER_NAMES = [
    "stack_metadata.json",
    "0003.h5.tmp",
    "notes.txt",
    "shifts_sobel.h5",
    "._0002.h5",
    "02.h5",
    "run_0001.h5",
    "\u0660\u0660\u0660\u0661.h5",  # Arabic-Indic digits: int() reads them, string sort does not
    "0012\u0663.h5",
]


@st.composite
def listings(draw):
    prefix = draw(st.sampled_from(["", "a", "run2_", "x-"]))
    width = draw(st.integers(1, 5))
    first = draw(st.integers(0, 10**width - 1))
    count = draw(st.integers(0, min(40, 10**width - first)))
    numbers = list(range(first, first + count))
    if numbers and draw(st.booleans()):  # a gap or two
        for _ in range(min(len(numbers), draw(st.integers(1, 2)))):
            numbers.remove(draw(st.sampled_from(numbers)))
    names = [f"{prefix}{n:0{width}d}.h5" for n in numbers]
    names += draw(st.lists(st.sampled_from(OTHER_NAMES), unique=True, max_size=3))
    draw(st.randoms()).shuffle(names)
    return names, prefix


def general(names, prefix):
    try:
        return _numbered_with_gaps_filled(NOWHERE, names, prefix)
    except (BlockFileError, NotASplitDatasetError) as error:
        return type(error)


@settings(max_examples=500, deadline=None)
@given(listings(), st.booleans())
def test_the_fast_rule_agrees_with_the_general_rule(listing, pass_prefix):
    names, prefix = listing
    fast = _one_zero_padded_run(names, prefix if pass_prefix else None)
    if fast is not None:
        assert fast == general(names, prefix if pass_prefix else None)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 5), st.integers(0, 30), st.integers(1, 60), st.randoms())
def test_one_zero_padded_run_takes_the_fast_rule(width, first, count, rng):
    count = min(count, 10**width - first)
    if count < 1:
        return
    expected = [f"{n:0{width}d}.h5" for n in range(first, first + count)]
    names = [*expected, "stack_metadata.json", "0000.h5.tmp"]
    rng.shuffle(names)
    assert _one_zero_padded_run(names, None) == expected
    assert _one_zero_padded_run(names, "") == expected


def test_digits_of_another_script_do_not_pass_as_ordered():
    """Same width, first and last right, as many names as numbers: only the string order of
    the middle is wrong. The fast rule must hand these to the general rule."""
    arabic = {1: "\u0660\u0660\u0660\u0661", 3: "\u0660\u0660\u0660\u0663"}
    names = ["0000.h5", "0002.h5", f"{arabic[1]}.h5", f"{arabic[3]}.h5"]
    assert _one_zero_padded_run(names, None) is None
    assert general(names, None) == ["0000.h5", f"{arabic[1]}.h5", "0002.h5", f"{arabic[3]}.h5"]


def test_a_real_folder_of_many_blocks_opens_in_number_order(tmp_path):
    array = np.arange(300 * 3 * 4, dtype=np.uint16).reshape(300, 3, 4)
    names = [f"{t:05d}.h5" for t in range(300)]
    save_to_split_dataset(array, tmp_path / "ds", block_size=(1, 3, 4))
    folder = tmp_path / "ds"
    written = sorted(p.name for p in folder.glob("*.h5"))
    assert numbered_block_names(folder) == written  # the writer's own zero padding
    # renumber to five digits in a shuffled order of renames, then read back in order
    order = list(range(300))
    random.Random(1).shuffle(order)
    for t in order:
        (folder / written[t]).rename(folder / names[t])
    assert numbered_block_names(folder) == names
    with SplitDataset(folder) as ds:
        np.testing.assert_array_equal(ds[:], array)


def test_a_files_list_naming_a_missing_block_is_refused(tmp_path):
    folder = tmp_path / "fimpy_extras"
    shutil.copytree(FIXTURES / "fimpy_extras", folder)
    metadata = json.loads((folder / "stack_metadata.json").read_text())
    metadata["files"][1] = "001_registered.h5"  # the numbered files stay without a gap
    (folder / "stack_metadata.json").write_text(json.dumps(metadata))
    with pytest.raises(NotASplitDatasetError, match="missing: 001_registered.h5"):
        SplitDataset(folder)
