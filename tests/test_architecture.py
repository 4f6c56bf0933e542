"""The rules of the code's shape: one home for each geometric rule (and the compiled planner
agrees with it), tools apart from the library, a dataset's geometry fixed once opened, NumPy's
array protocol, the command line's basics."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import numpy as np
import pytest
from datasets import write_split_dataset
from grids import draw_block_grid, draw_chunk_shapes
from hypothesis import given
from hypothesis import strategies as st

from split_dataset import Blocks, SplitDataset
from split_dataset.blocks import blocks_per_axis, file_range, owned_extent, owned_range
from split_dataset.planning import plan_blocks, plan_chunks
from split_dataset.selection import IntTerm, SliceTerm, VectorTerm

PACKAGE = Path(__file__).resolve().parents[1] / "split_dataset"


# --- tools use the library, never the reverse -----------------------------------------------


def imported_modules(path: Path) -> set[str]:
    """Modules a file imports, relative ones resolved against the package."""
    package = path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = list(package[: len(package) - node.level + 1]) if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def test_the_library_never_imports_its_tools():
    library = [p for p in PACKAGE.rglob("*.py") if "tools" not in p.relative_to(PACKAGE).parts]
    assert len(library) > 10
    for path in library:
        tools = {m for m in imported_modules(path) if m.startswith("split_dataset.tools")}
        assert not tools, f"{path.relative_to(PACKAGE)} imports {tools}"


def test_the_tools_live_in_their_own_package():
    names = {p.stem for p in (PACKAGE / "tools").glob("*.py")}
    assert {"cli", "demo", "bench", "tune", "sources"} <= names
    assert not {"cli", "demo", "bench", "tune", "sources"} & {p.stem for p in PACKAGE.glob("*.py")}


# --- one home for the geometry, and the compiled planner agrees with it ------------------------


@pytest.mark.parametrize("planner_name", ["compiled", "python"])
def test_a_padded_axis_whose_last_block_owns_a_tail_reads_right(tmp_path, monkeypatch,
                                                                  planner_name):
    """Axis of 26, block 12, padding 2: two blocks, the second owns [12, 26), 14 elements."""
    monkeypatch.setenv("SPLIT_DATASET_PLANNER", planner_name)
    array = np.arange(26 * 3, dtype=np.int32).reshape(26, 3)
    folder = write_split_dataset(tmp_path / "ds", array, (12, 3), (5, 3), padding=(2, 0))
    ds = SplitDataset(folder)
    assert ds.blocks_grid == (2, 1)
    np.testing.assert_array_equal(ds[...], array)
    np.testing.assert_array_equal(ds[[25, 12, 11, 24]], array[[25, 12, 11, 24]])
    np.testing.assert_array_equal(ds[::-5], array[::-5])


def test_the_geometry_rules_agree_with_each_other():
    assert blocks_per_axis((26,), (12,), (2,)) == (2,)
    assert owned_range(1, 12, 2, 26) == (12, 26)  # the last block owns the padding-length tail
    assert file_range(1, 12, 2, 26) == (12, 26)
    assert file_range(0, 12, 2, 26) == (0, 14)  # a file holds its block and the overlap
    assert owned_extent((1,), (12,), (2,), (26,)) == (14,)
    blocks = Blocks((26, 5), shape_block=(12, 5), padding=(2, 0))
    assert blocks.block_ends[1, 0].tolist() == [26, 5]


@st.composite
def grids_and_selections(draw):
    """A block grid (padding and a short last block included), a chunk shape per file (files
    may differ), and canonical terms: what the planner sees, without any file."""
    shape, block, padding, grid = draw_block_grid(draw, max_ndim=3)
    terms = []
    for size in shape:
        kind = draw(st.sampled_from(["int", "slice", "vector"]))
        if kind == "int":
            terms.append(IntTerm(draw(st.integers(0, size - 1))))
        elif kind == "slice":
            start = draw(st.integers(0, size - 1))
            step = draw(st.integers(1, 7))
            count = draw(st.integers(0, len(range(start, size, step))))
            terms.append(SliceTerm(start, step, count, draw(st.booleans())))
        else:
            coords = draw(st.lists(st.integers(0, size - 1), max_size=12))
            terms.append(VectorTerm(np.asarray(coords, dtype=np.int64)))
    return tuple(block), grid, tuple(terms), draw_chunk_shapes(draw, block, padding, grid)


@given(grids_and_selections())
def test_the_compiled_planner_makes_the_reference_plans(case):
    block, grid, terms, chunks = case
    plans = {}
    for name in ("compiled", "python"):
        os.environ["SPLIT_DATASET_PLANNER"] = name
        try:
            block_plan = plan_blocks(terms, block, grid)
            plans[name] = (block_plan.files, plan_chunks(block_plan, chunks))
        finally:
            del os.environ["SPLIT_DATASET_PLANNER"]
    assert plans["compiled"][0] == plans["python"][0]
    assert plans["compiled"][1] == plans["python"][1]  # ReadPlan.__eq__: every table


# --- a dataset's geometry is fixed once it is opened -----------------------------------------


@pytest.fixture
def dataset(tmp_path):
    array = np.arange(6 * 4 * 5, dtype=np.uint16).reshape(6, 4, 5)
    return SplitDataset(write_split_dataset(tmp_path / "ds", array, (2, 4, 5))), array


@pytest.mark.parametrize(
    "name, value",
    [("shape_block", (3, 4, 5)), ("crop", ((1, 0), (0, 0), (0, 0))), ("padding", 1),
     ("shape_full", (3, 4, 5)), ("shape", (3, 4, 5)), ("blocks_grid", (1, 1, 1)),
     ("root", "/elsewhere"), ("metadata", None), ("data_key", "other")],
)
def test_the_geometry_of_an_open_dataset_cannot_be_set(dataset, name, value):
    ds, array = dataset
    with pytest.raises(AttributeError):
        setattr(ds, name, value)
    np.testing.assert_array_equal(ds[...], array)  # reads as before
    assert ds.files.shape == (3, 1, 1)


def test_a_0_4_blocks_object_keeps_its_setters():
    blocks = Blocks((10, 4), shape_block=(5, 4))
    blocks.shape_block = (2, 4)
    assert blocks.blocks_grid == (5, 1)


def test_numpy_asks_for_no_copy_and_gets_an_error(dataset):
    ds, array = dataset
    with pytest.raises(ValueError, match="without a copy"):
        np.array(ds, copy=False)
    np.testing.assert_array_equal(np.asarray(ds), array)
    np.testing.assert_array_equal(np.array(ds, dtype=np.float32), array.astype(np.float32))


def test_a_dataset_is_a_context_manager_that_closes_its_files(dataset):
    ds, array = dataset
    with ds as opened:
        np.testing.assert_array_equal(opened[1], array[1])
        assert len(ds._cache) == 1
    assert len(ds._cache) == 0


def test_the_command_line_says_its_version(capsys):
    from split_dataset import __version__
    from split_dataset.tools.cli import main

    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert __version__ in capsys.readouterr().out


# --- the built extension ---------------------------------------------------------------------


def _readelf(module: str, *arguments: str) -> str:
    import importlib
    import subprocess

    path = importlib.import_module(f"split_dataset._ext.{module}").__file__
    return subprocess.run(["readelf", *arguments, path], capture_output=True, text=True,
                          check=True).stdout


@pytest.mark.skipif(os.environ.get("SPLIT_DATASET_DEBUG_BUILD") == "1",
                    reason="a debug build (tests/asan.sh) keeps symbols and debug info")
@pytest.mark.parametrize("module", ["_chunk_reader", "_chunk_writer", "_planner"])
def test_the_extension_is_built_for_distribution(module):
    """No run path into the build machine, no debug info, and c-blosc2's and zlib-ng's symbols
    hidden: only the module's entry point is exported."""
    assert "RUNPATH" not in _readelf(module, "-d") and "RPATH" not in _readelf(module, "-d")
    assert ".debug_info" not in _readelf(module, "-S")
    exported = [line.split()[-1] for line in _readelf(module, "--dyn-syms", "-W").splitlines()
                if " GLOBAL " in line and " UND " not in line]
    assert exported == [f"PyInit_{module}"], exported
