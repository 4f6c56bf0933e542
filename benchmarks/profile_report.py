"""Where the time of each read goes, and what reading ahead does for cold files.

    python benchmarks/profile_report.py --out benchmarks/RESULTS_profile.md

Hot page cache, per variant and workload: the median time of ``ds[sel]`` on 2 threads (fresh
output, and ``out=`` a reused buffer), its share of the decode ceiling measured in the same
run (``split_dataset.tools.ceiling``), and from ``split_dataset.profile_reads`` the share of
the cores' time spent planning, in pread (copying out of the page cache), decoding, copying
into the output, idle, and the page faults (first touch of the output).

Cold (pages dropped before every read): the reader with read-ahead (a chunk missing from the
page cache makes it posix_fadvise the planned chunks ahead, from a thread of its own) against
the same reader advising from the decoding threads (as before that thread) and with no
read-ahead, interleaved, and all against the two limits measured in the same run: reading
the same stored bytes cold (pread, 1 and 2 threads) and decoding them (2 threads).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
if __package__ in (None, ""):
    sys.path.insert(1, str(HERE.parent))

import data  # noqa: E402
import machine  # noqa: E402
import numpy as np  # noqa: E402

from split_dataset import (  # noqa: E402
    SplitDataset,
    file_cache,
    output_memory,
    profile_reads,
    reader,
)
from split_dataset.tools import ceiling, measure  # noqa: E402
from split_dataset.tools import workloads as wl  # noqa: E402
from split_dataset.tools.readers import PackageReader  # noqa: E402

HOT_WORKLOADS = ("plane", "volume", "zcol", "roi", "stride", "fancy", "full")
COLD_WORKLOADS = ("volume", "zcol", "full")
FRESH_EXPERIMENT_WORKLOADS = ("zcol", "stride", "fancy", "full")
THREADS = 2


class ReadAheadReader(PackageReader):
    """The package with reading ahead on or off (``reader.READ_AHEAD``) for its reads, asked
    for from a thread of its own or from the decoding threads (``reader.READ_AHEAD_THREAD``)."""

    def __init__(self, folder: Path, threads: int, read_ahead: bool, thread: bool = True) -> None:
        super().__init__(folder, threads, reuse_out=True)
        self.read_ahead = read_ahead
        self.thread = thread

    def read(self, index: tuple) -> np.ndarray:
        saved = reader.READ_AHEAD, reader.READ_AHEAD_THREAD
        reader.READ_AHEAD, reader.READ_AHEAD_THREAD = self.read_ahead, self.thread
        try:
            return super().read(index)
        finally:
            reader.READ_AHEAD, reader.READ_AHEAD_THREAD = saved


class UnlentReader(PackageReader):
    """The package with every output a new ``np.empty`` array, as before outputs lent the
    memory of earlier ones (``output_memory``): what a fresh array costs."""

    def read(self, index: tuple) -> np.ndarray:
        saved, output_memory.MIN_BYTES = output_memory.MIN_BYTES, 1 << 62
        try:
            return super().read(index)
        finally:
            output_memory.MIN_BYTES = saved


def profiled(ds: SplitDataset, selections: list, files=None) -> dict:
    """One pass over the selections with a profile on (cold: pages dropped before each)."""
    with profile_reads() as profile:
        for index in selections:
            if files:
                wl.drop_cache(files)
            ds[index]
    return dict(
        shares=profile.shares(),
        minor_faults=profile.minor_faults / profile.reads,
        chunks=profile.chunks / profile.reads,
        missed=profile.missed_chunks / profile.reads,
        cpu_per_busy=profile.cpu_s / profile.busy_s if profile.busy_s else 0.0,
    )


def hot(folder: Path, array: np.ndarray, workloads: dict, reps: int) -> dict:
    wl.warm_cache(data.block_files(folder))
    readers = hot_readers(folder, array)
    ds = readers["fresh"].ds
    if ds.layout(0).codec in file_cache.MAPPED_CODECS:
        readers["out= pread"] = unmapped = PackageReader(folder, THREADS, reuse_out=True)
        unmapped.ds._cache.mapped_budget = 0  # every file read with pread, as before mapping
    out = {}
    for name in HOT_WORKLOADS:
        workload = workloads[name]
        results = wl.run_workload(readers, workload, array)
        chunks = measure.chunk_set(ds, workload)
        ceil = ceiling.measure_ceiling(chunks, reps=reps)
        measure.evaluate(
            ds, workload, ceil, results, {"fresh": THREADS, "not lent": THREADS, "out=": THREADS}
        )
        nbytes = wl.result_nbytes(workload.selections[0], array.shape, array.itemsize)
        back_to_back = ceiling.alloc_rate(nbytes, reps=reps, threads=THREADS)
        out[name] = dict(
            results=results,
            ceiling=ceil,
            profile=profiled(ds, workload.selections[:reps]),
            first_touch_s=results["first touch"]["median"],
            first_touch_back_to_back_s=back_to_back["median"],
        )
        gc.collect()
    for r in readers.values():
        r.close()
    return out


def hot_readers(folder: Path, array: np.ndarray) -> dict:
    """``ds[...]`` (outputs lent the memory of earlier ones), the same with every output a new
    array, a reused ``out=``, and the first touch of a fresh output's size taking turns with
    them (what such an allocation cost at those moments, see ``FirstTouch``)."""
    return {
        "fresh": PackageReader(folder, THREADS),
        "not lent": UnlentReader(folder, THREADS),
        "out=": PackageReader(folder, THREADS, reuse_out=True),
        "first touch": ceiling.FirstTouch(array.shape, array.itemsize, THREADS),
    }


def fresh_with_reporting_paused(
    folder: Path, array: np.ndarray, workloads: dict, reps: int
) -> dict:
    """The fresh-output workloads run twice, the VM's free-page reporting on and then paused
    (``machine.free_page_reporting_paused``): the part of a fresh read's time that is the
    host refaulting pages the guest handed back."""
    wl.warm_cache(data.block_files(folder))
    readers = hot_readers(folder, array)
    states = {"on": contextlib.nullcontext, "paused": machine.free_page_reporting_paused}
    out: dict = {}
    for name in FRESH_EXPERIMENT_WORKLOADS:
        entry = out[name] = dict(correct=True)
        for state, reporting in states.items():
            with reporting():
                results = wl.run_workload(readers, workloads[name], array)
            entry[state] = {k: v["median"] for k, v in results.items()}
            entry["correct"] &= all(r.get("correct") is not False for r in results.values())
    for r in readers.values():
        r.close()
    return out


def cold(folder: Path, array: np.ndarray, workloads: dict, reps: int) -> dict:
    files = data.block_files(folder)
    readers = {
        "read-ahead": ReadAheadReader(folder, THREADS, True),
        "read-ahead on decoders": ReadAheadReader(folder, THREADS, True, thread=False),
        "no read-ahead": ReadAheadReader(folder, THREADS, False),
    }
    ds = readers["read-ahead"].ds
    out = {}
    for name in COLD_WORKLOADS:
        workload = workloads[name].first(reps * 3 if name == "volume" else reps)
        results = wl.run_workload(readers, workload, array, files, cold=True)
        chunks = measure.chunk_set(ds, workload)
        limits = ceiling.measure_cold_pread(chunks, reps=3)
        hot_rates = ceiling.measure_ceiling(chunks, reps=3, threads=(THREADS,))
        decode_rate = hot_rates.get(f"decode{THREADS}_rate", float("inf"))
        disk_s = chunks.stored / max(limits.get("pread1_rate", 0), limits.get("pread2_rate", 0))
        decode_s = chunks.decoded / decode_rate
        per_selection = len(measure._distinct(workload.selections))
        out[name] = dict(
            results=results,
            disk_s=disk_s / per_selection,
            decode_s=decode_s / per_selection,
            limits=limits,
            profile=profiled(ds, workload.selections[:2], files),
        )
        gc.collect()
    for r in readers.values():
        r.close()
    return out


def scale(reps: int) -> dict:
    """Open + first plane of recordings of 100 and 10,000 one-time-point files (2, 64, 64),
    interleaved; the listing of the 10,000-file folder alone, for scale: ``os.listdir`` and
    the compiled scan the opening uses (the kernel's directory read, the names checked as
    bytes); and the kernel's directory read of both folders alone (``getdents64``), the
    floor of any reader that lists them."""
    import os

    from split_dataset import save_to_split_dataset
    from split_dataset._ext import _listing
    from split_dataset.tools.ceiling import directory_read_time

    root = data.cache_root() / "scale"
    root.mkdir(parents=True, exist_ok=True)
    times: dict[str, list[float]] = {}
    for n in (100, 10_000, 20_000):
        if not (root / f"n{n}" / "stack_metadata.json").is_file():
            frames = (np.arange(n * 2 * 64 * 64) % 1000).astype(np.uint16).reshape(n, 2, 64, 64)
            save_to_split_dataset(
                frames,
                root,
                block_size=(1, 2, 64, 64),
                prefix=f"n{n}",
                compression="blosc",
                overwrite=True,
                durable=False,  # benchmark data: 20,000 fsyncs would take minutes
            )
    for _ in range(reps * 3):
        for n in (100, 10_000):
            started = time.perf_counter()
            SplitDataset(root / f"n{n}")[0, 0]
            times.setdefault(f"{n} files", []).append(time.perf_counter() - started)
        started = time.perf_counter()
        os.listdir(root / "n10000")
        times.setdefault("listing", []).append(time.perf_counter() - started)
        started = time.perf_counter()
        _listing.scan_numbered_run(os.fsencode(root / "n10000"), None)
        times.setdefault("compiled listing", []).append(time.perf_counter() - started)
        for n in (100, 10_000):
            times.setdefault(f"kernel listing {n}", []).append(
                directory_read_time(root / f"n{n}", reps=1)
            )
    result = {k: float(np.median(v)) for k, v in times.items()}
    result.update(_full_reads_under_file_limit(root, reps))
    result["traces"] = traces_across_files(root, reps)
    return result


# Traces through more files than the file cache keeps open (256 descriptors): 10,000 files of
# one chunk each (complete layouts), and 1,000 files of 32 chunks each (a trace looks up one
# chunk a file: partial indexes, kept detached).
TRACE_RECORDINGS = {
    "10,000 files of 1 chunk": ("n10000", None),
    "1,000 files of 32 chunks": ("chunks32", (1000, 4, 256, 256)),
}


def _trace_recording(root: Path, name: str, shape) -> Path:
    from split_dataset import save_to_split_dataset

    folder = root / name
    if shape is not None and not (folder / "stack_metadata.json").is_file():
        frames = (np.arange(int(np.prod(shape))) % 1000).astype(np.uint16).reshape(shape)
        save_to_split_dataset(
            frames,
            root,
            block_size=(1, *shape[1:]),
            chunk_shape=(1, 1, 32, shape[-1]),
            prefix=name,
            compression="blosc",
            overwrite=True,
            durable=False,
        )
    return folder


def _h5py_trace(paths: list, key: str, pixel: tuple) -> np.ndarray:
    """The same pixel's trace with plain h5py: each file opened, its value read, closed."""
    import h5py
    import hdf5plugin  # noqa: F401  (registers the blosc filter with HDF5)

    values = []
    for path in paths:
        with h5py.File(path, "r") as handle:
            values.append(handle[key][(slice(None), *pixel)])
    return np.concatenate(values)


def traces_across_files(root: Path, reps: int) -> dict:
    """``ds[:, z, y, x]`` on one open dataset: the first trace (every file's layout read),
    then traces through chunks already looked up (other pixels of the first trace's chunks)
    and through chunks not looked up yet (a pixel of a plane and chunk row not read before;
    at most 7 such traces, as a file of 32 chunks is indexed whole once 8 were looked up
    singly), each beside plain h5py's trace of the same pixel (every file opened, the value
    read, closed), interleaved, median seconds."""
    import h5py

    result = {}
    for label, (name, shape) in TRACE_RECORDINGS.items():
        folder = _trace_recording(root, name, shape)
        ds = SplitDataset(folder)
        planes, height, width = ds.shape[1:]
        paths = list(ds.files.reshape(-1))
        with h5py.File(paths[0], "r") as handle:
            key = next(name for name in handle if "stack" in name)
            rows = height // handle[key].chunks[2]  # chunk rows of a plane
        times: dict[str, list[float]] = {}
        started = time.perf_counter()
        first = ds[:, 0, 1, 1]
        times["first"] = [time.perf_counter() - started]
        new_chunks = [(z, row) for row in range(1, rows) for z in range(planes)][: min(reps, 7)]
        pixels = []  # (kind, pixel), the two kinds taking turns
        for rep in range(reps):
            pixels.append(("known", (0, 2 + rep % 16, (3 * rep + 5) % width)))
            if rep < len(new_chunks):
                z, row = new_chunks[rep]
                pixels.append(("new", (z, row * (height // rows) + rep, (5 * rep + 1) % width)))
        for kind, pixel in pixels:
            started = time.perf_counter()
            trace = ds[(slice(None), *pixel)]
            times.setdefault(kind, []).append(time.perf_counter() - started)
            started = time.perf_counter()
            expected = _h5py_trace(paths, key, pixel)
            times.setdefault(f"h5py {kind}", []).append(time.perf_counter() - started)
            if not np.array_equal(trace, expected):
                raise AssertionError(f"{folder}: the trace at {pixel} differs from h5py's")
        assert first.shape == (ds.shape[0],)
        ds.close()
        result[label] = {k: float(np.median(v)) for k, v in times.items()}
    return result


# Run in a child process: the descriptor limit applies to the whole process.
FULL_READ_CHILD = """
import json, resource, sys, time
resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
from split_dataset import SplitDataset
root, reps = sys.argv[1], int(sys.argv[2])
times = {}
for _ in range(reps):
    for n in (100, 20_000):
        started = time.perf_counter()
        data = SplitDataset(f"{root}/n{n}")[:]
        times.setdefault(n, []).append(time.perf_counter() - started)
        assert data.shape[0] == n
print(json.dumps({n: sorted(t)[len(t) // 2] for n, t in times.items()}))
"""


def _json_from_child(script: str, *arguments) -> dict:
    """Run ``script`` in a fresh interpreter and return the JSON it prints."""
    import json
    import subprocess

    output = subprocess.run(
        [sys.executable, "-c", script, *(str(a) for a in arguments)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(output)


def _full_reads_under_file_limit(root: Path, reps: int) -> dict:
    """Open + full read of the 100- and 20,000-file recordings under ``ulimit -n 256``
    (interleaved, median seconds), in a child process."""
    medians = {int(n): t for n, t in _json_from_child(FULL_READ_CHILD, root, reps).items()}
    return {"full 100 files": medians[100], "full 20000 files": medians[20_000]}


# Peak memory of a full load, in a child process so that its high-water mark is the load's
# (VmHWM belongs to the process image; ru_maxrss would carry the parent's over exec).
PEAK_CHILD = """
import json, sys, threading
from split_dataset import SplitDataset

def status_kb(field):
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith(field + ":"))
    return int(line.split()[1]) * 1024

ds = SplitDataset(sys.argv[1])
ds[0, 0]  # imports, the first file's layout, the reader's threads: before the baseline
before, file_before = status_kb("VmRSS"), status_kb("RssFile")
anon_before = anon_peak = status_kb("RssAnon")
done = threading.Event()

def sample():  # the reader runs without the GIL: this thread samples throughout
    global anon_peak
    while not done.wait(0.001):
        anon_peak = max(anon_peak, status_kb("RssAnon"))

sampler = threading.Thread(target=sample)
sampler.start()
out = ds[:]
done.set()
sampler.join()
anon_peak = max(anon_peak, status_kb("RssAnon"))
print(json.dumps(dict(output=out.nbytes, before=before, peak=status_kb("VmHWM"),
                      mapped=status_kb("RssFile") - file_before, anon=anon_peak - anon_before)))
"""


def peak_memory(paths: dict) -> dict:
    """Per variant: the process's peak resident memory during ``ds[:]`` above what it held
    just before, relative to the output's size (the issue: at most output + 5 %)."""
    return {key: _json_from_child(PEAK_CHILD, folder) for key, folder in paths.items()}


def render(report: dict) -> str:
    lines: list[str] = []
    add = lines.append
    info = report["machine"]
    add("# Where the time goes (reads)")
    add("")
    add(
        f"Generated by `python benchmarks/profile_report.py` on {report['date']}; "
        f"{report['wall']:.1f} min. Rules: `shared/BENCHMARKS.md`; all figures of a table come "
        "from the same run. Machine: "
        f"{info['cpu']}, {info['nproc']} cores, load {report['load_start']} at the start, "
        f"{report['load_end']} at the end, free-page reporting to the host: "
        f"{info.get('free_page_reporting', '?')}. Data: shape {tuple(report['shape'])} uint16 "
        "(`benchmarks/data.py`)."
    )
    add("")
    add("## Hot page cache, 2 threads")
    add("")
    add(
        "*% ceiling* = the decode-only ceiling of the same chunks measured in this run "
        "(2 × the 1-core decode rate, capped by the page-cache pread rate) / our median; "
        "*% measured 2-core* uses the rate 2 decoding threads reached in this run. Shares of "
        "the cores' time (2 × wall) from `split_dataset.profile_reads`, one profiled pass "
        "with a fresh output: *plan* = the calling thread outside the compiled reader "
        "(selection, planning, chunk index, allocation), *pread* = copying stored bytes out "
        "of the page cache (compressed files are decoded from a mapping of the file instead: "
        "there it is the page-cache probe, `mincore`), *decode*, *copy* = selected elements "
        "into the output (chunks "
        "not decoded in place), *idle* = a core with nothing to do (waiting for the other "
        "thread to finish, or a helper not woken for a small read). Page faults per read "
        "are the first touch of the fresh output (decoding threads pay them). *first touch* "
        "= `np.empty` of the output's size and one write per page on 2 threads, the cost of "
        "a fresh array that `out=` does not pay: *back to back* in a loop of its own (pages "
        "freed and at once reused: the kernel zeroing them), *in turn* timed taking turns "
        "with the reads (`ceiling.FirstTouch`): on a VM that reports free pages to the host, "
        "what the same allocation cost at those moments, often far more; *% ceiling + first "
        "touch* = (decode-only ceiling + first touch back to back) / our fresh median. "
        "*out= pread* = the same `out=` reads with no file mapped (`mapped_budget = 0`): "
        "every chunk copied out of the page cache with pread first, as before mapping; "
        "*mapped / pread* = our `out=` median / that one. *ms fresh* = `ds[...]` as users "
        "call it, outputs of 32 MiB or more lent the memory of earlier results let go "
        "(`output_memory`: the reads taking turns, the last result is held while the next "
        "is read); *not lent* = the same with every output a new `np.empty` array, as "
        "before, the first read of a process."
    )
    add("")
    add(
        "| data | workload | ms fresh / not lent | ms out= | % ceiling fresh / not lent / out= "
        "| % measured 2-core fresh | first touch ms back to back / in turn "
        "| % ceiling + first touch, not lent "
        "| ms out= pread | mapped / pread "
        "| plan | pread | decode | copy | idle | page faults / read |"
    )
    add("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for key, per_workload in report["hot"].items():
        for name, entry in per_workload.items():
            fresh, reused = entry["results"]["fresh"], entry["results"]["out="]
            unlent = entry["results"]["not lent"]
            s = entry["profile"]["shares"]
            ideal = fresh["median"] * fresh.get("pct_ceiling", float("nan")) / 100
            touch = entry.get("first_touch_s", float("nan"))
            back_to_back = entry.get("first_touch_back_to_back_s", float("nan"))
            unmapped = entry["results"].get("out= pread")
            versus = (
                "— | —" if unmapped is None else f"{unmapped['median'] * 1e3:.3g} | "
                f"{reused['median'] / unmapped['median']:.2f}"
            )
            add(
                f"| {key} | {name} | {fresh['median'] * 1e3:.3g} / {unlent['median'] * 1e3:.3g} "
                f"| {reused['median'] * 1e3:.3g} "
                f"| {fresh.get('pct_ceiling', float('nan')):.0f}% / "
                f"{unlent.get('pct_ceiling', float('nan')):.0f}% / "
                f"{reused.get('pct_ceiling', float('nan')):.0f}% "
                f"| {fresh.get('pct_measured', float('nan')):.0f}% "
                f"| {back_to_back * 1e3:.3g} / {touch * 1e3:.3g} "
                f"| {100 * (ideal + back_to_back) / unlent['median']:.0f}% | {versus} "
                f"| {s['planning']:.0%} | {s['io']:.0%} | {s['decode']:.0%} | {s['copy']:.0%} "
                f"| {s['idle']:.0%} | {entry['profile']['minor_faults']:.0f} |"
            )
    add("")
    if report.get("fresh_paused"):
        render_fresh_paused(report["fresh_paused"], add)
    add("## Cold page cache (pages dropped before every read), 2 threads")
    add("")
    add(
        "Both readers read into reused `out=` buffers, so that the first touch of fresh memory "
        "(the VM's cost, see above) does not drown what the disk does; selections "
        "interleaved. *disk limit* = the same stored bytes read cold with pread in this run "
        "(the faster "
        "of 1 and 2 threads); *decode limit* = the same chunks decoded from memory on 2 "
        "threads; *% limit* = max(disk, decode) / our median. *missed* = chunks per read "
        "the page-cache probe found missing (it stops at the first miss of a read, one per "
        "thread at most: from then on the reader advises the kernel of the chunks ahead). "
        "*ms read-ahead*: advice from a thread of its own, keeping the plan's chunks asked for "
        "128 MiB ahead of the decoders; *on decoders*: advice from the decoding threads, a "
        "few files ahead (long runs and the file being read left to the kernel's read-ahead), "
        "as before that thread."
    )
    add("")
    add(
        "| data | workload | ms read-ahead | ms on decoders | ms no read-ahead "
        "| speed-up vs on decoders / none | disk limit ms | decode limit ms "
        "| % limit read-ahead / on decoders / none | chunks / read | missed / read |"
    )
    add("|---|---|---|---|---|---|---|---|---|---|---|")
    for key, per_workload in report["cold"].items():
        for name, entry in per_workload.items():
            on = entry["results"]["read-ahead"]["median"]
            inline = entry["results"]["read-ahead on decoders"]["median"]
            off = entry["results"]["no read-ahead"]["median"]
            limit = max(entry["disk_s"], entry["decode_s"])
            p = entry["profile"]
            add(
                f"| {key} | {name} | {on * 1e3:.3g} | {inline * 1e3:.3g} | {off * 1e3:.3g} "
                f"| {inline / on:.2f}× / {off / on:.2f}× "
                f"| {entry['disk_s'] * 1e3:.3g} | {entry['decode_s'] * 1e3:.3g} "
                f"| {100 * limit / on:.0f}% / {100 * limit / inline:.0f}% / "
                f"{100 * limit / off:.0f}% | {p['chunks']:.0f} | {p['missed']:.0f} |"
            )
    add("")
    add("## Opening many files")
    add("")
    sc = report["scale"]
    add(
        "`SplitDataset(folder)[0, 0]` on recordings of one time point (2, 64, 64) per file, "
        "blosc, interleaved, median: "
        f"100 files {sc['100 files'] * 1e3:.1f} ms, 10,000 files {sc['10000 files'] * 1e3:.1f} ms "
        f"({sc['10000 files'] / sc['100 files']:.2f}×). The 10,000-file folder's listing "
        f"alone: {sc['compiled listing'] * 1e3:.1f} ms read by the compiled scan the opening "
        f"uses (`_listing.scan_numbered_run`: the kernel's directory read, the names checked "
        f"as bytes), {sc['listing'] * 1e3:.1f} ms by `os.listdir`."
    )
    add("")
    kernel = {n: sc[f"kernel listing {n}"] for n in (100, 10000)}
    ours_beyond_kernel = sc["10000 files"] - sc["100 files"] - (kernel[10000] - kernel[100])
    add(
        "The kernel's own reading of the folders' entries (`getdents64` into a 4 MiB buffer "
        "through ctypes, the names left unread: `tools.ceiling.directory_read_time`), in the "
        f"same loop: 100 files {kernel[100] * 1e3:.2f} ms, 10,000 files "
        f"{kernel[10000] * 1e3:.2f} ms. A reader that lists the folder (the only way to find "
        "a recording's files, a gap in their numbers or a write stopped early) and is otherwise "
        "free of the number of files takes at best (100-file opening + the difference of the "
        f"two kernel reads) / 100-file opening = "
        f"**{(sc['100 files'] + kernel[10000] - kernel[100]) / sc['100 files']:.2f}×** here; "
        f"what the 10,000-file opening costs beyond that is ours: "
        f"{ours_beyond_kernel * 1e3:.2f} ms "
        f"({100 * ours_beyond_kernel / sc['100 files']:.0f}% of the 100-file opening)."
    )
    add("")
    per_file = {n: sc[f"full {n} files"] / n for n in (100, 20000)}
    add(
        "Open + full read `SplitDataset(folder)[:]` of the same kind of recording, 100 and "
        "20,000 files, under `ulimit -n 256` (a child process; the file cache keeps at most a "
        "quarter of the limit open), interleaved, median: "
        f"100 files {sc['full 100 files'] * 1e3:.1f} ms ({per_file[100] * 1e6:.0f} µs per "
        f"file), 20,000 files {sc['full 20000 files'] * 1e3:.0f} ms "
        f"({per_file[20000] * 1e6:.0f} µs per file): the 20,000-file read keeps "
        f"{100 * per_file[100] / per_file[20000]:.0f}% of the 100-file rate."
    )
    add("")
    render_traces(sc.get("traces", {}), add)
    if report.get("peak"):
        add("## Peak memory of a full load")
        add("")
        add(
            "`ds[:]` in a fresh process after `ds[0, 0]`, against the output's size (the issue: "
            "at most output + 5 %). *peak resident* = the peak resident set during the load "
            "(`VmHWM`) above the resident set just before it; *mapped page cache* = the growth "
            "of `RssFile`: compressed files are decoded from a mapping, and the page-cache "
            "pages it touched count in the process's resident set while it is mapped (the "
            "same pages are in memory after a pread, but not counted there; the kernel may "
            "still reclaim them); *memory allocated* = the peak of `RssAnon` above the "
            "baseline, sampled every millisecond during the load: what the read allocates."
        )
        add("")
        add(
            "| data | output MB | peak resident above the baseline MB | of which mapped page "
            "cache MB | memory allocated MB | % of output: allocated |"
        )
        add("|---|---|---|---|---|---|")
        for key, entry in report["peak"].items():
            extra = entry["peak"] - entry["before"]
            add(
                f"| {key} | {entry['output'] / 1e6:.0f} | {extra / 1e6:.0f} "
                f"| {entry['mapped'] / 1e6:.0f} | {entry['anon'] / 1e6:.0f} "
                f"| {100 * entry['anon'] / entry['output']:.1f}% |"
            )
        add("")
    add(
        "Correct: every timed reader's check selection matched the array: "
        + ("yes" if report["all_correct"] else "**NO**")
        + "."
    )
    return "\n".join(lines) + "\n"


def render_traces(traces: dict, add) -> None:
    if not traces:
        return
    add(
        "A pixel's trace `ds[:, z, y, x]` through more files than the file cache keeps open "
        "(256 descriptors), blosc, one dataset kept open, median ms: *first* = the first trace "
        "(every file's layout read); *known chunks* = other pixels of the chunks the first "
        "trace looked up (the files closed for descriptors keep their layouts, a partial "
        "chunk index kept detached); *new chunks* = pixels of chunks no trace looked up yet "
        "(a file with a detached index is opened in h5py for that lookup alone); *h5py* = "
        "the same pixels read with plain h5py, every file opened, the value read, closed, "
        "taking turns with ours."
    )
    add("")
    add(
        "| recording | first ms | known chunks ms | h5py ms | ×h5py | new chunks ms | h5py ms "
        "| ×h5py |"
    )
    add("|---|---|---|---|---|---|---|---|")
    for label, t in traces.items():
        cells = [f"{t['first'] * 1e3:.0f}"]
        for kind in ("known", "new"):
            if kind in t:
                cells += [
                    f"{t[kind] * 1e3:.0f}",
                    f"{t[f'h5py {kind}'] * 1e3:.0f}",
                    f"{t[f'h5py {kind}'] / t[kind]:.1f}×",
                ]
            else:
                cells += ["—", "—", "—"]
        add(f"| {label} | " + " | ".join(cells) + " |")
    add("")


def render_fresh_paused(per_variant: dict, add) -> None:
    add("### Fresh outputs with the VM's free-page reporting paused")
    add("")
    add(
        "The same readers, taking turns, run twice in a row: the guest reporting free pages "
        "to the host as configured (*on*), then not (`--pause-page-reporting`: the order set "
        "beyond the largest free block for the pass, and put back). *fresh* here is the "
        "reader whose outputs are all new arrays (*not lent* above): what fresh memory "
        "costs. *fresh / out=* is its time over the same selection read into a reused "
        "buffer."
    )
    add("")
    add(
        "| data | workload | ms fresh on / paused | ms out= on / paused | "
        "fresh / out= on / paused | first touch ms on / paused |"
    )
    add("|---|---|---|---|---|---|")
    for key, per_workload in per_variant.items():
        for name, entry in per_workload.items():
            on, paused = entry["on"], entry["paused"]
            add(
                f"| {key} | {name} | {on['not lent'] * 1e3:.3g} / {paused['not lent'] * 1e3:.3g} "
                f"| {on['out='] * 1e3:.3g} / {paused['out='] * 1e3:.3g} "
                f"| {on['not lent'] / on['out=']:.2f} / "
                f"{paused['not lent'] / paused['out=']:.2f} "
                f"| {on['first touch'] * 1e3:.3g} / {paused['first touch'] * 1e3:.3g} |"
            )
    add("")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", choices=sorted(data.SIZES), default="full")
    parser.add_argument("--variants", default="blosc,lz4,raw")
    parser.add_argument("--tpf", default="1,10")
    parser.add_argument("--cold-variants", default="blosc,raw")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--out", default=None)
    parser.add_argument(
        "--no-hot",
        dest="hot",
        action="store_false",
        help="only the cold reads and the opening of many files",
    )
    parser.add_argument(
        "--no-cold", dest="cold", action="store_false", help="leave out the cold reads"
    )
    parser.add_argument(
        "--pause-page-reporting",
        action="store_true",
        help="also run the fresh-output workloads with the VM's free-page reporting paused "
        "(root; the setting is put back)",
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    variants = args.variants.split(",")
    tpfs = tuple(int(t) for t in args.tpf.split(","))
    array, paths = data.prepare(args.size, variants, tpfs)
    shape = data.SIZES[args.size]
    workloads = wl.make_workloads(shape, reps=args.reps, latency_samples=30)
    report = dict(
        date=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        shape=shape,
        machine=machine.machine_info(),
        load_start=wl.loadavg(),
        hot={},
        cold={},
        fresh_paused={},
    )
    for (variant, tpf), folder in paths.items():
        key = f"{variant} tpf={tpf}"
        if args.hot:
            print(f"hot {key}", file=sys.stderr)
            report["hot"][key] = hot(folder, array, workloads, args.reps)
            if args.pause_page_reporting:
                print(f"fresh, page reporting paused {key}", file=sys.stderr)
                report["fresh_paused"][key] = fresh_with_reporting_paused(
                    folder, array, workloads, args.reps
                )
        if args.cold and variant in args.cold_variants.split(","):
            print(f"cold {key}", file=sys.stderr)
            report["cold"][key] = cold(folder, array, workloads, args.reps)
    print("scale", file=sys.stderr)
    report["scale"] = scale(args.reps)
    print("peak memory", file=sys.stderr)
    report["peak"] = peak_memory({f"{v} tpf={t}": folder for (v, t), folder in paths.items()})
    report["load_end"] = wl.loadavg()
    report["wall"] = (time.perf_counter() - started) / 60
    report["all_correct"] = all(
        r.get("correct") is not False
        for section in ("hot", "cold")
        for per in report[section].values()
        for entry in per.values()
        for r in entry["results"].values()
    ) and all(entry["correct"] for per in report["fresh_paused"].values() for entry in per.values())
    text = render(report)
    if args.out:
        Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
