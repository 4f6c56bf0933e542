"""Which files of a folder are the blocks, in which order: the compiled scan for one
zero-padded run of numbers against the general rule that parses every name, on generated
folders, and on real datasets."""

from __future__ import annotations

import json
import os
import pickle
import random
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from split_dataset import SplitDataset, save_to_split_dataset
from split_dataset.discovery import _number, _numbered_with_gaps_filled, numbered_block_names
from split_dataset.errors import BlockFileError, NotASplitDatasetError
from split_dataset.folder_listing import NumberedNames, list_folder

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
    "\udcff0001.h5",  # a byte that is not UTF-8 before the digits (surrogate-escaped)
    "é0003.h5",  # a multi-byte character right before the digits
    "x\n0001.h5",  # a newline in the name
]


@st.composite
def listings(draw):
    prefix = draw(st.sampled_from(["", "a", "run2_", "x-", "é_"]))
    width = draw(st.integers(1, 5))
    first = draw(st.integers(0, 10**width - 1))
    count = draw(st.integers(0, min(40, 10**width - first)))
    numbers = list(range(first, first + count))
    if numbers and draw(st.booleans()):  # a gap or two
        for _ in range(min(len(numbers), draw(st.integers(1, 2)))):
            numbers.remove(draw(st.sampled_from(numbers)))
    names = [f"{prefix}{n:0{width}d}.h5" for n in numbers]
    names += draw(st.lists(st.sampled_from(OTHER_NAMES), unique=True, max_size=3))
    return names, prefix


def general(folder, names, prefix):
    try:
        return _numbered_with_gaps_filled(folder, names, prefix)
    except (BlockFileError, NotASplitDatasetError) as error:
        return type(error)


@settings(max_examples=300, deadline=None)
@given(listings(), st.booleans())
# folders of nothing but one odd name, which the draws above seldom make
@example((["._0002.h5"], ""), False)
@example((["\udcff0001.h5"], ""), False)
@example((["é0003.h5"], "é"), True)
@example((["x\n0001.h5"], ""), False)
@example((["\u0660\u0660\u0660\u0661.h5"], ""), False)
@example((["0012\u0663.h5"], ""), False)
@example((["\u06630000.h5", "\u06630001.h5"], ""), False)  # another script's digit, then ours
@example((["0000.h5", "0001.h5", "._0002.h5"], ""), False)
def test_the_compiled_scan_agrees_with_the_general_rule(listing, pass_prefix):
    """On real folders: where the compiled scan recognises a run, the general rule (every name
    parsed from ``os.listdir``) finds the same names in the same order, and every other name
    of the folder is among the scan's ``others``."""
    names, prefix = listing
    asked = prefix if pass_prefix else None
    with tempfile.TemporaryDirectory() as folder:
        for name in names:
            (Path(folder) / name).touch()
        scanned = list_folder(Path(folder), asked)
        listed = os.listdir(folder)
        expected = general(NOWHERE, listed, asked)
        if scanned.run is None:
            assert sorted(scanned.others) == sorted(listed)
            return
        assert list(scanned.run) == expected
        assert scanned.run.first == _number(expected[0])  # what the numbering checks go by
        assert sorted([*scanned.run, *scanned.others]) == sorted(listed)


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 5), st.integers(0, 30), st.integers(1, 60))
def test_the_usual_run_takes_the_compiled_scan(width, first, count):
    count = min(count, 10**width - first)
    if count < 1:
        return
    expected = [f"{n:0{width}d}.h5" for n in range(first, first + count)]
    with tempfile.TemporaryDirectory() as folder:
        for name in [*expected, "stack_metadata.json", "0000.h5.tmp"]:
            (Path(folder) / name).touch()
        for asked in (None, ""):
            scanned = list_folder(Path(folder), asked)
            assert scanned.run == NumberedNames("", width, first, count)
            assert list(scanned.run) == expected
            assert sorted(scanned.others) == ["0000.h5.tmp", "stack_metadata.json"]
        assert list_folder(Path(folder), "a").run is None  # another prefix asked for


def test_digits_of_another_script_do_not_pass_as_ordered(tmp_path):
    """Same width, first and last right, as many names as numbers: only the string order of
    the middle is wrong. The compiled scan must hand these to the general rule."""
    arabic = {1: "\u0660\u0660\u0660\u0661", 3: "\u0660\u0660\u0660\u0663"}
    names = ["0000.h5", "0002.h5", f"{arabic[1]}.h5", f"{arabic[3]}.h5"]
    for name in names:
        (tmp_path / name).touch()
    assert list_folder(tmp_path).run is None
    expected = ["0000.h5", f"{arabic[1]}.h5", "0002.h5", f"{arabic[3]}.h5"]
    assert general(tmp_path, names, None) == expected
    assert numbered_block_names(tmp_path) == expected


def test_numbered_names_behave_as_the_list_of_names():
    names = NumberedNames("run_", 3, 7, 5)
    expected = [f"run_{n:03d}.h5" for n in range(7, 12)]
    assert list(names) == expected and names == expected and len(names) == 5
    assert names[0] == expected[0] and names[-1] == expected[-1]
    assert names[1:3] == NumberedNames("run_", 3, 8, 2) == expected[1:3]
    assert names[::2] == expected[::2]
    assert names[5:] == [] and not names[5:]
    assert names.index("run_009.h5") == 2 and "run_011.h5" in names and "run_012.h5" not in names
    with pytest.raises(IndexError):
        names[5]
    assert NumberedNames.of(expected) == names
    assert NumberedNames.of(expected[:2] + expected[3:]) is None  # a gap
    assert NumberedNames.of(["1.h5", "2.h5", "10.h5"]) is None  # not zero-padded
    assert pickle.loads(pickle.dumps(names)) == names
    assert names[5:] == NumberedNames("other_", 2, 0, 0)  # empty runs are equal...
    assert hash(names[5:]) == hash(NumberedNames("other_", 2, 0, 0))  # ...and hash alike


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


def test_block_files_are_stat_ed_as_os_stat_does(tmp_path):
    """``_listing.stat_identities``, the check of every read for files replaced or grown:
    the identity ``os.stat`` gives, for paths and strings, None for a path that is gone; a
    rewritten file has another identity."""
    from split_dataset._ext._listing import stat_identities
    from split_dataset.file_layout import file_identity

    files = [tmp_path / f"{i:04d}.h5" for i in range(3)]
    for i, path in enumerate(files):
        path.write_bytes(b"x" * (i + 1))
    paths = [files[0], str(files[1]), files[2], tmp_path / "gone.h5"]
    found = stat_identities(paths)
    assert found[:3] == [file_identity(os.stat(path)) for path in paths[:3]]
    assert found[3] is None
    replacement = tmp_path / "new"
    replacement.write_bytes(b"yy")
    replacement.replace(files[1])
    assert stat_identities([files[1]]) == [file_identity(os.stat(files[1]))] != [found[1]]
    assert stat_identities([]) == []


def test_block_files_of_several_folders_are_stat_ed_each_in_its_own(tmp_path, monkeypatch):
    """Paths are stat-ed relative to their folder, opened once for a run of paths in it:
    runs and lone paths, folders whose names share a prefix, bytes, missing files, a name
    relative to the working folder and one at the root each get their own file's identity."""
    from split_dataset._ext._listing import stat_identities
    from split_dataset.file_layout import file_identity

    folders = [tmp_path / "a", tmp_path / "ab", tmp_path / "a" / "b"]
    for size, folder in enumerate(folders, start=1):
        folder.mkdir()
        (folder / "0000.h5").write_bytes(b"x" * size)
    monkeypatch.chdir(folders[1])
    paths = [
        folders[0] / "0000.h5",  # alone in its folder: stat-ed whole
        folders[1] / "0000.h5",
        os.fsencode(folders[0] / "0000.h5"),  # a run of three in one folder
        folders[0] / "0000.h5",
        folders[0] / "gone.h5",
        folders[2] / "0000.h5",
        "0000.h5",
        folders[2] / "0000.h5",
        folders[2] / "gone.h5",
        "/",
        folders[0] / "0000.h5",
    ]
    expected = [file_identity(os.stat(path)) if os.path.exists(path) else None for path in paths]
    assert stat_identities(paths) == expected
    assert len({expected[0], expected[1], expected[5]}) == 3
