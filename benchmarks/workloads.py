"""The read workloads of BENCHMARKS.md and a small timing harness; NumPy only.

Shared by ``report.py`` (in process) and the runners of other readers that live in their own
virtualenvs (``run_04x.py``, ``run_tensorstore.py``), so that every reader gets exactly the same
selections, in the same order, timed the same way.

A selection is a tuple index (int, slice, or a list of ints on the first axis); ``encode`` /
``decode`` turn it into JSON for the runners.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

WORKLOAD_SEED = 1234
DEFAULT_REPS = 7
DEFAULT_LATENCY_SAMPLES = 300
COLD_WORKLOADS = ("plane", "volume", "zcol", "full", "open")


@dataclass
class Workload:
    name: str
    label: str  # how a user writes it
    kind: str  # "latency", "throughput" or "open"
    check: tuple  # selection used once, untimed, for the correctness check (and warm-up)
    selections: list = field(default_factory=list)  # the timed ones, rotated

    def to_json(self) -> dict:
        return dict(name=self.name, label=self.label, kind=self.kind, check=encode(self.check),
                    selections=[encode(s) for s in self.selections])

    @classmethod
    def from_json(cls, d: dict) -> Workload:
        return cls(d["name"], d["label"], d["kind"], decode(d["check"]),
                   [decode(s) for s in d["selections"]])


def encode(index: tuple) -> list:
    out = []
    for item in index:
        if isinstance(item, slice):
            out.append(["slice", item.start, item.stop, item.step])
        elif isinstance(item, (list, np.ndarray)):
            out.append(["list", [int(i) for i in item]])
        else:
            out.append(int(item))
    return out


def decode(spec: list) -> tuple:
    out = []
    for item in spec:
        if isinstance(item, list) and item and item[0] == "slice":
            out.append(slice(item[1], item[2], item[3]))
        elif isinstance(item, list) and item and item[0] == "list":
            out.append(list(item[1]))
        else:
            out.append(int(item))
    return tuple(out)


def describe(index: tuple) -> str:
    parts = []
    for item in index:
        if isinstance(item, slice):
            s = "" if item.start is None else str(item.start)
            s += ":" + ("" if item.stop is None else str(item.stop))
            if item.step is not None:
                s += ":" + str(item.step)
            parts.append(s)
        elif isinstance(item, list):
            parts.append("[" + ", ".join(map(str, item[:4])) + (", ...]" if len(item) > 4 else "]"))
        else:
            parts.append(str(item))
    return "ds[" + ", ".join(parts) + "]"


def result_nbytes(index: tuple, shape: tuple[int, ...], itemsize: int = 2) -> int:
    n = 1
    for axis, extent in enumerate(shape):
        item = index[axis] if axis < len(index) else slice(None)
        if isinstance(item, slice):
            n *= len(range(*item.indices(extent)))
        elif isinstance(item, list):
            n *= len(item)
    return n * itemsize


def make_workloads(shape: tuple[int, ...], reps: int = DEFAULT_REPS,
                   latency_samples: int = DEFAULT_LATENCY_SAMPLES,
                   seed: int = WORKLOAD_SEED) -> dict[str, Workload]:
    """Deterministic selections; latency runs never repeat a (t, z), others rotate."""
    T, Z, Y, X = shape
    rng = np.random.default_rng(seed)
    w: dict[str, Workload] = {}

    # plane: distinct (t, z) pairs in random order; one extra for the check / warm-up
    n = min(latency_samples + 1, T * Z)
    pairs = rng.permutation(T * Z)[:n]
    planes = [(int(p // Z), int(p % Z)) for p in pairs]
    w["plane"] = Workload("plane", "ds[t, z]", "latency", planes[-1], planes[:-1] or planes)

    # volume: random t; passes over all T in fresh orders, never the same t twice in a row
    # (a volume is far larger than HDF5's chunk cache, so a later pass is not a cache hit)
    n = max(min(latency_samples, 3 * T), min(T, 7)) + 1
    order: list[int] = []
    while len(order) < n:
        perm = [int(t) for t in rng.permutation(T)]
        if order and perm[0] == order[-1]:
            perm = perm[1:] + perm[:1]
        order += perm
    order = order[:n]
    w["volume"] = Workload("volume", "ds[t]", "latency", (order[-1],),
                           [(t,) for t in order[:-1]])

    # zcol: one plane across all time, rotating z
    zs = [int(z) for z in np.resize(rng.permutation(Z), reps + 1)]
    w["zcol"] = Workload("zcol", "ds[:, z]", "throughput", (slice(None), zs[-1]),
                         [(slice(None), z) for z in zs[:-1]])

    # roi: a small region over all time, rotating its position
    dz, dy, dx = min(2, Z), max(1, Y // 8), max(1, X // 8)
    rois = []
    for _ in range(reps + 1):
        z0 = int(rng.integers(0, Z - dz + 1))
        y0 = int(rng.integers(0, Y - dy + 1))
        x0 = int(rng.integers(0, X - dx + 1))
        rois.append((slice(None), slice(z0, z0 + dz), slice(y0, y0 + dy), slice(x0, x0 + dx)))
    w["roi"] = Workload("roi", f"ds[:, z0:z0+{dz}, y0:y0+{dy}, x0:x0+{dx}]", "throughput",
                        rois[-1], rois[:-1])

    # stride: every 5th time point, rotating the start
    starts = [i % 5 for i in range(reps + 1)]
    w["stride"] = Workload("stride", "ds[s::5]", "throughput", (slice(starts[-1], None, 5),),
                           [(slice(s, None, 5),) for s in starts[:-1]])

    # fancy: unsorted distinct time points, a new set each repetition
    k = min(10, T)
    sets = []
    for _ in range(reps + 1):
        pick = [int(t) for t in rng.permutation(T)[:k]]
        if pick == sorted(pick) and k > 1:
            pick = pick[::-1]
        sets.append((pick,))
    w["fancy"] = Workload("fancy", f"ds[[{k} unsorted t]]", "throughput", sets[-1], sets[:-1])

    # full: the whole array (the same each time: it is far larger than any cache but the OS's)
    w["full"] = Workload("full", "ds[:]", "throughput", (slice(None),),
                         [(slice(None),)] * reps)

    # open: open the dataset, then read the first plane
    w["open"] = Workload("open", "open + ds[0, 0]", "open", (0, 0), [(0, 0)] * reps)
    return w


# --- page cache ------------------------------------------------------------------------------


def drop_cache(paths) -> None:
    """Drop the files' pages from the page cache (they are fsynced when written)."""
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def warm_cache(paths) -> None:
    """Read the files once so that they are in the page cache."""
    for path in paths:
        with open(path, "rb") as handle:
            while handle.read(1 << 24):
                pass


# --- timing ----------------------------------------------------------------------------------


def stats(times: list[float]) -> dict:
    a = np.asarray(times, dtype=float)
    if a.size == 0:
        return {}
    return dict(n=int(a.size), median=float(np.median(a)), min=float(a.min()),
                p50=float(np.percentile(a, 50)), p99=float(np.percentile(a, 99)),
                mean=float(a.mean()))


def run_workload(readers: dict, workload: Workload, array: np.ndarray | None,
                 files: list | None = None, cold: bool = False) -> dict:
    """Time every reader on the workload's selections, interleaved per selection.

    ``readers`` maps a name to an object with ``read(index) -> ndarray`` (and, for the "open"
    workload, ``open_and_read(index)``). Returns per reader: the raw times, CPU time / wall time
    of the timed calls, and whether the untimed check selection matched ``array[index]``.
    """
    results = {}
    for name, reader in readers.items():
        entry = results.setdefault(name, dict(times=[], cpu=0.0, wall=0.0, correct=None, note=""))
        entry["note"] = getattr(reader, "note", lambda w: "")(workload.name)
        try:
            if cold and files:
                drop_cache(files)
            if workload.kind == "open":
                got = reader.open_and_read(workload.check)
            else:
                got = reader.read(workload.check)
            if array is not None:
                entry["correct"] = bool(
                    got.shape == array[workload.check].shape
                    and np.array_equal(got, array[workload.check])
                )
            del got
        except NotImplementedError as error:
            entry["note"] = str(error)
            entry["skip"] = True
    active = {n: r for n, r in readers.items() if not results[n].get("skip")}
    for index in workload.selections:
        for name, reader in active.items():
            entry = results[name]
            if cold and files:
                drop_cache(files)
            before = getattr(reader, "before_read", None)
            if before is not None:  # e.g. empty h5py's chunk cache: untimed
                before()
            cpu0, t0 = time.process_time(), time.perf_counter()
            if workload.kind == "open":
                got = reader.open_and_read(index)
            else:
                got = reader.read(index)
            t1, cpu1 = time.perf_counter(), time.process_time()
            del got
            entry["times"].append(t1 - t0)
            entry["cpu"] += cpu1 - cpu0
            entry["wall"] += t1 - t0
    for entry in results.values():
        entry.update(stats(entry["times"]))
    return results


def load_json(path: str | Path):
    return json.loads(Path(path).read_text())
