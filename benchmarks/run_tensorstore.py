"""Time tensorstore on a zarr v3 copy of the benchmark array; prints JSON on stdout.

Runs in its own virtualenv (``pip install tensorstore numpy``), e.g.::

    /tmp/venvts/bin/python benchmarks/run_tensorstore.py --zarr DIR --array A.npy \
        --chunks 1,1,128,512 --workloads W.json --threads 1,2

The copy (written on first use from the array) is sharded with one shard per time point (like
one block file per time point) and inner chunks equal to PyTables' chunks of the blosc:lz4
split dataset, each compressed with blosc lz4 level 9 + shuffle: the same codec and chunking.
Threads are capped through the context's ``data_copy_concurrency`` and ``file_io_concurrency``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

TOOLS = Path(__file__).resolve().parents[1] / "split_dataset" / "tools"

import numpy as np  # noqa: E402
import tensorstore as ts  # noqa: E402

# the shared workloads, by file path (NumPy only): this virtualenv has no split_dataset
sys.path.insert(0, str(TOOLS))
from workloads import Workload, run_workload  # noqa: E402

sys.path.remove(str(TOOLS))


def spec(path: str, shape=None, chunks=None) -> dict:
    s = {"driver": "zarr3", "kvstore": {"driver": "file", "path": path}}
    if shape is not None:
        s["metadata"] = {
            "shape": list(shape),
            "data_type": "uint16",
            "chunk_grid": {"name": "regular",
                           "configuration": {"chunk_shape": [1] + list(shape[1:])}},
            "codecs": [{
                "name": "sharding_indexed",
                "configuration": {
                    "chunk_shape": list(chunks),
                    "codecs": [
                        {"name": "bytes", "configuration": {"endian": "little"}},
                        {"name": "blosc", "configuration": {"cname": "lz4", "clevel": 9,
                                                            "shuffle": "shuffle", "typesize": 2}},
                    ],
                    "index_codecs": [{"name": "bytes", "configuration": {"endian": "little"}},
                                     {"name": "crc32c"}],
                },
            }],
        }
    return s


def context(threads: int) -> ts.Context:
    return ts.Context({"data_copy_concurrency": {"limit": threads},
                       "file_io_concurrency": {"limit": threads},
                       "cache_pool": {"total_bytes_limit": 0}})


class TSReader:
    def __init__(self, path: str, threads: int) -> None:
        self.path, self.threads = path, threads
        self.store = ts.open(spec(path), context=context(threads), open=True).result()

    def note(self, workload: str) -> str:
        return f"tensorstore {ts.__version__ if hasattr(ts, '__version__') else ''}".strip()

    def read(self, index: tuple) -> np.ndarray:
        return self.store[tuple(index)].read().result()

    def open_and_read(self, index: tuple) -> np.ndarray:
        store = ts.open(spec(self.path), context=context(self.threads), open=True).result()
        return store[tuple(index)].read().result()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--zarr", required=True)
    parser.add_argument("--array", required=True)
    parser.add_argument("--chunks", required=True, help="inner chunk shape, e.g. 1,1,128,512")
    parser.add_argument("--workloads", default=None)
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--cold", action="store_true")
    args = parser.parse_args()
    zarr = Path(args.zarr)
    chunks = [int(c) for c in args.chunks.split(",")]
    marker = zarr / ".complete"
    if not marker.is_file():
        array = np.load(args.array, mmap_mode="r")
        store = ts.open(spec(str(zarr), array.shape, chunks), create=True,
                        delete_existing=True).result()
        for t in range(array.shape[0]):
            store[t].write(np.asarray(array[t])).result()
        marker.write_text("")
    stored = sum(p.stat().st_size for p in zarr.rglob("*") if p.is_file())
    out = dict(stored=stored, results={})
    if args.workloads:
        workloads = [Workload.from_json(w) for w in json.loads(Path(args.workloads).read_text())]
        array = np.load(args.array, mmap_mode="r")
        files = [str(p) for p in zarr.rglob("*") if p.is_file()]
        readers = {f"tensorstore t={n}": TSReader(str(zarr), int(n))
                   for n in args.threads.split(",")}
        for workload in workloads:
            out["results"][workload.name] = run_workload(readers, workload, array, files,
                                                         cold=args.cold)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
