"""Time the released split_dataset 0.4.x on the benchmark workloads; prints JSON on stdout.

Runs in its own virtualenv (0.4.x must not see this repository's package), e.g.::

    python3.11 -m venv /tmp/venv04 && /tmp/venv04/bin/pip install "split_dataset==0.4.4"
    /tmp/venv04/bin/python benchmarks/run_04x.py --dataset DIR --workloads W.json [--array A.npy]

``report.py`` calls it as a subprocess with the same selections as the in-process readers.
0.4.x reads through flammkuchen/PyTables, opening each block file per read. It has no fancy
indexing and ignores slice steps; those workloads are emulated the way a 0.4.x user does it
(one ``ds[t]`` per time point, then ``np.stack``) and labelled so. Its ``__getitem__`` works on
NumPy 2 (only its writer's ``Blocks.n_blocks`` uses the removed ``np.product``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
TOOLS = HERE.parent / "split_dataset" / "tools"
# never import this repository's split_dataset: drop the repo root from the path
sys.path = [p for p in sys.path if Path(p or ".").resolve() != HERE.parent]

import numpy as np  # noqa: E402

import split_dataset  # noqa: E402

# the shared workloads, by file path (NumPy only): the package they live in is not this one
sys.path.insert(0, str(TOOLS))
from workloads import Workload, run_workload  # noqa: E402

sys.path.remove(str(TOOLS))


class Reader04:
    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.ds = split_dataset.SplitDataset(folder)

    def note(self, workload: str) -> str:
        if workload == "fancy":
            return "emulated: np.stack of ds[t] (0.4.x has no fancy indexing)"
        if workload == "stride":
            return "emulated: np.stack of ds[t] (0.4.x ignores slice steps)"
        return ""

    def read(self, index: tuple) -> np.ndarray:
        first, rest = index[0], tuple(index[1:])
        if isinstance(first, list):
            return np.stack([self.ds[(int(t),) + rest] for t in first])
        if isinstance(first, slice) and first.step not in (None, 1):
            times = range(*first.indices(self.ds.shape[0]))
            return np.stack([self.ds[(t,) + rest] for t in times])
        return self.ds[tuple(index)]

    def open_and_read(self, index: tuple) -> np.ndarray:
        return split_dataset.SplitDataset(self.folder)[tuple(index)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset")
    parser.add_argument("--workloads", help="JSON file: list of Workload.to_json()")
    parser.add_argument("--array", default=None, help=".npy of the full array, for the checks")
    parser.add_argument("--cold", action="store_true", help="drop the files' pages before each read")
    parser.add_argument("--version", action="store_true")
    args = parser.parse_args()
    if args.version:
        print(json.dumps(dict(version=split_dataset.__version__, numpy=np.__version__,
                              file=split_dataset.__file__)))
        return
    if not split_dataset.__version__.startswith("0.4"):
        sys.exit(f"expected split_dataset 0.4.x, found {split_dataset.__version__} at "
                 f"{split_dataset.__file__}")
    workloads = [Workload.from_json(w) for w in json.loads(Path(args.workloads).read_text())]
    array = np.load(args.array, mmap_mode="r") if args.array else None
    files = sorted(str(p) for p in Path(args.dataset).glob("[0-9]*.h5"))
    reader = Reader04(args.dataset)
    out = {}
    for workload in workloads:
        result = run_workload({"0.4.x": reader}, workload, array, files, cold=args.cold)["0.4.x"]
        out[workload.name] = result
    print(json.dumps(dict(version=split_dataset.__version__, numpy=np.__version__,
                          pid=os.getpid(), results=out)))


if __name__ == "__main__":
    main()
