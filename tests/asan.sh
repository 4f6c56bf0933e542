#!/usr/bin/env bash
# Run the test suite against AddressSanitizer (ASan) builds of the two Cython extensions.
#
# Usage, from the repo root:
#
#     bash tests/asan.sh [options] [pytest args...]
#     bash tests/asan.sh -q -p no:cacheprovider          # the whole suite (tests/ + benchmarks/)
#     bash tests/asan.sh tests/test_bad_input.py -x       # a subset; args go to pytest as is
#     bash tests/asan.sh --fuzz 500 tests/test_bad_input.py
#
# Options (taken out of the argument list; everything else, and all after `--`, goes to pytest):
#     --fuzz N         also run `python tests/corruption_fuzz.py --trials N` under ASan
#                      (only if that file exists in the checkout)
#     --wheel-blosc2   link the blosc2 wheel's libblosc2.a (not instrumented) instead of
#                      building c-blosc2 with ASan: faster, needs no cmake and no download
#     --keep-scratch   keep the scratch directory also when everything passes
#     --with-napari    also run tests/test_napari.py (Qt's libxkbcommon-x11 trips ASan: the
#                      run aborts there; left out by default)
#
# What it does, without touching the checkout (no build, no pip install in it or in .venv):
#   1. copies the working tree (git-tracked files plus untracked, not-ignored ones, i.e. the
#      uncommitted state) into a scratch directory;
#   2. builds c-blosc2 (with its zlib-ng, lz4, zstd and zfp) with ASan, once, into a cache
#      (see "c-blosc2 sources" below);
#   3. builds both extensions in the scratch copy with ASan, linked to that library;
#   4. runs pytest there with libasan preloaded into the (uninstrumented) Python, then the
#      corruption fuzzer if asked;
#   5. fails if any test failed or ASan reported anything, and prints a one-line summary.
#
# c-blosc2 sources: the blosc2 sdist on PyPI does NOT contain them (python-blosc2 fetches
# c-blosc2, lz4, zstd and zlib-ng from GitHub at build time, which this machine cannot reach).
# The hdf5plugin sdist (same version as installed in .venv) bundles c-blosc2 with lz4, zstd
# and zfp, and the `zlib-ng` sdist on PyPI (python-zlib-ng) bundles zlib-ng itself; c-blosc2's
# CMake takes local source dirs for all four (BLOSC_*_SOURCE_DIR). The bundled c-blosc2 can
# be a patch release behind the wheel's (hdf5plugin 7.1.0: c-blosc2 3.3.2, blosc2 4.14.1 wheel:
# 3.3.5); the extension is then compiled against that version's blosc2.h, so the pair matches.
# The script prints both versions.
#
# Environment:
#     SPLIT_DATASET_ASAN_PYTHON  interpreter with Cython, numpy, blosc2, pytest (default: .venv)
#     SPLIT_DATASET_ASAN_CACHE   where the ASan c-blosc2 is cached
#                                (default: ~/.cache/split_dataset-asan; delete it to rebuild)
#     SPLIT_DATASET_FIXTURES     format fixtures (default: ../shared/fixtures beside the repo)
#     ASAN_OPTIONS               appended to the script's options, so it can override them
#
# Exported to everything that runs under ASan: SPLIT_DATASET_ASAN=1, for code that must behave
# differently there (a process that sets RLIMIT_AS cannot run under ASan, which reserves
# terabytes of address space: it dies with "ERROR: Failed to mmap"); and
# SPLIT_DATASET_DEBUG_BUILD=1, which makes setup.py keep symbols and debug info, and the
# tests of the release build's form (stripped, no run path) skip.
#
# Notes:
#   - Leak detection is off: CPython is not instrumented and "leaks" by design at exit.
#   - PYTHONMALLOC=malloc makes Python objects (bytes, numpy buffers below 512 B, ...) real
#     malloc blocks, so ASan sees overflows into them instead of into pymalloc arenas.
#   - ASan reports go to files (log_path) in the scratch dir, so reports from subprocesses
#     (the streaming kill test, the fuzzer's worker) are caught even when their stderr is not
#     shown; the script prints the first report in full at the end.
#   - The h5py/HDF5/numpy/hdf5plugin code is not instrumented: memory errors are checked in
#     our two extensions and (by default) in c-blosc2 + zlib-ng/lz4/zstd/zfp; other libraries
#     are caught only where they call an intercepted libc function (memcpy, strlen, ...).
#   - allocator_may_return_null=1 (beyond the usual options): a huge size read from a corrupt
#     header makes malloc return NULL as glibc's does, instead of an "allocation-size-too-big"
#     report; a NULL that is then used is still reported (SEGV).
#   - A test that crashes a process on purpose (a deliberate segfault) gets an ASan SEGV report
#     and fails the run: such tests should skip when SPLIT_DATASET_ASAN is set.
#   - Time: the whole suite takes ~10 min under ASan on 2 cores (~80 s without); the first run
#     also downloads and builds c-blosc2 (~3 min). Later runs rebuild only our extensions.
set -euo pipefail

started=$SECONDS
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY=${SPLIT_DATASET_ASAN_PYTHON:-$REPO/.venv/bin/python}
FIXTURES=${SPLIT_DATASET_FIXTURES:-$(cd "$REPO/.." && pwd)/shared/fixtures}
CACHE=${SPLIT_DATASET_ASAN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/split_dataset-asan}
ASAN_CFLAGS="-fsanitize=address -fno-omit-frame-pointer -g -O1"
# python-zlib-ng 1.1.0 bundles zlib-ng 2.3.3, the version c-blosc2 3.3.x pins (BLOSC_ZLIBNG_VERSION).
ZLIB_NG_SDIST_VERSION=1.1.0

say() { printf '\n== asan.sh: %s\n' "$*"; }
die() { printf 'asan.sh: error: %s\n' "$*" >&2; exit 2; }

# --- arguments --------------------------------------------------------------------------------
fuzz_trials=""
blosc2_mode=asan
keep_scratch=0
pytest_args=()
with_napari=0
while (($#)); do
    case $1 in
        --fuzz) [[ $# -ge 2 ]] || die "--fuzz needs a number"; fuzz_trials=$2; shift 2 ;;
        --fuzz=*) fuzz_trials=${1#--fuzz=}; shift ;;
        --wheel-blosc2) blosc2_mode=wheel; shift ;;
        --keep-scratch) keep_scratch=1; shift ;;
        --with-napari) with_napari=1; shift ;;
        --) shift; pytest_args+=("$@"); break ;;
        *) pytest_args+=("$1"); shift ;;
    esac
done
[[ -z $fuzz_trials || $fuzz_trials =~ ^[0-9]+$ ]] || die "--fuzz needs a number, got '$fuzz_trials'"

# --- prerequisites ----------------------------------------------------------------------------
[[ -x $PY ]] || die "no Python at $PY (set SPLIT_DATASET_ASAN_PYTHON)"
command -v gcc >/dev/null || die "gcc not found"
LIBASAN=$(gcc -print-file-name=libasan.so)
[[ -e $LIBASAN ]] || die "gcc's libasan.so not found (apt-get install libasan8)"
if [[ $blosc2_mode == asan ]]; then
    command -v cmake >/dev/null || die "cmake not found (install it, or run with --wheel-blosc2)"
fi
git -C "$REPO" rev-parse --git-dir >/dev/null 2>&1 || die "$REPO is not a git checkout"
[[ -f $FIXTURES/MANIFEST.json ]] || echo "asan.sh: warning: no fixtures at $FIXTURES" >&2

# --- scratch directory: removed at exit when everything passed (kept on failure) --------------
SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/split_dataset-asan.XXXXXX")
SRC=$SCRATCH/src
ASAN_LOGS=$SCRATCH/asan-logs
mkdir -p "$SRC" "$ASAN_LOGS"
passed=0
cleanup() {
    if [[ $passed == 1 && $keep_scratch == 0 ]]; then
        rm -rf "$SCRATCH"
    else
        echo "asan.sh: scratch directory kept: $SCRATCH" >&2
    fi
}
trap cleanup EXIT

# --- 1. copy the working tree -----------------------------------------------------------------
# Tracked and untracked-but-not-ignored files, as they are on disk now (so uncommitted edits
# are included and .venv, build/, *.so, generated src_ext/*.c are not). Files deleted in the
# working tree but still tracked are skipped.
say "copying $REPO -> $SRC"
(
    cd "$REPO"
    git ls-files -z --cached --others --exclude-standard |
        while IFS= read -r -d '' f; do
            if [[ -f $f || -L $f ]]; then printf '%s\0' "$f"; fi
        done |
        tar --null -T - -cf -
) | tar -C "$SRC" -xf -

# --- 2. c-blosc2 with ASan (cached) -----------------------------------------------------------
wheel_info=$("$PY" -c 'import blosc2, pathlib; print(blosc2.__version__, pathlib.Path(blosc2.__file__).parent)')
wheel_version=${wheel_info%% *}  # python-blosc2's version, e.g. 4.14.1
wheel_root=${wheel_info#* }      # its package dir, with include/ and lib/libblosc2.a
header_version() { sed -n 's/^#define BLOSC2_VERSION_STRING *"\([^"]*\)".*/\1/p' "$1"; }
wheel_cblosc2=$(header_version "$wheel_root/include/blosc2.h")

build_asan_blosc2() {
    # Sets BLOSC2_ROOT to a cache entry with include/blosc2.h and lib/libblosc2.a built with
    # ASan. The entry also keeps the sources (src/), so ASan's file:line in c-blosc2 and its
    # codecs point at real files. Built in place, under a lock; .complete marks a finished one.
    local h5p_version key src h5lib zng gen=()
    h5p_version=$("$PY" -c 'import importlib.metadata as m; print(m.version("hdf5plugin"))')
    key="hdf5plugin-$h5p_version.zlib-ng-$ZLIB_NG_SDIST_VERSION.gcc-$(gcc -dumpfullversion)"
    key+=".flags-$(printf %s "$ASAN_CFLAGS" | cksum | cut -d' ' -f1)"
    BLOSC2_ROOT=$CACHE/$key
    mkdir -p "$CACHE"
    exec 9>"$CACHE/.lock"
    flock 9  # another run may be building the same entry
    if [[ -f $BLOSC2_ROOT/.complete ]]; then
        say "c-blosc2 (ASan) from cache: $BLOSC2_ROOT"
        exec 9>&-
        return
    fi

    say "building c-blosc2 with ASan (once, ~3 min; cached in $BLOSC2_ROOT)"
    rm -rf "$BLOSC2_ROOT"
    src=$BLOSC2_ROOT/src
    mkdir -p "$BLOSC2_ROOT/dl" "$src" "$BLOSC2_ROOT/lib"
    # Sdists only, without their dependencies. The metadata step still sets up the sdists'
    # build requirements in pip's isolated env (wheels), which takes ~30 s.
    "$PY" -m pip download -q --no-deps --no-binary hdf5plugin -d "$BLOSC2_ROOT/dl" \
        "hdf5plugin==$h5p_version"
    "$PY" -m pip download -q --no-deps --no-binary zlib-ng -d "$BLOSC2_ROOT/dl" \
        "zlib-ng==$ZLIB_NG_SDIST_VERSION"
    tar -C "$src" -xzf "$BLOSC2_ROOT/dl/hdf5plugin-$h5p_version.tar.gz"
    tar -C "$src" -xzf "$BLOSC2_ROOT/dl/zlib_ng-$ZLIB_NG_SDIST_VERSION.tar.gz"
    h5lib=$src/hdf5plugin-$h5p_version/lib
    zng=$src/zlib_ng-$ZLIB_NG_SDIST_VERSION/src/zlib_ng/zlib-ng
    [[ -f $h5lib/c-blosc2/CMakeLists.txt && -f $zng/CMakeLists.txt ]] ||
        die "unexpected sdist layout (no $h5lib/c-blosc2 or $zng); try --wheel-blosc2"

    command -v ninja >/dev/null && gen=(-G Ninja)
    # Debug: our flags plus -g, and the libraries' internal asserts (zlib-ng ZLIB_DEBUG, zstd
    # DEBUGLEVEL=1). Static and position-independent, as it is linked into a Python extension.
    # Bundled sources only (FETCHCONTENT_FULLY_DISCONNECTED: nothing is downloaded); zlib-ng
    # stays enabled, with its native zng_* API, since _chunk_reader calls zng_uncompress.
    # Plugins (ndlz, zfp, filters) are built, as in the wheel.
    cmake -S "$h5lib/c-blosc2" -B "$BLOSC2_ROOT/build" "${gen[@]}" -Wno-dev \
        -DCMAKE_POLICY_VERSION_MINIMUM=3.5 \
        -DCMAKE_BUILD_TYPE=Debug \
        -DCMAKE_C_FLAGS="$ASAN_CFLAGS" -DCMAKE_CXX_FLAGS="$ASAN_CFLAGS" \
        -DCMAKE_POSITION_INDEPENDENT_CODE=ON \
        -DBUILD_STATIC=ON -DBUILD_SHARED=OFF \
        -DBUILD_TESTS=OFF -DBUILD_FUZZERS=OFF -DBUILD_BENCHMARKS=OFF -DBUILD_EXAMPLES=OFF \
        -DBUILD_PLUGINS=ON \
        -DBLOSC_DEPENDENCY_MODE=BUNDLED -DFETCHCONTENT_FULLY_DISCONNECTED=ON \
        -DBLOSC_LZ4_SOURCE_DIR="$h5lib/lz4-clib" \
        -DBLOSC_ZSTD_SOURCE_DIR="$h5lib/zstd" \
        -DBLOSC_ZFP_SOURCE_DIR="$h5lib/c-blosc2-zfp" \
        -DBLOSC_ZLIBNG_SOURCE_DIR="$zng" \
        >"$BLOSC2_ROOT/cmake-configure.log" 2>&1 ||
        { tail -40 "$BLOSC2_ROOT/cmake-configure.log"; die "c-blosc2 configure failed (try --wheel-blosc2)"; }
    cmake --build "$BLOSC2_ROOT/build" --target blosc2_static -j "$(nproc)" \
        >"$BLOSC2_ROOT/cmake-build.log" 2>&1 ||
        { tail -40 "$BLOSC2_ROOT/cmake-build.log"; die "c-blosc2 build failed (try --wheel-blosc2)"; }

    cp "$BLOSC2_ROOT/build/blosc/libblosc2.a" "$BLOSC2_ROOT/lib/libblosc2.a"
    cp -R "$h5lib/c-blosc2/include" "$BLOSC2_ROOT/include"
    # The extension calls zlib-ng directly: the archive must export it, unprefixed and native.
    # (Output captured first: `nm | grep -q` can fail under pipefail when grep exits early.)
    local symbols
    symbols=$(nm "$BLOSC2_ROOT/lib/libblosc2.a" 2>/dev/null || true)
    grep -q ' T zng_uncompress$' <<<"$symbols" ||
        die "the ASan libblosc2.a does not export zng_uncompress"

    # Keep only what stack traces refer to: the sources of c-blosc2 and its four libraries.
    rm -rf "$BLOSC2_ROOT/build" "$BLOSC2_ROOT/dl"
    find "$h5lib" -mindepth 1 -maxdepth 1 \
        ! -name c-blosc2 ! -name lz4-clib ! -name zstd ! -name c-blosc2-zfp -exec rm -rf {} +
    touch "$BLOSC2_ROOT/.complete"
    exec 9>&-
}

if [[ $blosc2_mode == asan ]]; then
    build_asan_blosc2
    blosc2_desc="c-blosc2 $(header_version "$BLOSC2_ROOT/include/blosc2.h") instrumented"
    blosc2_desc+=" (hdf5plugin sdist; wheel has $wheel_cblosc2)"
else
    BLOSC2_ROOT=$wheel_root
    blosc2_desc="c-blosc2 $wheel_cblosc2 from the wheel, NOT instrumented"
fi
echo "$blosc2_desc"

# --- 3. build the extensions in the scratch copy ----------------------------------------------
# setup.py finds c-blosc2 through the installed blosc2 package (blosc2_paths(): the package
# dir's include/blosc2.h and lib/libblosc2.a, and its __version__). For the build only, a
# stand-in `blosc2` package that is just such a directory, with the installed blosc2's
# __version__, goes first on PYTHONPATH, so setup.py stays unmodified.
# SPLIT_DATASET_DEBUG_BUILD=1 makes setup.py keep -g and the symbols (no --strip-all).
# setup.py appends -O3 after CFLAGS; the compiler wrapper appends -O1 last (the last -O wins)
# so ASan's stack traces stay close to the source.
say "building the extensions with ASan in $SRC"
shim=$SCRATCH/blosc2-shim/blosc2
mkdir -p "$shim/lib" "$SCRATCH/bin"
printf '"""Stand-in for the blosc2 package while tests/asan.sh builds the extensions."""\n__version__ = "%s"\n' \
    "$wheel_version" >"$shim/__init__.py"
ln -s "$BLOSC2_ROOT/include" "$shim/include"
ln -s "$BLOSC2_ROOT/lib/libblosc2.a" "$shim/lib/libblosc2.a"
cat >"$SCRATCH/bin/asan-cc" <<'EOF'
#!/bin/sh
exec gcc "$@" -O1
EOF
chmod +x "$SCRATCH/bin/asan-cc"
(
    cd "$SRC"
    PYTHONPATH=$SCRATCH/blosc2-shim CC=$SCRATCH/bin/asan-cc SPLIT_DATASET_DEBUG_BUILD=1 \
        CFLAGS="$ASAN_CFLAGS" LDFLAGS="-fsanitize=address" \
        "$PY" setup.py build_ext --inplace --force
) >"$SCRATCH/build_ext.log" 2>&1 ||
    { tail -40 "$SCRATCH/build_ext.log"; die "building the extensions failed (log above)"; }

# Check that the ASan build is what got linked: our code calls ASan's run time, and (unless
# --wheel-blosc2) c-blosc2's blosc2_cbuffer_sizes has ASan checks in it.
for so in "$SRC"/split_dataset/_ext/*.so; do
    grep -q ' __asan_init' <<<"$(nm -D --undefined-only "$so")" || die "$so is not built with ASan"
done
reader_so=$(ls "$SRC"/split_dataset/_ext/_chunk_reader*.so)
if [[ $blosc2_mode == asan ]]; then
    grep -q '__asan_report' <<<"$(objdump -d --disassemble=blosc2_cbuffer_sizes "$reader_so")" ||
        die "c-blosc2 in $reader_so is not the ASan build"
fi

# --- 4. run under ASan ------------------------------------------------------------------------
# Only the Python processes get the ASan environment (through run_asan, and their children by
# inheritance): this script's own grep/awk/tee must not run with libasan preloaded
# (strict_string_checks aborts mawk, for one).
# (allocator_may_return_null: see the header. log_path: one file per reporting process.)
asan_options=detect_leaks=0:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1
asan_options+=:allocator_may_return_null=1:log_path=$ASAN_LOGS/asan
asan_env=(
    LD_PRELOAD="$LIBASAN${LD_PRELOAD:+:$LD_PRELOAD}"
    ASAN_OPTIONS="$asan_options${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
    PYTHONMALLOC=malloc
    PYTHONFAULTHANDLER=1
    PYTHONPATH="$SRC${PYTHONPATH:+:$PYTHONPATH}"  # ahead of the editable install of $REPO
    SPLIT_DATASET_FIXTURES="$FIXTURES"
    SPLIT_DATASET_ASAN=1                          # see the header
    SPLIT_DATASET_DEBUG_BUILD=1                   # see the header
)
run_asan() { env "${asan_env[@]}" "$@"; }
cd "$SRC"

# The import must come from the scratch copy, not from the editable install in $REPO.
run_asan "$PY" - "$SRC" <<'EOF'
import sys
from pathlib import Path
import split_dataset._ext._chunk_reader as reader, split_dataset._ext._planner as planner
for module in (reader, planner):
    print(f"{module.__name__}: {module.__file__}")
    if not Path(module.__file__).resolve().is_relative_to(Path(sys.argv[1]).resolve()):
        sys.exit(f"asan.sh: {module.__name__} is not the scratch build")
EOF

# The napari viewer tests run Qt, whose X11 keyboard library (libxkbcommon-x11, not ours) trips
# ASan as Qt connects to the display, which aborts the whole pytest process: left out unless
# --with-napari. Their Python reader code reaches our extensions as every other test does.
if ((!with_napari)); then
    pytest_args=(--ignore=tests/test_napari.py "${pytest_args[@]}")
fi
say "pytest ${pytest_args[*]:-} (with ${asan_env[0]})"
set +e
run_asan "$PY" -m pytest "${pytest_args[@]}" 2>&1 | tee "$SCRATCH/pytest.log"
pytest_rc=${PIPESTATUS[0]}
set -e
# pytest's closing line ("5600 passed, 2 failed in 300.00s"); none if it died (ASan aborts).
pytest_line=$(grep -E '[0-9]+ (passed|failed|error|errors|skipped|deselected)|no tests ran' \
    "$SCRATCH/pytest.log" | tail -1 | sed -E 's/=+//g; s/^ +| +$//g' || true)
((pytest_rc < 128)) || pytest_line="pytest killed by signal $((pytest_rc - 128))"

fuzz_desc=""
fuzz_rc=0
if [[ -n $fuzz_trials ]]; then
    if [[ -f $SRC/tests/corruption_fuzz.py ]]; then
        say "corruption fuzzer, $fuzz_trials trials"
        set +e
        run_asan "$PY" tests/corruption_fuzz.py --trials "$fuzz_trials"
        fuzz_rc=$?
        set -e
        fuzz_desc="; fuzz $fuzz_trials trials: exit $fuzz_rc (its report, if any, is in $SRC)"
    else
        fuzz_desc="; fuzz: skipped (no tests/corruption_fuzz.py)"
    fi
fi

# --- 5. verdict -------------------------------------------------------------------------------
# ASan writes one log file per process that had something to say (asan.<pid>). Three kinds:
#   reports:  "ERROR: AddressSanitizer: ..." - a memory error; printed, the first in full.
#   runtime:  any other "ERROR:", e.g. "ERROR: Failed to mmap" when a process limits its address
#             space (RLIMIT_AS) - ASan could not run there; printed once per message.
#   warnings: everything else; printed, does not fail the run.
# Reports and runtime errors fail the run, except reports whose stack never passes through our
# extensions (c-blosc2 and zlib-ng are linked into _chunk_reader and _chunk_writer): those are about another
# library, e.g. the HDF5 inside h5py when the fuzzer's reference reader opens a corrupt file.
# They are listed, as third-party, and do not fail the run.
shopt -s nullglob
asan_reports=()
asan_runtime=()
asan_warnings=()
asan_third_party=()
for f in "$ASAN_LOGS"/asan.*; do
    if grep -q 'ERROR: AddressSanitizer' "$f" && ! grep -qE '_chunk_reader|_chunk_writer|_planner' "$f"; then
        asan_third_party+=("$f")
    elif grep -q 'ERROR: AddressSanitizer' "$f"; then
        asan_reports+=("$f")
    elif grep -q 'ERROR:' "$f"; then
        asan_runtime+=("$f")
    else
        asan_warnings+=("$f")
    fi
done
for f in "${asan_warnings[@]}"; do
    say "ASan warning in $f"
    cat "$f"
done
for f in "${asan_third_party[@]}"; do
    say "ASan report outside our code (not counted) in $f:"
    grep -E 'ERROR: AddressSanitizer|^ +#[0-4] ' "$f"
done
if ((${#asan_runtime[@]})); then
    say "ASan could not run in ${#asan_runtime[@]} process(es) (count, message):"
    grep -h 'ERROR:' "${asan_runtime[@]}" | sort | uniq -c
    printf 'logs:\n'
    printf '  %s\n' "${asan_runtime[@]}"
fi
if ((${#asan_reports[@]})); then
    say "ASan reported ${#asan_reports[@]} memory error(s); the first in full:"
    cat "${asan_reports[0]}"
    # One line per report: the error, then the first frame outside ASan's own interceptors
    # (uninstrumented libraries such as HDF5 are caught in memcpy & co.).
    printf '\nall reports:\n'
    for f in "${asan_reports[@]}"; do
        awk -v f="$f" '
            /ERROR: AddressSanitizer: / && !err { err = $3 }
            /^SUMMARY: AddressSanitizer: / && !kind { kind = $3 }
            /^ +#[0-9]+ / && !/libsanitizer|__interceptor_/ && !frame {
                $1 = $2 = ""; sub(/^ +/, ""); frame = $0 }
            END { printf "  %s: %s %s\n", f, kind ? kind : err, frame }' "$f"
    done
fi

status=FAIL
if ((pytest_rc == 0 && fuzz_rc == 0 && ${#asan_reports[@]} == 0 && ${#asan_runtime[@]} == 0)); then
    status=PASS
    passed=1
fi
printf '\nasan.sh: %s: pytest: %s (exit %d)%s; ASan: %d report(s) in our code, %d outside it, %d runtime failure(s); %s; %ds\n' \
    "$status" "${pytest_line:-no summary line}" "$pytest_rc" "$fuzz_desc" \
    "${#asan_reports[@]}" "${#asan_third_party[@]}" "${#asan_runtime[@]}" "$blosc2_desc" \
    "$((SECONDS - started))"
[[ $status == PASS ]]
