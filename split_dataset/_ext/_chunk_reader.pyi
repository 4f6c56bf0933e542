"""Compiled chunk reader (src_ext/_chunk_reader.pyx)."""

from collections.abc import Sequence
from enum import IntEnum
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

class Codec(IntEnum):
    RAW = 0
    BLOSC = 1
    DEFLATE = 2
    SHUFFLE_DEFLATE = 3
    SHUFFLE = 4
    H5PY = 99

class ReadError(IntEnum):
    READ_FAILED = 1
    TRUNCATED = 2
    BAD_BLOSC_HEADER = 3
    WRONG_DECODED_SIZE = 4
    BLOSC_FAILED = 5
    DEFLATE_FAILED = 6
    WRONG_STORED_SIZE = 7
    CHUNK_OUTSIDE_GRID = 8
    OUT_OF_MEMORY = 9
    CHUNK_NOT_INDEXED = 10
    CHUNK_OUTSIDE_FILE = 11
    CHECKSUM_MISMATCH = 12
    CHUNK_MISSING = 13
    FILE_SHRANK = 14

ERROR_MESSAGES: dict[int, str]

class _OpenFile(Protocol):
    fd: int
    layout: Any  # file_layout.FileLayout

def wake_pool(threads: int, spin_us: int = 200) -> None: ...
def pool_size() -> int: ...
def foreground_reads() -> int: ...
def thread_has_state() -> bool: ...
def blosc_decode_unchecked(chunk: NDArray[np.uint8] | bytes, nbytes: int) -> int: ...
def map_file(fd: int, size: int) -> int: ...
def unmap_file(address: int, size: int) -> None: ...
def crc32(data: Any, value: int = 0) -> int: ...
def max_stored_bytes(chunk_nbytes: int) -> int: ...

class FileDescription:
    layout: Any
    def __init__(self, layout: Any) -> None: ...

class ReadContext:
    error_task: int
    error_detail: int
    background: bool
    decode_only: bool
    read_ahead: bool
    read_ahead_thread: bool
    read_ahead_bytes: int
    profile: bool
    def __init__(
        self,
        plan: Any,
        out: NDArray[Any],
        files: Sequence[_OpenFile],
        verify_checksums: bool = False,
    ) -> None: ...
    @property
    def error_code(self) -> int: ...
    def chunk_index(self, task: int) -> int: ...
    def as_template(self) -> ReadContext: ...
    def for_output(self, out: NDArray[Any]) -> ReadContext | None: ...
    def rebound(self, files: Sequence[Any], out: NDArray[Any]) -> ReadContext | None: ...
    def run_into(
        self,
        out: NDArray[Any],
        threads: int,
        awake_only: bool,
        background: bool,
        read_ahead: bool,
        read_ahead_thread: bool,
        chunk_base: Sequence[int] | None = None,
    ) -> ReadContext | None: ...
    def timings(self) -> dict[str, int]: ...
    def read_ahead_from(self, slot: int) -> None: ...
    def read_ahead_thread_from(self, task: int, tasks_done: int) -> None: ...
    def files_to_index(self, chunk_base: Sequence[int] | None = None) -> list[int]: ...
    def chunks_of_file(
        self, slot: int, chunk_base: Sequence[int] | None = None
    ) -> NDArray[np.int64]: ...
    def run(self, threads: int = 1, awake_only: bool = False) -> None: ...
    def scatter_decoded(self, task: int, decoded: NDArray[np.uint8]) -> None: ...
