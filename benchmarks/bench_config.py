"""Settings of the pytest-benchmark suite, from the environment (shared by conftest and tests)."""

from __future__ import annotations

import os
from pathlib import Path

import data

from split_dataset.tools import workloads as wl

HERE = Path(__file__).resolve().parent
SIZE = data.bench_size()
SHAPE = data.SIZES[SIZE]
VARIANT_KEYS = [(v, t) for v in data.DEFAULT_VARIANTS[SIZE] for t in data.TIME_POINTS_PER_FILE]
VARIANT_IDS = [f"{v}-tpf{t}" for v, t in VARIANT_KEYS]
# pytest runs fewer latency samples than report.py (which does 300) to stay quick
LATENCY_SAMPLES = int(os.environ.get("SPLIT_DATASET_BENCH_LATENCY_SAMPLES", "100"))
WORKLOADS = wl.make_workloads(SHAPE, reps=wl.DEFAULT_REPS, latency_samples=LATENCY_SAMPLES)
