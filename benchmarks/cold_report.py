"""Cold reads against other ways of reading the same chunks: is the gap to max(disk, decode)
ours or the machine's?

    python benchmarks/cold_report.py --out benchmarks/RESULTS_cold.md

For every selection of the cold workloads, in turn with our reader (pages dropped before
every read, 2 threads, read-ahead on, ``out=`` a reused buffer), ``cold_strategies.c``
(compiled here with ``cc``) reads the selection's stored chunks from the same dropped files
in several ways, with decoding modelled as the CPU time the real chunks take to decode into
an output (hot, one thread, measured here): one thread preading them in order (the disk),
decoding only, the package's design without the package (each thread preads a chunk, then
decodes it), and designs it does not use (reads one at a time, an I/O thread ahead of the
decoders, advice kept 4 MiB ahead, the kernel's read-ahead off with an I/O thread reading
1 MiB pieces). If no design reaches 85 % of max(disk, decode) either, the gap is the
machine's.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import data
import machine
import numpy as np

from split_dataset import file_cache
from split_dataset.tools import ceiling
from split_dataset.tools import workloads as wl
from split_dataset.tools.readers import PackageReader

HERE = Path(__file__).resolve().parent
TOOL_SOURCE = HERE / "cold_strategies.c"
THREADS = 2
TARGET = 0.85
# selections per workload: volumes are small and vary with the disk, so more of them
SELECTIONS = {"volume": 8, "zcol": 4, "full": 1}
DISK, DECODE, DESIGN = "disk", "decode", "design"  # the tool's names of its strategies


def compile_tool(folder: Path) -> Path:
    """``cold_strategies.c`` built with the system's C compiler into ``folder``."""
    compiler = shutil.which(os.environ.get("CC", "cc"))
    if compiler is None:
        raise RuntimeError("cold_report.py needs a C compiler (cc, or $CC) for cold_strategies.c")
    tool = folder / "cold_strategies"
    subprocess.run([compiler, "-O2", "-pthread", "-o", str(tool), str(TOOL_SOURCE)], check=True)
    return tool


def write_reads(path: Path, reads: list) -> None:
    """The tool's input: per read, its chunks as (file, offset, size), in the reader's order."""
    lines = []
    for chunks in reads:
        lines.append(f"read {len(chunks)}")
        lines += [f"{file} {offset} {size}" for file, offset, size in chunks]
    path.write_text("\n".join(lines) + "\n")


def stored_chunks(ds, index: tuple) -> list:
    """The stored byte ranges ``ds[index]`` reads, in file and chunk order."""
    chunks = ceiling.touched_chunks(ds, index)
    return [(chunks.paths[slot], offset, size) for slot, offset, size, _ in chunks.entries]


def run_tool(
    tool: Path, reads_file: Path, decode_us: float, reps: int, check: bool = False
) -> dict:
    """Per strategy: (median, q25, q75) ms, and with ``check`` the sum of the bytes it read."""
    command = [str(tool), str(reads_file), f"{decode_us:.3f}", str(reps), str(THREADS)]
    done = subprocess.run(
        command + (["--check"] if check else []), check=True, capture_output=True, text=True
    )
    out = {}
    for line in done.stdout.splitlines():
        name, *figures = line.split("\t")
        out[name] = dict(median=float(figures[0]), q25=float(figures[1]), q75=float(figures[2]))
        if check:
            out[name]["sum"] = int(figures[3])
    return out


def decode_us_per_chunk(ds, selections: list) -> float:
    """CPU time to decode one of these chunks into its place in an output, hot, on one thread,
    with the decoders the package links (``ceiling.measure_in_place``: writing the result to
    memory is part of a reader's decoding); 0 for raw chunks, which are read into place."""
    chunks = ceiling.ChunkSet()
    for index in selections:
        ceiling.touched_chunks(ds, index, chunks)
    rate = ceiling.measure_in_place(chunks, reps=3, threads=(1,)).get("decode1_in_place_rate")
    if not rate or not np.isfinite(rate) or len(chunks) == 0:
        return 0.0
    return chunks.decoded / len(chunks) / rate * 1e6


def measure(tool: Path, folder: Path, workloads: dict, names: list, reps: int, tmp: Path) -> dict:
    """Per workload: every strategy and our reader, read by read, taking turns."""
    files = data.block_files(folder)
    readers = {
        "ours": PackageReader(folder, THREADS, reuse_out=True),
        "ours t=1": PackageReader(folder, 1, reuse_out=True),
    }
    ours = readers["ours"]
    rng = random.Random(20240611)
    out: dict = {}
    for name in names:
        selections = workloads[name].selections[: SELECTIONS[name]]
        decode_us = decode_us_per_chunk(ours.ds, selections)
        reads = [stored_chunks(ours.ds, index) for index in selections]
        for index in selections:  # files indexed and outputs allocated before any timing
            for reader in readers.values():
                reader.read(index)
        timings: dict = {}
        for _ in range(reps):
            order = list(range(len(selections)))
            rng.shuffle(order)
            for i in order:
                reads_file = tmp / "reads.txt"
                write_reads(reads_file, [reads[i]])
                turns = ["tool", *readers]
                rng.shuffle(turns)
                for turn in turns:
                    if turn in readers:
                        timings.setdefault(turn, []).append(
                            time_ours(readers[turn], files, selections[i])
                        )
                        continue
                    # our mappings of compressed files would keep their pages in memory
                    file_cache.release_mappings()
                    for strategy, figures in run_tool(tool, reads_file, decode_us, 1).items():
                        timings.setdefault(strategy, []).append(figures["median"] / 1e3)
        out[name] = dict(
            medians={k: float(np.median(v)) for k, v in timings.items()},
            chunks=float(np.mean([len(r) for r in reads])),
            stored=float(np.mean([sum(c[2] for c in r) for r in reads])),
            decode_us=decode_us,
            reads=len(timings["ours"]),
        )
        print(
            f"  {name}: ours {out[name]['medians']['ours'] * 1e3:.2f} ms, disk "
            f"{out[name]['medians'][DISK] * 1e3:.2f} ms",
            file=sys.stderr,
        )
        gc.collect()
    for reader in readers.values():
        reader.close()
    return out


def time_ours(ours: PackageReader, files: list, index: tuple) -> float:
    wl.drop_cache(files)
    started = time.perf_counter()
    ours.read(index)
    return time.perf_counter() - started


def render(report: dict) -> str:
    lines = [
        "# Cold reads against other ways of reading the same chunks",
        "",
        f"Generated by `python benchmarks/cold_report.py` on {report['date']}; "
        f"{report['minutes']:.1f} min. Rules: `shared/BENCHMARKS.md`; all figures come from "
        f"the same run. Machine: {report['machine']}, load {report['load_start']} at the start, "
        f"{report['load_end']} at the end. Data: shape {tuple(report['shape'])} uint16 "
        f"(`benchmarks/data.py`); {report['reps']} passes over each workload's selections "
        "(volume 8, zcol 4, full 1), every read cold (`posix_fadvise(DONTNEED)` on the files "
        "first; a VM's host may still hold them).",
        "",
        "Each selection is read by ours (`ds.read(sel, out=buf)`, 2 threads, read-ahead on; "
        "*ours t=1*: 1 thread) and, in turn (the order shuffled per read), by "
        "`cold_strategies.c` reading the selection's own stored chunks from the same dropped "
        "files, without the package. Its decoding is modelled: the CPU time "
        "one of these chunks takes to decode into its place in an output, hot, on one thread, "
        "with the decoders the package links (*decode us/chunk*), spent per chunk, so that "
        "what differs between strategies is how reading and decoding overlap. *limit* = "
        "max(*disk*: one thread preading the chunks in order; *decode*: decoding only, 2 "
        "threads). *%* = limit / median. "
        "*design* = each of 2 threads preads a chunk, then decodes it (what our reader does, "
        "without planning, pool or advice); *best other* = the fastest of: *one pread at a "
        "time* (the same, a read's preads one at a time); *I/O thread* (one thread preads in "
        "order into memory, 2 threads decode); *advice 4 MiB ahead* (a thread asks for 1 MiB "
        "pieces with WILLNEED, 4 MiB ahead of the readers, who pread and decode); *no kernel "
        "read-ahead* (`POSIX_FADV_RANDOM`, an I/O thread preads 1 MiB pieces ahead).",
        "",
        "| data | workload | chunks / read | MB / read | decode us/chunk | disk ms | decode ms "
        "| ours ms | % ours | ours t=1 ms | design ms | % design | best other | best other ms "
        "| % best other |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    below = []
    for key, per_workload in report["variants"].items():
        for name, entry in per_workload.items():
            m = entry["medians"]
            limit = max(m[DISK], m[DECODE])
            others = {
                k: v for k, v in m.items() if k not in (DISK, DECODE, DESIGN, "ours", "ours t=1")
            }
            best = min(others, key=others.get)
            pct = {k: 100 * limit / v for k, v in m.items()}
            lines.append(
                f"| {key} | {name} | {entry['chunks']:.0f} | {entry['stored'] / 1e6:.1f} "
                f"| {entry['decode_us']:.0f} | {m[DISK] * 1e3:.3g} | {m[DECODE] * 1e3:.3g} "
                f"| {m['ours'] * 1e3:.3g} | {pct['ours']:.0f}% | {m['ours t=1'] * 1e3:.3g} "
                f"| {m[DESIGN] * 1e3:.3g} "
                f"| {pct[DESIGN]:.0f}% | {best} | {m[best] * 1e3:.3g} | {pct[best]:.0f}% |"
            )
            if pct["ours"] < 100 * TARGET:
                fastest = max(pct[DESIGN], pct[best])
                below.append(
                    f"{key} {name} (ours {pct['ours']:.0f} %, the best way without "
                    f"the package {fastest:.0f} %)"
                )
    lines += ["", f"Below {TARGET:.0%} of the limit: " + ("; ".join(below) or "none") + "."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", choices=sorted(data.SIZES), default="full")
    parser.add_argument("--variants", default="blosc,raw")
    parser.add_argument("--tpf", default="1,10")
    parser.add_argument("--workloads", default=",".join(SELECTIONS))
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    array, paths = data.prepare(
        args.size, args.variants.split(","), tuple(int(t) for t in args.tpf.split(","))
    )
    shape = data.SIZES[args.size]
    workloads = wl.make_workloads(shape, reps=max(SELECTIONS.values()))
    info = machine.machine_info()
    report = dict(
        date=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        shape=shape,
        reps=args.reps,
        machine=f"{info['cpu']}, {info['nproc']} cores",
        load_start=wl.loadavg(),
        variants={},
    )
    with tempfile.TemporaryDirectory() as tmp:
        tool = compile_tool(Path(tmp))
        for (variant, tpf), folder in paths.items():
            key = f"{variant} tpf={tpf}"
            print(key, file=sys.stderr)
            report["variants"][key] = measure(
                tool, folder, workloads, args.workloads.split(","), args.reps, Path(tmp)
            )
    report["load_end"] = wl.loadavg()
    report["minutes"] = (time.perf_counter() - started) / 60
    text = render(report)
    if args.out:
        Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
