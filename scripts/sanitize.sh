#!/usr/bin/env bash
# Build the kernel extension with AddressSanitizer + UndefinedBehaviorSanitizer
# and run the kernel and binding tests against that build.
#
# usage: scripts/sanitize.sh [PYTEST_ARGS...]
#   e.g. scripts/sanitize.sh -x -k attention
#
# Exits non-zero on any sanitizer finding (or failing test). The build happens
# in a temporary copy of the sources, never in the checkout: other processes
# use the in-place toolkit/_kernels*.so, and an instrumented .so there would
# need LD_PRELOAD of libasan in every one of them.
#
# Environment:
#   SANITIZE_KEEP=1   keep the temporary copy (its path is printed)
#   SANITIZE_DIR=DIR  build in DIR instead of a fresh mktemp directory
#   SANITIZE_BUILD_ONLY=1  build, do not run the tests (used by scripts/fuzz.sh)
#   PYTHON=python3.x  the interpreter (default: python)
set -euo pipefail

if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then
    sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
fi

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python}"
CC="${CC:-gcc}"

TESTS=(
    tests/test_conv1d.py
    tests/test_attention.py
    tests/test_embedding.py
    tests/test_nn_layers.py
    tests/test_transformer.py
    tests/test_kernels_properties.py
    tests/test_kernels_decode.py
    tests/test_kernels_norm.py
    tests/test_kernels_cross_entropy.py
)

WORK="${SANITIZE_DIR:-$(mktemp -d -t nlp-sanitize.XXXXXX)}"
cleanup() {
    if [[ -z "${SANITIZE_KEEP:-}" && -z "${SANITIZE_DIR:-}" ]]; then
        rm -rf "$WORK"
    else
        echo "sanitize: build kept in $WORK"
    fi
}
trap cleanup EXIT

# The runtimes must come from the same compiler that instruments the code.
LIBASAN="$("$CC" -print-file-name=libasan.so)"
LIBUBSAN="$("$CC" -print-file-name=libubsan.so)"
for lib in "$LIBASAN" "$LIBUBSAN"; do
    if [[ ! -e "$lib" ]]; then
        echo "sanitize: $CC has no $(basename "$lib"); install its sanitizer runtime" >&2
        exit 2
    fi
done

echo "sanitize: copying sources to $WORK"
mkdir -p "$WORK"
# Only what the build and the tests read; the compiled module and the
# generated C file are left behind so that nothing uninstrumented is reused.
(cd "$REPO" && tar cf - --exclude='__pycache__' --exclude='*.so' --exclude='toolkit/_kernels.c' \
    setup.py pyproject.toml README.md LICENSE MANIFEST.in csrc toolkit tests docs fuzz) |
    (cd "$WORK" && tar xf -)

SAN_FLAGS="-fsanitize=address,undefined,float-cast-overflow -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g"
echo "sanitize: building with $SAN_FLAGS"
(
    cd "$WORK"
    # setup.py appends its own -O3 after CFLAGS, so the instrumented code is
    # optimised as the shipped one is, and the same target_clones are built.
    CC="$CC" CFLAGS="$SAN_FLAGS" LDFLAGS="-fsanitize=address,undefined,float-cast-overflow" \
        "$PYTHON" setup.py -q build_ext --inplace --build-temp "$WORK/build-temp" >"$WORK/build.log" 2>&1
) || {
    tail -40 "$WORK/build.log" >&2
    echo "sanitize: build failed" >&2
    exit 2
}
SO="$(ls "$WORK"/toolkit/_kernels*.so)"
# Not `nm | grep -q`: grep quitting early makes nm die of SIGPIPE, which
# pipefail reports as a failure.
if [[ "$(nm -D "$SO" | grep -c __asan_)" == 0 ]]; then
    echo "sanitize: $SO is not instrumented" >&2
    exit 2
fi

if [[ -n "${SANITIZE_BUILD_ONLY:-}" ]]; then
    # For scripts/fuzz.sh: the instrumented build, without the test run.
    echo "sanitize: instrumented build in $WORK"
    exit 0
fi

# Reports go to stderr, which the test run sends to this file: the
# sanitizers' own log_path is not honoured by gcc's libubsan when libasan is
# loaded too, and pytest's capture of fd 2 is lost when a report aborts.
LOG="$WORK/stderr.log"
# detect_leaks=0: CPython keeps interned objects and arenas until exit, so the
# leak checker would report the interpreter, not the kernels.
# Python itself is not instrumented, so libasan has to be loaded first.
# PYTHONMALLOC=malloc sends Python objects through the checked malloc too, so
# a kernel that writes past a numpy buffer into a neighbouring object is caught.
export ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
export PYTHONMALLOC=malloc
export PYTHONPATH="$WORK${PYTHONPATH:+:$PYTHONPATH}"
# Two threads keep the OpenMP paths (team start, per-thread scratch) in play
# without taking a shared machine over.
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
# ASan makes every call several times slower; the property tests' deadline
# is there for pathological inputs, not for that.
export KERNEL_PROPERTY_DEADLINE_MS="${KERNEL_PROPERTY_DEADLINE_MS:-20000}"

cd "$WORK"
where="$(LD_PRELOAD="$LIBASAN:$LIBUBSAN" "$PYTHON" -c 'import toolkit.kernels as k, toolkit._kernels as m; print(m.__file__)')"
if [[ "$where" != "$WORK"/* ]]; then
    echo "sanitize: the tests would import $where, not the instrumented build" >&2
    exit 2
fi

status=0
present=()
for t in "${TESTS[@]}"; do
    [[ -e "$t" ]] && present+=("$t") || echo "sanitize: $t is missing, skipped" >&2
done
# --capture=tee-sys: pytest captures Python's sys.stderr only, so reports
# written by C to fd 2 reach $LOG even when they end the process.
LD_PRELOAD="$LIBASAN:$LIBUBSAN" "$PYTHON" -m pytest -q -p no:cacheprovider --capture=tee-sys \
    "${present[@]}" "$@" 2>"$LOG" || status=$?

findings="$(grep -c -E 'ERROR: AddressSanitizer|runtime error:' "$LOG" || true)"
if [[ "$findings" != 0 || "$status" != 0 ]]; then
    echo "sanitize: stderr of the test run ($LOG):" >&2
    grep -E -A30 'ERROR: AddressSanitizer|runtime error:' "$LOG" >&2 || tail -40 "$LOG" >&2
fi
echo "sanitize: pytest exit $status, sanitizer findings: $findings"
if [[ "$findings" != 0 ]]; then
    exit 1
fi
exit "$status"
