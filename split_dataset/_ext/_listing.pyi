"""A folder's listing read in C, block files seen as one numbered run; their identities on disk
(src_ext/_listing.pyx)."""

import os
from collections.abc import Sequence

def scan_numbered_run(
    folder: bytes, wanted_prefix: bytes | None
) -> tuple[bytes, int, int, int, list[str]] | None: ...
def stat_identities(
    paths: Sequence[os.PathLike[str] | str | bytes],
) -> list[bytes | None]: ...
