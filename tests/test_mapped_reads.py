"""Compressed block files are decoded from a read-only mapping of the file (file_cache.py).

What must hold: the data is NumPy's, a file truncated under its mapping gives a clear error
naming the file (never a crash, never wrong values), SIGBUS that is not ours still ends the
process, and the mapped bytes stay within the cache's budget with reads correct throughout.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from datasets import write_split_dataset

from split_dataset import SplitDataset, file_cache, reader
from split_dataset.errors import ChunkReadError


def movie(shape: tuple[int, ...]) -> np.ndarray:
    rng = np.random.default_rng(11)
    return (rng.integers(0, 300, shape) + np.arange(shape[-1])).astype(np.uint16)


def recording(tmp_path, compression: str = "blosc", name: str = "ds"):
    array = movie((6, 3, 64, 96))
    folder = write_split_dataset(tmp_path / name, array, (2, 3, 64, 96), (1, 1, 8, 96),
                                 compression)
    return folder, array


@pytest.fixture
def open_dataset():
    """``SplitDataset(...)``, closed when the test ends: descriptors left to the garbage
    collector would close during a later test that counts them."""
    opened: list[SplitDataset] = []

    def open_(*args, **kwargs) -> SplitDataset:
        opened.append(SplitDataset(*args, **kwargs))
        return opened[-1]

    yield open_
    for ds in opened:
        ds.close()


def cached_entries(ds: SplitDataset) -> list[file_cache.OpenBlockFile]:
    return list(ds._cache._entries.values())


@pytest.mark.parametrize("compression", ["blosc", "blosc:lz4", "zlib", "raw"])
def test_compressed_files_are_read_through_a_mapping(tmp_path, open_dataset, compression):
    folder, array = recording(tmp_path, compression)
    ds = open_dataset(folder, threads=2)
    np.testing.assert_array_equal(ds[:], array)
    np.testing.assert_array_equal(ds[1, 2], array[1, 2])
    entries = cached_entries(ds)
    mapped = [entry.mapped_address != 0 for entry in entries]
    assert mapped == [compression != "raw"] * len(entries)
    if compression != "raw":
        assert [e.mapped_size for e in entries] == [e.layout.file_size for e in entries]
    ds.close()
    assert all(entry.mapped_address == 0 for entry in entries)


@pytest.mark.parametrize("probe", [False, True], ids=["mapped-access", "page-cache-probe"])
@pytest.mark.parametrize("threads", [1, 2])
def test_a_file_truncated_under_its_mapping_fails_with_its_name(
    tmp_path, monkeypatch, open_dataset, threads, probe
):
    """Another program truncates a block file after our read pinned it (its identity checked)
    and before the chunks are decoded: with the page-cache probe off the decoder touches the
    lost pages (SIGBUS, turned into an error); with it on, the probe sends the read to pread,
    which finds the file short. Either way an error names the file; other reads go on."""
    folder, array = recording(tmp_path)
    other, other_array = recording(tmp_path, name="other")
    monkeypatch.setattr(reader, "READ_AHEAD", probe)
    ds = open_dataset(folder, threads=threads)
    np.testing.assert_array_equal(ds[:], array)  # mapped, every chunk indexed
    victim = folder / "0001.h5"
    check_layouts = reader._check_layouts

    def truncate_after_the_pin(grid, files, entries):
        check_layouts(grid, files, entries)
        if any(entry.layout.path == victim for entry in entries):
            os.truncate(victim, 0)

    monkeypatch.setattr(reader, "_check_layouts", truncate_after_the_pin)
    with pytest.raises(ChunkReadError, match="0001.h5") as failure:
        ds[2:4]
    if not probe:
        assert "shrank" in str(failure.value)
    monkeypatch.setattr(reader, "_check_layouts", check_layouts)
    # the threads that met the fault decode the next recording right
    np.testing.assert_array_equal(open_dataset(other, threads=threads)[:], other_array)
    np.testing.assert_array_equal(ds[0:2], array[0:2])


SIGBUS_CHILD = textwrap.dedent(
    """
    import faulthandler, mmap, os, signal, sys
    import numpy as np
    from split_dataset import SplitDataset, reader

    folder, how = sys.argv[1], sys.argv[2]
    ds = SplitDataset(folder)
    ds[:]  # maps the files: our handler is installed
    if how == "kill":
        os.kill(os.getpid(), signal.SIGBUS)
    elif how == "foreign-fault":
        path = os.path.join(folder, "0000.h5")
        with open(path, "rb") as f:
            mapping = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        os.truncate(path, 0)
        mapping[-1]  # a fault outside our readers
    elif how == "faulthandler-after":
        faulthandler.enable()  # replaces our handler after the files were mapped
        reader.READ_AHEAD = False
        original = reader._check_layouts
        def truncate(grid, files, entries):
            original(grid, files, entries)
            os.truncate(os.path.join(folder, "0001.h5"), 0)
        reader._check_layouts = truncate
        try:
            ds[2:4]
        except OSError as error:
            print("error:", error)
    print("survived")
    """
)


def run_child(folder, how: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", SIGBUS_CHILD, str(folder), how],
        capture_output=True, text=True, timeout=120,
    )


@pytest.mark.parametrize("how", ["kill", "foreign-fault"])
def test_sigbus_that_is_not_ours_still_ends_the_process(tmp_path, how):
    folder, _ = recording(tmp_path)
    child = run_child(folder, how)
    assert child.returncode == -signal.SIGBUS, (child.returncode, child.stdout, child.stderr)
    assert "survived" not in child.stdout


def test_the_guard_holds_when_faulthandler_is_enabled_after_the_mapping(tmp_path):
    folder, _ = recording(tmp_path)
    child = run_child(folder, "faulthandler-after")
    assert child.returncode == 0, (child.returncode, child.stdout, child.stderr)
    assert "0001.h5" in child.stdout and "shrank" in child.stdout
    assert "survived" in child.stdout


def test_mapped_bytes_stay_within_the_budget_and_reads_stay_right(tmp_path, open_dataset):
    folder, array = recording(tmp_path)
    ds = open_dataset(folder, threads=2)
    ds[0, 0]
    file_size = cached_entries(ds)[0].layout.file_size
    ds._cache.mapped_budget = 2 * file_size  # two of the three files
    rng = np.random.default_rng(5)
    for _ in range(40):
        t, z = int(rng.integers(0, 6)), int(rng.integers(0, 3))
        np.testing.assert_array_equal(ds[t, z], array[t, z])
        np.testing.assert_array_equal(ds[t, :, 5:40:3], array[t, :, 5:40:3])
        entries = cached_entries(ds)
        assert sum(entry.mapped_size for entry in entries) <= ds._cache.mapped_budget
        assert all(bool(e.mapped_address) == bool(e.mapped_size) for e in entries)
    np.testing.assert_array_equal(ds[:], array)
    ds._cache.mapped_budget = file_size // 2  # no file fits: all read with pread
    ds._cache.release_mappings()
    np.testing.assert_array_equal(ds[::-1, 1], array[::-1, 1])
    assert ds._cache.mapped_bytes == 0
    assert all(entry.mapped_address == 0 for entry in cached_entries(ds))


def test_released_mappings_are_made_again_by_the_next_read(tmp_path, open_dataset):
    folder, array = recording(tmp_path)
    ds = open_dataset(folder)
    np.testing.assert_array_equal(ds[3, 1], array[3, 1])  # keeps a read template
    file_cache.release_mappings()
    assert all(entry.mapped_address == 0 for entry in cached_entries(ds))
    assert ds._cache.mapped_bytes == 0
    np.testing.assert_array_equal(ds[3, 1], array[3, 1])  # templates of the old mapping gone
    assert any(entry.mapped_address != 0 for entry in cached_entries(ds))
