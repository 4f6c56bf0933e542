"""The reader's worker threads: one persistent pool, a package-wide default, threadpoolctl.

Workers only call compiled code that releases the GIL, so Python threads give real
parallelism here. ``threadpoolctl.threadpool_limits(n)`` (as set by joblib and dask workers)
caps this pool like it caps BLAS and OpenMP, to avoid oversubscription.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait

_default_threads = max(1, os.cpu_count() or 1)
_limit: int | None = None  # set through threadpoolctl
_pool: ThreadPoolExecutor | None = None
_pool_size = 0
_pool_lock = threading.Lock()


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


def _get_pool(workers: int) -> ThreadPoolExecutor:
    global _pool, _pool_size
    with _pool_lock:
        if _pool is None or _pool_size < workers:
            old = _pool
            _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="split_dataset")
            _pool_size = workers
            if old is not None:
                old.shutdown(wait=False)
        return _pool


def run_parallel(work: Callable[[], None], threads: int) -> None:
    """Run ``work`` on ``threads`` threads (the caller is one of them) and wait for all."""
    if threads <= 1:
        work()
        return
    pool = _get_pool(threads - 1)
    futures = [pool.submit(work) for _ in range(threads - 1)]
    try:
        work()
    finally:
        wait(futures)
    for future in futures:
        future.result()


def _after_fork_in_child() -> None:
    # Pool threads do not survive fork(); start a fresh pool on first use in the child.
    global _pool, _pool_size, _pool_lock
    _pool, _pool_size, _pool_lock = None, 0, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


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
