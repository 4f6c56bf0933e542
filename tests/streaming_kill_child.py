"""Child process of the kill test: streams frames into a SplitDatasetWriter until SIGKILLed.

    python streaming_kill_child.py FOLDER SEED N_FRAMES FRAMES_PER_BLOCK COMPRESSION DURABLE

Prints ``ready`` once imported, waits for a line on stdin, then appends frames in random batch
sizes (seeded) and after every append prints ``<frames appended> <frames written>`` (written =
committed blocks, durably on disk). After ``close`` it prints ``closed <n>``. Frame ``i`` is
``expected_frames(n)[i]``: a pattern derived from ``i``, every fifth frame incompressible noise
(stored raw), so the test can tell exactly which frames reached the disk.
"""

from __future__ import annotations

import sys

import numpy as np

FRAME_SHAPE = (2, 40, 32)


def frame(i: int) -> np.ndarray:
    if i % 5 == 2:  # noise: blosc cannot shrink it, the chunks are stored raw
        return np.random.default_rng(i).integers(0, 65536, FRAME_SHAPE, dtype=np.uint16)
    size = int(np.prod(FRAME_SHAPE))
    return ((np.arange(size) % 97) * 3 + i * 101).astype(np.uint16).reshape(FRAME_SHAPE)


def expected_frames(n: int) -> np.ndarray:
    return np.stack([frame(i) for i in range(n)]) if n else np.empty((0,) + FRAME_SHAPE, np.uint16)


def main(argv: list[str]) -> None:
    folder, seed, n_frames, per_block, compression, durable = argv
    from split_dataset.streaming import SplitDatasetWriter

    rng = np.random.default_rng(int(seed))
    n_frames, per_block = int(n_frames), int(per_block)
    data = expected_frames(n_frames)
    compression = None if compression == "none" else compression
    print("ready", flush=True)
    sys.stdin.readline()
    writer = SplitDatasetWriter(folder, FRAME_SHAPE, np.uint16, per_block,
                                compression=compression, threads=2, max_pending_blocks=3,
                                durable=durable == "durable")
    position = 0
    while position < n_frames:
        count = min(int(rng.integers(1, 2 * per_block + 2)), n_frames - position)
        writer.append(data[position] if count == 1 else data[position : position + count])
        position += count
        print(writer.frames_appended, writer.frames_written, flush=True)
    writer.close()
    print("closed", writer.frames_written, flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
