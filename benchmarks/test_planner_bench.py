"""The planner alone: no I/O, just selection -> per-file, per-chunk tasks.

Planning must cost microseconds per file touched, far below decoding one chunk (~50-200 us
for a 64-128 KiB blosc chunk), also for 10,000-file datasets and large index vectors.
Run: ``pytest benchmarks/test_planner_bench.py --benchmark-enable``; each case also reports
``us_per_file`` in the benchmark's extra info.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from split_dataset.planning import plan_blocks, plan_chunks
from split_dataset.selection import normalize

SHAPE = (10_000, 20, 512, 512)  # 10,000 files of one time point each
BLOCK = (1, 20, 512, 512)
GRID = (10_000, 1, 1, 1)
CHUNK = (1, 1, 64, 512)  # PyTables' choice for such blocks

rng = np.random.default_rng(0)
CASES = {
    "plane": (5_000, 7),
    "volume": (5_000,),
    "zcol_100": (slice(0, 100), 7),
    "roi_over_1000": (slice(0, 1000), slice(5, 7), slice(100, 164), slice(200, 264)),
    "stride_1000_files": (slice(None, None, 10),),
    "vector_1000_unsorted": (rng.permutation(10_000)[:1000],),
    "reversed_500": (slice(499, None, -1), slice(None), 0),
}


def plan(key):
    selection = normalize(key, SHAPE)
    block_plan = plan_blocks(selection.terms, BLOCK, GRID)
    return plan_chunks(block_plan, {f: CHUNK for f in block_plan.files})


@pytest.mark.parametrize("planner", ["compiled", "python"])
@pytest.mark.parametrize("case", list(CASES))
def test_plan(benchmark, monkeypatch, planner, case):
    monkeypatch.setenv("SPLIT_DATASET_PLANNER", planner)
    if planner == "python" and case in ("stride_1000_files", "vector_1000_unsorted", "roi_over_1000", "volume"):
        # the reference planner enumerates tasks in Python: measured once, not repeated
        result = plan(CASES[case])
        benchmark.pedantic(plan, args=(CASES[case],), rounds=1, iterations=1)
    else:
        result = benchmark(plan, CASES[case])
    assert result.n_tasks > 0
    started = time.perf_counter()
    plan(CASES[case])
    elapsed = time.perf_counter() - started
    benchmark.extra_info.update(
        files=len(result.files), tasks=result.n_tasks, us_per_file=1e6 * elapsed / len(result.files)
    )
