"""Writers never destroy data: not the source they read, not a dataset they were not told to
replace, not the old dataset while replacing it; killed or out of disk, what they finished
stays readable and the rest can be finished."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from save_kill_child import BLOCK, SHAPE, expected

from split_dataset import (
    BlockWriteError,
    DestinationError,
    EmptySplitDataset,
    IncompleteDatasetWarning,
    NotASplitDatasetError,
    SplitDataset,
    SplitDatasetError,
    SplitDatasetWriter,
    save_to_split_dataset,
)
from split_dataset.tools.cli import main as command_line

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def open_quietly(folder: Path) -> SplitDataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IncompleteDatasetWarning)
        return SplitDataset(folder)


@pytest.fixture
def recording(tmp_path):
    data = expected(old=True)
    ds = save_to_split_dataset(data, tmp_path, block_size=BLOCK, prefix="rec")
    return ds.root, data


# --- 8. sources and existing datasets are never destroyed ------------------------------------


@pytest.mark.parametrize("destination", ["rec", "rec/inner", "."], ids=["itself", "inside", "around"])
def test_convert_never_writes_over_its_source(recording, destination, capsys):
    folder, data = recording
    before = snapshot(folder)
    target = folder.parent / destination
    assert command_line(["convert", str(folder), str(target), "--overwrite"]) == 1
    assert "source" in capsys.readouterr().err
    assert snapshot(folder) == before
    np.testing.assert_array_equal(SplitDataset(folder)[...], data)


def test_saving_a_dataset_onto_itself_is_refused(recording):
    folder, data = recording
    before = snapshot(folder)
    with pytest.raises(DestinationError, match="source"):
        save_to_split_dataset(SplitDataset(folder), folder.parent, prefix=folder.name,
                              overwrite=True)
    assert snapshot(folder) == before


def test_saving_into_a_dataset_needs_overwrite_which_replaces_it_whole(recording):
    folder, old = recording
    (folder / "notes.txt").write_text("the user's")
    before = snapshot(folder)
    new = expected()[:10]
    with pytest.raises(DestinationError, match=r"overwrite=True \(command line: --overwrite\)"):
        save_to_split_dataset(new, folder.parent, block_size=(4, 2, 40, 32), prefix=folder.name)
    assert snapshot(folder) == before  # nothing written, nothing removed
    ds = save_to_split_dataset(new, folder.parent, block_size=(4, 2, 40, 32),
                               prefix=folder.name, overwrite=True)
    assert ds.root == folder
    np.testing.assert_array_equal(SplitDataset(folder)[...], new)
    assert sorted(p.name for p in folder.iterdir()) == [
        "0000.h5", "0001.h5", "0002.h5", "notes.txt", "stack_metadata.json"]
    assert (folder / "notes.txt").read_text() == "the user's"
    assert sorted(p.name for p in folder.parent.iterdir()) == ["rec"]  # nothing left aside


def test_an_empty_split_dataset_replaces_a_dataset_only_when_finalized(recording):
    folder, old = recording
    with pytest.raises(DestinationError, match="overwrite"):
        EmptySplitDataset(folder.parent, folder.name, shape_full=SHAPE, shape_block=BLOCK)
    target = EmptySplitDataset(folder.parent, folder.name, shape_full=SHAPE, shape_block=BLOCK,
                               overwrite=True)
    new = expected()
    for n, (_, slices) in enumerate(target.slices()):
        target.save_block_data(n, new[slices])
        np.testing.assert_array_equal(SplitDataset(folder)[...], old)  # the old one, whole
    np.testing.assert_array_equal(target.finalize()[...], new)
    np.testing.assert_array_equal(SplitDataset(folder)[...], new)


def test_finalize_refuses_while_blocks_are_missing(tmp_path):
    target = EmptySplitDataset(tmp_path, "ds", shape_full=SHAPE, shape_block=BLOCK)
    target.save_block_data(0, expected()[:2])
    with pytest.raises(BlockWriteError, match=r"never written"):
        target.finalize()
    assert target.missing_blocks() == list(range(1, 12))


def test_the_streaming_writer_replaces_a_dataset_only_when_told(recording):
    folder, old = recording
    with pytest.raises(DestinationError):
        SplitDatasetWriter(folder, SHAPE[1:], np.uint16, 2)
    np.testing.assert_array_equal(SplitDataset(folder)[...], old)


# --- 9. killed writers ----------------------------------------------------------------------

KILL_RUNS_PER_MODE = 8


def _writing_child(mode: str, folder: Path) -> subprocess.Popen:
    """A writing child, ready and told to go."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(TESTS), env.get("PYTHONPATH", "")])
    child = subprocess.Popen([sys.executable, str(TESTS / "save_kill_child.py"), mode, str(folder)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    assert child.stdout.readline().strip() == "ready"
    child.stdin.write("go\n")
    child.stdin.flush()
    return child


def run_and_kill(mode: str, folder: Path, delay: float, after_first_block: bool = False) -> bool:
    """Start a writing child, kill it ``delay`` s after it starts writing (or after its first
    block file appears); True if it finished before that."""
    child = _writing_child(mode, folder)
    if after_first_block:
        _wait_for_a_block_file(folder, child)
    time.sleep(delay)
    child.send_signal(signal.SIGKILL)
    output = child.communicate()[0]
    return "done" in output


def _wait_for_a_block_file(folder: Path, child: subprocess.Popen) -> None:
    while child.poll() is None and not any(folder.glob("*.h5*")):
        time.sleep(0.0005)


def kill_delays(mode: str, scratch: Path, after_first_block: bool = False) -> list[float]:
    """Delays spread over the time one uninterrupted write takes here and now, from its
    start or from its first block file (fsyncs and compression speeds differ between
    machines and runs, so a fixed range may miss the writing)."""
    folder = scratch / "timed-99"  # blocks mode: "-N" seeds its order
    child = _writing_child(mode, folder)
    if after_first_block:
        _wait_for_a_block_file(folder, child)
    started = time.perf_counter()
    assert "done" in child.communicate()[0]
    duration = time.perf_counter() - started
    rng = np.random.default_rng(0)
    return [duration * rng.uniform(0.0, 1.1) for _ in range(KILL_RUNS_PER_MODE)]


def check_interrupted(folder: Path, truth: np.ndarray, finished: bool) -> str:
    """A killed write left nothing, or a dataset that opens with a correct prefix."""
    if not folder.is_dir() or not any(folder.glob("*stack_metadata.json")):
        assert not finished
        if folder.is_dir():
            with pytest.raises(NotASplitDatasetError):
                SplitDataset(folder)
        return "nothing yet"
    try:
        ds = open_quietly(folder)
    except SplitDatasetError as error:  # blocks written out of order: a gap, said clearly
        assert "interrupted" in str(error) and not finished
        return "gap"
    np.testing.assert_array_equal(ds[...], truth[: ds.shape[0]])
    if finished:
        assert ds.shape == truth.shape and "incomplete" not in ds.metadata.extra
    return "complete" if ds.shape == truth.shape else "prefix"


def finish(mode: str, folder: Path, truth: np.ndarray) -> None:
    """What a user does after the crash: resume, and the dataset is whole."""
    if mode == "blocks":
        target = EmptySplitDataset(folder.parent, folder.name, shape_full=SHAPE,
                                   shape_block=BLOCK, resume=True)
        slices = dict(enumerate(s for _, s in target.slices()))
        for n in target.missing_blocks():
            target.save_block_data(n, truth[slices[n]])
        target.finalize()
    elif mode == "convert":
        source = folder.parent / "source.npy"
        assert command_line(["convert", str(source), str(folder), "--frames-per-file", "2",
                             "--resume"]) == 0
    else:
        save_to_split_dataset(truth, folder.parent, block_size=BLOCK, prefix=folder.name,
                              resume=True)
    np.testing.assert_array_equal(SplitDataset(folder)[...], truth)


@pytest.mark.parametrize("mode", ["save", "blocks", "convert"])
def test_a_killed_whole_array_write_opens_with_its_blocks_and_resumes(tmp_path, mode):
    truth = expected()
    np.save(tmp_path / "source.npy", truth)
    outcomes = []
    for run, delay in enumerate(kill_delays(mode, tmp_path, after_first_block=True)):
        folder = tmp_path / f"run-{run}"
        finished = run_and_kill(mode, folder, delay, after_first_block=True)
        outcome = check_interrupted(folder, truth, finished)
        outcomes.append(outcome)
        if outcome in ("prefix", "gap"):
            finish(mode, folder, truth)
    assert any(o in ("prefix", "gap") for o in outcomes), outcomes  # some runs were mid-write


def test_a_killed_overwrite_leaves_the_old_dataset_or_the_new_one_never_a_mix(tmp_path):
    old, new = expected(old=True), expected()
    outcomes = []
    save_to_split_dataset(old, tmp_path, block_size=BLOCK, prefix="timed-99")
    for run, delay in enumerate(kill_delays("overwrite", tmp_path)):
        folder = tmp_path / f"run-{run}"
        save_to_split_dataset(old, tmp_path, block_size=BLOCK, prefix=folder.name)
        finished = run_and_kill("overwrite", folder, delay)
        data = SplitDataset(folder)[...]  # no warning: always a complete dataset
        if np.array_equal(data, new):
            outcomes.append("new")
        else:
            assert not finished
            np.testing.assert_array_equal(data, old)
            outcomes.append("old")
    assert "old" in outcomes, outcomes
    # a later overwrite cleans what a killed one left beside the folder
    save_to_split_dataset(new, tmp_path, block_size=BLOCK, prefix="run-0", overwrite=True)
    assert not list(tmp_path.glob(".run-0.writing-*"))


# --- 9. out of disk ---------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path):
    """A 1.5 MiB tmpfs: writes run out of space midway (needs root, as in CI)."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1536k", "tmpfs", str(mount_point)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.fail(f"cannot mount a small tmpfs for the disk-full tests: {result.stderr}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def noise(t: int) -> np.ndarray:
    """Incompressible (4, 64, 64) uint16 frames: 32 KiB each, 40 of them fill the disk."""
    return np.random.default_rng(7).integers(0, 65536, (t, 4, 64, 64), dtype=np.uint16)


def check_after_disk_full(folder: Path, data: np.ndarray, error: BaseException) -> None:
    assert error.errno == 28 or isinstance(error.__cause__, OSError), error
    assert str(folder) in str(error)
    ds = open_quietly(folder)
    assert 0 < ds.shape[0] < data.shape[0]
    np.testing.assert_array_equal(ds[...], data[: ds.shape[0]])


def test_a_full_disk_stops_save_with_earlier_blocks_readable(small_disk):
    data = noise(60)
    with pytest.raises(BlockWriteError) as raised:
        save_to_split_dataset(data, small_disk, block_size=(4, 4, 64, 64), prefix="ds",
                              compression="blosc:lz4")
    check_after_disk_full(small_disk / "ds", data, raised.value)
    assert not list((small_disk / "ds").glob("*.tmp"))


def test_a_full_disk_stops_the_streaming_writer_with_earlier_blocks_readable(small_disk):
    data = noise(60)
    with pytest.raises(BlockWriteError) as raised:
        with SplitDatasetWriter(small_disk / "ds", (4, 64, 64), np.uint16, 4) as writer:
            for frame in data:
                writer.append(frame)
    check_after_disk_full(small_disk / "ds", data, raised.value)


def test_a_full_disk_stops_an_empty_split_dataset_with_earlier_blocks_readable(small_disk):
    data = noise(60)
    target = EmptySplitDataset(small_disk, "ds", shape_full=data.shape, shape_block=(4, 4, 64, 64))
    with pytest.raises(BlockWriteError) as raised:
        for n, (_, slices) in enumerate(target.slices()):
            target.save_block_data(n, data[slices])
    check_after_disk_full(small_disk / "ds", data, raised.value)


def test_a_full_disk_stops_convert_with_a_clear_message(small_disk, tmp_path, capsys):
    data = noise(60)
    np.save(tmp_path / "noise.npy", data)
    assert command_line(["convert", str(tmp_path / "noise.npy"), str(small_disk / "ds"),
                         "--frames-per-file", "4", "--compression", "none"]) == 1
    assert "No space left" in capsys.readouterr().err
    ds = open_quietly(small_disk / "ds")
    np.testing.assert_array_equal(ds[...], data[: ds.shape[0]])


def test_an_overwrite_that_runs_out_of_disk_leaves_the_old_dataset(small_disk):
    old = noise(12)
    save_to_split_dataset(old, small_disk, block_size=(4, 4, 64, 64), prefix="ds",
                          compression=None)
    with pytest.raises(BlockWriteError):
        save_to_split_dataset(noise(60), small_disk, block_size=(4, 4, 64, 64), prefix="ds",
                              overwrite=True, compression=None)
    np.testing.assert_array_equal(SplitDataset(small_disk / "ds")[...], old)
    assert sorted(p.name for p in small_disk.iterdir()) == ["ds"]
    shutil.rmtree(small_disk / "ds")


def test_an_interrupted_block_by_block_write_says_so_and_resumes(tmp_path):
    """Blocks written out of order and then nothing more (the process died): opening names the
    missing block and says the write was interrupted; resume=True writes only what is missing."""
    truth = expected()
    target = EmptySplitDataset(tmp_path, "ds", shape_full=SHAPE, shape_block=BLOCK,
                               dtype=truth.dtype)
    slices = dict(enumerate(s for _, s in target.slices()))
    for n in (0, 1, 5):
        target.save_block_data(n, truth[slices[n]])
    del target  # no finalize
    with pytest.raises(SplitDatasetError, match="number 2 is missing.*interrupted.*resume=True"):
        SplitDataset(tmp_path / "ds")
    resumed = EmptySplitDataset(tmp_path, "ds", shape_full=SHAPE, shape_block=BLOCK, resume=True)
    assert resumed.missing_blocks() == [2, 3, 4] + list(range(6, 12))
    for n in resumed.missing_blocks():
        resumed.save_block_data(n, truth[slices[n]])
    np.testing.assert_array_equal(resumed.finalize()[...], truth)
    with pytest.raises(DestinationError, match="no interrupted write"):
        EmptySplitDataset(tmp_path, "ds", shape_full=SHAPE, shape_block=BLOCK, resume=True)


def test_an_interrupted_write_missing_its_first_block_says_so(tmp_path):
    """Blocks written out of order, the first one never: the error names the missing file and
    says the write was interrupted (not 'numbered from 1')."""
    truth = expected()
    target = EmptySplitDataset(tmp_path, "ds", shape_full=SHAPE, shape_block=BLOCK,
                               dtype=truth.dtype)
    slices = dict(enumerate(s for _, s in target.slices()))
    for n in (4, 5, 6):
        target.save_block_data(n, truth[slices[n]])
    with pytest.raises(SplitDatasetError, match="0000.h5 is missing.*interrupted.*resume=True"):
        SplitDataset(tmp_path / "ds")
