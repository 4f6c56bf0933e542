"""Which format a destination names: from ``--to`` / ``format=``, else from its name; never a
guess (an unknown suffix is an error, not a split dataset in a folder called ``out.npy``)."""

from __future__ import annotations

from pathlib import Path

SPLIT_DATASET = "split-dataset"
NPY = "npy"
OME_TIFF = "ome-tiff"
OME_ZARR = "ome-zarr"
FORMATS = (SPLIT_DATASET, NPY, OME_TIFF, OME_ZARR)

_SUFFIXES = {
    ".npy": NPY,
    ".ome.tif": OME_TIFF,
    ".ome.tiff": OME_TIFF,
    ".tif": OME_TIFF,
    ".tiff": OME_TIFF,
    ".ome.zarr": OME_ZARR,
    ".zarr": OME_ZARR,
}


def format_of(destination: str | Path, given: str | None = None) -> str:
    """The format to write ``destination`` in. ``given`` wins when its name and the
    destination's suffix agree (or the destination has none); a name without a suffix is a
    split-dataset folder; any other suffix is an error."""
    name = Path(destination).name.lower()
    suffix = next((s for s in sorted(_SUFFIXES, key=len, reverse=True) if name.endswith(s)), None)
    named = _SUFFIXES[suffix] if suffix else None
    if given is not None:
        if given not in FORMATS:
            raise ValueError(f"unknown format {given!r}; formats: {', '.join(FORMATS)}")
        if named is not None and named != given:
            raise ValueError(
                f"{destination}: its name says {named}, the format asked is {given}; rename the "
                f"destination or leave the format out"
            )
        return given
    if named is not None:
        return named
    if "." in name.strip("."):
        raise ValueError(
            f"{destination}: {Path(name).suffix!r} names no format this package writes "
            f"(.npy, .tif/.ome.tif, .zarr/.ome.zarr, or a folder name without a suffix for a "
            f"split dataset); give the format explicitly (--to / format=) to write it anyway"
        )
    return SPLIT_DATASET
