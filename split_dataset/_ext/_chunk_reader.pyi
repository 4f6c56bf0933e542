"""Compiled chunk reader (src_ext/_chunk_reader.pyx)."""

from typing import Any

import numpy as np
from numpy.typing import NDArray

ERROR_NAMES: dict[int, str]

def wake_pool(threads: int, spin_us: int = 200) -> None: ...
def pool_size() -> int: ...

class ReadContext:
    error_task: int
    error_detail: int
    background: bool
    decode_only: bool
    def __init__(
        self, plan: Any, out: NDArray[Any], out_strides: list[int], file_table: list[tuple]
    ) -> None: ...
    @property
    def error_code(self) -> int: ...
    def chunk_index(self, task: int) -> int: ...
    def run(self, threads: int = 1) -> None: ...
    def scatter_decoded(self, task: int, decoded: NDArray[np.uint8]) -> None: ...
