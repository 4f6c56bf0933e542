"""Run the read benchmarks of BENCHMARKS.md and write a Markdown report with ratios.

    python benchmarks/report.py [--size small|full] [--out benchmarks/RESULTS.md]

Everything is measured in the same run: this package (threads=1, threads=2 and threads=2 into a
reused ``out=`` buffer), the plain h5py + hdf5plugin way (files kept open), split_dataset 0.4.x
(subprocess in its own virtualenv, if found), tensorstore on a zarr v3 copy (subprocess, if
found), and the machine's ceiling for the very chunks each workload reads (decode-only rate on
1 and all cores, page-cache pread rate, memcpy). Hot page cache first; then a cold-cache pass
(pages dropped with posix_fadvise DONTNEED before every read) on a subset.

Plain ``time.perf_counter`` timing; median and min over >= 7 repetitions (rotating selections),
p50/p99 over up to 300 distinct samples for the latency workloads.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
if str(HERE.parent) not in sys.path:
    sys.path.insert(1, str(HERE.parent))

import numpy as np  # noqa: E402

import data  # noqa: E402
import machine  # noqa: E402

from split_dataset import SplitDataset  # noqa: E402
from split_dataset.tools import ceiling, measure  # noqa: E402
from split_dataset.tools import workloads as wl  # noqa: E402
from split_dataset.tools.readers import (  # noqa: E402
    H5pyReader,
    PackageReader,
    UncheckedFilesReader,
)

OURS = ("ours t=1", "ours t=2", "ours t=2 out=")
THREADS = {"h5py": 1, "ours t=1": 1, "ours t=2": 2, "ours t=2 out=": 2, "0.4.x": 1,
           "tensorstore t=1": 1, "tensorstore t=2": 2}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def find_python(explicit: str | None, env: str, default: str) -> str | None:
    candidate = explicit or os.environ.get(env) or default
    return candidate if candidate and Path(candidate).is_file() else None


def runner_env() -> dict:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    return env


def run_04x(python: str, folder: Path, workload_file: Path, array_file: Path, cold: bool) -> dict:
    cmd = [python, str(HERE / "run_04x.py"), "--dataset", str(folder), "--workloads",
           str(workload_file), "--array", str(array_file)] + (["--cold"] if cold else [])
    proc = subprocess.run(cmd, capture_output=True, text=True, env=runner_env())
    if proc.returncode:
        raise RuntimeError(proc.stderr[-2000:])
    return json.loads(proc.stdout)


def run_tensorstore(python: str, zarr: Path, array_file: Path, chunks, workload_file: Path,
                    cold: bool) -> dict:
    cmd = [python, str(HERE / "run_tensorstore.py"), "--zarr", str(zarr), "--array",
           str(array_file), "--chunks", ",".join(str(c) for c in chunks), "--workloads",
           str(workload_file), "--threads", "1,2"] + (["--cold"] if cold else [])
    proc = subprocess.run(cmd, capture_output=True, text=True, env=runner_env())
    if proc.returncode:
        raise RuntimeError(proc.stderr[-2000:])
    return json.loads(proc.stdout)


def peak_memory(reader, index) -> int:
    """Peak of NumPy/Python allocations (tracemalloc) during one read; C scratch not counted."""
    gc.collect()
    tracemalloc.start()
    try:
        got = reader.read(index)
        del got
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


# The machine's floor under a frame's latency (ceiling.FrameFloor): the same chunks read and
# decoded by the same C code, nothing else; its tail after a pause is the machine's tail.
FLOOR = "floor: pread + decode"
# What the check that each block file is still the one opened (a stat per file and read) costs
# a frame: our reader without it (readers.UncheckedFilesReader). Not a setting of the package.
UNCHECKED = "ours t=1, files not re-checked"


def _frame_floor(folder: Path, frames: list[tuple]) -> ceiling.FrameFloor:
    with SplitDataset(folder) as ds:
        return ceiling.FrameFloor(ds, frames)


def playback(folder: Path, array: np.ndarray, samples: int, pause: float = 0.005,
             ahead: int = 4) -> dict:
    """Foreground latency of ``ds[t, z]`` for t = 0..T-1 (a viewer playing planes), with a
    ``pause`` before every read as a display would, with and without ``ds.prefetch`` reading
    ``ahead`` frames ahead. Every configuration plays the same planes on fresh readers.

    The readers without prefetch take turns frame by frame, each going first in turn, so that
    they meet the machine's quiet and busy moments alike (played one after the other, their
    p50 moved by as much as the gap between them); the prefetching reader plays alone after
    them, since its background reads would run during the others' reads."""
    T, Z = array.shape[:2]
    n_z = max(1, min(Z, -(-samples // T)))
    zs = [int(z) for z in np.random.default_rng(7).permutation(Z)[:n_z]]
    frames = [(t, z) for z in zs for t in range(T)]
    turns = {
        "h5py": H5pyReader(folder),
        FLOOR: _frame_floor(folder, frames),
        "ours t=1": PackageReader(folder, 1),
        "ours t=2": PackageReader(folder, 2),
        UNCHECKED: UncheckedFilesReader(folder, 1),
    }
    played = {name: dict(times=[], cpu=0.0, wall=0.0, correct=True) for name in turns}
    if not turns[FLOOR].in_frame_order:  # chunks that are not row bands: the work, not a frame
        played[FLOOR]["correct"] = None
    names = list(turns)
    for number, (t, z) in enumerate(frames):
        for name in wl.taking_turns(names, number):
            time.sleep(pause)
            _play_frame(turns[name], (t, z), array, played[name], flat=name == FLOOR)
    prefetching_name = f"ours t=2 + prefetch {ahead}"
    prefetching = PackageReader(folder, 2)
    played[prefetching_name] = dict(times=[], cpu=0.0, wall=0.0, correct=True)
    for t, z in frames:
        time.sleep(pause)
        _play_frame(prefetching, (t, z), array, played[prefetching_name])
        for k in range(1, ahead + 1):
            if t + k < T:
                prefetching.ds.prefetch((t + k, z))
    out = dict(zs=zs, pause=pause, ahead=ahead, results={})
    for name, entry in played.items():
        wall = entry.pop("wall")
        entry["cpu_per_wall"] = entry.pop("cpu") / wall if wall else 0.0
        entry["note"] = {
            prefetching_name: f"read ahead {ahead} frames",
            FLOOR: "not a reader: the least work of a frame"
            + ("" if entry["correct"] is not None else " (chunks not in frame order)"),
            UNCHECKED: "diagnostic: no stat of the file before the read",
        }.get(name, "")
        entry.update(wl.stats(entry["times"]))
        out["results"][name] = entry
    for reader in [*turns.values(), prefetching]:
        reader.close()
    return out


def _check_mark(correct: bool | None) -> str:
    return "—" if correct is None else "✓" if correct else "✗"


def _play_frame(reader, index: tuple, array: np.ndarray, entry: dict, flat: bool = False) -> None:
    """One timed frame, checked against NumPy; ``flat``: the floor returns the frame's chunks
    one after the other."""
    cpu0, t0 = time.process_time(), time.perf_counter()
    frame = reader.read(index)
    t1, cpu1 = time.perf_counter(), time.process_time()
    entry["times"].append(t1 - t0)
    entry["cpu"] += cpu1 - cpu0
    entry["wall"] += t1 - t0
    if entry["correct"] is not None:
        expected = array[index]
        entry["correct"] &= bool(np.array_equal(frame, expected.reshape(-1) if flat else expected))


def measure_variant(key, folder: Path, array: np.ndarray, workloads: dict, args, v04: str | None,
                    ts_python: str | None, tmp: Path, cold: bool) -> dict:
    variant, tpf = key
    shape = array.shape
    files = data.block_files(folder)
    out = dict(variant=variant, tpf=tpf, folder=str(folder), cold=cold, workloads={},
               load_start=wl.loadavg())
    if not cold:
        wl.warm_cache(files)
    readers = {
        "h5py": H5pyReader(folder),
        "ours t=1": PackageReader(folder, 1),
        "ours t=2": PackageReader(folder, 2),
        "ours t=2 out=": PackageReader(folder, 2, reuse_out=True),
    }
    ds = readers["ours t=1"].ds
    names = [n for n in workloads if not cold or n in wl.COLD_WORKLOADS]
    for name in names:
        w = workloads[name]
        active = {k: r for k, r in readers.items()
                  if not (k == "ours t=2 out=" and (w.kind != "throughput" or cold))}
        t0 = time.perf_counter()
        entry = measure.measure_workload(active, w, ds, reference=array, files=files, cold=cold,
                                         reps=args.reps)
        results = entry["results"]
        if name == "full" and not cold:
            for k, r in active.items():
                results[k]["peak_bytes"] = peak_memory(r, w.selections[0])
        out["workloads"][name] = entry
        summary = ", ".join(f"{k} {r.get('median', float('nan')) * 1e3:.2f} ms"
                            for k, r in results.items() if r.get("times"))
        log(f"{variant} tpf={tpf}{' COLD' if cold else ''} {name}: {summary} "
            f"({time.perf_counter() - t0:.1f} s, load {entry['load']})")
    for r in readers.values():
        r.close()
    del readers, ds
    if not cold and "plane" in workloads and args.playback:
        t0 = time.perf_counter()
        out["playback"] = playback(folder, array, args.latency_samples)
        log(f"{variant} tpf={tpf} playback: " + ", ".join(
            f"{k} p50 {r.get('p50', float('nan')) * 1e3:.3f} ms p99 {r.get('p99', float('nan')) * 1e3:.3f} ms"
            for k, r in out["playback"]["results"].items()) + f" ({time.perf_counter() - t0:.1f} s)")
    gc.collect()

    workload_file = tmp / "workloads.json"
    workload_file.write_text(json.dumps([workloads[n].to_json() for n in names]))
    array_file = data.cache_dir(shape) / "array.npy"
    if v04:
        try:
            t0 = time.perf_counter()
            got = run_04x(v04, folder, workload_file, array_file, cold)
            out["v04_version"] = got["version"]
            for name, r in got["results"].items():
                out["workloads"][name]["results"]["0.4.x"] = r
            log(f"{variant} tpf={tpf}{' COLD' if cold else ''} 0.4.x done "
                f"({time.perf_counter() - t0:.1f} s)")
        except Exception as error:  # noqa: BLE001
            out["v04_error"] = str(error)
            log(f"0.4.x failed: {error}")
    if ts_python and variant == "lz4" and tpf == 1:
        try:
            t0 = time.perf_counter()
            chunks = SplitDataset(folder).layout(0).chunk_shape
            zarr = data.cache_dir(shape) / "lz4_zarr3"
            got = run_tensorstore(ts_python, zarr, array_file, chunks, workload_file, cold)
            out["tensorstore_stored"] = got["stored"]
            out["tensorstore_chunks"] = list(chunks)
            for name, rs in got["results"].items():
                out["workloads"][name]["results"].update(rs)
            log(f"tensorstore done ({time.perf_counter() - t0:.1f} s)")
        except Exception as error:  # noqa: BLE001
            out["tensorstore_error"] = str(error)
            log(f"tensorstore failed: {error}")
    # ratios and % of ceiling for the subprocess readers too
    ds = SplitDataset(folder)
    for name in names:
        entry = out["workloads"][name]
        measure.evaluate(ds, workloads[name], entry["ceiling"], entry["results"], THREADS)
    out["load_end"] = wl.loadavg()
    return out


# --- Markdown ----------------------------------------------------------------------------------


def ms(x) -> str:
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "—"
    return f"{x * 1e3:.3g}" if x * 1e3 < 100 else f"{x * 1e3:.0f}"


def gbps(x) -> str:
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "—"
    return f"{x / 1e9:.2f}"


def ratio(a, b) -> str:
    if not a or not b:
        return "—"
    return f"{a / b:.2f}×"


def metric(r: dict, kind: str):
    return r.get("p50") if kind == "latency" else r.get("median")


def render(report: dict) -> str:
    info = report["machine"]
    lines = []
    add = lines.append
    add("# split_dataset read benchmarks")
    add("")
    add(f"Generated by `python benchmarks/report.py --size {report['size']}` on {info['date']}. "
        "Rules: `shared/BENCHMARKS.md`. All figures of a table come from the same run.")
    add("")
    add("## Machine and run")
    add("")
    add("| | |")
    add("|---|---|")
    add(f"| CPU | {info['cpu']} |")
    add(f"| nproc / usable cores | {info['nproc']} / {info['affinity']} |")
    add(f"| memory | {info['memory']} |")
    add(f"| proactive reclaim | {info.get('memory_reclaim', '?')} |")
    add(f"| kernel, Python | {info['kernel']}, {info['python']} |")
    add(f"| numpy, h5py (HDF5), hdf5plugin, blosc2, tables | {info['numpy']}, {info['h5py']} "
        f"({info['hdf5']}), {info['hdf5plugin']}, {info['blosc2']}, {info['tables']} |")
    add(f"| split_dataset | {info['split_dataset']} (default threads {info['default_threads']}) |")
    add(f"| 0.4.x | {report.get('v04') or 'not available'} |")
    add(f"| tensorstore | {report.get('tensorstore') or 'not available'} |")
    add(f"| data | shape {tuple(report['shape'])} uint16, {report['nbytes'] / 1e9:.2f} GB, "
        f"seed {report['seed']}; pure-noise volume at t={report['noise_t']} |")
    add(f"| repetitions | {report['reps']} per throughput workload (rotating selections); "
        f"latency: up to {report['latency_samples']} distinct samples |")
    add(f"| load average (1/5/15 min) | start {report['load_start']}, end {report['load_end']} |")
    add(f"| wall time of the run | {report['duration'] / 60:.1f} min |")
    add(f"| memcpy (np.copyto 256 MiB, 1 thread) | {report['memcpy']['gbps']:.2f} GB/s |")
    a = report["alloc"]
    add(f"| fresh allocation + first touch of {a['bytes'] / 2**20:.0f} MiB (np.empty, one write "
        f"per page), 7× | median {ms(a['median'])} ms ({a['gbps']:.2f} GB/s), min {ms(a['min'])} "
        f"ms, max {ms(a['max'])} ms |")
    scaling = report.get("compute_scaling")
    if scaling:
        add(f"| 2 threads vs 1, pure compute (SHA-256 of a 256 KiB buffer, in each core's "
            f"cache) | {scaling['speedup']:.2f}× the 1-thread rate |")
    add(f"| ceiling decoders (ctypes) | {info['ceiling_decoders']} |")
    add(f"| environment | {info['env'] or '-'} |")
    add("")
    add("Readers: **h5py** = h5py + hdf5plugin, every block file and its dataset kept open, "
        "HDF5's chunk cache off (`rdcc_nbytes=0`: no read served from an earlier one's chunks; "
        "until 2026-12-07 the cache was emptied by reopening the datasets before each read, "
        "which cost h5py 34-62 us more per 512 x 512 plane), `dset[sel]` per file "
        "and a NumPy copy into the output (single-file selections return h5py's array as is); "
        "**ours t=n** = `SplitDataset(folder, threads=n)[sel]` (fresh output array); "
        "**ours t=2 out=** = `ds.read(sel, out=buf)` with a reused buffer; **0.4.x** = the "
        "released package (flammkuchen/PyTables, opens each file per read), run in its own "
        "virtualenv; **tensorstore** = zarr v3 copy (sharded per time point, same inner chunks, "
        "blosc lz4 level 9 + shuffle), only next to the lz4 tpf=1 variant.")
    add("")
    add("Ceiling = the same chunks the workload reads: `min(threads × single-thread decode rate, "
        "page-cache pread rate)` (decoded bytes per second; decode-only from memory into a reused "
        "buffer through the very decoders the package links, c-blosc2 and zlib-ng, called via "
        "ctypes; pread of the same byte ranges into a reused buffer; the all-core pread rate for "
        "n > 1). *% ceiling* = ideal time / measured median. *% of measured 2-core* uses the "
        "decode rate measured on 2 threads in this run instead of 2 × the 1-core rate: on a "
        "shared machine where another process holds a core, 2 × 1-core is out of reach and this "
        "column says how close we came to what the machine actually delivered. *% pread+decode* "
        "uses per thread 1 / (1/decode rate + 1/pread rate), both measured on one thread in this "
        "run: the ceiling of a reader that copies each chunk out of the page cache and then "
        "decodes it on the same core (the decode-only ceiling leaves the copy out). Neither "
        "ceiling includes the first touch of a fresh output array (see the allocation line "
        "above); the *out=* column avoids it. *% into the output* measures against the same work "
        "done into memory a reader must fill: each chunk decoded (uncompressed data: `pread`) "
        "into its own place of an output of the chunks' total size, its pages touched beforehand "
        "(`ceiling.measure_in_place`), on 1 and 2 threads; the ceilings above decode into a "
        "small buffer that stays in the core's cache and write no memory. Uncompressed chunks "
        "are read only from the first to the "
        "last selected element, so a small region of raw data can beat the ceiling, which "
        "counts whole chunks. *vs h5py* and *vs 0.4.x* = their "
        "median (p50 for latency) / ours: above 1× means we are faster. CPU/wall = process CPU "
        "time / wall time over the timed calls (≈ threads when the threads really run). The "
        "readers are interleaved selection by selection, each going first in turn, hot and "
        "cold: a small read's time depends on what ran just before it.")
    add("")
    if report["size"] == "small":
        add("**Small (smoke) size**: the whole array is 1.6 MB, so h5py's per-dataset chunk cache "
            "(1 MiB per open file) serves many reads without decoding and every time is "
            "dominated by per-call overhead; the latency runs have fewer than 300 distinct "
            "samples (T × Z = 48). Only the full size says anything about speed.")
        add("")
    add("### Data (compression as stored)")
    add("")
    add("| variant | filters | time points / file | stored MB | ratio | ratio without the noise volume | chunk shape |")
    add("|---|---|---|---|---|---|---|")
    for c in report["compression"]:
        add(f"| {c['variant']} | {data.VARIANTS[c['variant']][1]} | {c['tpf']} | "
            f"{c['stored'] / 1e6:.1f} | {c['ratio']:.2f}× | {c['image_ratio']:.2f}× | "
            f"{tuple(c['chunks'])} |")
    add("")

    # summary
    def decode_scaling(report):
        """Two threads' decode rate over one thread's, on the full read's chunks, beside pure
        compute's: what 2 x the 1-core rate (the *% ceiling* column) assumes."""
        speedups = []
        for run in report["hot"]:
            ceil = run["workloads"].get("full", {}).get("ceiling", {})
            one, two = ceil.get("decode1_rate"), ceil.get("decode2_rate")
            if one and two and np.isfinite(one) and np.isfinite(two):  # raw: nothing to decode
                speedups.append(f"{run['variant']} tpf={run['tpf']} {two / one:.2f}×")
        scaling = report.get("compute_scaling")
        if not speedups or not scaling:
            return
        add(f"How far 2 threads go on this machine: pure compute {scaling['speedup']:.2f}× the "
            f"1-thread rate; decoding the chunks of the full read (this run's ceiling, decode "
            f"only, no reader): {', '.join(speedups)}. Unlike the compute loop, decoding reads and "
            "writes memory through the cache the two cores share; 2 × the 1-core rate, which "
            "*% ceiling* assumes, is out of the machine's reach by that much, and *% of measured "
            "2-core* measures against what 2 decoding threads reached.")
        add("")

    def in_place(report):
        """Full reads against the ceiling's work into a small buffer and into an output of the
        result's size (the memory a read must fill)."""
        rows = []
        n = ceiling.N_CORES
        for run in report["hot"]:
            w = run["workloads"].get("full", {})
            c = w.get("ceiling", {})
            # decode rate (raw data: pread rate) on n threads, into the output and a small buffer
            placed, small = ceiling.in_place_rate(c, n), ceiling.measured_rate(c, n)
            fresh = metric(w.get("results", {}).get("ours t=2", {}), w.get("kind"))
            reused = metric(w.get("results", {}).get("ours t=2 out=", {}), w.get("kind"))
            if placed == placed and small == small and fresh and reused:  # NaN: not measured
                ours, ours_out = c["decoded"] / fresh, c["decoded"] / reused
                rows.append(f"| {run['variant']} tpf={run['tpf']} | {ours / 1e9:.2f} | "
                            f"{ours_out / 1e9:.2f} | {small / 1e9:.2f} | {placed / 1e9:.2f} | "
                            f"{100 * ours / small:.0f}% / {100 * ours_out / small:.0f}% | "
                            f"{100 * ours / placed:.0f}% / {100 * ours_out / placed:.0f}% |")
        if rows:
            add(f"### Full reads against the work done into the output's memory ({n} threads)")
            add("")
            add(f"The ceiling decodes (uncompressed data: `pread`s) every chunk into a small "
                "buffer that stays in the core's cache. A reader must write its result to "
                "memory: *into the output* does the same work, each chunk into its own place in "
                "an output of the result's size whose pages were touched beforehand (no page "
                "faults: compare with *ours t=2 out=*). GB/s of decoded data, medians.")
            add("")
            add("| data | ours t=2 | ours t=2 out= | into a small buffer | into the output | "
                "ours / small, fresh / out= | ours / into the output, fresh / out= |")
            add("|---|---|---|---|---|---|---|")
            for row in rows:
                add(row)
            add("")

    def summary_table(runs, title):
        add(title)
        add("")
        add("Median ms (p50 for plane/volume). Ratios: the other reader's time / ours t=2.")
        add("")
        has04 = any("0.4.x" in w["results"] for run in runs for w in run["workloads"].values())
        head = "| data | workload | h5py | " + ("0.4.x | " if has04 else "") + \
            "ours t=1 | ours t=2 | ours t=2 out= | t=2 vs h5py | " + \
            ("t=2 vs 0.4.x | " if has04 else "") + \
            "% ceiling t=1 / t=2 | % pread+decode t=1 / t=2 | t=2 % of measured 2-core | " \
            "% into the output t=1 / t=2 / t=2 out= | t=2 CPU/wall |"
        add(head)
        add("|" + "---|" * (head.count("|") - 1))
        for run in runs:
            for name, w in run["workloads"].items():
                res, kind = w["results"], w["kind"]
                h = metric(res.get("h5py", {}), kind)
                o1 = metric(res.get("ours t=1", {}), kind)
                o2 = metric(res.get("ours t=2", {}), kind)
                v = metric(res.get("0.4.x", {}), kind)
                p1 = res.get("ours t=1", {}).get("pct_ceiling")
                p2 = res.get("ours t=2", {}).get("pct_ceiling")
                pct = "—" if p1 is None else f"{p1:.0f}% / {p2:.0f}%"
                cw = res.get("ours t=2", {}).get("cpu_per_wall")
                row = f"| {run['variant']} tpf={run['tpf']} | {name} | {ms(h)} | "
                if has04:
                    row += f"{ms(v)} | "
                oo = metric(res.get("ours t=2 out=", {}), kind)
                row += f"{ms(o1)} | {ms(o2)} | {ms(oo)} | {ratio(h, o2)} | "
                if has04:
                    row += f"{ratio(v, o2)} | "
                pm = res.get("ours t=2", {}).get("pct_measured")
                s1 = res.get("ours t=1", {}).get("pct_serial")
                s2 = res.get("ours t=2", {}).get("pct_serial")
                serial = "—" if s1 is None or s2 is None else f"{s1:.0f}% / {s2:.0f}%"
                placed = [res.get(k, {}).get("pct_in_place") for k in OURS]
                placed_text = "—" if all(p is None for p in placed) else " / ".join(
                    "—" if p is None else f"{p:.0f}%" for p in placed)
                row += f"{pct} | {serial} | {'—' if pm is None else f'{pm:.0f}%'} | "
                row += f"{placed_text} | "
                row += f"{'—' if cw is None else f'{cw:.2f}'} |"
                add(row)
        add("")

    summary_table(report["hot"], "## Summary, hot page cache")
    decode_scaling(report)
    in_place(report)
    if any(run.get("playback") for run in report["hot"]):
        add("## Summary, playback (hot cache)")
        add("")
        add("`ds[t, z]` for t = 0..T-1 with a 5 ms pause before every read (a display), the "
            "readers without prefetch taking turns frame by frame; foreground "
            "latency p50 / p99 in ms. Prefetch: `ds.prefetch((t + k, z))` for k = 1..4 after "
            f"each frame. *{FLOOR}*: the machine's floor, the same chunks `pread` and decoded "
            "by the same C decoders from Python on one thread, looked up beforehand "
            "(`ceiling.FrameFloor`), after the same pause: its p99 / p50 is the machine's own "
            f"tail after an idle pause. *{UNCHECKED}*: a diagnostic, not a setting: our reader "
            "without the `stat` of the block file's path that every read makes to notice a file "
            "replaced or changed since it was opened (a file replaced meanwhile would be read "
            "stale); the difference from *ours t=1* is what that check costs a frame.")
        add("")
        names = []
        for run in report["hot"]:
            for k in run.get("playback", {}).get("results", {}):
                if k not in names:
                    names.append(k)
        add("| data | " + " | ".join(names) + " |")
        add("|---|" + "---|" * len(names))
        for run in report["hot"]:
            res = run.get("playback", {}).get("results", {})
            cells = []
            for k in names:
                r = res.get(k, {})
                cells.append(f"{ms(r['p50'])} / {ms(r['p99'])}" if r.get("times") else "—")
            add(f"| {run['variant']} tpf={run['tpf']} | " + " | ".join(cells) + " |")
        add("")
    if report["cold"]:
        summary_table(report["cold"], "## Summary, COLD cache (pages dropped before every read)")
        add("Cold = `posix_fadvise(DONTNEED)` on every block file before each timed read (files "
            "fsynced when written). On this VM the virtual disk may itself be cached by the host, "
            "so 'cold' is the guest's cold, not necessarily a physical disk read. The ceiling of "
            "the cold rows uses the cold pread rate of the same chunks.")
        add("")

    # details
    def details(run):
        cold = " — COLD cache" if run["cold"] else ""
        add(f"### {run['variant']}, {run['tpf']} time point(s) per file{cold}")
        add("")
        add(f"load average {run['load_start']} → {run['load_end']}")
        if run.get("v04_error"):
            add(f"; 0.4.x failed: `{run['v04_error'][-300:]}`")
        if run.get("tensorstore_error"):
            add(f"; tensorstore failed: `{run['tensorstore_error'][-300:]}`")
        add("")
        add("| workload | reader | median ms | min ms | p50 / p99 ms | GB/s returned | vs h5py | vs 0.4.x | % ceiling (n × 1-core / measured n-core) | CPU/wall | peak MB | correct | note |")
        add("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for name, w in run["workloads"].items():
            res, kind = w["results"], w["kind"]
            h = metric(res.get("h5py", {}), kind)
            v = metric(res.get("0.4.x", {}), kind)
            for reader, r in res.items():
                if not r.get("times"):
                    add(f"| {name} | {reader} | — | — | — | — | — | — | — | — | — | — | {r.get('note', '')} |")
                    continue
                m = metric(r, kind)
                lat = f"{ms(r['p50'])} / {ms(r['p99'])}" if kind == "latency" else "—"
                pct = r.get("pct_ceiling")
                pct_text = "—" if pct is None else f"{pct:.0f}% / {r.get('pct_measured', 0):.0f}%"
                peak = r.get("peak_bytes")
                vs_h = ratio(h, m) if reader != "h5py" else ""
                vs_v = ratio(v, m) if reader != "0.4.x" and v else "—"
                add(f"| {name} `{w['example']}` | {reader} | {ms(r['median'])} | {ms(r['min'])} | "
                    f"{lat} | {r.get('returned_gbps', 0):.2f} | {vs_h} | {vs_v} | "
                    f"{pct_text} | "
                    f"{r.get('cpu_per_wall', 0):.2f} | "
                    f"{'—' if peak is None else f'{peak / 1e6:.0f}'} | "
                    f"{'✓' if r.get('correct') else ('✗' if r.get('correct') is False else '?')} | "
                    f"{r.get('note', '')} |")
        add("")
        if run.get("playback"):
            pb = run["playback"]
            add(f"Playback: `ds[t, z]` for t = 0..T-1 on planes z = {pb['zs']}, "
                f"{pb['pause'] * 1e3:.0f} ms pause before every read (a display), readers without "
                "prefetch taking turns frame by frame, foreground latency "
                "only:")
            add("")
            add("| reader | p50 ms | p99 ms | max ms | vs h5py (p50) | CPU/wall | correct | note |")
            add("|---|---|---|---|---|---|---|---|")
            h = pb["results"].get("h5py", {}).get("p50")
            for reader, r in pb["results"].items():
                if not r.get("times"):
                    add(f"| {reader} | — | — | — | — | — | — | {r.get('note', '')} |")
                    continue
                add(f"| {reader} | {ms(r['p50'])} | {ms(r['p99'])} | {ms(max(r['times']))} | "
                    f"{ratio(h, r['p50']) if reader != 'h5py' else ''} | "
                    f"{r['cpu_per_wall']:.2f} | {_check_mark(r['correct'])} | {r['note']} |")
            add("")
        add("Ceiling, measured on the union of the chunks of the timed selections (of the first "
            "50 samples for plane/volume); ideal = median over the selections of their decoded "
            "bytes / ceiling rate:")
        add("")
        add("| workload | chunks | stored MB | decoded MB | decoded / returned | decode 1 core GB/s | decode all cores GB/s | pread 1 thread GB/s (stored) | pread all threads GB/s (stored) | ideal ms t=1 / t=2 |")
        add("|---|---|---|---|---|---|---|---|---|---|")
        n = report["machine"]["affinity"]
        for name, w in run["workloads"].items():
            c = w["ceiling"]
            if not c.get("n_chunks"):
                continue
            ret = c.get("returned_per_selection") or 1
            add(f"| {name} | {c['n_chunks']} | {c['stored'] / 1e6:.2f} | {c['decoded'] / 1e6:.2f} | "
                f"{c.get('decoded_per_selection', 0) / ret:.1f} | {gbps(c.get('decode1_rate'))} | "
                f"{gbps(c.get(f'decode{n}_rate'))} | {gbps(c.get('pread1_rate'))} | "
                f"{gbps(c.get(f'pread{n}_rate'))} | {ms(c.get('ideal_t1'))} / {ms(c.get('ideal_t2'))} |")
        add("")

    add("## Details")
    add("")
    for run in report["hot"] + report["cold"]:
        details(run)

    # anomalies
    add("## Flagged automatically")
    add("")
    flagged = []
    for run in report["hot"] + report["cold"]:
        tag = f"{run['variant']} tpf={run['tpf']}{' COLD' if run['cold'] else ''}"
        for name, w in run["workloads"].items():
            res, kind = w["results"], w["kind"]
            h = metric(res.get("h5py", {}), kind)
            for reader in ("ours t=1", "ours t=2"):
                m = metric(res.get(reader, {}), kind)
                if h and m and m > h * 1.05:
                    flagged.append(f"- {tag} {name}: {reader} {ms(m)} ms is slower than h5py {ms(h)} ms")
            r2 = res.get("ours t=2", {})
            if r2.get("pct_ceiling") is not None and r2["pct_ceiling"] < 50 and w["kind"] != "open":
                flagged.append(f"- {tag} {name}: ours t=2 at {r2['pct_ceiling']:.0f}% of the ceiling")
            for reader, r in res.items():
                if r.get("correct") is False:
                    flagged.append(f"- {tag} {name}: {reader} returned a WRONG result")
        pb = run.get("playback", {}).get("results", {})
        h = pb.get("h5py", {}).get("p50")
        for reader, r in pb.items():
            if reader not in ("h5py", FLOOR, UNCHECKED) and h and r.get("p50") and r["p50"] > h * 1.05:
                flagged.append(f"- {tag} playback: {reader} p50 {ms(r['p50'])} ms is slower than "
                               f"h5py {ms(h)} ms")
            if r.get("correct") is False:
                flagged.append(f"- {tag} playback: {reader} returned a WRONG frame")
    lines.extend(flagged or ["- nothing"])
    add("")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", choices=sorted(data.SIZES), default=None,
                        help="default: $SPLIT_DATASET_BENCH_SIZE or small")
    parser.add_argument("--out", default=None, help="Markdown file (default: print)")
    parser.add_argument("--json", default=None, help="also dump the raw results here")
    parser.add_argument("--variants", default=None, help="comma-separated: blosc,lz4,zlib,raw")
    parser.add_argument("--tpf", default="1,10", help="time points per file, comma-separated")
    parser.add_argument("--workloads", default=None, help="subset, comma-separated")
    parser.add_argument("--reps", type=int, default=wl.DEFAULT_REPS)
    parser.add_argument("--latency-samples", type=int, default=wl.DEFAULT_LATENCY_SAMPLES)
    parser.add_argument("--no-playback", dest="playback", action="store_false",
                        help="skip the playback (prefetch) measurement")
    parser.add_argument("--cold-variants", default="blosc",
                        help="variants also measured with a cold cache ('' for none)")
    parser.add_argument("--v04-python", default=None,
                        help="python of a virtualenv with split_dataset 0.4.x "
                             "(default $SPLIT_DATASET_BENCH_V04_PYTHON or /tmp/venv04/bin/python)")
    parser.add_argument("--ts-python", default=None,
                        help="python of a virtualenv with tensorstore "
                             "(default $SPLIT_DATASET_BENCH_TS_PYTHON or /tmp/venvts/bin/python)")
    args = parser.parse_args(argv)
    if args.reps < 7:
        log(f"warning: {args.reps} repetitions, BENCHMARKS.md asks for >= 7")

    started = time.perf_counter()
    size = data.bench_size(args.size)
    shape = data.SIZES[size]
    variants = args.variants.split(",") if args.variants else list(data.DEFAULT_VARIANTS[size])
    tpfs = tuple(int(t) for t in args.tpf.split(","))
    report = dict(size=size, shape=list(shape), seed=data.SEED, reps=args.reps,
                  latency_samples=args.latency_samples, noise_t=data.noise_time_point(shape),
                  machine=machine.machine_info(), load_start=wl.loadavg(), hot=[], cold=[])
    log(f"size {size} {shape}, variants {variants}, tpf {tpfs}, load {report['load_start']}")
    array, paths = data.prepare(size, variants, tpfs)
    report["nbytes"] = array.nbytes
    report["compression"] = []
    for (variant, tpf), folder in paths.items():
        c = data.compression_summary(shape, folder)
        c.update(variant=variant, tpf=tpf,
                 chunks=SplitDataset(folder).layout(0).chunk_shape)
        report["compression"].append(c)
        log(f"{variant} tpf={tpf}: ratio {c['ratio']:.2f}x (image-like {c['image_ratio']:.2f}x)")

    workloads = wl.make_workloads(shape, args.reps, args.latency_samples)
    if args.workloads:
        keep = args.workloads.split(",")
        workloads = {k: v for k, v in workloads.items() if k in keep}
    report["memcpy"] = ceiling.memcpy_rate()
    report["alloc"] = ceiling.alloc_rate(min(array.nbytes, 1 << 30))
    report["compute_scaling"] = ceiling.compute_scaling()
    log(f"memcpy {report['memcpy']['gbps']:.2f} GB/s, alloc {report['alloc']['gbps']:.2f} GB/s")

    v04 = find_python(args.v04_python, "SPLIT_DATASET_BENCH_V04_PYTHON", "/tmp/venv04/bin/python")
    if v04:
        try:
            proc = subprocess.run([v04, str(HERE / "run_04x.py"), "--version"], capture_output=True,
                                  text=True, env=runner_env(), check=True)
            got = json.loads(proc.stdout)
            report["v04"] = f"split_dataset {got['version']} with numpy {got['numpy']} ({v04})"
        except Exception as error:  # noqa: BLE001
            log(f"0.4.x not usable: {error}")
            v04 = None
    ts_python = find_python(args.ts_python, "SPLIT_DATASET_BENCH_TS_PYTHON", "/tmp/venvts/bin/python")
    if ts_python:
        proc = subprocess.run([ts_python, "-c", "import tensorstore, numpy; "
                               "from importlib.metadata import version; "
                               "print(version('tensorstore'), numpy.__version__)"],
                              capture_output=True, text=True, env=runner_env())
        if proc.returncode:
            ts_python = None
        else:
            ts_v, np_v = proc.stdout.split()
            report["tensorstore"] = f"tensorstore {ts_v} with numpy {np_v} ({ts_python})"

    cold_variants = [v for v in args.cold_variants.split(",") if v]
    with tempfile.TemporaryDirectory() as tmp:
        for key, folder in paths.items():
            report["hot"].append(measure_variant(key, folder, array, workloads, args, v04,
                                                 ts_python, Path(tmp), cold=False))
        for key, folder in paths.items():
            if key[0] in cold_variants:
                report["cold"].append(measure_variant(key, folder, array, workloads, args, v04,
                                                      ts_python, Path(tmp), cold=True))
                wl.warm_cache(data.block_files(folder))
    report["load_end"] = wl.loadavg()
    report["duration"] = time.perf_counter() - started
    text = render(report)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1, default=str))
    if args.out:
        Path(args.out).write_text(text + "\n")
        log(f"wrote {args.out}")
    else:
        print(text)


if __name__ == "__main__":
    main()
