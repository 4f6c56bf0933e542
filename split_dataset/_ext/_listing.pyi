"""A folder's listing read in C, block files seen as one numbered run (src_ext/_listing.pyx)."""

def scan_numbered_run(
    folder: bytes, wanted_prefix: bytes | None
) -> tuple[bytes, int, int, int, list[str]] | None: ...
