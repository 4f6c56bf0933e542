"""Run the write benchmarks of BENCHMARKS.md and write a Markdown report with ratios.

Everything in one run, on the benchmark recording (``data.py``): the machine's ceilings (the
single- and 2-thread compression rate of numcodecs' Blosc on the writer's chunks; the rate of
writing the same block files' bytes with plain ``write``, with and without an fsync per file),
PyTables writing the way ``flammkuchen.save`` does, this package's whole-array and streaming
writers on 1 and 2 threads, and the latency of ``append`` for one (30, 1024, 1024) uint16 volume
at 10 volumes per second.

    python benchmarks/write_report.py --size full --out benchmarks/RESULTS_write.md
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
if str(HERE.parent) not in sys.path:  # run from a checkout without installing
    sys.path.insert(1, str(HERE.parent))

import data  # noqa: E402
import machine  # noqa: E402
import writers  # noqa: E402

from split_dataset import SplitDataset, SplitDatasetWriter  # noqa: E402
from split_dataset.tools.workloads import loadavg  # noqa: E402

WRITERS = ("pytables", "pytables-fsync", "whole-t1", "whole-t2", "stream-t1", "stream-t2",
           "whole-t2-nosync", "stream-t2-nosync")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def measure_ceilings(array: np.ndarray, codecs, tpfs, reps: int, scratch: Path) -> dict:
    """Compression rates per codec and file-write rates per block size, raw bytes per second."""
    ceilings: dict = {"compress": {}, "write": {}}
    chunks = writers.writer_chunks(array)
    for codec in codecs:
        if codec not in writers.CNAMES:
            continue
        entry = ceilings["compress"][codec] = {}
        for threads in (1, 2):
            writers.compression_time(chunks[:50], writers.CNAMES[codec], threads)  # warm-up
            times = [writers.compression_time(chunks, writers.CNAMES[codec], threads)
                     for _ in range(reps)]
            entry[f"t{threads}_rate"] = array.nbytes / float(np.median(times))
        log(f"compression {codec}: {entry['t1_rate'] / 1e6:.0f} MB/s on 1 thread, "
            f"{entry['t2_rate'] / 1e6:.0f} MB/s on 2")
    ceilings["compress_write"] = {}
    chunks_per_time_point = len(chunks) // len(array)
    for codec in ceilings["compress"]:
        for tpf in tpfs:
            entry = ceilings["compress_write"][f"{codec} tpf={tpf}"] = {}
            for fsync in (False, True):
                for threads in (1, 2):
                    times = [writers.compress_and_write_time(
                        scratch / "plain", chunks, tpf * chunks_per_time_point,
                        writers.CNAMES[codec], threads, fsync) for _ in range(reps)]
                    entry[f"{'fsync' if fsync else 'cache'}_t{threads}_rate"] = \
                        array.nbytes / float(np.median(times))
            log(f"compress + write {codec} tpf={tpf}: " + ", ".join(
                f"{k} {v / 1e6:.0f} MB/s" for k, v in entry.items()))
    for tpf in tpfs:
        blocks = [np.ascontiguousarray(array[t : t + tpf]) for t in range(0, len(array), tpf)]
        entry = ceilings["write"][tpf] = {}
        for fsync in (False, True):
            for threads in (1, 2):
                times = [writers.file_write_time(scratch / "plain", blocks, threads, fsync)
                         for _ in range(reps)]
                entry[f"{'fsync' if fsync else 'cache'}_t{threads}_rate"] = \
                    array.nbytes / float(np.median(times))
        log(f"file writes, tpf={tpf}: " + ", ".join(f"{k} {v / 1e6:.0f} MB/s" for k, v in entry.items()))
    return ceilings


def _rows(results: dict, codecs, tpfs):
    """``(codec, tpf, row)`` for every data variant, ``row`` the dict of its results."""
    for codec in codecs:
        for tpf in tpfs:
            yield codec, tpf, results.setdefault(f"{codec} tpf={tpf}", {})


def _timed_writes(writer: str, target: Path, array: np.ndarray, tpf: int, codec: str, reps: int,
                  passes: int = 1) -> list[tuple[float, float]]:
    """(wall, CPU) seconds of ``reps`` writes of ``array`` to ``target``, each started with no
    earlier write there and no dirty page in the page cache; the last one is left on disk."""
    times = []
    for _ in range(reps):
        shutil.rmtree(target, ignore_errors=True)
        writers.settle_page_cache()
        cpu0, t0 = time.process_time(), time.perf_counter()
        writers.write(writer, target, array, tpf, codec, passes=passes)
        times.append((time.perf_counter() - t0, time.process_time() - cpu0))
    return times


def measure_writes(array: np.ndarray, codecs, tpfs, reps: int, scratch: Path) -> dict:
    results: dict = {}
    for codec, tpf, row in _rows(results, codecs, tpfs):
        for writer in WRITERS:
            target = scratch / "ds"
            times = _timed_writes(writer, target, array, tpf, codec, reps)
            written = SplitDataset(target)
            correct = written.shape == array.shape and bool(
                np.array_equal(written[-1], array[-1]) and np.array_equal(written[0], array[0]))
            wall = [t for t, _ in times]
            median = float(np.median(wall))
            row[writer] = dict(
                median=median, min=float(min(wall)), rate=array.nbytes / median,
                cpu_per_wall=sum(c for _, c in times) / sum(wall),
                ratio=array.nbytes / writers.stored_bytes(target), correct=correct)
            shutil.rmtree(target, ignore_errors=True)
        log(f"{codec} tpf={tpf}: " + ", ".join(
            f"{w} {r['rate'] / 1e6:.0f} MB/s" for w, r in row.items()) + f" (load {loadavg()})")
    return results


# A streaming writer's first blocks take fresh memory (its block buffers, the compressed runs):
# page faults and zeroed pages that a longer recording pays once. Streamed PASSES times over.
LONG_STREAM_WRITERS = ("stream-t2", "stream-t2-nosync")
LONG_STREAM_PASSES = 4


def measure_long_streams(array: np.ndarray, codecs, tpfs, reps: int, scratch: Path,
                         passes: int = LONG_STREAM_PASSES) -> dict:
    """``LONG_STREAM_WRITERS`` appending the recording ``passes`` times over, as in
    ``measure_writes`` (raw bytes per second of all passes), and the machine's rate for the
    same files on 2 threads, measured at that length too (compress + plain write, or plain
    write for raw data; page cache and fsync): past a GB or two of dirty pages the kernel's
    writeback runs beside any writer."""
    results: dict = {}
    chunks = writers.writer_chunks(array)
    chunks_per_time_point = len(chunks) // len(array)
    for codec, tpf, row in _rows(results, codecs, tpfs):
        ceiling = {}
        for fsync in (False, True):
            if codec in writers.CNAMES:
                times = [writers.compress_and_write_time(
                    scratch / "plain", chunks * passes, tpf * chunks_per_time_point,
                    writers.CNAMES[codec], 2, fsync) for _ in range(reps)]
            else:
                blocks = [np.ascontiguousarray(array[t : t + tpf])
                          for t in range(0, len(array), tpf)]
                times = [writers.file_write_time(scratch / "plain", blocks * passes, 2, fsync)
                         for _ in range(reps)]
            ceiling["fsync" if fsync else "cache"] = passes * array.nbytes / float(np.median(times))
        row["ceiling"] = ceiling
        for writer in LONG_STREAM_WRITERS:
            target = scratch / "ds"
            times = [wall for wall, _ in _timed_writes(writer, target, array, tpf, codec, reps,
                                                       passes)]
            written = SplitDataset(target)
            correct = written.shape == (passes * len(array),) + array.shape[1:] and bool(
                np.array_equal(written[-1], array[-1]) and np.array_equal(written[0], array[0])
                and np.array_equal(written[len(array)], array[0]))
            median = float(np.median(times))
            row[writer] = dict(median=median, passes=passes, correct=correct,
                               rate=passes * array.nbytes / median)
            shutil.rmtree(target, ignore_errors=True)
        log(f"long streams {codec} tpf={tpf}: " + ", ".join(
            f"{w} {r['rate'] / 1e6:.0f} MB/s" for w, r in row.items() if w != "ceiling")
            + ", machine " + ", ".join(f"{k} {v / 1e6:.0f} MB/s" for k, v in ceiling.items()))
    return results


PROFILED_WRITERS = ("whole-t2", "stream-t2", "whole-t2-nosync")


def measure_stages(array: np.ndarray, codecs, tpfs, scratch: Path) -> dict:
    """One profiled write per writer of ``PROFILED_WRITERS`` and data variant: the CPU time of
    each stage (``writers.profile_stages``), the process's CPU time and the wall time."""
    results: dict = {}
    for codec, tpf, row in _rows(results, codecs, tpfs):
        for writer in PROFILED_WRITERS:
            target = scratch / "ds"
            shutil.rmtree(target, ignore_errors=True)
            writers.settle_page_cache()
            with writers.profile_stages() as stages:
                cpu0, t0 = time.process_time(), time.perf_counter()
                writers.write(writer, target, array, tpf, codec)
                wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
            shutil.rmtree(target, ignore_errors=True)
            row[writer] = dict(wall=wall, cpu=cpu, stages={k: list(v) for k, v in stages.items()})
        log(f"stages {codec} tpf={tpf}: " + ", ".join(
            f"{w} " + " ".join(f"{k} {v[0]:.2f}s" for k, v in r["stages"].items())
            for w, r in row.items()))
    return results


def acquisition_volume(array: np.ndarray, t: int, shape=(30, 1024, 1024)) -> np.ndarray:
    """A (30, 1024, 1024) volume made of the recording's planes, tiled 2 x 2."""
    planes = array[t % len(array)]
    z_index = np.arange(shape[0]) % planes.shape[0]
    reps_y, reps_x = -(-shape[1] // planes.shape[1]), -(-shape[2] // planes.shape[2])
    return np.ascontiguousarray(np.tile(planes[z_index], (1, reps_y, reps_x))[:, : shape[1], : shape[2]])


def measure_append(array: np.ndarray, codecs, scratch: Path, volumes: int, rate_hz: float = 10.0,
                   frames_per_block=(1, 4)) -> dict:
    """``append`` latency for volumes arriving at ``rate_hz``, like a microscope's stream, and
    how soon each block is on disk: from the ``append`` of its last volume to ``frames_written``
    counting it (a thread watches it every 0.5 ms)."""
    source = [acquisition_volume(array, t) for t in range(min(volumes, 8))]
    results = {}
    for per_block in frames_per_block:
        for codec in codecs:
            results[f"{codec}, {per_block} per file"] = _acquire(
                source, codec, per_block, scratch / "acq", volumes, rate_hz)
    return results


def _acquire(source: list, codec: str, per_block: int, target: Path, volumes: int,
             rate_hz: float) -> dict:
    shutil.rmtree(target, ignore_errors=True)
    latencies, last_appended, committed = [], {}, {}
    period = 1.0 / rate_hz
    writer = SplitDatasetWriter(target, source[0].shape, source[0].dtype, per_block,
                                compression=writers.CODECS[codec], threads=2)
    watching = True

    def watch() -> None:
        seen = 0
        while watching:
            blocks = writer.frames_written // per_block
            now = time.perf_counter()
            for block in range(seen, blocks):
                committed[block] = now
            seen = max(seen, blocks)
            time.sleep(0.0005)

    watcher = threading.Thread(target=watch)
    watcher.start()
    start = time.perf_counter()
    for i in range(volumes):
        due = start + i * period
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        t0 = time.perf_counter()
        writer.append(source[i % len(source)])
        t1 = time.perf_counter()
        latencies.append(t1 - t0)
        if (i + 1) % per_block == 0:
            last_appended[i // per_block] = t1
    t0 = time.perf_counter()
    writer.close()
    close_time = time.perf_counter() - t0
    elapsed = time.perf_counter() - start
    watching = False
    watcher.join()
    # blocks published by close are counted from when close returned at the latest
    to_disk = [committed.get(b, t0 + close_time) - t for b, t in last_appended.items()]
    written = SplitDataset(target)
    result = dict(
        volumes=volumes, volume_mb=source[0].nbytes / 1e6, rate_hz=rate_hz,
        frames_per_block=per_block,
        p50=float(np.percentile(latencies, 50)), p99=float(np.percentile(latencies, 99)),
        max=float(max(latencies)), close=close_time, elapsed=elapsed,
        on_disk_p50=float(np.percentile(to_disk, 50)), on_disk_max=float(max(to_disk)),
        max_pending_seen=writer.max_pending_seen,
        correct=written.shape[0] == volumes and bool(
            np.array_equal(written[volumes - 1], source[(volumes - 1) % len(source)])),
    )
    shutil.rmtree(target, ignore_errors=True)
    log(f"append {codec} {per_block}/file: p50 {result['p50'] * 1e3:.1f} ms, p99 "
        f"{result['p99'] * 1e3:.1f} ms, close {close_time * 1e3:.0f} ms, on disk after "
        f"{result['on_disk_p50'] * 1e3:.0f} ms")
    return result


# --- report ------------------------------------------------------------------------------------


def _mbps(rate: float) -> str:
    return f"{rate / 1e6:.0f}"


def render(report: dict) -> str:
    info, ceilings = report["info"], report["ceilings"]
    lines: list[str] = []
    add = lines.append
    add("# split_dataset write benchmarks")
    add("")
    add(f"Generated by `python benchmarks/write_report.py --size {report['size']}` on "
        f"{info['date']}. Rules: `shared/BENCHMARKS.md`. All figures come from the same run. "
        "Every timed write, ours and the ceilings', starts with no dirty page in the page "
        "cache (`sync` first, untimed), so that none is throttled for another's writeback.")
    add("")
    add("| | |")
    add("|---|---|")
    add(f"| CPU | {info['cpu']} |")
    add(f"| nproc / usable cores | {info['nproc']} / {info['affinity']} |")
    add(f"| kernel, Python | {info['kernel']}, {info['python']} |")
    add(f"| proactive reclaim | {info.get('memory_reclaim', '?')} |")
    add(f"| numpy, h5py (HDF5), tables | {info['numpy']}, {info['h5py']} ({info['hdf5']}), {info['tables']} |")
    add(f"| split_dataset | {info['split_dataset']} |")
    add(f"| data | shape {tuple(report['shape'])} uint16, {report['raw_bytes'] / 1e9:.2f} GB |")
    add(f"| repetitions | {report['reps']} per writer (median) |")
    add(f"| load average (1/5/15 min) | start {report['load_start']}, end {report['load_end']} |")
    add(f"| wall time of the run | {report['wall'] / 60:.1f} min |")
    add(f"| scratch folder | {report['scratch_fs']} |")
    add("")
    add("## Ceilings, measured in this run (MB/s of raw data)")
    add("")
    add("| | 1 thread | 2 threads |")
    add("|---|---|---|")
    for codec, c in ceilings["compress"].items():
        add(f"| compress, numcodecs Blosc {writers.CNAMES[codec]} level 9 + shuffle, writer's "
            f"chunks | {_mbps(c['t1_rate'])} | {_mbps(c['t2_rate'])} |")
    for key, c in ceilings.get("compress_write", {}).items():
        add(f"| compress + plain write of the compressed chunks, {key} (page cache) | "
            f"{_mbps(c['cache_t1_rate'])} | {_mbps(c['cache_t2_rate'])} |")
        add(f"| compress + plain write + fsync per file, {key} | "
            f"{_mbps(c['fsync_t1_rate'])} | {_mbps(c['fsync_t2_rate'])} |")
    for tpf, c in ceilings["write"].items():
        add(f"| plain write of the block files, tpf={tpf} (page cache) | "
            f"{_mbps(c['cache_t1_rate'])} | {_mbps(c['cache_t2_rate'])} |")
        add(f"| plain write + fsync per file, tpf={tpf} | "
            f"{_mbps(c['fsync_t1_rate'])} | {_mbps(c['fsync_t2_rate'])} |")
    add("")
    add("## Whole-array save and streaming append")
    add("")
    add("MB/s of raw data (median). *vs flammkuchen* = PyTables' time (no fsync, as flammkuchen "
        "writes) / ours. *% ceiling* for compressed data = `threads × single-thread compression "
        "rate` time / ours (the issue's target: ≥ 85 %); for raw data = plain write + fsync of "
        "the same files with as many threads / ours (our writers fsync every file by default), "
        "or plain write without fsync for the `-nosync` writers (`durable=False`); the "
        "page-cache-only comparison for every raw writer is in the next column (target ≥ 80 %). "
        "*% compress + write* for compressed data = the time of compressing the same chunks and "
        "writing the compressed bytes to one new file per block with plain `write` (with an "
        "fsync per file for the durable writers), on as many threads, measured / ours: the "
        "machine's own cost of writing these files, HDF5's bookkeeping left out. CPU/wall = "
        "process CPU time / wall time.")
    add("")
    add("| data | writer | MB/s | ratio | vs flammkuchen | % ceiling | % compress + write | % page-cache write | CPU/wall | correct |")
    add("|---|---|---|---|---|---|---|---|---|---|")
    for key, row in report["writes"].items():
        base = row.get("pytables", {}).get("median")
        for writer, r in row.items():
            pct, with_write, cache_pct = _shares(report, key, writer, r["rate"])
            vs = f"{base / r['median']:.2f}×" if base else "—"
            add(f"| {key} | {writer} | {_mbps(r['rate'])} | {r['ratio']:.2f}× | {vs} | {pct} | "
                f"{with_write} | {cache_pct} | {r['cpu_per_wall']:.2f} | {'yes' if r['correct'] else 'NO'} |")
    add("")
    if report.get("long_streams"):
        render_long_streams(report, add)
    if report.get("stages"):
        render_stages(report["stages"], add)
    if report.get("append"):
        add("## `append` latency during an acquisition")
        add("")
        first = next(iter(report["append"].values()))
        add(f"{first['volumes']} volumes of (30, 1024, 1024) uint16 ({first['volume_mb']:.0f} MB) "
            f"at {first['rate_hz']:.0f} volumes/s (one volume period = "
            f"{1e3 / first['rate_hz']:.0f} ms), one or several volumes per file, `threads=2`, "
            "durable (fsync). *on disk after* = from the `append` of a block's last volume to "
            "`frames_written` counting the block (fsynced and renamed into place, what a crash "
            "can no longer lose), p50 / max.")
        add("")
        add("| compression, volumes per file | append p50 ms | p99 ms | max ms | close ms | "
            "on disk after ms | blocks pending at most | correct |")
        add("|---|---|---|---|---|---|---|---|")
        for name, r in report["append"].items():
            add(f"| {name} | {r['p50'] * 1e3:.1f} | {r['p99'] * 1e3:.1f} | {r['max'] * 1e3:.1f} | "
                f"{r['close'] * 1e3:.0f} | {r['on_disk_p50'] * 1e3:.0f} / "
                f"{r['on_disk_max'] * 1e3:.0f} | {r['max_pending_seen']} | "
                f"{'yes' if r['correct'] else 'NO'} |")
        add("")
    return "\n".join(lines) + "\n"


def _shares(report: dict, key: str, writer: str, rate: float) -> tuple[str, str, str]:
    """A writer's rate (raw bytes/s) on data ``key`` as shares of the machine's, formatted:
    % ceiling, % compress + write, % page-cache write ("—" where it does not apply)."""
    ceilings = report["ceilings"]
    codec, tpf = key.split(" tpf=")
    threads = None if writer.startswith("pytables") else writers.writer_threads(writer)
    pct = cache_pct = with_write = "—"
    if threads is None:
        return pct, with_write, cache_pct
    synced = "cache" if writer.endswith("-nosync") else "fsync"
    if codec in ceilings["compress"]:
        pct = f"{100 * rate / (threads * ceilings['compress'][codec]['t1_rate']):.0f}%"
        both = ceilings.get("compress_write", {}).get(key)
        if both:
            with_write = f"{100 * rate / both[f'{synced}_t{threads}_rate']:.0f}%"
    else:
        w = ceilings["write"][int(tpf)]
        pct = f"{100 * rate / w[f'{synced}_t{threads}_rate']:.0f}%"
        cache_pct = f"{100 * rate / w[f'cache_t{threads}_rate']:.0f}%"
    return pct, with_write, cache_pct


def render_long_streams(report: dict, add) -> None:
    rows = report["long_streams"]
    passes = next(r["passes"] for row in rows.values() for w, r in row.items() if w != "ceiling")
    add(f"## Streaming a longer recording ({passes} passes)")
    add("")
    add(f"The streaming writers appending the recording {passes} times over "
        f"({passes * report['raw_bytes'] / 1e9:.1f} GB; median of "
        f"{max(1, report['reps'] - 1)}), beside their rate on the recording once (above). "
        "A writer's first blocks take fresh memory: its block buffers (up to "
        "`max_pending_blocks + 1`, 4 + 1 by default, which a caller as fast as memory fills "
        "at once) and the compressed runs; each page of it is a page fault and a page the "
        "kernel zeroes (perf: 20 % of a 1 GB blosc tpf=10 stream's CPU samples were "
        "`clear_page` under the `append` copy); a longer recording reuses them. But past a GB "
        "or two of dirty pages the kernel writes back beside any writer, so the machine's own "
        "rate (compressing the same chunks and writing them with plain `write`, raw data: "
        "plain `write`, on 2 threads, page cache or an fsync per file as the writer does) is "
        "measured at this length too: *% of the machine's* is against the rate at the same "
        "length, once (from the tables above) / longer.")
    add("")
    add("| data | writer | MB/s, once | MB/s, longer | machine's MB/s, longer | "
        "% of the machine's, once / longer | correct |")
    add("|---|---|---|---|---|---|---|")
    for key, row in rows.items():
        codec, tpf = key.split(" tpf=")
        for writer, r in row.items():
            if writer == "ceiling":
                continue
            synced = "cache" if writer.endswith("-nosync") else "fsync"
            machine_rate = row["ceiling"][synced]
            once = report["writes"].get(key, {}).get(writer)
            once_rate = pct_once = "—"
            if once is not None:
                once_rate = _mbps(once["rate"])
                pct, with_write, _ = _shares(report, key, writer, once["rate"])
                pct_once = with_write if codec in report["ceilings"]["compress"] else pct
            add(f"| {key} | {writer} | {once_rate} | {_mbps(r['rate'])} | {_mbps(machine_rate)} "
                f"| {pct_once} / {100 * r['rate'] / machine_rate:.0f}% | "
                f"{'yes' if r['correct'] else 'NO'} |")
    add("")


def render_stages(stages: dict, add) -> None:
    add("## Where the time goes (2 threads)")
    add("")
    add("One profiled write per writer and data variant (`writers.profile_stages`: each stage's "
        "CPU time summed over the threads). Shares of the cores' time (2 × wall): *compress* "
        "(numcodecs' c-blosc 1.x), *checksum* (zlib-ng CRC-32 of the stored chunks; part of *compress* where a block's chunks are compressed in one compiled call, the default), *file* "
        "(HDF5 laying out the block file and writing the chunks: the page-cache copy of the "
        "stored bytes is most of it; raw blocks: their `pwrite`), *fsync* (CPU of the fsyncs), "
        "*other* (the rest of the process's CPU: reading the source, the pipeline's threads, "
        "Python), *idle* (a core with nothing to do, e.g. waiting on an fsync). *fsync wait* = "
        "seconds spent inside fsync calls (on the committer thread, overlapping the others).")
    add("")
    add("| data | writer | wall s | compress | checksum | file | fsync | other | idle | fsync wait s |")
    add("|---|---|---|---|---|---|---|---|---|---|")
    for key, row in stages.items():
        for writer, r in row.items():
            cores = 2 * r["wall"]
            cpu = {k: v[0] for k, v in r["stages"].items()}
            staged = sum(cpu.values())
            share = {k: f"{100 * cpu.get(k, 0.0) / cores:.0f}%"
                     for k in ("compress", "checksum", "HDF5 file", "fsync")}
            other = max(r["cpu"] - staged, 0.0)
            idle = max(cores - r["cpu"], 0.0)
            fsync_wait = r["stages"].get("fsync", [0.0, 0.0])[1]
            add(f"| {key} | {writer} | {r['wall']:.2f} | {share['compress']} | {share['checksum']} | "
                f"{share['HDF5 file']} | {share['fsync']} | {100 * other / cores:.0f}% | "
                f"{100 * idle / cores:.0f}% | {fsync_wait:.2f} |")
    add("")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(data.SIZES), default=None,
                        help="default: $SPLIT_DATASET_BENCH_SIZE or small")
    parser.add_argument("--out", help="Markdown file (default: print)")
    parser.add_argument("--json", help="also dump the raw results here")
    parser.add_argument("--codecs", default="blosc,lz4,raw")
    parser.add_argument("--tpf", default="1,10")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--append-volumes", type=int, default=40,
                        help="volumes streamed for the append latency (0: skip)")
    args = parser.parse_args(argv)
    size = data.bench_size(args.size)
    shape = data.SIZES[size]
    codecs = [c for c in args.codecs.split(",") if c]
    tpfs = [int(t) for t in args.tpf.split(",") if t]
    started = time.perf_counter()
    load_start = loadavg()
    array = data.load_array(shape)
    scratch = Path(tempfile.mkdtemp(prefix="write_bench_", dir=data.cache_root()))
    try:
        report = dict(size=size, shape=list(shape), raw_bytes=array.nbytes, reps=args.reps,
                      info=machine.machine_info(), load_start=load_start,
                      scratch_fs=_filesystem(scratch))
        report["ceilings"] = measure_ceilings(array, codecs, tpfs, args.reps, scratch)
        report["writes"] = measure_writes(array, codecs, tpfs, args.reps, scratch)
        report["long_streams"] = measure_long_streams(array, codecs, tpfs, max(1, args.reps - 1),
                                                      scratch)
        report["stages"] = measure_stages(array, codecs, tpfs, scratch)
        report["append"] = (measure_append(array, codecs, scratch, args.append_volumes)
                            if args.append_volumes else {})
        report["load_end"] = loadavg()
        report["wall"] = time.perf_counter() - started
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    text = render(report)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1, default=str))
    if args.out:
        Path(args.out).write_text(text)
        log(f"wrote {args.out}")
    else:
        print(text)


def _filesystem(path: Path) -> str:
    """The mount holding ``path`` and its type (fsync costs differ widely between them)."""
    best = ("?", "?")
    try:
        for line in Path("/proc/mounts").read_text().splitlines():
            _, mount, kind = line.split()[:3]
            if str(path).startswith(mount) and len(mount) >= len(best[0]):
                best = (mount, kind)
    except OSError:
        pass
    return f"{path.parent} on {best[0]} ({best[1]})"


if __name__ == "__main__":
    main()
