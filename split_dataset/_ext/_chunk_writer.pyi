"""Compiled chunk writer (src_ext/_chunk_writer.pyx)."""

from typing import Any

BLOSC_MAX_OVERHEAD: int

def compress_block(
    compress_ctx: int,
    block: Any,
    starts: Any,
    lengths: Any,
    chunk_bytes: int,
    clevel: int,
    shuffle: int,
    typesize: int,
    cname: bytes,
    stored: Any,
    offsets: Any,
    sizes: Any,
    masks: Any,
    crcs: Any,
) -> int: ...
def write_chunks(
    write_chunk: int,
    dataset_id: int,
    origins: Any,
    stored: Any,
    offsets: Any,
    sizes: Any,
    masks: Any,
) -> int: ...
