"""How many threads the reader uses: a package-wide default, ``threads=``, threadpoolctl.

The threads themselves are native workers of the chunk reader (``src_ext/worker_pool.h``),
started once and kept for the process. ``threadpoolctl.threadpool_limits(n)`` (as set by
joblib and dask workers) caps them like it caps BLAS and OpenMP, to avoid oversubscription.
"""

from __future__ import annotations

import os

_default_threads = max(1, os.cpu_count() or 1)
_limit: int | None = None  # set through threadpoolctl


def get_default_threads() -> int:
    return _default_threads


def set_default_threads(threads: int) -> None:
    """Threads used by reads that pass no ``threads=`` (default: the number of cores)."""
    global _default_threads
    if int(threads) < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")
    _default_threads = int(threads)


def effective_threads(requested: int | None) -> int:
    threads = _default_threads if requested is None else int(requested)
    if threads < 1:
        raise ValueError(f"threads must be at least 1, got {requested}")
    return min(threads, _limit) if _limit is not None else threads


def _register_threadpoolctl() -> None:
    try:
        from threadpoolctl import LibController, register
    except ImportError:  # threadpoolctl < 3.5: no custom controllers
        return

    class ReaderThreadsController(LibController):
        user_api = "split_dataset"
        internal_api = "split_dataset"
        filename_prefixes = ("_chunk_reader",)

        def get_num_threads(self) -> int:
            return effective_threads(None)

        def set_num_threads(self, num_threads: int) -> None:
            global _limit
            # Restoring the previous value (the default) lifts the limit entirely.
            limit = None if num_threads is None else max(1, int(num_threads))
            _limit = None if limit is None or limit >= _default_threads else limit

        def get_version(self) -> str:
            from . import __version__

            return __version__

    register(ReaderThreadsController)


_register_threadpoolctl()
