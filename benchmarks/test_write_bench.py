"""Write benchmarks (pytest-benchmark): the streaming writer against today's ways of writing.

Writers (``writers.py``), on the benchmark recording (``data.py``; small by default,
``SPLIT_DATASET_BENCH_SIZE=full`` for the 1 GB one), split into blocks of 1 or 10 time points,
each for blosc (blosclz), blosc:lz4 and raw (uncompressed). ``write_report.py`` runs the same
writers with the ceilings and writes ``RESULTS_write.md``. Plus the single-thread compression
rate of numcodecs' Blosc on the writer's chunks (the ceiling of one worker) and the latency of
``append`` for one volume (``idle``: the writer keeps up; ``back-to-back``: including waits for the
compressor). Rates (MB/s of raw data) and compression ratios are in each benchmark's extra info.

    pytest benchmarks/test_write_bench.py --benchmark-enable
    SPLIT_DATASET_BENCH_SIZE=full pytest benchmarks/test_write_bench.py --benchmark-enable -k tpf1
"""

from __future__ import annotations

import os
import shutil
import time

import numpy as np
import pytest

import data
import writers

from split_dataset import SplitDataset, SplitDatasetWriter

SIZE = data.bench_size()
SHAPE = data.SIZES[SIZE]
ROUNDS = 3 if SIZE == "small" else 1
TPFS = (1, 10)
WRITERS = ("whole", "whole-t1", "whole-t2", "stream-t1", "stream-t2", "pytables",
           "pytables-fsync")


@pytest.fixture(scope="module")
def recording():
    return data.load_array(SHAPE)


@pytest.fixture
def out_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("write_bench")
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.parametrize("tpf", TPFS, ids=lambda t: f"tpf{t}")
@pytest.mark.parametrize("codec", list(writers.CODECS))
@pytest.mark.parametrize("writer", WRITERS)
def test_write(benchmark, recording, out_dir, writer, codec, tpf):
    target = out_dir / "ds"
    times: list[float] = []

    def setup():
        shutil.rmtree(target, ignore_errors=True)

    def run():
        started = time.perf_counter()
        writers.write(writer, target, recording, tpf, codec)
        times.append(time.perf_counter() - started)

    benchmark.group = f"write-{codec}-tpf{tpf}"
    benchmark.pedantic(run, setup=setup, rounds=ROUNDS, iterations=1)
    written = SplitDataset(target)
    assert written.shape == recording.shape
    np.testing.assert_array_equal(written[-1], recording[-1])
    best = min(times)
    benchmark.extra_info.update(
        size=SIZE, shape=SHAPE, raw_mb=recording.nbytes / 1e6,
        best_mb_per_s=recording.nbytes / 1e6 / best,
        ratio=recording.nbytes / writers.stored_bytes(target),
        fsync=writer != "pytables", loadavg=os.getloadavg(), cores=os.cpu_count(),
    )
    if writer.startswith("pytables"):
        import tables

        benchmark.extra_info["pytables_blosc_threads"] = tables.parameters.MAX_BLOSC_THREADS


@pytest.mark.parametrize("cname", ["blosclz", "lz4"])
def test_numcodecs_compression_single_thread(benchmark, recording, cname):
    """The rate of one compression worker: numcodecs Blosc (c-blosc 1.x, Blosc1 format) on the
    writer's default chunks of the recording, in the calling thread, no I/O."""
    chunks = writers.writer_chunks(recording)
    times: list[float] = []

    def compress_all():
        times.append(writers.compression_time(chunks, cname, threads=1))

    benchmark.group = "compression-single-thread"
    benchmark.pedantic(compress_all, rounds=ROUNDS, iterations=1)
    benchmark.extra_info.update(
        size=SIZE, chunk_shape=chunks[0].shape, chunks=len(chunks),
        best_mb_per_s=recording.nbytes / 1e6 / min(times),
    )


@pytest.mark.parametrize("tpf", TPFS, ids=lambda t: f"tpf{t}")
@pytest.mark.parametrize("mode", ["idle", "back-to-back"])
def test_append_latency_one_volume(benchmark, recording, out_dir, mode, tpf):
    """One ``append(volume)``: a copy into the block buffer, plus handing a full block to the
    workers. ``idle`` waits for the workers before each call (a writer that keeps up with the
    camera); ``back-to-back`` does not, so calls that find ``max_pending_blocks`` in flight
    wait for the compressor (the back-pressure)."""
    volumes = iter(np.resize(np.arange(recording.shape[0]), 10_000))
    writer = SplitDatasetWriter(out_dir / "ds", recording.shape[1:], recording.dtype, tpf,
                                threads=2)

    def setup():
        if mode == "idle":
            while writer.pending_blocks:
                time.sleep(0.0005)
        return (recording[next(volumes)],), {}

    try:
        benchmark.group = f"append-latency-tpf{tpf}"
        rounds = max(20, 2 * tpf) if SIZE == "small" else 3 * tpf
        benchmark.pedantic(writer.append, setup=setup, rounds=rounds, iterations=1)
    finally:
        writer.close()
    assert SplitDataset(out_dir / "ds").shape[1:] == recording.shape[1:]
    benchmark.extra_info.update(size=SIZE, volume_mb=recording[0].nbytes / 1e6,
                                max_pending_seen=writer.max_pending_seen)
