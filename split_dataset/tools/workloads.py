"""The read workloads of BENCHMARKS.md and the loop that times them; NumPy only.

Shared by ``split-dataset bench``, ``benchmarks/report.py`` and the runners of other readers
that live in their own virtualenvs (``benchmarks/run_04x.py``, ``run_tensorstore.py``, which
load this file by its path, without the package), so that every reader gets exactly the same
selections, in the same order, timed the same way. Hence no import from the package here.

A selection is a tuple index (ints, slices, or a list of ints on the first axis); ``encode`` /
``decode`` turn it into JSON for the runners. Time is the first axis and a plane the last two
(the last one of 2-D data); the axes between are "z" (for 4-D data, ``ds[t, z]`` is a plane).
Workloads that make no sense for a shape (a plane across time of 3-D data, a stride over 3
time points) are left out rather than degenerate.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field, replace
from typing import Any

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
        return dict(
            name=self.name,
            label=self.label,
            kind=self.kind,
            check=encode(self.check),
            selections=[encode(s) for s in self.selections],
        )

    @classmethod
    def from_json(cls, d: dict) -> Workload:
        return cls(
            d["name"],
            d["label"],
            d["kind"],
            decode(d["check"]),
            [decode(s) for s in d["selections"]],
        )

    def first(self, count: int) -> Workload:
        """The same workload with only its first ``count`` timed selections."""
        return replace(self, selections=self.selections[:count])


def encode(index: tuple) -> list:
    out: list = []
    for item in index:
        if isinstance(item, slice):
            out.append(["slice", item.start, item.stop, item.step])
        elif isinstance(item, (list, np.ndarray)):
            out.append(["list", [int(i) for i in item]])
        else:
            out.append(int(item))
    return out


def decode(spec: list) -> tuple:
    out: list = []
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


def result_shape(index: tuple, shape: tuple[int, ...]) -> tuple[int, ...]:
    """Shape of ``array[index]`` for a workload's selection (ints drop their axis)."""
    out = []
    for axis, extent in enumerate(shape):
        item = index[axis] if axis < len(index) else slice(None)
        if isinstance(item, slice):
            out.append(len(range(*item.indices(extent))))
        elif isinstance(item, (list, np.ndarray)):
            out.append(len(item))
    return tuple(out)


def result_nbytes(index: tuple, shape: tuple[int, ...], itemsize: int = 2) -> int:
    return int(np.prod(result_shape(index, shape), dtype=np.int64)) * itemsize


# --- the workloads -----------------------------------------------------------------------------


def axis_names(ndim: int, names: str | None = None) -> list[str]:
    """Names of the axes in labels: ``names`` if it has one distinct letter per axis (e.g. a
    dataset's ``axis_order``), else t, ..., z, y, x (5-D: t, c, z, y, x)."""
    if names and len(names) == ndim and len(set(names)) == ndim:
        return list(names)
    plane = ["y", "x"][2 - _plane_axes(ndim) :]
    middle = ndim - 1 - len(plane)
    inner = ["c", "z"][2 - middle :] if middle <= 2 else [f"z{a}" for a in range(1, middle + 1)]
    return ["t", *inner, *plane]


def _plane_axes(ndim: int) -> int:
    """How many trailing axes make a plane: two, or what there is after time."""
    return min(2, ndim - 1)


def _index_tuples(flat: np.ndarray, sizes: tuple[int, ...]) -> list[tuple[int, ...]]:
    return [tuple(int(i) for i in np.unravel_index(int(f), sizes)) for f in flat]


def make_workloads(
    shape: tuple[int, ...],
    reps: int = DEFAULT_REPS,
    latency_samples: int = DEFAULT_LATENCY_SAMPLES,
    seed: int = WORKLOAD_SEED,
    names: str | None = None,
) -> dict[str, Workload]:
    """Deterministic selections; latency runs never repeat a (t, z), others rotate.

    Any shape of one axis or more: ``plane`` is an integer on time and every axis before the
    last two (``ds[t, z]``; ``ds[t]`` for 3-D and 2-D data), ``volume`` (``ds[t]``) and
    ``zcol`` (``ds[:, z]``) exist from 4-D on, ``roi`` and ``trace`` (one pixel over time)
    from 2-D, ``stride`` and ``fancy`` when there are time points to pick from. An empty
    array has no workload.
    """
    shape = tuple(int(s) for s in shape)
    if not shape or 0 in shape:
        return {}
    ndim = len(shape)
    T = shape[0]
    lead = ndim - _plane_axes(ndim)  # axes an integer picks for a plane: time and z
    middle = shape[1:lead]
    label = axis_names(ndim, names)
    rng = np.random.default_rng(seed)
    w: dict[str, Workload] = {}

    # plane: distinct (t, z) in random order; one extra for the check / warm-up
    n = min(latency_samples + 1, int(np.prod(shape[:lead])))
    planes = _index_tuples(rng.permutation(int(np.prod(shape[:lead])))[:n], shape[:lead])
    w["plane"] = Workload(
        "plane", f"ds[{', '.join(label[:lead])}]", "latency", planes[-1], planes[:-1] or planes
    )

    if middle:
        # volume: random t; passes over all T in fresh orders, never the same t twice in a
        # row (a volume is far larger than HDF5's chunk cache: a later pass is not a cache hit)
        n = max(min(latency_samples, 3 * T), min(T, 7)) + 1
        order: list[int] = []
        while len(order) < n:
            perm = [int(t) for t in rng.permutation(T)]
            if order and perm[0] == order[-1]:
                perm = perm[1:] + perm[:1]
            order += perm
        order = order[:n]
        w["volume"] = Workload(
            "volume", f"ds[{label[0]}]", "latency", (order[-1],), [(t,) for t in order[:-1]]
        )

        # zcol: one plane across all time, rotating z
        zs = _index_tuples(np.resize(rng.permutation(int(np.prod(middle))), reps + 1), middle)
        w["zcol"] = _over_all_time("zcol", f"ds[:, {', '.join(label[1:lead])}]", zs)

    if ndim >= 2:
        # roi: a small region over all time (2 planes of z, 1/8 of y and x), rotating its place
        spans = [min(2, s) for s in middle] + [max(1, s // 8) for s in shape[lead:]]
        rois = []
        for _ in range(reps + 1):
            starts = [int(rng.integers(0, s - d + 1)) for s, d in zip(shape[1:], spans)]
            rois.append((slice(None),) + tuple(slice(a, a + d) for a, d in zip(starts, spans)))
        region = ", ".join(f"{a}0:{a}0+{d}" for a, d in zip(label[1:], spans))
        w["roi"] = Workload("roi", f"ds[:, {region}]", "throughput", rois[-1], rois[:-1])

        # trace: one pixel over all time (the trace of a cell, as analysis plots it), rotating
        # its place; through every block file of a recording of one time point per file
        pixels = [tuple(int(rng.integers(0, s)) for s in shape[1:]) for _ in range(reps + 1)]
        w["trace"] = _over_all_time("trace", f"ds[:, {', '.join(label[1:])}]", pixels)

    # stride: every 5th time point (fewer with fewer than 10), rotating the start
    step = 5 if T >= 10 else T // 2
    if step >= 2:
        starts = [i % step for i in range(reps + 1)]
        w["stride"] = Workload(
            "stride",
            f"ds[s::{step}]",
            "throughput",
            (slice(starts[-1], None, step),),
            [(slice(s, None, step),) for s in starts[:-1]],
        )

    # fancy: unsorted distinct time points, a new set each repetition
    k = min(10, T)
    if k >= 2:
        sets = []
        for _ in range(reps + 1):
            pick = [int(t) for t in rng.permutation(T)[:k]]
            if pick == sorted(pick):
                pick = pick[::-1]
            sets.append((pick,))
        w["fancy"] = Workload(
            "fancy", f"ds[[{k} unsorted {label[0]}]]", "throughput", sets[-1], sets[:-1]
        )

    # full: the whole array (the same each time: it is far larger than any cache but the OS's)
    w["full"] = Workload("full", "ds[:]", "throughput", (slice(None),), [(slice(None),)] * reps)

    # open: open the dataset, then read the first plane
    first = (0,) * lead
    w["open"] = Workload(
        "open", f"open + ds[{', '.join('0' * lead)}]", "open", first, [first] * reps
    )
    return w


def _over_all_time(name: str, label: str, places: list[tuple[int, ...]]) -> Workload:
    """``ds[:, *place]`` for each place in turn, the last one the check."""
    selections = [(slice(None),) + tuple(place) for place in places]
    return Workload(name, label, "throughput", selections[-1], selections[:-1])


# --- page cache ------------------------------------------------------------------------------


def drop_cache(paths) -> None:
    """Drop the files' pages from the page cache (fsync fresh files first: dirty pages stay).
    Our readers' mappings are released first: the kernel keeps mapped pages."""
    file_cache = sys.modules.get("split_dataset.file_cache")  # not imported: nothing mapped
    if file_cache is not None:
        file_cache.release_mappings()
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


def loadavg() -> str:
    """The load average over 1, 5 and 15 minutes: what else the machine was doing."""
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def stats(times: list[float]) -> dict:
    a = np.asarray(times, dtype=float)
    if a.size == 0:
        return {}
    return dict(
        n=int(a.size),
        median=float(np.median(a)),
        min=float(a.min()),
        p50=float(np.percentile(a, 50)),
        p99=float(np.percentile(a, 99)),
        mean=float(a.mean()),
    )


def taking_turns(items: list, number: int) -> list:
    """``items`` in turn ``number``'s order: each goes first in turn, the others after it in
    their order (readers timed one after another meet the machine's moments alike)."""
    if not items:
        return items
    first = number % len(items)
    return items[first:] + items[:first]


def run_workload(
    readers: dict,
    workload: Workload,
    array: Any = None,
    files: list | None = None,
    cold: bool = False,
) -> dict:
    """Time every reader on the workload's selections, interleaved per selection.

    ``readers`` maps a name to an object with ``read(index) -> ndarray`` (and, for the "open"
    workload, ``open_and_read(index)``); a reader that raises ``NotImplementedError`` on the
    check selection is skipped, with the error as its note. ``array``: anything indexed like
    the data (an ndarray, a memory map) to check each reader's untimed result against, or
    None; a reader with ``checks = False`` (a stand-in that returns no data, such as
    ``ceiling.FirstTouch``) is timed but not checked. ``cold``: the ``files``' pages are
    dropped before every read, of every reader. The readers take turns going first.
    Returns per reader: the raw times, CPU time / wall time of the timed calls, and whether
    the check selection matched ``array[index]``.
    """
    results: dict = {}
    expected = None if array is None else np.asarray(array[workload.check])
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
            if expected is not None and getattr(reader, "checks", True):
                got = np.asarray(got)
                entry["correct"] = bool(
                    got.shape == expected.shape and np.array_equal(got, expected)
                )
            del got
        except NotImplementedError as error:
            entry["note"] = str(error)
            entry["skip"] = True
    active = [(n, r) for n, r in readers.items() if not results[n].get("skip")]
    for number, index in enumerate(workload.selections):
        # Each reader goes first in turn. Cold: dropping the guest's pages leaves the host's
        # cache under a VM's disk warm, and whoever read a selection first paid 1.1-1.5x.
        # Hot: a reader's place after another changed its small-read p50 by up to 1.27x
        # (random planes: ours 158 us first, 200 us after h5py; h5py 0.97-1.1x).
        order = taking_turns(active, number)
        for name, reader in order:
            entry = results[name]
            if cold and files:
                drop_cache(files)
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
