"""Exception types of the package.

Where NumPy has a natural exception (``IndexError`` for a bad index, ``ValueError`` for a bad
shape) that one is raised; everything about files on disk derives from ``SplitDatasetError``.
"""

from __future__ import annotations


class SplitDatasetError(Exception):
    """Base class for problems with a split dataset on disk."""


class NotASplitDatasetError(SplitDatasetError, FileNotFoundError):
    """The folder holds no split dataset (no block files, no metadata)."""


class MetadataError(SplitDatasetError, ValueError):
    """``stack_metadata.json`` (or the legacy in-file metadata) is missing keys or malformed."""


class BlockFileError(SplitDatasetError, OSError):
    """A block file is missing, unreadable, not HDF5, or disagrees with the metadata."""


class ChunkReadError(SplitDatasetError, OSError):
    """A chunk could not be read or decoded (truncated file, corrupt bytes, wrong size)."""


class NoStackError(SplitDatasetError, KeyError):
    """The block files hold no dataset whose name contains ``stack`` (e.g. derived traces)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class IncompleteDatasetWarning(UserWarning):
    """The files hold fewer elements than the metadata announces (a recording stopped early)."""


class DestinationError(SplitDatasetError, FileExistsError):
    """A writer refused its destination: it holds a dataset (and ``overwrite`` was not given),
    or it is the source being read."""


class BlockWriteError(SplitDatasetError, OSError):
    """A block file could not be written (disk full, permission...); earlier blocks are intact.

    ``filename`` is the file that failed, ``errno`` the original error's (or None), and the
    original exception is the ``__cause__``.
    """

    def __str__(self) -> str:  # OSError would format errno and filename itself
        return str(self.args[0]) if self.args else ""

    @classmethod
    def for_block(cls, error: BaseException, path: object, index: int) -> BlockWriteError:
        """The failure ``error`` of writing block ``index`` at ``path``."""
        wrapped = cls(f"{path}: writing block {index} failed: {type(error).__name__}: {error}")
        wrapped.filename = str(path)
        wrapped.errno = getattr(error, "errno", None)
        wrapped.__cause__ = error
        return wrapped
