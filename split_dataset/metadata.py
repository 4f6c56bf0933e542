"""The description of a whole split dataset: ``stack_metadata.json`` and its legacy variants."""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .errors import MetadataError

METADATA_SUFFIX = "stack_metadata.json"
# In the JSON while a whole-array write of this package runs (and after it was interrupted).
INCOMPLETE_KEY = "incomplete"
LEGACY_METADATA_GROUP = "stack_metadata"

# Keys this package interprets; everything else is kept verbatim in ``extra``.
_KNOWN_KEYS = {
    "shape_full",
    "shape_block",
    "resolution",
    "voxel_size",
    "frequency",
    "axis_order",
    "padding",
    "crop_start",
    "crop_end",
    "files",
    "dtype",
    "origin",
}


@dataclass(frozen=True)
class Origin:
    """Where a crop lies in the recording it was cut from (``stack_metadata.json``'s
    ``origin``): per axis of that recording, the start and the step, 0 for an axis the crop
    fixed at ``start``. Coordinate ``i`` of the crop's ``k``-th axis is ``start + step * i``
    along the recording's ``k``-th axis with a non-zero step."""

    path: str | None
    start: tuple[int, ...]
    step: tuple[int, ...]
    shape: tuple[int, ...] | None = None  # the recording's shape, if known

    def compose(self, inner: Origin) -> Origin:
        """``inner`` lies in the crop this origin describes: where it lies in the recording."""
        kept = [a for a, step in enumerate(self.step) if step != 0]
        if len(inner.start) != len(kept):
            raise ValueError(f"an origin of {len(inner.start)} axes inside a crop of {len(kept)}")
        start, step = list(self.start), list(self.step)
        for j, a in enumerate(kept):
            start[a] = self.start[a] + self.step[a] * inner.start[j]
            step[a] = self.step[a] * inner.step[j]
        return Origin(self.path, tuple(start), tuple(step), self.shape)

    def to_original(self, coordinates: Any) -> tuple[int, ...]:
        """The recording's coordinates of a point of the crop (one coordinate per crop axis)."""
        given = iter(coordinates)
        return tuple(
            s if d == 0 else s + d * int(next(given)) for s, d in zip(self.start, self.step)
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(path=self.path, start=list(self.start), step=list(self.step))
        if self.shape is not None:
            out["shape"] = list(self.shape)
        return out


@dataclass(frozen=True)
class StackMetadata:
    """Everything the metadata says about the array, cleaned up.

    ``resolution`` entries are ``None`` where the file says nothing or a zero (0.4.4 truncated
    float resolutions to ints, so a zero means unknown, never a zero step).
    """

    shape_full: tuple[int, ...]
    shape_block: tuple[int, ...]
    padding: tuple[int, ...]
    resolution: tuple[float | None, ...]
    axis_order: str | None
    frequency: float | None
    files: tuple[str, ...] | None
    crop_start: tuple[int, ...]
    crop_end: tuple[int, ...]
    extra: dict[str, Any] = field(default_factory=dict, compare=False)
    # Written by this package so that a dataset with no block file yet (a recording that has
    # just started) still opens with its dtype; older readers ignore the key.
    dtype: str | None = None
    origin: Origin | None = None  # a crop: where it lies in the recording it was cut from

    @property
    def ndim(self) -> int:
        return len(self.shape_full)

    def with_shape_full(self, shape_full: tuple[int, ...]) -> StackMetadata:
        return replace(self, shape_full=tuple(int(s) for s in shape_full))

    def to_json_dict(self) -> dict[str, Any]:
        """The JSON every consumer expects (0.4.x keys, float resolution, optional frequency)."""
        out: dict[str, Any] = dict(self.extra)
        out.update(
            shape_full=list(self.shape_full),
            shape_block=list(self.shape_block),
            crop_start=list(self.crop_start),
            crop_end=list(self.crop_end),
            padding=list(self.padding),
            # unknown stays unknown (null), never a made-up 1.0
            resolution=[None if r is None else float(r) for r in self.resolution],
        )
        if self.axis_order is not None:
            out["axis_order"] = self.axis_order
        if self.frequency is not None:
            out["frequency"] = float(self.frequency)
        if self.files is not None:
            out["files"] = list(self.files)
        if self.dtype is not None:
            out["dtype"] = self.dtype
        if self.origin is not None:
            out["origin"] = self.origin.to_json()
        return out


MAX_EXTENT = 2**62  # larger sizes overflow the reader's int64 arithmetic


def _integer(value: Any) -> int:
    if isinstance(value, bool):
        raise TypeError("a boolean is not a size")
    if isinstance(value, float) and not value.is_integer():
        raise ValueError(f"{value} is not an integer")
    result = int(value)
    if abs(result) >= MAX_EXTENT:
        raise ValueError(f"{value} is too large")
    return result


def _int_tuple(value: Any, key: str, source: Path, ndim: int | None = None) -> tuple[int, ...]:
    try:
        result = tuple(_integer(v) for v in value)
    except (TypeError, ValueError, OverflowError):
        raise MetadataError(
            f"{source}: '{key}' must be a list of integers, got {value!r}"
        ) from None
    if ndim is not None and len(result) != ndim:
        raise MetadataError(
            f"{source}: '{key}' has {len(result)} entries but the array has {ndim} dimensions"
        )
    if any(v < 0 for v in result):
        raise MetadataError(f"{source}: '{key}' has negative entries: {list(result)}")
    return result


def _step(value: Any, key: str, source: Path) -> float | None:
    """One physical step: None where unknown (missing, null, zero, not finite)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        step = float(value)
    except (TypeError, ValueError, OverflowError):
        raise MetadataError(f"{source}: '{key}' must hold numbers, got {value!r}") from None
    return step if step and math.isfinite(step) else None


def _steps(raw: dict[str, Any], key: str, source: Path) -> list[Any]:
    given = raw[key]
    if isinstance(given, (int, float)) and not isinstance(given, bool):
        given = [given]
    if not isinstance(given, (list, tuple)):
        raise MetadataError(f"{source}: '{key}' must be a list of numbers, got {given!r}")
    return list(given)


def _resolution(raw: dict[str, Any], ndim: int, source: Path) -> tuple[float | None, ...]:
    """``resolution`` for every axis, or ``voxel_size`` (dz, dy, dx) for the last three."""
    values: list[float | None] = [None] * ndim
    if raw.get("resolution") is not None:
        given = _steps(raw, "resolution", source)
        if len(given) != ndim:
            raise MetadataError(
                f"{source}: 'resolution' has {len(given)} entries for a {ndim}-d array"
            )
        values = [_step(v, "resolution", source) for v in given]
    elif raw.get("voxel_size") is not None:
        given = _steps(raw, "voxel_size", source)
        for axis, v in zip(range(ndim - len(given), ndim), given):
            if axis >= 0:
                values[axis] = _step(v, "voxel_size", source)
    return tuple(values)


def _origin(raw: Any, source: Path) -> Origin | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or "start" not in raw or "step" not in raw:
        raise MetadataError(f"{source}: 'origin' must hold 'start' and 'step', got {raw!r}")
    start = _signed_ints(raw["start"], "origin", source)
    step = _signed_ints(raw["step"], "origin", source)
    shape = raw.get("shape")
    if len(step) != len(start) or (shape is not None and len(shape) != len(start)):
        raise MetadataError(f"{source}: 'origin' has lists of different lengths: {raw!r}")
    path = raw.get("path")
    return Origin(
        None if path is None else str(path),
        start,
        step,
        None if shape is None else _signed_ints(shape, "origin", source),
    )


def _signed_ints(value: Any, key: str, source: Path) -> tuple[int, ...]:
    try:
        return tuple(_integer(v) for v in value)
    except (TypeError, ValueError, OverflowError):
        raise MetadataError(
            f"{source}: '{key}' must hold lists of integers, got {value!r}"
        ) from None


def parse_metadata(raw: dict[str, Any], source: Path) -> StackMetadata:
    """Validate a metadata dict (from JSON or the legacy group) into a ``StackMetadata``."""
    if not isinstance(raw, dict):
        raise MetadataError(f"{source}: expected a JSON object, got {type(raw).__name__}")
    for key in ("shape_full", "shape_block"):
        if key not in raw:
            raise MetadataError(f"{source}: required key '{key}' is missing")
    shape_full = _int_tuple(raw["shape_full"], "shape_full", source)
    ndim = len(shape_full)
    shape_block = _int_tuple(raw["shape_block"], "shape_block", source, ndim)
    if any(b == 0 for b in shape_block):
        raise MetadataError(f"{source}: 'shape_block' has a zero entry: {list(shape_block)}")
    zeros = (0,) * ndim
    padding = raw.get("padding") or zeros
    if isinstance(padding, int):
        padding = (padding,) * ndim
    axis_order = raw.get("axis_order")
    # 0.4.4 wrote "zyx" whatever the dimensionality: only trust an order that fits.
    if not isinstance(axis_order, str) or len(axis_order) != ndim:
        axis_order = None
    frequency = _step(raw.get("frequency"), "frequency", source)
    files = raw.get("files")
    if files is not None and (
        not isinstance(files, (list, tuple)) or not all(isinstance(f, str) for f in files)
    ):
        raise MetadataError(f"{source}: 'files' must be a list of file names, got {files!r}")
    return StackMetadata(
        shape_full=shape_full,
        shape_block=shape_block,
        padding=_int_tuple(padding, "padding", source, ndim),
        resolution=_resolution(raw, ndim, source),
        axis_order=axis_order,
        frequency=frequency,
        files=tuple(str(f) for f in files) if files else None,
        crop_start=_int_tuple(raw.get("crop_start") or zeros, "crop_start", source, ndim),
        crop_end=_int_tuple(raw.get("crop_end") or zeros, "crop_end", source, ndim),
        extra={k: v for k, v in raw.items() if k not in _KNOWN_KEYS},
        dtype=str(raw["dtype"]) if raw.get("dtype") else None,
        origin=_origin(raw.get("origin"), source),
    )


def read_json_metadata(path: Path) -> StackMetadata:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise MetadataError(f"{path}: cannot read metadata: {error}") from error
    except UnicodeDecodeError as error:
        raise MetadataError(f"{path}: not UTF-8 text ({error})") from error
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as error:
        raise MetadataError(f"{path}: malformed JSON: {error}") from error
    return parse_metadata(raw, path)


def _legacy_item(group: Any) -> Any:
    """flammkuchen stores tuples and lists as groups whose attributes are ``i0, i1, ...``."""
    items = []
    index = 0
    while f"i{index}" in group.attrs:
        value = group.attrs[f"i{index}"]
        items.append(value.decode() if isinstance(value, bytes) else value.item())
        index += 1
    return items


def read_legacy_metadata(block_file: Path) -> StackMetadata:
    """Read ``/stack_metadata`` from the last block file of a pre-JSON dataset (read-only)."""
    import h5py

    try:
        with h5py.File(block_file, "r") as handle:
            if LEGACY_METADATA_GROUP not in handle:
                raise MetadataError(
                    f"{block_file}: no {METADATA_SUFFIX} beside it and no "
                    f"'/{LEGACY_METADATA_GROUP}' group inside it"
                )
            group = handle[LEGACY_METADATA_GROUP]
            raw: dict[str, Any] = {}
            for legacy_key, key in (
                ("full_size", "shape_full"),
                ("block_size", "shape_block"),
                ("files", "files"),
            ):
                if legacy_key in group:
                    raw[key] = _legacy_item(group[legacy_key])
    except (OSError, RuntimeError, ValueError, TypeError, KeyError) as error:
        if isinstance(error, MetadataError):
            raise
        raise MetadataError(f"{block_file}: cannot read legacy metadata: {error}") from error
    return parse_metadata(raw, block_file / LEGACY_METADATA_GROUP)


def write_json_metadata(
    folder: Path, metadata: StackMetadata, prefix: str = "", durable: bool = True
) -> Path:
    """Write the JSON atomically (temporary file, fsync unless not ``durable``, rename):
    readers never see half of it."""
    target = Path(folder) / f"{prefix}{METADATA_SUFFIX}"
    temporary = target.with_name(target.name + ".tmp")
    with open(temporary, "w") as handle:
        json.dump(metadata.to_json_dict(), handle)
        handle.flush()
        if durable:
            os.fsync(handle.fileno())
    os.replace(temporary, target)
    return target
