"""Fixtures of the pytest-benchmark suite: cached data, readers kept open, the workloads.

    pytest benchmarks                      # smoke: each benchmark once (pyproject: --benchmark-disable)
    pytest benchmarks --benchmark-enable   # timed, small data
    SPLIT_DATASET_BENCH_SIZE=full pytest benchmarks --benchmark-enable -k "blosc-tpf1"

The size defaults to ``small``; the 1 GB data set only with ``SPLIT_DATASET_BENCH_SIZE=full``.
Data are generated once and cached under ``$SPLIT_DATASET_BENCH_DIR`` (default
``/tmp/split_dataset_bench``), never in the repository. ``report.py`` is the tool for the
ratio tables; these benchmarks give pytest-benchmark's statistics of the same workloads.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))
if str(HERE.parent) not in sys.path:
    sys.path.insert(1, str(HERE.parent))

import data  # noqa: E402
from bench_config import SIZE, WORKLOADS  # noqa: E402

from split_dataset.tools import measure  # noqa: E402
from split_dataset.tools import workloads as wl  # noqa: E402
from split_dataset.tools.readers import H5pyReader, PackageReader  # noqa: E402


@pytest.fixture(scope="session")
def bench_data():
    """(array, {(variant, tpf): folder}), generated once, page cache warmed."""
    array, paths = data.prepare(SIZE, data.DEFAULT_VARIANTS[SIZE], data.TIME_POINTS_PER_FILE)
    for folder in paths.values():
        wl.warm_cache(data.block_files(folder))
    return array, paths


@pytest.fixture(scope="session")
def readers(bench_data):
    """Readers kept open for the whole session, made on first use: readers(kind, key)."""
    _, paths = bench_data
    made: dict = {}

    def get(kind: str, key):
        if (kind, key) not in made:
            folder = paths[key]
            if kind == "h5py":
                made[kind, key] = H5pyReader(folder)
            elif kind == "ours-t1":
                made[kind, key] = PackageReader(folder, 1)
            elif kind == "ours-t2":
                made[kind, key] = PackageReader(folder, 2)
            elif kind == "ours-t2-out":
                made[kind, key] = PackageReader(folder, 2, reuse_out=True)
            else:
                raise ValueError(kind)
        return made[kind, key]

    yield get
    for reader in made.values():
        reader.close()


@pytest.fixture(scope="session")
def loaded_ceilings(bench_data, readers):
    """Chunk sets (and their stored bytes in memory) per (variant, workload), made on first use."""
    made: dict = {}

    def get(key, workload_name: str):
        if (key, workload_name) not in made:
            ds = readers("ours-t1", key).ds
            # as report.py: the union over the timed selections
            made[key, workload_name] = measure.chunk_set(ds, WORKLOADS[workload_name])
        return made[key, workload_name]

    return get
