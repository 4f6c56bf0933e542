"""Reader state in a forked child: start clean, whatever other threads were doing at the fork.

``fork()`` copies only the thread that calls it. Locks that other threads held stay locked in
the child, futures they were computing never complete, and counts of reads in progress never
come down. Objects that hold such state register here and reset it in the child (the native
reader resets its own counters with ``pthread_atfork``).
"""

from __future__ import annotations

import os
import weakref
from typing import Protocol


class ForkAware(Protocol):
    def _after_fork_in_child(self) -> None: ...


_objects: weakref.WeakSet[ForkAware] = weakref.WeakSet()


def reset_after_fork(obj: ForkAware) -> None:
    """Call ``obj._after_fork_in_child()`` in every forked child while ``obj`` lives."""
    _objects.add(obj)


def _after_fork_in_child() -> None:
    for obj in list(_objects):
        obj._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
