"""``cold_strategies.c``, the cold-read strategies of ``cold_report.py``: every strategy reads
exactly the chunks it is given, from files dropped from the page cache, and bad input is named."""

from __future__ import annotations

import os
import subprocess

import cold_report
import numpy as np
import pytest

STRATEGIES = {
    "disk",
    "decode",
    "design",
    "one pread at a time",
    "I/O thread",
    "advice 4 MiB ahead",
    "no kernel read-ahead",
}


@pytest.fixture(scope="module")
def tool(tmp_path_factory):
    return cold_report.compile_tool(tmp_path_factory.mktemp("tool"))


def random_file(path, size, seed):
    data = np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8)
    with open(path, "wb") as file:
        file.write(data.tobytes())
        file.flush()
        os.fsync(file.fileno())  # dirty pages could not be dropped
    return data


def test_every_strategy_reads_exactly_the_chunks(tmp_path, tool):
    first = random_file(tmp_path / "0000.h5", 3 << 20, 1)
    second = random_file(tmp_path / "0001.h5", 1 << 20, 2)
    reads = [
        # one file's chunks, nearby and far apart, then another file's
        [
            (tmp_path / "0000.h5", 4096, 100_000),
            (tmp_path / "0000.h5", 200_000, 300_000),
            (tmp_path / "0000.h5", 2_500_000, 645_728),
            (tmp_path / "0001.h5", 0, 50_000),
        ],
        [(tmp_path / "0001.h5", 60_000, 70_000)],  # a read of one chunk
    ]
    contents = {tmp_path / "0000.h5": first, tmp_path / "0001.h5": second}
    expected = sum(
        int(contents[path][offset : offset + size].sum(dtype=np.uint64))
        for chunks in reads
        for path, offset, size in chunks
    )
    reads_file = tmp_path / "reads.txt"
    cold_report.write_reads(reads_file, reads)
    got = cold_report.run_tool(tool, reads_file, decode_us=5.0, reps=2, check=True)
    assert set(got) == STRATEGIES
    for name, figures in got.items():
        assert figures["sum"] == (0 if name == "decode" else expected), name
        assert 0 < figures["q25"] <= figures["median"] <= figures["q75"], name
    # each read decodes at least one chunk of 5 us
    assert got["decode"]["median"] >= 0.005


def test_a_malformed_read_is_named(tmp_path, tool):
    random_file(tmp_path / "0000.h5", 1 << 16, 3)
    reads_file = tmp_path / "reads.txt"
    reads_file.write_text(f"read 2\n{tmp_path / '0000.h5'} 0 100\n")
    with pytest.raises(subprocess.CalledProcessError) as raised:
        cold_report.run_tool(tool, reads_file, decode_us=0.0, reps=1)
    assert f"{reads_file}: read 0, chunk 1" in raised.value.stderr


def test_a_missing_file_is_named(tmp_path, tool):
    reads_file = tmp_path / "reads.txt"
    cold_report.write_reads(reads_file, [[(tmp_path / "gone.h5", 0, 10)]])
    with pytest.raises(subprocess.CalledProcessError) as raised:
        cold_report.run_tool(tool, reads_file, decode_us=0.0, reps=1)
    assert str(tmp_path / "gone.h5") in raised.value.stderr
