"""The ``split-dataset`` command line: info, verify, bench, convert, tune and demo.

A user of the library: everything it does goes through the public API (and the inspection
functions ``describe`` and ``verify``); nothing in the library imports the tools.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..errors import SplitDatasetError
from ..inspection import describe, verify


def _info(args: argparse.Namespace) -> int:
    for line in describe(Path(args.path), args.prefix):
        print(line)
    return 0


def _verify(args: argparse.Namespace) -> int:
    failures = verify(Path(args.path), args.prefix, progress=sys.stderr.isatty())
    for line in failures:
        print(line)
    print("all chunks decode" if not failures else f"{len(failures)} file(s) failed")
    return 1 if failures else 0


def _shape_argument(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected integers separated by commas, got {text!r}"
        ) from None


def _chunks_argument(text: str) -> str | tuple[int, ...]:
    return text if text in ("planes", "blocks") else _shape_argument(text)


def _convert(args: argparse.Namespace) -> int:
    import time
    from contextlib import ExitStack

    from ..destination import check_not_source
    from ..exports import SPLIT_DATASET, format_of
    from .sources import open_source

    destination = Path(args.destination)
    try:
        chosen = format_of(destination, args.to)
    except ValueError as error:
        raise SplitDatasetError(str(error)) from None
    source_path = Path(
        args.source.rsplit(":", 1)[0] if not Path(args.source).exists() else args.source
    )
    check_not_source(destination, [source_path])
    if chosen != SPLIT_DATASET:
        _refuse_split_dataset_options(args, chosen)
    elif args.pyramid or args.chunks or args.space_unit:
        raise SplitDatasetError("--pyramid, --chunks and --space-unit apply to OME formats")
    with ExitStack() as stack:
        source = open_source(args.source, stack)
        started = time.perf_counter()
        if chosen == SPLIT_DATASET and not _has_channels(source):
            return _convert_to_split_dataset(args, source, destination, started)
        _export(args, source, destination, chosen)
        elapsed = time.perf_counter() - started
        raw = int(np.prod(source.shape)) * np.dtype(source.dtype).itemsize
    print(
        f"wrote {destination} ({chosen}): shape {tuple(source.shape)} {np.dtype(source.dtype)}, "
        f"{raw / 1e6 / max(elapsed, 1e-9):.0f} MB/s"
    )
    return 0


def _has_channels(source: object) -> bool:
    """A recording's channels (or an OME image's ``c`` axis): saved as one dataset each."""
    return getattr(source, "names", None) is not None or (
        getattr(source, "channel_axis", None) is not None
    )


def _refuse_split_dataset_options(args: argparse.Namespace, chosen: str) -> None:
    given = [
        flag
        for flag, value in (
            ("--block-shape", args.block_shape),
            ("--frames-per-file", args.frames_per_file),
            ("--compression", args.compression),
            ("--chunk-shape", args.chunk_shape),
            ("--resume", args.resume),
        )
        if value
    ]
    if given:
        raise SplitDatasetError(f"{', '.join(given)}: for split datasets, not {chosen}")


def _export(args: argparse.Namespace, source: object, destination: Path, chosen: str) -> None:
    from ..exports import SPLIT_DATASET, export

    if chosen == SPLIT_DATASET:  # a recording's channels, one split dataset each
        options = _split_dataset_options(args, source, with_block=False)
    else:
        options = dict(pyramid=args.pyramid, space_unit=args.space_unit)
        if args.level is not None:
            options["compression_level"] = args.level
        if args.chunks:
            options["chunks"] = args.chunks
    export(
        source,
        destination,
        chosen,
        overwrite=args.overwrite,
        threads=args.threads,
        progress=sys.stderr.isatty(),
        **options,
    )


def _split_dataset_options(
    args: argparse.Namespace, source: Any, with_block: bool = True
) -> dict[str, Any]:
    compression = args.compression or "blosc"
    options = dict(
        compression=None if compression == "none" else compression,
        compression_level=args.level,
        chunk_shape=args.chunk_shape,
        resume=args.resume,
    )
    if args.block_shape:
        options["block_size"] = args.block_shape
    elif args.frames_per_file:
        options["block_size"] = (args.frames_per_file,) + tuple(source.shape[1:])
    elif with_block:
        shape = tuple(source.shape)
        options["block_size"] = tuple(getattr(source, "shape_block", None) or (1,) + shape[1:])
    return options


def _convert_to_split_dataset(
    args: argparse.Namespace, source: Any, destination: Path, started: float
) -> int:
    import time

    from ..writer import save_to_split_dataset

    shape = tuple(source.shape)
    options = _split_dataset_options(args, source)
    if len(options["block_size"]) != len(shape):
        raise SplitDatasetError(
            f"block shape {options['block_size']} does not fit the source shape {shape}"
        )
    written = save_to_split_dataset(
        source,
        destination.parent,
        prefix=destination.name,
        progress=sys.stderr.isatty(),
        threads=args.threads,
        overwrite=args.overwrite,
        **options,
    )
    elapsed = time.perf_counter() - started
    stored = sum(p.stat().st_size for p in written.root.glob("*.h5"))
    raw = written.nbytes
    print(
        f"wrote {written.root}: shape {written.shape} {written.dtype}, "
        f"blocks {tuple(written.shape_block)}, "
        f"{len(written.file_names)} files, compression ratio {raw / max(stored, 1):.2f}, "
        f"{raw / 1e6 / max(elapsed, 1e-9):.0f} MB/s"
    )
    return 0


def _tune(args: argparse.Namespace) -> int:
    from contextlib import ExitStack

    from .sources import open_source
    from .tune import run_tune

    with ExitStack() as stack:
        source = open_source(args.source, stack)
        for line in run_tune(source, args.sample_frames, args.quick):
            print(line)
    return 0


def _bench(args: argparse.Namespace) -> int:
    from .bench import run_bench

    for line in run_bench(args.path, samples=args.samples, cold=not args.hot_only, reps=args.reps):
        print(line, flush=True)
    return 0


def _view(args: argparse.Namespace) -> int:
    try:
        import napari
    except ImportError:
        raise SplitDatasetError(
            'viewing needs napari and a Qt backend: pip install "split_dataset[napari]"'
        ) from None
    from ..napari.reader import recording_folder
    from .sources import is_ome_zarr

    path = Path(args.path)
    if is_ome_zarr(path):  # napari's own zarr reader, at the image's physical scale
        viewer = napari.Viewer()
        viewer.open(str(path), plugin="napari", **ome_zarr_layer_options(path))
        napari.run()
        return 0
    if recording_folder(path) is None:
        raise SplitDatasetError(f"{path}: not a split dataset, nor a folder of its channels")
    viewer = napari.Viewer()
    viewer.open(str(path), plugin="split_dataset")
    napari.run()
    return 0


def ome_zarr_layer_options(path: Path) -> dict[str, Any]:
    """napari layer options for an OME-Zarr image: its physical scale, a crop's translation,
    axis labels (napari's builtin zarr reader reads the arrays, not the NGFF metadata)."""
    from ..exports import describe_image, read_ome_zarr

    description = describe_image(read_ome_zarr(path))
    options: dict[str, Any] = dict(scale=description.scale, axis_labels=tuple(description.axes))
    if description.translation is not None:
        options["translate"] = description.translation
    return options


def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    run_demo(Path(args.folder) if args.folder else None, small=args.small)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="split-dataset", description="Inspect, read and write split datasets."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    info = commands.add_parser("info", help="describe a split dataset on disk")
    info.add_argument("path", help="folder holding the block files")
    info.add_argument("--prefix", default=None, help="block file name prefix, e.g. stack_")
    info.set_defaults(run=_info)
    check = commands.add_parser("verify", help="decode every chunk and report any that fail")
    check.add_argument("path", help="folder holding the block files")
    check.add_argument("--prefix", default=None, help="block file name prefix, e.g. stack_")
    check.set_defaults(run=_verify)
    convert = commands.add_parser(
        "convert",
        help="write a split dataset (or a recording's folder of channels), a .npy, an HDF5 "
        "dataset (file.h5:key), a TIFF stack, a zarr array or an OME-Zarr image as a "
        "(re-blocked, recompressed) split dataset, an OME-Zarr image, an OME-TIFF or a .npy",
    )
    convert.add_argument("source")
    convert.add_argument(
        "destination",
        help="a folder name without a suffix (split dataset), or NAME.ome.zarr / .zarr, "
        "NAME.ome.tif / .tif, NAME.npy",
    )
    convert.add_argument(
        "--to",
        default=None,
        choices=["split-dataset", "ome-zarr", "ome-tiff", "npy"],
        help="the output format (default: from the destination's name)",
    )
    convert.add_argument(
        "--pyramid",
        type=int,
        default=0,
        help="OME-Zarr: this many extra levels, each 2x smaller along y and x",
    )
    convert.add_argument(
        "--chunks",
        type=_chunks_argument,
        default=None,
        help="OME-Zarr chunks: planes (default: one plane of y, x per chunk, for viewers), "
        "blocks (the source's), or a shape such as 1,1,512,512",
    )
    convert.add_argument(
        "--space-unit",
        default=None,
        help="OME formats: the unit of the resolution (e.g. micrometer); split datasets do "
        "not record it",
    )
    convert.add_argument(
        "--block-shape",
        type=_shape_argument,
        default=None,
        help="e.g. 1,1,512,512 (default: the source's blocks, else one frame)",
    )
    convert.add_argument(
        "--frames-per-file",
        type=int,
        default=None,
        help="split along the first axis only, this many per file",
    )
    convert.add_argument(
        "--compression",
        default=None,
        choices=["blosc", "blosc:lz4", "blosc:zstd", "blosc:lz4hc", "zlib", "none"],
    )
    convert.add_argument(
        "--level", type=int, default=None, help="compression level (OME-Zarr: zstd's)"
    )
    convert.add_argument(
        "--chunk-shape",
        type=_shape_argument,
        default=None,
        help="inner HDF5 chunks (default: row bands of one plane, ~128 KiB)",
    )
    convert.add_argument("--threads", type=int, default=None, help="compression threads")
    convert.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a dataset already in the destination folder (atomically, once the new "
        "one is complete)",
    )
    convert.add_argument(
        "--resume",
        action="store_true",
        help="finish an interrupted convert of the same source into the destination",
    )
    convert.set_defaults(run=_convert)
    bench = commands.add_parser(
        "bench", help="time plane, volume and bulk reads of a dataset against h5py and the ceiling"
    )
    bench.add_argument("path", help="folder holding the block files")
    bench.add_argument("--samples", type=int, default=300, help="latency samples (p50/p99)")
    bench.add_argument("--hot-only", action="store_true", help="skip the cold-cache runs")
    bench.add_argument(
        "--reps", type=int, default=7, help="repetitions of the bulk workloads (rotating)"
    )
    bench.set_defaults(run=_bench)
    tune = commands.add_parser(
        "tune", help="measure writer settings on a sample of a recording and recommend some"
    )
    tune.add_argument("source", help="anything convert reads")
    tune.add_argument(
        "--sample-frames",
        type=int,
        default=None,
        help="frames of the sample (default: about 100 MB, at most 20)",
    )
    tune.add_argument("--quick", action="store_true", help="fewer settings")
    tune.set_defaults(run=_tune)
    view = commands.add_parser(
        "view",
        help="open napari on a recording (a dataset folder, or a folder of channels), or on an "
        "OME-Zarr image (napari's builtin reader, at the image's physical scale)",
    )
    view.add_argument(
        "path", help="the recording's folder, its stack_metadata.json, or an .ome.zarr"
    )
    view.set_defaults(run=_view)
    demo = commands.add_parser(
        "demo", help="write an example recording, read it back in several ways, time it"
    )
    demo.add_argument("--folder", default=None, help="where to write (default: a temp folder)")
    demo.add_argument("--small", action="store_true", help="a tiny recording, for a quick check")
    demo.set_defaults(run=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    np.set_printoptions(precision=4, suppress=True)
    try:
        return args.run(args)
    except (SplitDatasetError, FileNotFoundError, FileExistsError) as error:
        print(f"split-dataset: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
