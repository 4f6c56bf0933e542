"""The measuring tools shared by ``split-dataset bench`` and ``benchmarks/``: the workloads (any
shape), the plain h5py reader (NumPy's results), the chunks the ceiling is measured on (those
the package's reader decodes) and the ceiling itself."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from datasets import write_split_dataset
from format_fixtures import FIXTURES

from split_dataset import SplitDataset
from split_dataset.planning import plan_blocks, plan_chunks
from split_dataset.selection import normalize
from split_dataset.tools import ceiling
from split_dataset.tools.readers import FilesAlongTime, H5pyReader, PackageReader
from split_dataset.tools.workloads import (
    Workload,
    encode,
    make_workloads,
    result_nbytes,
    result_shape,
    run_workload,
)

TOOLS = Path(__file__).resolve().parents[1] / "split_dataset" / "tools"
BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"

# --- the workloads -----------------------------------------------------------------------------

SHAPES = [
    (1,),
    (7,),
    (50,),
    (1, 5),
    (2, 3),
    (3, 37),
    (1, 1, 1),
    (4, 20, 18),
    (9, 40, 33),
    (1, 4, 8, 8),
    (3, 2, 32, 32),
    (4, 1, 1, 1),
    (12, 4, 128, 128),
    (4, 2, 3, 20, 18),
    (2, 1, 1, 2, 3, 4),
]


def _selections(workload: Workload) -> list:
    return [workload.check, *workload.selections]


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_every_workload_fits_any_shape(shape):
    workloads = make_workloads(shape, reps=3, latency_samples=20)
    array = np.arange(int(np.prod(shape)), dtype=np.int32).reshape(shape)
    T, ndim = shape[0], len(shape)
    expected = {"plane", "full", "open"}
    expected |= {"volume", "zcol"} if ndim >= 4 else set()
    expected |= {"roi", "trace"} if ndim >= 2 else set()
    expected |= {"stride"} if T >= 4 else set()
    expected |= {"fancy"} if T >= 2 else set()
    assert set(workloads) == expected
    for name, w in workloads.items():
        assert w.selections, name
        for index in _selections(w):
            got = np.asarray(array[index])  # a valid NumPy index: no IndexError
            assert got.size > 0, (name, index)  # never an empty read
            assert result_shape(index, shape) == got.shape, (name, index)
            assert result_nbytes(index, shape, 4) == got.nbytes
        if w.kind == "latency" and name == "plane":
            assert len({repr(s) for s in _selections(w)}) == len(_selections(w)) or (
                len(w.selections) == 1
            )  # never the same (t, z) twice, unless there is only one
            plane = len(array[w.check].shape)
            assert plane == min(2, ndim - 1), w.label
        assert Workload.from_json(w.to_json()) == w  # what the runners in other venvs get


def test_an_empty_array_has_no_workload():
    assert make_workloads((0, 3, 4)) == {}


def test_the_4d_workloads_are_the_ones_the_reports_show():
    workloads = make_workloads((100, 20, 512, 512))
    assert {n: w.label for n, w in workloads.items()} == {
        "plane": "ds[t, z]",
        "volume": "ds[t]",
        "zcol": "ds[:, z]",
        "roi": "ds[:, z0:z0+2, y0:y0+64, x0:x0+64]",
        "trace": "ds[:, z, y, x]",
        "stride": "ds[s::5]",
        "fancy": "ds[[10 unsorted t]]",
        "full": "ds[:]",
        "open": "open + ds[0, 0]",
    }
    assert len(workloads["plane"].selections) == 300
    again = make_workloads((100, 20, 512, 512))
    assert all(again[n].to_json() == w.to_json() for n, w in workloads.items())  # seeded
    # a dataset's axis_order names the axes of the labels
    assert make_workloads((5, 2, 8, 8), names="tcyx")["zcol"].label == "ds[:, c]"


def test_workloads_and_the_generator_load_without_the_package():
    """The runners of other readers load them by file path in virtualenvs without this
    package: NumPy only, no relative import."""
    code = (
        "import sys; sys.modules['split_dataset'] = None\n"  # any import of it fails
        f"sys.path.insert(0, {str(TOOLS)!r})\n"
        "import workloads, synthetic\n"
        "w = workloads.make_workloads((6, 2, 16, 16), reps=2, latency_samples=5)\n"
        "a = synthetic.synthetic_recording((6, 2, 16, 16))\n"
        "class R:\n"
        "    def read(self, index): return a[index]\n"
        "r = workloads.run_workload({'numpy': R()}, w['roi'], a)\n"
        "assert r['numpy']['correct'] and len(r['numpy']['times']) == 2\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_readers_take_turns_going_first(tmp_path):
    """A cold read after another reader's is warmer (the host caches the VM's disk), and a hot
    small read's time depends on what ran just before it: hot or cold, every reader goes
    first on its share of the selections."""
    from split_dataset.tools.workloads import Workload, run_workload

    calls = []

    class Recorder:
        def __init__(self, name):
            self.name = name

        def read(self, index):
            calls.append(self.name)
            return np.zeros(1)

    block = tmp_path / "0000.h5"
    block.write_bytes(b"x")
    readers = {name: Recorder(name) for name in "abc"}
    workload = Workload("plane", "ds[t]", "throughput", (0,), [(t,) for t in range(6)])
    for cold, expected_firsts in ((True, list("abcabc")), (False, list("abcabc"))):
        calls.clear()
        run_workload(readers, workload, None, [block], cold=cold)
        timed = calls[3:]  # after the check reads
        assert [timed[i] for i in range(0, 18, 3)] == expected_firsts
        assert sorted(timed) == sorted(list("abc") * 6)


def test_the_first_touch_stand_in_is_timed_in_turn_and_never_checked(tmp_path, monkeypatch):
    """``ceiling.FirstTouch`` takes its turn with the readers, touching a fresh array of each
    selection's result size on 2 threads; run_workload times it without comparing its (absent)
    result with the data, and still checks the real reader beside it."""
    from split_dataset.tools.workloads import Workload, run_workload

    sizes = []
    monkeypatch.setattr(ceiling, "_touch_pages", lambda a, part, parts: sizes.append(a.size))
    array = np.arange(40 * 4 * 256 * 256, dtype=np.uint16).reshape(40, 4, 256, 256)

    class Exact:
        def read(self, index):
            return array[index]

    touch = ceiling.FirstTouch(array.shape, array.itemsize, threads=2)
    workload = Workload(
        "stride",
        "ds[s::5]",
        "throughput",
        (slice(0, None, 5),),
        [(slice(s, None, 5),) for s in range(3)],
    )
    results = run_workload({"exact": Exact(), "first touch": touch}, workload, array)
    touch.close()
    assert results["exact"]["correct"] is True
    assert results["first touch"]["correct"] is None
    assert len(results["first touch"]["times"]) == 3
    # the check and 3 timed reads: 8 time points of 4 x 256 x 256 uint16 (4 MiB) each, on 2
    # threads
    assert sizes == [8 * 4 * 256 * 256 * 2] * 4 * 2


def test_the_synthetic_recording_has_any_shape_and_one_noise_time_point():
    from split_dataset.tools.synthetic import noise_time_point, synthetic_recording

    for shape in [(5,), (3, 37), (4, 20, 18), (4, 2, 3, 20, 18)]:
        movie = synthetic_recording(shape, seed=3)
        assert movie.shape == shape and movie.dtype == np.uint16
        np.testing.assert_array_equal(movie, synthetic_recording(shape, seed=3))
    movie = synthetic_recording((6, 2, 64, 64))
    noise = noise_time_point(movie.shape)
    assert movie[noise].std() > 10 * movie[noise - 1].std()  # uniform noise vs an image


# --- the chunks the ceiling measures are the chunks the reader decodes --------------------------


@pytest.fixture(scope="module")
def unaligned_grid(tmp_path_factory):
    """Split along three axes, with chunks that do not divide the blocks, and padding."""
    array = np.arange(7 * 9 * 10 * 11, dtype=np.uint16).reshape(7, 9, 10, 11)
    folder = tmp_path_factory.mktemp("grid") / "ds"
    write_split_dataset(
        folder, array, (3, 4, 10, 5), chunk_shape=(2, 3, 4, 3), padding=(1, 0, 0, 1)
    )
    return folder


def _planned_chunks(ds: SplitDataset, index) -> set[tuple[Path, int]]:
    """(file, chunk) of every written chunk the package's read plan decodes for ``ds[index]``."""
    selection = normalize(index, ds.shape)
    block_plan = plan_blocks(selection.terms, tuple(ds.shape_block), tuple(ds.blocks_grid))
    layouts = {f: ds.layout(f) for f in block_plan.files}
    plan = plan_chunks(block_plan, {f: layouts[f].chunk_shape for f in block_plan.files})
    found = set()
    for task in range(plan.n_tasks):
        layout = layouts[plan.files[plan.task_file[task]]]
        coords = [int(plan.group_chunk[g]) for g in plan.task_groups[task]]
        linear = int(np.ravel_multi_index(coords, layout.chunk_grid))
        if layout.chunk_offset[linear] >= 0:
            found.add((layout.path, linear))
    return found


@pytest.mark.parametrize(
    "name", ["sd_zlib_3d_grid", "sd_padded", "sd_raw_4d", "sd_5d", "sd_blosc_4d", "grid"]
)
def test_touched_chunks_are_the_chunks_the_reader_decodes(name, unaligned_grid, planner):
    ds = SplitDataset(unaligned_grid if name == "grid" else FIXTURES / name)
    selections = [
        s
        for w in make_workloads(ds.shape, reps=3, latency_samples=8).values()
        for s in _selections(w)
    ]
    selections += [
        (slice(None, None, -2),),
        (-1,),
        ([5 % ds.shape[0], 0, 3 % ds.shape[0]],),
        (slice(1, None, 3), slice(None), -1),
        (slice(None), [1, 0], slice(1, 3)),
    ]
    for index in selections:
        chunks = ceiling.touched_chunks(ds, index)
        touched = {(chunks.paths[slot], linear) for slot, linear in chunks.chunks}
        assert len(touched) == len(chunks), index  # each chunk once
        assert touched == _planned_chunks(ds, index), index
    union = ceiling.ChunkSet()
    for index in selections:
        ceiling.touched_chunks(ds, index, union)
    assert len(union) == len(set(union.chunks))


def test_a_sample_of_a_chunk_set_is_spread_and_bounded(unaligned_grid):
    chunks = ceiling.touched_chunks(SplitDataset(unaligned_grid), (slice(None),))
    sample = chunks.sample(chunks.stored // 4)
    assert 1 <= len(sample) < len(chunks) and sample.stored <= chunks.stored // 4
    assert sample.chunks[0] == chunks.chunks[0] and sample.chunks[-1] == chunks.chunks[-1]
    assert chunks.sample(0).chunks == chunks.chunks[:1]
    assert chunks.sample(chunks.stored) is chunks


# --- the ceiling --------------------------------------------------------------------------------


def _row_band_recording(tmp_path: Path, array: np.ndarray, compression: str) -> SplitDataset:
    """``array`` (4, 3, 40, 30) in blocks of 2 time points, chunks of half a plane."""
    folder = write_split_dataset(
        tmp_path / "ds", array, (2, 3, 40, 30), chunk_shape=(1, 1, 20, 30), compression=compression
    )
    return SplitDataset(folder)


@pytest.mark.parametrize(
    "compression", ["blosc", "blosc:lz4", "zlib", "gzip", "raw", "contiguous", "lzf"]
)
def test_the_ceiling_decodes_natively_or_says_it_cannot(tmp_path, compression):
    array = np.random.default_rng(1).integers(0, 500, (4, 3, 40, 30)).astype(np.uint16)
    ds = _row_band_recording(tmp_path, array, compression)
    chunks = ceiling.touched_chunks(ds, (slice(None), 1))
    measured = ceiling.measure_ceiling(chunks, reps=1)
    assert measured["decoded"] == chunks.decoded > 0
    assert measured["pread1_rate"] > 0 and measured[f"pread{ceiling.N_CORES}_rate"] > 0
    rate = ceiling.ceiling_rate(measured, 1)
    if compression == "lzf":  # decoded by h5py in the package: no native decoder to time
        assert "no native decoder" in measured["unavailable"] and np.isnan(rate)
    elif compression in ("raw", "contiguous"):
        assert measured["decode1_rate"] == float("inf") and 0 < rate < float("inf")
    else:
        assert 0 < measured["decode1_rate"] < float("inf") and 0 < rate < float("inf")


@pytest.mark.parametrize("compression", ["blosc", "blosc:lz4", "zlib", "raw", "contiguous"])
def test_the_playback_floor_returns_the_frame_of_row_band_chunks(tmp_path, compression):
    """The floor does the reader's work by another road: its frames must be the frames, those
    whose stored chunks are larger than the data (deflate of noise) included."""
    rng = np.random.default_rng(2)
    array = rng.integers(0, 500, (4, 3, 40, 30)).astype(np.uint16)
    array[1] = 7  # compresses to almost nothing
    array[2] = rng.integers(0, 2**16, (3, 40, 30))  # does not compress: deflate grows it
    ds = _row_band_recording(tmp_path, array, compression)
    frames = [(t, z) for t in range(4) for z in range(3)]
    floor = ceiling.FrameFloor(ds, frames)
    assert floor.in_frame_order == (compression != "contiguous")
    try:
        for t, z in frames:
            # a contiguous block is one virtual chunk here: the floor reads all of it
            block = array[t // 2 * 2 : t // 2 * 2 + 2]
            expected = block if compression == "contiguous" else array[t, z]
            np.testing.assert_array_equal(floor.read((t, z)), expected.ravel())
    finally:
        floor.close()


def test_bench_reports_no_ceiling_where_it_cannot_decode(tmp_path):
    from split_dataset.tools.bench import run_bench

    array = np.random.default_rng(1).integers(0, 500, (4, 2, 16, 16)).astype(np.uint16)
    folder = write_split_dataset(tmp_path / "ds", array, (2, 2, 16, 16), compression="lzf")
    lines = list(run_bench(folder, samples=5, cold=False, reps=1))
    assert any("no native decoder for H5PY chunks" in line for line in lines)
    row = next(line for line in lines if line.startswith("full "))
    assert " -/-% " in row and row.split()[-2] == "yes"


# --- the plain h5py reader ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def padded_along_time(tmp_path_factory):
    """Blocks of 4 time points, each file holding 2 more (the last block owns a longer tail)."""
    array = np.arange(11 * 5 * 6, dtype=np.uint16).reshape(11, 5, 6)
    folder = tmp_path_factory.mktemp("padded") / "ds"
    return write_split_dataset(folder, array, (4, 5, 6), padding=(2, 0, 0)), array


@pytest.mark.parametrize(
    "name", ["sd_blosc_4d", "jl_one_based", "sd_2d", "sd_5d", "legacy_no_json", "padded"]
)
def test_the_h5py_reader_reads_like_numpy(name, padded_along_time):
    if name == "padded":
        folder, array = padded_along_time
    else:
        folder, array = FIXTURES / name, np.load(FIXTURES / f"{name}.npy")
    reader = H5pyReader(folder)
    try:
        selections = [
            s
            for w in make_workloads(array.shape, reps=3, latency_samples=8).values()
            for s in _selections(w)
        ]
        selections += [(slice(None, None, -3),), (-1,), ([array.shape[0] - 1, 0],)]
        for index in selections:
            np.testing.assert_array_equal(reader.read(index), array[index], err_msg=str(index))
        np.testing.assert_array_equal(reader.open_and_read((0,)), array[0])
    finally:
        reader.close()


def test_the_h5py_reader_refuses_grids_split_beyond_time():
    with pytest.raises(NotImplementedError, match="split along the first axis only"):
        H5pyReader(FIXTURES / "sd_zlib_3d_grid")
    with pytest.raises(NotImplementedError):
        FilesAlongTime.of(SplitDataset(FIXTURES / "sd_raw_4d"))


def test_compute_scaling_runs_the_same_rounds_on_one_thread_then_on_two_at_once(monkeypatch):
    import threading

    from split_dataset.tools import ceiling

    calls = []
    real = ceiling._hash_rounds

    def recording(buffer, rounds):
        calls.append((threading.get_ident(), rounds, len(buffer)))
        real(buffer, rounds)

    monkeypatch.setattr(ceiling, "_hash_rounds", recording)
    result = ceiling.compute_scaling(reps=2, rounds=3)
    assert len(calls) == 2 * (1 + 2)  # per repetition: one thread's rounds, then two threads'
    assert {(rounds, size) for _, rounds, size in calls} == {(3, 256 * 1024)}
    for rep in range(2):
        two_threads = {ident for ident, _, _ in calls[3 * rep + 1 : 3 * rep + 3]}
        assert len(two_threads) == 2  # the pair ran on two threads
    assert result["speedup"] == pytest.approx(2 * result["one_s"] / result["two_s"])


def test_the_kernels_directory_read_hands_over_every_entry(tmp_path):
    names = [f"{n:04d}.h5" for n in range(3000)] + ["stack_metadata.json", "a"]
    for name in names:
        (tmp_path / name).touch()

    def record_bytes(name: str) -> int:  # linux_dirent64: 19 bytes, the name, NUL, 8-aligned
        return -(-(19 + len(name.encode()) + 1) // 8) * 8

    expected = sum(record_bytes(name) for name in [".", "..", *names])
    assert ceiling.read_directory(tmp_path) == expected
    small = ceiling.ctypes.create_string_buffer(4096)  # many calls: every entry still read
    assert ceiling.read_directory(tmp_path, small) == expected
    assert ceiling.directory_read_time(tmp_path, reps=2) > 0
    with pytest.raises(NotADirectoryError):
        ceiling.read_directory(tmp_path / "a")


def test_pread_in_place_puts_every_range_at_its_own_place(tmp_path):
    data = np.arange(4 * 6 * 32 * 32, dtype=np.uint16).reshape(4, 6, 32, 32)
    write_split_dataset(tmp_path / "ds", data, (2, 6, 32, 32), compression="contiguous")
    ds = SplitDataset(tmp_path / "ds")
    chunks = ceiling.touched_chunks(ds, (slice(None), slice(1, 5)))
    ranges = ceiling.PreadRanges(chunks)
    try:
        assert ranges.read_in_place(2) > 0
        expected = b"".join(
            Path(chunks.paths[slot]).read_bytes()[offset : offset + size]
            for slot, offset, size, _ in chunks.entries
        )
        assert ranges.output is not None and ranges.output.tobytes() == expected
        rates = ceiling.measure_in_place(chunks, reps=1, threads=(1,))
        assert rates["pread1_in_place_decoded_rate"] > 0
    finally:
        ranges.close()


@pytest.mark.parametrize("compression", ["blosc", "blosc:lz4", "zlib"])
def test_decode_in_place_puts_every_chunk_at_its_own_place(tmp_path, compression):
    """The ceiling of a reader that writes its result to memory decodes every chunk, those
    stored raw (noise) included, to its own place: the output is the chunks' data in order."""
    rng = np.random.default_rng(4)
    array = rng.integers(0, 500, (4, 3, 40, 30)).astype(np.uint16)
    array[2] = rng.integers(0, 2**16, (3, 40, 30))  # stored raw by blosc
    ds = _row_band_recording(tmp_path, array, compression)
    chunks = ceiling.touched_chunks(ds, (slice(None), 1))  # row bands: the planes, in order
    loaded = ceiling.LoadedChunks(chunks)
    assert loaded.decode_in_place(2) > 0
    assert loaded._output is not None
    np.testing.assert_array_equal(loaded._output.view(np.uint16), array[:, 1].reshape(-1))
    rates = ceiling.measure_in_place(chunks, reps=1, threads=(1, 2))
    assert rates["decode1_in_place_rate"] > 0 and rates["decode2_in_place_rate"] > 0


@pytest.mark.parametrize("compression", ["blosc:lz4", "contiguous"])
def test_the_ceiling_in_turn_does_each_selections_own_work_into_its_output(tmp_path, compression):
    """``IntoOutputInTurn`` decodes (uncompressed: preads) exactly the chunks of the selection
    it is given, each into its place, and runs beside readers unchecked."""
    rng = np.random.default_rng(5)
    array = rng.integers(0, 500, (4, 3, 40, 30)).astype(np.uint16)
    if compression == "contiguous":
        write_split_dataset(tmp_path / "ds", array, (2, 3, 40, 30), compression="contiguous")
        ds = SplitDataset(tmp_path / "ds")
    else:
        ds = _row_band_recording(tmp_path, array, compression)
    planes = [(slice(None), z) for z in range(3)]
    stand_in = ceiling.IntoOutputInTurn(ds, planes[:2], threads=2)
    try:
        assert len(stand_in._placers) == 2  # the timed selections, prepared when made
        for z, index in enumerate(planes):
            assert stand_in.read(index) is None
            placer = stand_in._placers[repr(encode(index))]
            owner = placer._ranges if compression == "contiguous" else placer._loaded
            assert owner.chunks.entries == ceiling.touched_chunks(ds, index).entries
            if compression == "contiguous":  # whole contiguous blocks: the bytes as stored
                expected = b"".join(
                    Path(owner.chunks.paths[slot]).read_bytes()[offset : offset + size]
                    for slot, offset, size, _ in owner.chunks.entries
                )
                assert owner.output.tobytes() == expected
            else:
                np.testing.assert_array_equal(
                    owner._output.view(np.uint16), array[:, z].reshape(-1)
                )
        workload = Workload("zcol", "ds[:, z]", "throughput", planes[2], planes[:2])
        results = run_workload({"ceiling": stand_in}, workload, array)
        assert results["ceiling"]["correct"] is None and len(results["ceiling"]["times"]) == 2
    finally:
        stand_in.close()


@pytest.mark.parametrize("compression", ["blosc", "contiguous"])
def test_every_hot_workload_is_measured_against_the_work_into_the_output(tmp_path, compression):
    """Each hot workload's ceiling carries the rate of the same chunks decoded (raw: read)
    into an output of their size on 1 and 2 threads, and each reader its share of it; cold
    runs, whose limit is the disk, carry none."""
    from split_dataset.tools import measure, workloads

    array = np.random.default_rng(5).integers(0, 500, (6, 3, 40, 30)).astype(np.uint16)
    ds = _row_band_recording(tmp_path, array, compression)
    chosen = {k: w for k, w in workloads.make_workloads(ds.shape, reps=2, latency_samples=3).items()
              if k in ("volume", "zcol", "full")}
    readers = {"ours t=1": PackageReader(ds.root, 1), "ours t=2": PackageReader(ds.root, 2)}
    try:
        for cold in (False, True):
            for workload in chosen.values():
                entry = measure.measure_workload(readers, workload, ds, reference=array,
                                                 cold=cold, reps=1)
                measure.evaluate(ds, workload, entry["ceiling"], entry["results"],
                                 {"ours t=1": 1, "ours t=2": 2})
                rates = [ceiling.in_place_rate(entry["ceiling"], n) for n in (1, 2)]
                shares = [entry["results"][k].get("pct_in_place") for k in readers]
                if cold:
                    assert all(np.isnan(rates)) and shares == [None, None]
                    continue
                kind = "decode{}_in_place_rate" if compression == "blosc" else \
                    "pread{}_in_place_decoded_rate"
                assert rates == [entry["ceiling"][kind.format(n)] for n in (1, ceiling.N_CORES)]
                assert all(0 < r < float("inf") for r in rates)
                assert all(s is not None and s > 0 for s in shares)
    finally:
        for reader in readers.values():
            reader.close()
    assert ceiling.measure_in_place(ceiling.ChunkSet(), reps=1) == {}


def test_the_report_states_the_kernels_proactive_reclaim(tmp_path, monkeypatch):
    """DAMON pageout drops page-cache pages idle for its minimum age: the machine table says
    how long (a 'hot' file left unread that long comes from the disk again)."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import machine
    finally:
        sys.path.remove(str(BENCHMARKS))
    context = tmp_path / "0" / "contexts" / "0"
    schemes = {"0": ("pageout", "12"), "1": ("stat", "3")}
    for number, (action, age) in schemes.items():
        scheme = context / "schemes" / number
        (scheme / "access_pattern" / "age").mkdir(parents=True)
        (scheme / "action").write_text(action + "\n")
        (scheme / "access_pattern" / "age" / "min").write_text(age + "\n")
    (context / "monitoring_attrs" / "intervals").mkdir(parents=True)
    (context / "monitoring_attrs" / "intervals" / "aggr_us").write_text("5000000\n")
    (tmp_path / "0" / "state").write_text("on\n")
    monkeypatch.setattr(machine, "DAMON", tmp_path)
    assert machine.memory_reclaim() == "DAMON pageout of pages idle >= 60 s"
    (tmp_path / "0" / "state").write_text("off\n")
    assert machine.memory_reclaim() == "none"
    monkeypatch.setattr(machine, "DAMON", tmp_path / "absent")
    assert machine.memory_reclaim() == "none"


def test_the_unchecked_files_diagnostic_skips_only_its_own_file_checks(tmp_path):
    """The playback report's diagnostic reader shows what the per-read file check costs by
    skipping it: a block file replaced after it was opened is read stale by it, and fresh by
    the package's reader, whose check is back in place as soon as the diagnostic's read ends."""
    from split_dataset import file_cache
    from split_dataset.tools.readers import UncheckedFilesReader

    array = np.arange(2 * 3 * 8 * 8, dtype=np.uint16).reshape(2, 3, 8, 8)
    folder = write_split_dataset(tmp_path / "ds", array, (1, 3, 8, 8), compression="raw")
    checking = file_cache.current_identity
    unchecked, package = UncheckedFilesReader(folder, 1), PackageReader(folder, 1)
    try:
        for reader in (unchecked, package):
            np.testing.assert_array_equal(reader.read((1, 2)), array[1, 2])
        replaced = array + 1000  # block 1 rewritten elsewhere, then renamed over the original
        write_split_dataset(tmp_path / "new", replaced, (1, 3, 8, 8), compression="raw")
        block = sorted(folder.glob("*.h5"))[1]
        (tmp_path / "new" / block.name).replace(block)
        np.testing.assert_array_equal(unchecked.read((1, 2)), array[1, 2])  # stale: no check
        assert file_cache.current_identity is checking
        np.testing.assert_array_equal(package.read((1, 2)), replaced[1, 2])
    finally:
        unchecked.close()
        package.close()
