"""Build the Cython kernels; c-blosc2 (with its bundled zlib-ng) comes from the blosc2 wheel.

Linking its static library keeps the extension free of run-time library paths.
"""

import os
import sys
from pathlib import Path

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup


def blosc2_paths() -> tuple[str, str]:
    import blosc2

    root = Path(blosc2.__file__).parent
    include, library = root / "include", root / "lib" / "libblosc2.a"
    if not (include / "blosc2.h").is_file() or not library.is_file():
        sys.exit(f"the blosc2 wheel at {root} lacks include/blosc2.h or lib/libblosc2.a")
    return str(include), str(library)


blosc2_include, blosc2_static = blosc2_paths()
compile_args = ["-O3"] if os.name != "nt" else []

extensions = [
    Extension(
        "split_dataset._ext._planner",
        ["src_ext/_planner.pyx"],
        include_dirs=[numpy.get_include()],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        extra_compile_args=compile_args,
    ),
    Extension(
        "split_dataset._ext._chunk_reader",
        ["src_ext/_chunk_reader.pyx"],
        depends=["src_ext/worker_pool.h"],
        include_dirs=[numpy.get_include(), blosc2_include, "src_ext"],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        extra_compile_args=compile_args,
        extra_objects=[blosc2_static],
        libraries=["pthread", "m"],
    ),
]

setup(ext_modules=cythonize(extensions, compiler_directives={"language_level": "3"}))
