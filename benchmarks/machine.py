"""The machine and the versions a benchmark report names (shared by ``report.py`` and
``write_report.py``)."""

from __future__ import annotations

import datetime
import os
import platform
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
        env={k: os.environ[k] for k in ("BLOSC_NTHREADS", "OMP_NUM_THREADS",
                                         "SPLIT_DATASET_BENCH_SIZE") if k in os.environ},
    )
