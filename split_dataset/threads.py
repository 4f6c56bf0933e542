"""How many threads the reader uses: a package-wide default, ``threads=``, threadpoolctl.

The threads themselves are native workers of the chunk reader (``src_ext/worker_pool.h``),
started once and kept for the process. So that parallel frameworks and the reader do not
oversubscribe the cores, reads that do not ask for a number of threads honour
``threadpoolctl.threadpool_limits(n)`` (as set by joblib), ``OMP_NUM_THREADS`` (as set in
dask.distributed's worker processes), and, inside a task of dask's threaded scheduler or of a
distributed worker, leave the cores to dask's own threads.
"""

from __future__ import annotations

import os
import sys
import threading
import weakref

CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _omp_threads() -> int | None:
    try:
        value = int(os.environ.get("OMP_NUM_THREADS", ""))
    except ValueError:
        return None
    return value if value >= 1 else None


_default_threads = max(1, min(CORES, _omp_threads() or CORES))
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
    if requested is None and "dask" in sys.modules:
        threads = min(threads, _dask_task_threads() or threads)
    return min(threads, _limit) if _limit is not None else threads


def _dask_task_threads() -> int | None:
    """Inside a task of dask's threaded scheduler or of a distributed worker: the reader
    threads that keep dask's threads times ours within the cores; None outside dask."""
    current = threading.current_thread()
    threaded = sys.modules.get("dask.threaded")
    pool_class = getattr(threaded, "ContextAwareThreadPoolExecutor", None)
    if pool_class is not None:
        # A pool thread runs concurrent.futures' worker loop, whose first argument is a weak
        # reference to its executor (the pool's thread set is filled only after the thread
        # has started, so it may not list a thread running its first task yet).
        arguments = getattr(current, "_args", None) or (None,)
        executor = arguments[0]() if isinstance(arguments[0], weakref.ref) else None
        if isinstance(executor, pool_class):
            return max(1, CORES // max(1, executor._max_workers))
    distributed = sys.modules.get("distributed")
    if distributed is not None and current.name.startswith("Dask-"):
        try:
            worker = distributed.get_worker()
        except ValueError:
            return None
        return max(1, CORES // max(1, worker.state.nthreads))
    return None


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
