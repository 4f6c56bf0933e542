"""Build the Cython kernels; c-blosc2 (with its bundled zlib-ng) comes from the blosc2 wheel.

Linking its static library keeps the extension free of run-time library paths. The build is
hardened for distribution: no run path into the build machine (Python's own LDFLAGS carry
one), no debug info, and only the module entry points exported (c-blosc2's and zlib-ng's ~880
symbols stay hidden inside). ``SPLIT_DATASET_DEBUG_BUILD=1`` keeps debug info and symbols
(tests/asan.sh).
"""

import os
import sys
from pathlib import Path

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

# The c-blosc2 releases this extension is tested against (see pyproject.toml's build needs).
BLOSC2_TESTED = ((4, 14), (5, 0))  # from 4.14 up to, not including, 5.0
DEBUG_BUILD = os.environ.get("SPLIT_DATASET_DEBUG_BUILD") == "1"


def blosc2_paths() -> tuple[str, str]:
    import blosc2

    version = tuple(int(part) for part in blosc2.__version__.split(".")[:2])
    low, high = BLOSC2_TESTED
    if not low <= version < high:
        sys.exit(
            f"split_dataset needs blosc2 >= {'.'.join(map(str, low))}, < "
            f"{'.'.join(map(str, high))} to build (found {blosc2.__version__}): its static "
            f"library and headers are linked into the extension"
        )
    root = Path(blosc2.__file__).parent
    include, library = root / "include", root / "lib" / "libblosc2.a"
    if not (include / "blosc2.h").is_file() or not library.is_file():
        sys.exit(f"the blosc2 wheel at {root} lacks include/blosc2.h or lib/libblosc2.a")
    if b"zng_uncompress" not in library.read_bytes():
        sys.exit(f"{library} does not bundle zlib-ng (zng_uncompress), which the reader needs")
    return str(include), str(library)


class HardenedBuildExt(build_ext):
    """No run path, no debug info, hidden symbols of the static libraries."""

    def build_extensions(self) -> None:
        if not DEBUG_BUILD and os.name != "nt":
            compiler = self.compiler
            for attribute in ("linker_so", "linker_so_cxx"):
                command = getattr(compiler, attribute, None)
                if command:
                    setattr(compiler, attribute, [a for a in command if "-rpath" not in a])
            compiler.compiler_so = [a for a in compiler.compiler_so if a != "-g"]
        super().build_extensions()


blosc2_include, blosc2_static = blosc2_paths()
compile_args, link_args = [], []
if os.name != "nt":
    compile_args = ["-O3", "-fvisibility=hidden"]
    link_args = ["-Wl,--exclude-libs,ALL"]  # c-blosc2 / zlib-ng symbols stay inside
    if DEBUG_BUILD:
        compile_args.append("-g")
    else:
        link_args.append("-Wl,--strip-all")

common = dict(
    define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    extra_compile_args=compile_args,
    extra_link_args=link_args,
)
extensions = [
    Extension(
        "split_dataset._ext._planner",
        ["src_ext/_planner.pyx"],
        include_dirs=[numpy.get_include()],
        **common,
    ),
    Extension("split_dataset._ext._listing", ["src_ext/_listing.pyx"], **common),
    Extension(
        "split_dataset._ext._chunk_reader",
        ["src_ext/_chunk_reader.pyx"],
        depends=["src_ext/worker_pool.h"],
        include_dirs=[numpy.get_include(), blosc2_include, "src_ext"],
        extra_objects=[blosc2_static],
        libraries=["pthread", "m"],
        **common,
    ),
    Extension(
        "split_dataset._ext._chunk_writer",
        ["src_ext/_chunk_writer.pyx"],
        include_dirs=[blosc2_include],
        extra_objects=[blosc2_static],  # zlib-ng's CRC-32 only
        **common,
    ),
]

setup(
    ext_modules=cythonize(extensions, compiler_directives={"language_level": "3"}),
    cmdclass={"build_ext": HardenedBuildExt},
)
