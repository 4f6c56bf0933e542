"""Where the time of reads goes: planning, waiting on the disk, decoding, copying, idle threads.

    with profile_reads() as profile:
        ds[:, 3]
    print(profile.report())

While a profile is active on the calling thread (a context variable: other threads' reads are
not counted), the compiled reader times each stage on every thread it runs on, and the Python
side times planning and counts page faults. Cost: a few clock reads per chunk, only then.
"""

from __future__ import annotations

import resource
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, fields

_ACTIVE: ContextVar[ReadProfile | None] = ContextVar("split_dataset_read_profile", default=None)

NS = 1e-9


@dataclass
class ReadProfile:
    """Sums over the reads made while the profile was active (seconds, counts)."""

    reads: int = 0
    wall_s: float = 0.0  # from the start to the end of each read
    run_s: float = 0.0  # of which the compiled reader ran (wall time)
    fallback_s: float = 0.0  # of which h5py decoded chunks the compiled reader does not
    threads_s: float = 0.0  # wall time x threads the reads were allowed: the cores' time
    busy_s: float = 0.0  # thread time inside the compiled reader's loop, summed over threads
    cpu_s: float = 0.0  # of which on the CPU (the rest: waiting on the disk, page faults)
    io_s: float = 0.0  # thread time in pread: copying from the page cache, or the disk
    copy_s: float = 0.0  # thread time copying decoded chunks into the output
    chunks_s: float = 0.0  # thread time handling chunks: io + decode + copy
    chunks: int = 0
    missed_chunks: int = 0  # reads of chunks the page cache missed (the probe stops at the
    # first miss of a read: from then on the reader reads ahead instead)
    thread_runs: int = 0  # threads that joined a run, summed over runs
    minor_faults: int = 0  # page faults of the process during runs (first touch of output)
    major_faults: int = 0

    @property
    def planning_s(self) -> float:
        """The calling thread's time outside the compiled run: selection, planning, opening
        files, the chunk index, allocating the output."""
        return max(self.wall_s - self.run_s - self.fallback_s, 0.0)

    @property
    def decode_s(self) -> float:
        return max(self.chunks_s - self.io_s - self.copy_s, 0.0)

    def shares(self) -> dict[str, float]:
        """Each stage as a fraction of the cores' time (``threads_s``); they sum to 1."""
        total = self.threads_s or 1.0
        parts = {
            "planning": self.planning_s,
            "io": self.io_s,
            "decode": self.decode_s,
            "copy": self.copy_s,
            "h5py": self.fallback_s,
            "loop": max(self.busy_s - self.chunks_s, 0.0),
        }
        parts["idle"] = max(total - sum(parts.values()), 0.0)
        return {name: value / total for name, value in parts.items()}

    def report(self) -> str:
        shares = ", ".join(f"{k} {v:.0%}" for k, v in self.shares().items())
        return (
            f"{self.reads} reads in {self.wall_s * 1e3:.2f} ms ({shares}); {self.chunks} chunks, "
            f"{self.missed_chunks} missed the page cache; {self.minor_faults} page faults"
        )

    def add(self, other: ReadProfile) -> None:
        for field in fields(self):
            setattr(self, field.name, getattr(self, field.name) + getattr(other, field.name))


@contextmanager
def profile_reads() -> Iterator[ReadProfile]:
    """Profile the reads made on this thread inside the ``with`` block."""
    profile = ReadProfile()
    token = _ACTIVE.set(profile)
    try:
        yield profile
    finally:
        _ACTIVE.reset(token)


def active_profile() -> ReadProfile | None:
    return _ACTIVE.get()


def page_faults() -> tuple[int, int]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_minflt, usage.ru_majflt


def record_run(
    profile: ReadProfile, timings: dict[str, int], run_s: float, threads: int, faults: tuple
) -> None:
    """Add one compiled run (``ReadContext.timings()``) to the profile."""
    minor, major = page_faults()
    profile.run_s += run_s
    profile.threads_s += run_s * (threads - 1)  # the caller's own time is in wall_s
    profile.busy_s += timings["busy_ns"] * NS
    profile.cpu_s += timings["cpu_ns"] * NS
    profile.io_s += timings["io_ns"] * NS
    profile.copy_s += timings["copy_ns"] * NS
    profile.chunks_s += timings["chunks_ns"] * NS
    profile.chunks += timings["chunks"]
    profile.missed_chunks += timings["missed"]
    profile.thread_runs += timings["threads"]
    profile.minor_faults += minor - faults[0]
    profile.major_faults += major - faults[1]
