"""Export outputs appear complete or not at all: written under a hidden sibling name and
renamed into place at the end; an existing output is replaced only when asked, atomically.

The rules are those of every writer of the package (``destination``): never over a source,
never over an existing output unless ``overwrite``, and then by one exchange of names.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ..block_file import fsync_path
from ..destination import check_not_source, exchange
from ..errors import DestinationError

_STAGED = ".{name}.writing-"


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _fsync_tree(path: Path) -> None:
    """Every file and folder of an output, so that the rename publishes durable data."""
    if path.is_dir():
        for folder, _, files in os.walk(path):
            for name in files:
                fsync_path(Path(folder) / name)
            fsync_path(Path(folder))
    else:
        fsync_path(path)


@contextmanager
def staged(
    final: str | Path,
    overwrite: bool = False,
    sources: Iterable[Path | str | None] = (),
    durable: bool = True,
) -> Iterator[Path]:
    """A path to write an output at ``final`` to. When the block ends normally the output is
    renamed to ``final`` (an existing one exchanged with it and deleted); when it raises,
    the partial output is deleted and ``final`` is untouched. Killed midway, only a hidden
    ``.NAME.writing-*`` sibling is left, which the next export to ``final`` removes."""
    final = Path(final)
    check_not_source(final, sources)
    if final.exists() and not overwrite:
        raise DestinationError(
            f"{final}: exists; pass overwrite=True (command line: --overwrite) to replace it"
        )
    final.parent.mkdir(parents=True, exist_ok=True)
    prefix = _STAGED.format(name=final.name)
    for stale in final.parent.glob(prefix + "*"):  # left by an export that was killed
        _remove(stale)
    temporary = final.parent / f"{prefix}{uuid.uuid4().hex[:12]}"
    try:
        yield temporary
        if durable:
            _fsync_tree(temporary)
        if final.exists():
            exchange(temporary, final)  # the old output now sits at ``temporary``
        else:
            os.rename(temporary, final)
        if durable:
            fsync_path(final.parent)
    finally:
        _remove(temporary)
