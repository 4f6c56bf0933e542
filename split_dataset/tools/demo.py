"""``split-dataset demo``: make a recording, write it as a split dataset, read it back, time it."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .synthetic import synthetic_recording


def _time(label: str, function: Callable[[int], np.ndarray], repeats: int = 5) -> float:
    """Best of ``repeats``; ``function(i)`` reads a different selection each time, so that no
    reader's chunk cache serves a repetition."""
    times = []
    for repeat in range(repeats):
        start = time.perf_counter()
        result = function(repeat)
        times.append(time.perf_counter() - start)
    best = min(times)
    megabytes = result.nbytes / 1e6
    print(
        f"  {label:<34} {result.shape!s:<22} {best * 1e3:8.2f} ms  "
        f"{megabytes / best / 1e3:6.2f} GB/s"
    )
    return best


def _reader(ds, key: Callable[[int], tuple]) -> Callable[[int], np.ndarray]:
    return lambda i: ds[key(i)]


def run_demo(folder: Path | None = None, small: bool = False) -> None:
    import h5py
    import hdf5plugin  # noqa: F401

    from .. import SplitDataset, describe, save_to_split_dataset

    shape = (8, 4, 64, 64) if small else (40, 10, 512, 512)
    temporary = folder is None
    root = Path(tempfile.mkdtemp(prefix="split_dataset_demo_")) if folder is None else Path(folder)
    try:
        print(f"generating a {shape} uint16 recording ({np.prod(shape) * 2 / 1e6:.0f} MB)...")
        movie = synthetic_recording(shape)
        start = time.perf_counter()
        written = save_to_split_dataset(
            movie,
            root,
            block_size=(5,) + shape[1:],
            prefix="recording",
            compression="blosc",
            resolution=(0.5, 2.0, 0.6, 0.6),
            frequency=2.0,
            progress=True,
        )
        elapsed = time.perf_counter() - start
        stored = sum(p.stat().st_size for p in written.root.glob("*.h5"))
        print(
            f"wrote {written.root} in {elapsed:.2f} s, "
            f"compression ratio {movie.nbytes / stored:.2f}x\n"
        )
        for line in describe(written.root):
            print(line)
        ds = SplitDataset(written.root)
        z = shape[1] // 2
        checks = {
            "one plane  ds[t, z]": lambda i: (i, z),
            "one volume ds[t]": lambda i: (i,),
            "plane over time ds[:, z]": lambda i: (slice(None), i % shape[1]),
            "ROI over time": lambda i: (slice(None), slice(0, 2), slice(i, i + 32), slice(10, 42)),
            "every 5th volume ds[::5]": lambda i: (slice(i % 5, None, 5),),
            "unsorted volumes ds[[7, 1, 3]]": lambda i: ([7 - i % 2, 1, 3],),
            "whole recording ds[:]": lambda i: (slice(None),),
        }
        print("\nreading back (best of 5, files in page cache):")
        handles = [h5py.File(p, "r") for p in ds.files.ravel()]
        try:
            for label, key in checks.items():
                for repeat in range(2):
                    if not np.array_equal(ds[key(repeat)], movie[key(repeat)]):
                        raise AssertionError(f"demo read {label} differs from the original")
                _time(label, _reader(ds, key))
            print("\nthe same planes through plain h5py (files kept open):")
            block = ds.shape_block[0]
            _time(
                "h5py dset[t % block, z]", lambda i: handles[i // block][ds.data_key][i % block, z]
            )
            _time(
                "h5py, volume by volume",
                lambda i: np.stack([handles[i // block][ds.data_key][i % block]]),
            )
        finally:
            for handle in handles:
                handle.close()
        print("\nall reads matched the original array bit for bit.")
    finally:
        if temporary:
            shutil.rmtree(root, ignore_errors=True)
