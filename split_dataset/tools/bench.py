"""``split-dataset bench PATH``: the benchmarks' read workloads, on a user's own dataset.

Measured the way ``benchmarks/report.py`` measures, with the same code (``measure``): the
workloads of ``workloads.make_workloads`` for the dataset's shape; this package on 1 and on all
cores (fresh outputs, and ``out=`` reused for the bulk workloads) against the plain h5py way
(``readers.H5pyReader``: files kept open, one ``dset[sel]`` per file), interleaved per
selection; the ceiling measured apart from the package on the very chunks each workload reads
(``ceiling``: decode only through c-blosc2 / zlib-ng, pread, memcpy); hot runs on files read
into the page cache beforehand, cold runs with the pages dropped before every read of every
reader. Every ratio comes from this run; the load average is logged with each row.

Workloads whose result would take more than a quarter of the available memory are left out
(and said so), and the ceiling of a workload is measured on an evenly spread sample of its
chunks of at most ``CEILING_SAMPLE_BYTES`` stored bytes.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..dataset import SplitDataset
from .ceiling import N_CORES, alloc_rate, in_place_rate, memcpy_rate
from .measure import evaluate, measure_workload
from .native_decoders import describe_decoders
from .readers import FilesAlongTime, H5pyReader, PackageReader
from .workloads import (
    COLD_WORKLOADS,
    DEFAULT_REPS,
    Workload,
    loadavg,
    make_workloads,
    result_nbytes,
    warm_cache,
)

CEILING_SAMPLE_BYTES = 256 << 20
COLD_LATENCY_SAMPLES = 60  # each cold read waits for the disk: fewer latency samples


def available_memory() -> int:
    """Bytes of memory available without swapping (``MemAvailable``), else the free pages."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return 1 << 30


class _ReadBy:
    """An array-like reading through a reader: the reference a result is checked against."""

    def __init__(self, reader: H5pyReader) -> None:
        self.reader = reader

    def __getitem__(self, index: tuple) -> np.ndarray:
        return np.asarray(self.reader.read(index))


def _ms(seconds: float | None) -> str:
    if seconds is None or not np.isfinite(seconds):
        return "-"
    return f"{seconds * 1e3:.3g}" if seconds < 0.1 else f"{seconds * 1e3:.0f}"


def _time(result: dict, kind: str) -> str:
    if not result.get("times"):
        return "-"
    if kind == "latency":
        return f"{_ms(result['p50'])}/{_ms(result['p99'])}"
    return _ms(result["median"])


def _metric(result: dict, kind: str) -> float | None:
    return result.get("p50") if kind == "latency" else result.get("median")


def _percent(value: float | None) -> str:
    return "-" if value is None or not np.isfinite(value) else f"{value:.0f}"


def _gbps(rate: float | None) -> str:
    return "-" if rate is None or not np.isfinite(rate) else f"{rate / 1e9:.2f}"


class _Table:
    """The rows of the report: one per workload and cache state, and the ceiling behind each."""

    def __init__(self, names: list[str], threads: list[int]) -> None:
        self.names = names  # readers, h5py first, then ours by threads, then out=
        self.threads = threads
        self.top = f"ours t={threads[-1]}"
        self.percent = "/".join(f"t={n}" for n in threads)
        self.percent_width = max(19, 11 + len(self.percent))
        self.flags: list[str] = []
        self.ceilings: list[str] = []

    def header(self) -> str:
        columns = "".join(f" {n.replace('ours ', ''):>13}" for n in self.names)
        return (
            f"{'workload':<9}{'cache':<6}{columns}{'GB/s':>7}{'vs h5py':>9}"
            f"{'% ceiling ' + self.percent:>{self.percent_width}}"
            f"{'% output ' + self.percent:>{self.percent_width}}{'CPU/wall':>9}"
            f"{'same':>6}{'load':>6}"
        )

    def row(self, name: str, cache: str, entry: dict) -> str:
        kind, results = entry["kind"], entry["results"]
        top = results.get(self.top, {})
        h5py = _metric(results.get("h5py", {}), kind)
        ours = _metric(top, kind)
        vs = f"{h5py / ours:.2f}x" if h5py and ours else "-"
        ceiling, into_output = (
            "-"
            if kind == "open"
            else "/".join(_percent(results.get(f"ours t={n}", {}).get(key)) for n in self.threads)
            + "%"
            for key in ("pct_ceiling", "pct_in_place")
        )
        checked = [r.get("correct") for n, r in results.items() if n.startswith("ours")]
        same = "NO" if False in checked else ("yes" if True in checked else "-")
        gbps = top.get("returned_gbps")
        self._flag(name, cache, entry)
        self._ceiling(name, cache, entry)
        return (
            f"{name:<9}{cache:<6}"
            + "".join(f" {_time(results.get(n, {}), kind):>13}" for n in self.names)
            + f"{'-' if gbps is None else f'{gbps:.2f}':>7}{vs:>9}{ceiling:>{self.percent_width}}"
            + f"{into_output:>{self.percent_width}}"
            + f"{top.get('cpu_per_wall', float('nan')):>9.2f}{same:>6}"
            + f"{entry['load'].split('/')[0]:>6}"
        )

    def _flag(self, name: str, cache: str, entry: dict) -> None:
        kind, results = entry["kind"], entry["results"]
        h5py = _metric(results.get("h5py", {}), kind)
        for reader, r in results.items():
            if r.get("correct") is False:
                self.flags.append(f"{name} {cache}: {reader} differs from h5py")
            ours = _metric(r, kind)
            if reader.startswith("ours") and h5py and ours and ours > 1.05 * h5py:
                self.flags.append(
                    f"{name} {cache}: {reader} {_ms(ours)} ms is slower than h5py {_ms(h5py)} ms"
                )
        pct = results.get(self.top, {}).get("pct_ceiling")
        if kind != "open" and pct is not None and np.isfinite(pct) and pct < 50:
            self.flags.append(f"{name} {cache}: {self.top} at {pct:.0f}% of the ceiling")

    def _ceiling(self, name: str, cache: str, entry: dict) -> None:
        c = entry["ceiling"]
        if not c.get("n_chunks"):
            return
        rates = "".join(f"{_gbps(c.get(f'decode{n}_rate')):>11}" for n in self.threads)
        rates += "".join(f"{_gbps(c.get(f'pread{n}_rate')):>11}" for n in self.threads)
        rates += "".join(f"{_gbps(in_place_rate(c, n)):>12}" for n in self.threads)
        ideal = "/".join(_ms(c.get(f"ideal_t{n}")) for n in self.threads)
        note = f"  ({c['unavailable']})" if c.get("unavailable") else ""
        self.ceilings.append(
            f"{name:<9}{cache:<6}{c['n_chunks']:>8}{c['stored'] / 1e6:>11.1f}"
            f"{c['decoded'] / 1e6:>12.1f}{rates}{ideal:>16}{note}"
        )

    def ceiling_header(self) -> str:
        decode = "".join(f"{f'decode t={n}':>11}" for n in self.threads)
        pread = "".join(f"{f'pread t={n}':>11}" for n in self.threads)
        placed = "".join(f"{f'output t={n}':>12}" for n in self.threads)
        return (
            f"{'workload':<9}{'cache':<6}{'chunks':>8}{'stored MB':>11}{'decoded MB':>12}"
            f"{decode}{pread}{placed}{'ideal ms':>16}"
        )


def run_bench(
    path: str | Path, samples: int = 300, cold: bool = True, reps: int = DEFAULT_REPS
) -> Iterator[str]:
    """Time the workloads on the dataset at ``path``; yields the report line by line."""
    threads = sorted({1, N_CORES})
    readers: dict = {}
    try:
        for n in threads:
            readers[f"ours t={n}"] = PackageReader(path, n)
        readers[f"ours t={threads[-1]} out="] = PackageReader(path, threads[-1], reuse_out=True)
        try:
            readers = {"h5py": H5pyReader(FilesAlongTime.of(readers["ours t=1"].ds)), **readers}
            baseline = (
                f"h5py {_h5py_version()} + hdf5plugin, every block file kept open, one "
                "dset[sel] per file (one strided slice along time), HDF5's chunk cache off (no "
                "read served from an earlier one's chunks); 'same' = our results equal h5py's"
            )
        except (NotImplementedError, OSError) as error:
            baseline = f"not available: {error}"
        yield from _bench(readers, baseline, threads, samples, cold, reps)
    finally:
        for reader in readers.values():
            reader.close()


def _h5py_version() -> str:
    import h5py

    return h5py.__version__


def _passes(workloads: dict[str, Workload], cold: bool, cold_latency: int) -> list:
    """("hot", every workload), then ("cold", those of ``COLD_WORKLOADS``, fewer samples)."""
    passes = [("hot", workloads)]
    if cold:
        chosen = {
            name: w.first(cold_latency) if w.kind == "latency" else w
            for name, w in workloads.items()
            if name in COLD_WORKLOADS
        }
        passes.append(("cold", chosen))
    return passes


def _introduction(
    ds: SplitDataset, files: list[str], stored: int, baseline: str, threads: list[int]
) -> Iterator[str]:
    """What was measured, on what, and what else the machine was doing."""
    layout = ds.layout(0)
    yield repr(ds)
    yield (
        f"{len(files)} files, {stored / 1e9:.3g} GB stored; blocks {tuple(ds.shape_block)}, "
        f"chunks {layout.chunk_shape}, {layout.describe_filters()}"
    )
    yield (
        f"{N_CORES} usable cores ({os.cpu_count()} online), threads compared: "
        f"{' and '.join(map(str, threads))}; load average {loadavg()} (1/5/15 min) at start"
    )
    yield f"h5py baseline: {baseline}"
    copy, allocation = memcpy_rate(64 << 20), alloc_rate(64 << 20)
    yield (
        f"ceiling: decode only ({describe_decoders()}) and pread of the very chunks each "
        f"workload reads, on {' and '.join(map(str, threads))} threads; memcpy "
        f"{copy['gbps']:.2f} GB/s, fresh allocation + first touch {allocation['gbps']:.2f} GB/s"
    )


def _fitting(workloads: dict[str, Workload], ds: SplitDataset, memory: int) -> Iterator[str]:
    """Leave out (from ``workloads``, saying so) those whose result would not fit in memory
    beside the reference and a reused output."""
    for name, w in list(workloads.items()):
        nbytes = result_nbytes(w.check, ds.shape, ds.dtype.itemsize)
        if nbytes > memory // 4:
            del workloads[name]
            yield (
                f"left out: {name} ({w.label}), {nbytes / 1e9:.3g} GB a read, more than a "
                f"quarter of the {memory / 1e9:.3g} GB of available memory"
            )


def _bench(
    readers: dict, baseline: str, threads: list[int], samples: int, cold: bool, reps: int
) -> Iterator[str]:
    ds: SplitDataset = readers["ours t=1"].ds
    files = [str(p) for p in ds.files.ravel()]
    stored = sum(os.stat(p).st_size for p in files)
    memory = available_memory()
    yield from _introduction(ds, files, stored, baseline, threads)
    workloads = make_workloads(ds.shape, reps, samples, names=ds.axis_order)
    if not workloads:
        yield "the dataset is empty: nothing to time"
        return
    yield from _fitting(workloads, ds, memory)
    if stored <= memory // 2:
        warm_cache(files)
        hot = "hot: files read into the page cache beforehand"
    else:
        hot = f"hot: the files ({stored / 1e9:.3g} GB) do not fit the page cache, reads may wait"
    cold_latency = min(samples, COLD_LATENCY_SAMPLES)
    if cold:
        hot += (
            "; cold: pages dropped (posix_fadvise DONTNEED) before every read of every reader, "
            f"{cold_latency} latency samples"
        )
    yield hot
    yield (
        f"times in ms: p50/p99 over up to {samples} distinct selections for the latency "
        f"workloads, median of {reps} rotating selections for the others; GB/s and vs h5py: "
        f"ours t={threads[-1]} (fresh output); % ceiling: ideal time / median; % output: "
        "against the same chunks decoded (raw: read) each into its place in an output of "
        "their size, the memory a read must fill (hot runs)"
    )
    yield "workloads: " + "; ".join(f"{n} = {w.label}" for n, w in workloads.items())
    table = _Table(list(readers), threads)
    yield ""
    yield table.header()
    reference = _ReadBy(readers["h5py"]) if "h5py" in readers else None
    threads_of = {name: getattr(r, "threads", 1) for name, r in readers.items()}
    for cache, chosen in _passes(workloads, cold, cold_latency):
        for name, w in chosen.items():
            bulk_hot = w.kind == "throughput" and cache == "hot"  # out= only there, as report.py
            active = {n: r for n, r in readers.items() if bulk_hot or not n.endswith("out=")}
            entry = measure_workload(
                active,
                w,
                ds,
                reference=reference,
                files=files,
                cold=cache == "cold",
                reps=reps,
                max_stored=CEILING_SAMPLE_BYTES,
            )
            evaluate(ds, w, entry["ceiling"], entry["results"], threads_of)
            yield table.row(name, cache, entry)
    yield ""
    yield "ceiling, measured in this run (decode: decoded GB/s from memory; pread: stored GB/s):"
    yield table.ceiling_header()
    yield from table.ceilings
    yield ""
    yield "flagged: " + ("nothing" if not table.flags else "")
    yield from (f"  {flag}" for flag in table.flags)
    yield f"load average {loadavg()} at the end"
