"""One workload timed on every reader, with the ceiling of its chunks, in the same run.

Used by ``split-dataset bench`` and ``benchmarks/report.py``, so that both measure the same way:
the readers read the workload's selections interleaved (``workloads.run_workload``), then the
ceiling is measured on the union of the chunks those selections read (``ceiling``), and each
reader's median becomes a share of the ideal time: decoded bytes / ceiling rate.

Cold runs drop the files' pages before every read of every reader; their ceiling takes the
decode rates measured from memory and the pread rates measured right after dropping the pages
(``ceiling.measure_cold_pread``), so the ideal time is the larger of reading the stored bytes
from the disk and decoding them on all cores.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..dataset import SplitDataset
from .ceiling import (
    ChunkSet,
    ceiling_rate,
    in_place_rate,
    measure_ceiling,
    measure_cold_pread,
    measure_in_place,
    measured_rate,
    serial_rate,
    touched_chunks,
)
from .workloads import Workload, describe, loadavg, result_nbytes, run_workload

LATENCY_UNION = 50  # selections of a latency run whose chunks the ceiling is measured on


def _distinct(selections: list) -> list:
    """The selections without repeats (``full`` times the same one over and over)."""
    return list({repr(s): s for s in selections}.values())


def chunk_set(ds: SplitDataset, workload: Workload, max_stored: int | None = None) -> ChunkSet:
    """The chunks the ceiling is measured on: the union over the timed selections (the first
    50 of a latency run), since chunks decode at different speeds (dark planes faster).
    ``max_stored``: measure on an evenly spread sample of at most that many stored bytes."""
    if workload.kind == "open":
        chunks = touched_chunks(ds, workload.selections[0])
    else:
        chunks = ChunkSet()
        for index in _distinct(workload.selections[:LATENCY_UNION]):
            touched_chunks(ds, index, chunks)
    return chunks if max_stored is None else chunks.sample(max_stored)


def workload_ceiling(chunks: ChunkSet, reps: int, cold: bool) -> dict:
    """The ceiling of ``chunks``: from the page cache, with the same work done into an output
    of the chunks' size (``measure_in_place``), or (``cold``) with the decode rates from
    memory and the pread rates right after dropping the pages."""
    if not cold:
        hot = measure_ceiling(chunks, reps=reps)
        if not hot.get("unavailable"):
            hot.update(measure_in_place(chunks, reps=reps))
        return hot
    ceiling: dict[str, Any] = dict(
        n_chunks=len(chunks), stored=chunks.stored, decoded=chunks.decoded, cold=True
    )
    hot = measure_ceiling(chunks, reps=reps)
    ceiling.update({k: v for k, v in hot.items() if k.startswith("decode") or k == "unavailable"})
    if len(chunks):
        ceiling.update(measure_cold_pread(chunks, reps=3))
    return ceiling


def measure_workload(
    readers: dict,
    workload: Workload,
    ds: SplitDataset,
    *,
    reference: Any = None,
    files: list | None = None,
    cold: bool = False,
    reps: int = 7,
    max_stored: int | None = None,
) -> dict:
    """Time ``readers`` on ``workload`` (checked against ``reference[index]`` if given), then
    measure the ceiling of its chunks; ``evaluate`` turns the two into ratios."""
    load = loadavg()
    results = run_workload(readers, workload, reference, files, cold=cold)
    ceiling = workload_ceiling(chunk_set(ds, workload, max_stored), reps, cold)
    return dict(
        label=workload.label,
        kind=workload.kind,
        load=load,
        results=results,
        ceiling=ceiling,
        example=describe(workload.selections[0]),
    )


def evaluate(
    ds: SplitDataset,
    workload: Workload,
    ceiling: dict,
    results: dict,
    threads_of: Mapping[str, int],
) -> None:
    """Add GB/s returned, CPU/wall, the ideal time and % of the ceiling to each reader's
    results (``threads_of``: how many threads each reader used; 1 if not named)."""
    decoded_of: dict[str, int] = {}
    for s in _distinct(workload.selections):
        decoded_of[repr(s)] = touched_chunks(ds, s).decoded
    decoded = [decoded_of[repr(s)] for s in workload.selections]
    returned = [result_nbytes(s, ds.shape, ds.dtype.itemsize) for s in workload.selections]
    ceiling["decoded_per_selection"] = float(np.median(decoded))
    ceiling["returned_per_selection"] = float(np.median(returned))

    def ideal(rate: float) -> float:
        return float(np.median([d / rate for d in decoded]))

    for name, r in results.items():
        if not r.get("times"):
            continue
        n = threads_of.get(name, 1)
        r["returned_gbps"] = float(np.median(returned)) / r["median"] / 1e9
        r["cpu_per_wall"] = r["cpu"] / r["wall"] if r["wall"] else float("nan")
        if workload.kind == "open":
            continue
        r["ideal"] = ideal(ceiling_rate(ceiling, n))
        r["pct_ceiling"] = 100.0 * r["ideal"] / r["median"]
        r["pct_measured"] = 100.0 * ideal(measured_rate(ceiling, n)) / r["median"]
        r["pct_serial"] = 100.0 * ideal(serial_rate(ceiling, n)) / r["median"]
        placed = in_place_rate(ceiling, n)
        if placed == placed:  # measured (hot runs)
            r["pct_in_place"] = 100.0 * ideal(placed) / r["median"]
    for n in sorted({1, *threads_of.values()}):
        ceiling[f"ideal_t{n}"] = ideal(ceiling_rate(ceiling, n))
