"""Child process of the whole-array kill tests: writes a dataset until SIGKILLed.

    python save_kill_child.py MODE FOLDER

MODE: ``save`` (save_to_split_dataset into a new folder), ``overwrite`` (the same over an
existing dataset), ``blocks`` (EmptySplitDataset, blocks in a shuffled order, then finalize),
``convert`` (the command line, from a .npy beside FOLDER). Prints ``ready`` once imported,
waits for a line on stdin, writes, then prints ``done``. The data is ``expected()``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

SHAPE = (24, 2, 40, 32)
BLOCK = (2, 2, 40, 32)


def expected(old: bool = False) -> np.ndarray:
    """Every fourth time point is noise (stored raw); ``old``: what an overwrite replaces."""
    size = int(np.prod(SHAPE[1:]))
    frames = [((np.arange(size) % 89) * 5 + t * 7 + (1000 if old else 0)).astype(np.uint16)
              for t in range(SHAPE[0])]
    array = np.stack(frames).reshape(SHAPE)
    for t in range(2, SHAPE[0], 4):
        array[t] = np.random.default_rng(t).integers(0, 65536, SHAPE[1:], dtype=np.uint16)
    return array


def main(mode: str, folder: Path) -> None:
    from split_dataset import EmptySplitDataset, save_to_split_dataset
    from split_dataset.tools.cli import main as command_line

    data = expected()
    print("ready", flush=True)
    sys.stdin.readline()
    if mode in ("save", "overwrite"):
        save_to_split_dataset(data, folder.parent, block_size=BLOCK, prefix=folder.name,
                              threads=2, overwrite=mode == "overwrite")
    elif mode == "blocks":
        target = EmptySplitDataset(folder.parent, folder.name, shape_full=SHAPE,
                                   shape_block=BLOCK, dtype=data.dtype)
        order = np.random.default_rng(int(folder.name.split("-")[-1])).permutation(target.n_blocks)
        slices = dict(enumerate(s for _, s in target.slices()))
        for n in order:
            target.save_block_data(int(n), data[slices[int(n)]])
        target.finalize()
    elif mode == "convert":
        source = folder.parent / "source.npy"
        assert command_line(["convert", str(source), str(folder), "--frames-per-file", "2"]) == 0
    else:
        raise ValueError(mode)
    print("done", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
