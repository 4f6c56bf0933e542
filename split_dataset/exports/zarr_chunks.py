"""Chunks of a zarr v3 array encoded and written by our own threads: blosc (GIL released) and a
plain file write per chunk, without zarr's per-chunk event-loop round trip (measured: most of
an export's time at 2 cores). Only for the layout this package creates and checks: codecs
``bytes`` (little-endian) then ``blosc``, the default ``c/i/j/...`` chunk keys."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np


def direct_layout(array: Any) -> bool:
    """Whether ``array`` stores its chunks the way ``ChunkFiles`` writes them."""
    from zarr.codecs import BloscCodec, BytesCodec

    metadata = array.metadata
    codecs: Any = getattr(metadata, "codecs", ())
    encoding = getattr(metadata, "chunk_key_encoding", None)
    return (
        getattr(metadata, "zarr_format", None) == 3
        and len(codecs) == 2
        and isinstance(codecs[0], BytesCodec)
        and (codecs[0].endian is None or codecs[0].endian.value == "little")
        and isinstance(codecs[1], BloscCodec)
        and getattr(encoding, "name", None) == "default"
        and getattr(encoding, "separator", None) == "/"
        and array.shards is None
    )


class ChunkFiles:
    """Writes whole chunks of one zarr v3 array into its folder: ``write(start, block)``
    stores a block that starts on a chunk boundary and covers whole chunks (or reaches the
    array's end). Edge chunks are stored at full chunk size, padded with the fill value, as
    zarr stores them. Blocks of different calls are disjoint, so calls may run concurrently."""

    def __init__(self, folder: Path, array: Any) -> None:
        import numcodecs

        codec = array.metadata.codecs[1]
        self.folder = Path(folder)
        self.chunks = tuple(int(c) for c in array.chunks)
        self.dtype = np.dtype(array.dtype).newbyteorder("<")
        self.fill = array.metadata.fill_value
        self.codec = numcodecs.Blosc(
            cname=codec.cname.value, clevel=codec.clevel, shuffle=numcodecs.Blosc.SHUFFLE
        )

    def write(self, start: tuple[int, ...], block: np.ndarray) -> None:
        grid = [range(0, size, chunk) for size, chunk in zip(block.shape, self.chunks)]
        for offsets in itertools.product(*grid):
            piece = block[tuple(slice(o, o + c) for o, c in zip(offsets, self.chunks))]
            if piece.shape != self.chunks:
                padded = np.full(self.chunks, self.fill, dtype=self.dtype)
                padded[tuple(slice(0, n) for n in piece.shape)] = piece
                piece = padded
            encoded = self.codec.encode(np.ascontiguousarray(piece, dtype=self.dtype))
            index = [(s + o) // c for s, o, c in zip(start, offsets, self.chunks)]
            path = self.folder.joinpath("c", *map(str, index))
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(encoded)
