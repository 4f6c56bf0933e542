"""The dask bridge: a split dataset (or a view of one) as a lazy dask array whose chunks follow
its block files, and a dask array written as a split dataset, one task per block.

Imported only when used (``ds.to_dask()``, ``to_split_dataset``): dask stays an optional extra.

A chunk's task holds the dataset (which pickles in a few hundred bytes and reopens its files
lazily, in any process) and the chunk's slices, never data; it reads with the fast reader on
one thread per task, since dask's own workers already keep every core busy.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .blocks import owned_range

TASK_THREADS = 1  # reader threads per dask task: dask runs as many tasks as there are cores


def block_chunks(array: Any) -> tuple[tuple[int, ...], ...]:
    """Per axis, the chunk lengths along which ``array``'s files split it: a dataset's owned
    block extents, a view's runs of coordinates within one block."""
    chunks = array.chunks
    if chunks and isinstance(chunks[0], tuple):  # a view: already per-axis runs
        return tuple(chunks)
    runs = []
    for size, block, n_blocks in zip(array.shape, array.shape_block, array.blocks_grid):
        extents = [owned_range(b, block, n_blocks, size) for b in range(n_blocks)]
        runs.append(tuple(hi - lo for lo, hi in extents if hi > lo) or (0,))
    return tuple(runs)


def _split(runs: tuple[int, ...], piece: int | None) -> tuple[int, ...]:
    """Block runs cut into pieces of at most ``piece`` (sub-blocks), never across a block."""
    if piece is None:
        return runs
    if piece < 1:
        raise ValueError(f"chunk sizes must be at least 1, got {piece}")
    return tuple(
        part
        for run in runs
        for part in ([piece] * (run // piece) + [run % piece] * bool(run % piece))
    ) or (0,)


def _merged(runs: tuple[int, ...], slab_bytes: int, target: int) -> tuple[int, ...]:
    """Consecutive block runs along an axis grouped while a chunk stays within ``target``
    bytes (``slab_bytes``: one element's worth along this axis)."""
    merged: list[int] = []
    for run in runs:
        if merged and (merged[-1] + run) * slab_bytes <= target:
            merged[-1] += run
        else:
            merged.append(run)
    return tuple(merged)


def dask_chunks(array: Any, chunks: Sequence[int | None] | int | str | None = None) -> tuple:
    """The chunks of ``to_dask``, never straddling two files along any axis:

    - None: whole blocks, grouped along the first axis up to dask's ``array.chunk-size``
      (a reduction over time then makes few, large partial results, as dask's own chunks do);
    - ``"blocks"``: one block per chunk;
    - sizes along the leading axes: blocks cut into sub-blocks (``(1,)``: one time point per
      chunk; an int applies to the first axis).
    """
    runs = block_chunks(array)
    if chunks == "blocks":
        return runs
    if chunks is None:
        import dask
        from dask.utils import parse_bytes

        if not runs or not runs[0]:
            return runs
        target = parse_bytes(dask.config.get("array.chunk-size"))
        slab = int(np.prod([max(r) for r in runs[1:]], dtype=np.int64)) * array.dtype.itemsize
        return (_merged(runs[0], max(slab, 1), target),) + runs[1:]
    if isinstance(chunks, str):
        raise ValueError(f"chunks must be None, 'blocks' or sizes, got {chunks!r}")
    if isinstance(chunks, (int, np.integer)):
        chunks = (int(chunks),)
    if len(chunks) > len(runs):
        raise ValueError(f"chunks has {len(chunks)} entries for a {len(runs)}-d array")
    pieces = list(chunks) + [None] * (len(runs) - len(chunks))
    return tuple(_split(r, None if p is None else int(p)) for r, p in zip(runs, pieces))


def _identity(array: Any) -> tuple:
    """What makes the graph's name: the dataset's folder and the state of its metadata, the
    view's place in it, shape and dtype (the same data always gets the same name)."""
    source = getattr(array, "source", array)
    root = Path(source.root).resolve()
    metadata_files = sorted(root.glob("*stack_metadata.json"))
    stamp = [(p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in metadata_files]
    return (str(root), stamp, len(source.file_names), repr(array), array.shape, array.dtype.str)


def read_chunk(array: Any, key: tuple[slice, ...]) -> np.ndarray:
    """One chunk: the task every chunk of ``to_dask`` runs."""
    return array.read(key, threads=TASK_THREADS)


def to_dask(array: Any, chunks: Sequence[int | None] | int | str | None = None):
    """``array`` (a ``SplitDataset`` or a view) as a lazy dask array aligned to its blocks:
    chunks never straddle two files (see ``dask_chunks`` for ``chunks``)."""
    import dask.array as da
    from dask.base import tokenize
    from dask.highlevelgraph import HighLevelGraph

    dtype = array.dtype
    chunk_runs = dask_chunks(array, chunks)
    name = f"split-dataset-{tokenize(_identity(array), chunk_runs)}"
    starts = [np.r_[0, np.cumsum(run)[:-1]].astype(int).tolist() for run in chunk_runs]
    layer: dict[Any, Any] = {}
    for index in itertools.product(*(range(len(run)) for run in chunk_runs)):
        key = tuple(
            slice(starts[axis][i], starts[axis][i] + chunk_runs[axis][i])
            for axis, i in enumerate(index)
        )
        layer[(name,) + index] = (read_chunk, array, key)
    graph = HighLevelGraph.from_collections(name, layer, dependencies=())
    meta = np.empty((0,) * len(chunk_runs), dtype=dtype)
    return da.Array(graph, name, chunk_runs, dtype=dtype, meta=meta)


def _save_block(target: Any, linear: int, block: np.ndarray) -> int:
    target.save_block_data(linear, block)
    return linear


def to_split_dataset(
    array: Any,
    root_name: str | Path,
    block_size: Sequence[int] | None = None,
    prefix: str = "",
    compression: Any = "blosc",
    overwrite: bool = False,
    resolution: Sequence[float | None] | None = None,
    frequency: float | None = None,
    axis_order: str | None = None,
    durable: bool = True,
    **compute_options: Any,
):
    """Write a dask array as a split dataset, one task per block, in parallel (on whatever
    scheduler is active, a distributed cluster included: workers write their own block files,
    which must therefore be on a filesystem they share). Returns the dataset, opened.

    ``block_size``: the blocks (default: the array's chunks, which must then be regular).
    """
    import dask
    import dask.array as da

    from .writer import EmptySplitDataset

    x = array if isinstance(array, da.Array) else da.asarray(array)
    if block_size is None:
        block_size = tuple(run[0] for run in x.chunks)
    x = x.rechunk(tuple(int(b) for b in block_size))
    target = EmptySplitDataset(
        root_name,
        prefix,
        shape_full=x.shape,
        shape_block=tuple(block_size),
        resolution=resolution,
        frequency=frequency,
        axis_order=axis_order,
        compression=compression,
        dtype=x.dtype,
        overwrite=overwrite,
        durable=durable,
    )
    blocks = x.to_delayed()
    grid = blocks.shape
    tasks = [
        dask.delayed(_save_block)(target, int(np.ravel_multi_index(index, grid)), blocks[index])
        for index in itertools.product(*(range(n) for n in grid))
    ]
    try:
        dask.compute(*tasks, **compute_options)
    except BaseException:
        target.abandon()
        raise
    return target.finalize()
