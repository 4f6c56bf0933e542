"""Read benchmarks (pytest-benchmark): each workload against plain h5py and the machine's ceiling.

Every benchmark checks its result once against the NumPy array, then times the workload's
rotating selections with ``benchmark.pedantic`` (one selection per round, never the same (t, z)
twice in a latency run). No timed assertions: compare the groups, or run ``report.py`` for
the ratio tables.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import time

import numpy as np
import pytest

from bench_config import HERE, SHAPE, VARIANT_IDS, VARIANT_KEYS, WORKLOADS

from split_dataset import SplitDataset
from split_dataset.tools import ceiling
from split_dataset.tools import workloads as wl

READERS = ["h5py", "ours-t1", "ours-t2", "ours-t2-out"]
THREADS = {"h5py": 1, "ours-t1": 1, "ours-t2": 2, "ours-t2-out": 2}
# out= reuse only matters for the throughput workloads; CI refuses skipped tests, so the
# combinations that make no sense are not generated at all
READ_CASES = [
    pytest.param(key, reader, name, id=f"{vid}-{reader}-{name}")
    for key, vid in zip(VARIANT_KEYS, VARIANT_IDS)
    for reader in READERS
    for name, w in WORKLOADS.items()
    if not (reader == "ours-t2-out" and w.kind != "throughput")
]


def _info(benchmark, **extra) -> None:
    benchmark.extra_info.update(loadavg=os.getloadavg(), cache="hot", cores=ceiling.N_CORES,
                                **extra)


@pytest.mark.parametrize(("key", "reader", "workload"), READ_CASES)
def test_read(benchmark, bench_data, readers, key, reader, workload):
    w = WORKLOADS[workload]
    array, _ = bench_data
    r = readers(reader, key)
    call = r.open_and_read if w.kind == "open" else r.read
    got = call(w.check)
    expected = array[w.check]
    assert got.shape == expected.shape and np.array_equal(got, expected), (reader, workload)
    del got
    selections = itertools.cycle(w.selections)
    benchmark.group = f"{key[0]}-tpf{key[1]}-{workload}"
    _info(benchmark, threads=THREADS[reader], selection=w.label,
          out="reused" if reader.endswith("-out") else "fresh",
          returned_bytes=wl.result_nbytes(w.selections[0], SHAPE))
    cpu0, t0 = time.process_time(), time.perf_counter()
    def setup():
        return (next(selections),), {}

    benchmark.pedantic(call, setup=setup, rounds=len(w.selections), iterations=1)
    benchmark.extra_info["cpu_per_wall"] = (time.process_time() - cpu0) / (time.perf_counter() - t0)


CEILINGS = ["decode-1", f"decode-{ceiling.N_CORES}", "pread-1", f"pread-{ceiling.N_CORES}"]
# uncompressed data has nothing to decode: its ceiling is pread alone
CEILING_CASES = [
    pytest.param(key, what, name, id=f"{vid}-{what}-{name}")
    for key, vid in zip(VARIANT_KEYS, VARIANT_IDS)
    for what in CEILINGS
    for name, w in WORKLOADS.items()
    if w.kind != "open" and not (what.startswith("decode") and key[0] == "raw")
]


@pytest.mark.parametrize(("key", "what", "workload"), CEILING_CASES)
def test_ceiling(benchmark, loaded_ceilings, key, what, workload):
    """Decode only (from memory into a reused buffer) / page-cache pread of the very chunks."""
    chunks = loaded_ceilings(key, workload)
    kind, threads = what.split("-")
    threads = int(threads)
    # its own group: it times the union of the workload's chunks (all its selections), not one
    # selection; divide decoded_bytes (extra info) by the time for the rate
    benchmark.group = f"{key[0]}-tpf{key[1]}-{workload}-ceiling"
    _info(benchmark, threads=threads, chunks=len(chunks), stored_bytes=chunks.stored,
          decoded_bytes=chunks.decoded)
    if kind == "decode":
        loaded = ceiling.LoadedChunks(chunks)
        loaded.check_decode()
        benchmark.pedantic(loaded.decode, args=(threads,), rounds=7, iterations=1,
                           warmup_rounds=1)
    else:
        ranges = ceiling.PreadRanges(chunks)
        try:
            benchmark.pedantic(ranges.read, args=(threads,), rounds=7, iterations=1,
                               warmup_rounds=1)
        finally:
            ranges.close()


def test_memcpy(benchmark):
    nbytes = 64 << 20
    src = np.ones(nbytes, dtype=np.uint8)
    dst = np.zeros_like(src)
    benchmark.group = "memcpy"
    _info(benchmark, bytes=nbytes, threads=1)
    benchmark.pedantic(np.copyto, args=(dst, src), rounds=7, iterations=1, warmup_rounds=1)


def _venv_python(env: str, default: str) -> str | None:
    path = os.environ.get(env, default)
    return path if os.path.isfile(path) else None


V04_PYTHON = _venv_python("SPLIT_DATASET_BENCH_V04_PYTHON", "/tmp/venv04/bin/python")
TS_PYTHON = _venv_python("SPLIT_DATASET_BENCH_TS_PYTHON", "/tmp/venvts/bin/python")


def _two_each() -> list:
    return [w.first(2) for w in WORKLOADS.values()]


def _runner_env() -> dict:
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


# The runners of other readers live in their own virtualenvs (see run_04x.py and
# run_tensorstore.py); their smoke tests exist only where those virtualenvs do, since CI refuses
# skipped tests. report.py times them.
if V04_PYTHON:

    def test_v04x_runner(bench_data, tmp_path):
        """The 0.4.x runner reads the same selections correctly."""
        import data

        _, paths = bench_data
        spec = tmp_path / "workloads.json"
        spec.write_text(json.dumps([w.to_json() for w in _two_each()]))
        proc = subprocess.run(
            [V04_PYTHON, str(HERE / "run_04x.py"), "--dataset", str(paths[VARIANT_KEYS[0]]),
             "--workloads", str(spec), "--array", str(data.cache_dir(SHAPE) / "array.npy")],
            capture_output=True, text=True, env=_runner_env(), timeout=600)
        assert proc.returncode == 0, proc.stderr[-2000:]
        out = json.loads(proc.stdout)
        assert out["version"].startswith("0.4")
        for name, result in out["results"].items():
            assert result["correct"], name


if TS_PYTHON:

    def test_tensorstore_runner(bench_data, tmp_path):
        """tensorstore reads the zarr v3 copy correctly (the copy is made on first use)."""
        import data

        _, paths = bench_data
        key = ("lz4", 1)
        chunks = SplitDataset(paths[key]).layout(0).chunk_shape
        spec = tmp_path / "workloads.json"
        spec.write_text(json.dumps([w.to_json() for w in _two_each()]))
        proc = subprocess.run(
            [TS_PYTHON, str(HERE / "run_tensorstore.py"), "--zarr",
             str(data.cache_dir(SHAPE) / "lz4_zarr3"), "--array",
             str(data.cache_dir(SHAPE) / "array.npy"), "--chunks", ",".join(map(str, chunks)),
             "--workloads", str(spec), "--threads", "1"],
            capture_output=True, text=True, timeout=900, env=_runner_env())
        assert proc.returncode == 0, proc.stderr[-2000:]
        out = json.loads(proc.stdout)
        for name, results in out["results"].items():
            for reader, result in results.items():
                assert result["correct"], (name, reader)
