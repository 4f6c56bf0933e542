"""The machine and the versions a benchmark report names (shared by ``report.py`` and
``write_report.py``)."""

from __future__ import annotations

import contextlib
import datetime
import os
import platform
from collections.abc import Iterator
from pathlib import Path

import numpy as np

import split_dataset
from split_dataset.tools.ceiling import N_CORES
from split_dataset.tools.native_decoders import describe_decoders


def machine_info() -> dict:
    import blosc2
    import h5py
    import hdf5plugin

    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "?"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024**2:.1f} GiB"
    except OSError:
        pass
    try:
        import tables

        tables_version = tables.__version__
    except ImportError:
        tables_version = "-"
    return dict(
        date=datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        nproc=os.cpu_count(),
        affinity=N_CORES,
        cpu=model,
        memory=mem,
        kernel=platform.release(),
        python=platform.python_version(),
        numpy=np.__version__,
        h5py=h5py.__version__,
        hdf5=h5py.version.hdf5_version,
        hdf5plugin=hdf5plugin.version,
        blosc2=blosc2.__version__,
        tables=tables_version,
        split_dataset=split_dataset.__version__,
        default_threads=split_dataset.get_default_threads(),
        ceiling_decoders=describe_decoders(),
        free_page_reporting=free_page_reporting(),
        memory_reclaim=memory_reclaim(),
        env={
            k: os.environ[k]
            for k in ("BLOSC_NTHREADS", "OMP_NUM_THREADS", "SPLIT_DATASET_BENCH_SIZE")
            if k in os.environ
        },
    )


# The guest's free-page reporting (virtio-balloon): free blocks of 2**order pages go back to
# the host, and touching them again costs a fault on the host too.
PAGE_REPORTING = Path("/sys/module/page_reporting/parameters")
# no free block reaches this order (the buddy allocator's largest is 10), so none is reported
_ORDER_NEVER_REPORTED = "11"


def free_page_reporting() -> str:
    """The VM's free-page reporting as a report states it: 'none', or its order and delay."""
    try:
        order = (PAGE_REPORTING / "page_reporting_order").read_text().strip()
    except OSError:
        return "none"
    try:
        delay = (PAGE_REPORTING / "min_free_ms").read_text().strip() + " ms"
    except OSError:
        delay = "?"
    return f"order {order} (blocks of {4 << int(order)} KiB), reported after {delay}"


# Proactive reclaim by the kernel's DAMON: a scheme whose action is "pageout" drops pages
# left unaccessed for its minimum age, page-cache pages of idle files included.
DAMON = Path("/sys/kernel/mm/damon/admin/kdamonds")


def memory_reclaim() -> str:
    """DAMON's proactive reclaim as a report states it: 'none', or how long a page may stay
    idle before it is paged out (a file left unread that long is read from the disk again,
    "hot" or not)."""
    found = []
    try:
        for kdamond in sorted(DAMON.glob("[0-9]*")):
            if (kdamond / "state").read_text().strip() != "on":
                continue
            for context in sorted((kdamond / "contexts").glob("[0-9]*")):
                aggregation_us = int((context / "monitoring_attrs/intervals/aggr_us").read_text())
                for scheme in sorted((context / "schemes").glob("[0-9]*")):
                    if (scheme / "action").read_text().strip() != "pageout":
                        continue
                    age = int((scheme / "access_pattern/age/min").read_text())
                    found.append(f"DAMON pageout of pages idle >= {age * aggregation_us / 1e6:g} s")
    except (OSError, ValueError):
        return "?"
    return "; ".join(found) or "none"


@contextlib.contextmanager
def free_page_reporting_paused() -> Iterator[None]:
    """Stop the guest reporting free pages to the host for the block (root only), then put
    the setting back, whatever happens in the block."""
    path = PAGE_REPORTING / "page_reporting_order"
    saved = path.read_text().strip()
    path.write_text(_ORDER_NEVER_REPORTED)
    try:
        yield
    finally:
        path.write_text(saved)
