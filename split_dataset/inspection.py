"""Describing and verifying a dataset on disk: what ``split-dataset info`` and ``verify`` print.

>>> from split_dataset import describe, verify
>>> print("\n".join(describe("recording/original")))
>>> verify("recording/original")   # [] when every chunk decodes and matches its checksum
"""

from __future__ import annotations

import warnings
from pathlib import Path

from .dataset import SplitDataset
from .errors import SplitDatasetError
from .file_layout import Codec


def describe(path: str | Path, prefix: str | None = None) -> list[str]:
    """Everything a user wants to know about a dataset on disk, as lines of text."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = SplitDataset(path, prefix=prefix)
    grid = tuple(ds.blocks_grid)
    names = ds.file_names
    lines = [
        f"path:        {ds.root}",
        f"shape:       {ds.shape}  ({ds.axis_order or 'axis order unknown'})",
        f"dtype:       {ds.dtype if ds.has_stack else 'none (no stack dataset)'}",
        f"size:        {ds.nbytes / 1e9 if ds.has_stack else 0:.3f} GB",
        f"block shape: {tuple(ds.shape_block)}  grid {grid}  padding {tuple(ds.padding)}",
        f"files:       {len(names)}  ({names[0]} ... {names[-1]})",
        f"metadata:    {'legacy, inside ' + names[-1] if ds.legacy else 'stack_metadata.json'}",
        f"resolution:  {ds.resolution}",
        f"frequency:   {ds.frequency if ds.frequency is not None else 'unknown'}",
    ]
    if ds.metadata.extra:
        lines.append(f"other keys:  {ds.metadata.extra}")
    if ds.has_stack:
        for label, index in (("first", 0), ("last", len(names) - 1)):
            layout = ds.layout(index)
            path_kind = "h5py fallback" if layout.codec == Codec.H5PY else "compiled fast path"
            chunking = "contiguous" if layout.contiguous else f"chunks {layout.chunk_shape}"
            lines.append(
                f"{label + ' file:':<13}{layout.path.name} '{layout.key}' {layout.shape}, "
                f"{chunking}, {layout.describe_filters()} -> {path_kind}"
            )
    for warning in caught:
        lines.append(f"note:        {warning.message}")
    if ds.planned_shape != ds.shape:
        lines.append(f"note:        planned shape {ds.planned_shape}, files hold {ds.shape}")
    others = sorted(p.name for p in ds.root.glob("*.h5") if p.name not in set(names))
    if others:
        lines.append(
            f"note:        other .h5 files in the folder (not blocks): {', '.join(others)}"
        )
    leftovers = sorted(p.name for p in ds.root.glob("*.tmp"))
    if leftovers:
        lines.append(
            f"note:        temporary files of an unfinished write: {', '.join(leftovers[:5])}"
            f"{'...' if len(leftovers) > 5 else ''} (readers ignore them; resume or delete)"
        )
    return lines


def verify(path: str | Path, prefix: str | None = None, progress: bool = False) -> list[str]:
    """Decode every chunk of every block file, checking the CRC-32 our writers record of each
    chunk (files from other tools have none: blosc chunks carry no checksum of their own, so
    there only decoding errors are found); return one line per file that fails."""
    from tqdm import tqdm

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = SplitDataset(path, prefix=prefix, verify_checksums=True)
    failures = []
    blocks = list(ds.slices())
    for linear, (_, slices) in enumerate(
        tqdm(blocks, desc="verifying", unit="file", disable=not progress)
    ):
        owned = tuple(slice(s.start, min(s.stop, n)) for s, n in zip(slices, ds.shape))
        try:
            ds.read(owned, threads=None)
        except SplitDatasetError as error:
            failures.append(f"{ds.file_names[linear]}: {error}")
    return failures
