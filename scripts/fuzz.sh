#!/usr/bin/env bash
# Run a coverage-guided fuzzer (atheris) for a while.
#
# usage: scripts/fuzz.sh TARGET MINUTES [LIBFUZZER_ARGS...]
#   TARGET   kernels     the kernel bindings (fuzz/fuzz_kernels.py)
#            model_file  toolkit.nn.read_model_file (fuzz/fuzz_model_file.py)
#   MINUTES  how long to fuzz (libFuzzer's -max_total_time)
#   e.g. scripts/fuzz.sh model_file 10
#        FUZZ_SANITIZE=1 scripts/fuzz.sh kernels 10   # then replay the corpus under ASan/UBSan
#
# Seeds come from fuzz/corpus/TARGET/ (committed, read only here); inputs the
# fuzzer finds interesting go to $FUZZ_WORK_DIR/TARGET (default
# /tmp/nlp-fuzz/TARGET), kept between runs so that a later run starts where
# the last one stopped. A contract break (an exception other than the
# documented ones, or a result that differs from the numpy reference) is saved
# under fuzz/crashes/TARGET/ with its traceback, once per place of failure,
# and the run goes on (FUZZ_KEEP_GOING=0 stops at the first one instead).
# A hard crash (segfault, sanitizer report) always stops the run; libFuzzer
# then writes the input to fuzz/crashes/TARGET/crash-*.
#
# Exit status: 0 when the run ended without a crash, 1 when one was saved.
set -euo pipefail

usage() {
    sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'
}
if [[ $# -lt 2 || "$1" == "-h" || "$1" == "--help" ]]; then
    usage >&2
    exit 2
fi
TARGET="$1"
MINUTES="$2"
shift 2
case "$TARGET" in
    kernels | model_file) ;;
    *)
        echo "fuzz: unknown target '$TARGET' (kernels or model_file)" >&2
        exit 2
        ;;
esac
if ! [[ "$MINUTES" =~ ^[0-9]+([.][0-9]+)?$ ]]; then
    echo "fuzz: MINUTES must be a number, got '$MINUTES'" >&2
    exit 2
fi

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python}"
if ! "$PYTHON" -c 'import atheris' 2>/dev/null; then
    echo "fuzz: atheris is not installed: pip install atheris" >&2
    exit 2
fi

SEEDS="$REPO/fuzz/corpus/$TARGET"
WORK="${FUZZ_WORK_DIR:-/tmp/nlp-fuzz}/$TARGET"
CRASHES="$REPO/fuzz/crashes/$TARGET"
mkdir -p "$WORK" "$CRASHES"
SECONDS_TOTAL="$(awk -v m="$MINUTES" 'BEGIN { printf "%d", m * 60 }')"
before="$(find "$CRASHES" -type f ! -name '*.txt' | wc -l)"

export FUZZ_KEEP_GOING="${FUZZ_KEEP_GOING:-1}"
# The kernels use one thread here: the fuzzer explores arguments, not
# scheduling, and the machine is shared.
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
echo "fuzz: $TARGET for $MINUTES min; seeds $SEEDS, corpus $WORK, crashes $CRASHES"
status=0
"$PYTHON" "$REPO/fuzz/fuzz_$TARGET.py" \
    -max_total_time="$SECONDS_TOTAL" \
    -artifact_prefix="$CRASHES/" \
    -rss_limit_mb="${FUZZ_RSS_MB:-2048}" \
    -timeout="${FUZZ_TIMEOUT:-20}" \
    -print_final_stats=1 \
    "$@" "$WORK" "$SEEDS" || status=$?

if [[ "${FUZZ_SANITIZE:-0}" == 1 && "$status" == 0 ]]; then
    # Replay every input of the corpus once against the AddressSanitizer +
    # UBSan build. Not during the fuzzing: gcc's sanitizer runtime defines the
    # coverage callbacks too, so with it preloaded libFuzzer sees no coverage
    # and the mutations are blind.
    BUILD="${FUZZ_SANITIZE_DIR:-/tmp/nlp-fuzz/asan-build}"
    SANITIZE_BUILD_ONLY=1 SANITIZE_DIR="$BUILD" "$REPO/scripts/sanitize.sh"
    preload=(env "PYTHONPATH=$BUILD${PYTHONPATH:+:$PYTHONPATH}"
             "LD_PRELOAD=$(gcc -print-file-name=libasan.so):$(gcc -print-file-name=libubsan.so)")
    # The harness runs with fuzz/ as its first path entry; check from there
    # that the instrumented module is the one imported.
    loaded="$(cd "$REPO/fuzz" && ASAN_OPTIONS=detect_leaks=0 "${preload[@]}" "$PYTHON" -c \
        'import toolkit._kernels as m; print(m.__file__)')"
    if [[ "$loaded" != "$BUILD"/* ]]; then
        echo "fuzz: the replay would load $loaded, not the instrumented build" >&2
        exit 2
    fi
    echo "fuzz: replaying $(ls "$WORK" | wc -l) corpus inputs against $loaded"
    # A vocabulary of 2**31 - 1 rows is a legal request. Plain calloc hands
    # out untouched virtual memory for it; ASan's touches it and blows the RSS
    # limit. Refusing allocations over 1 GiB (NULL, so numpy raises
    # MemoryError, which the harness accepts for such sizes) keeps that from
    # ending the replay.
    ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:allocator_may_return_null=1:max_allocation_size_mb=1024" \
        UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1" \
        "${preload[@]}" "$PYTHON" "$REPO/fuzz/fuzz_$TARGET.py" -runs=0 -artifact_prefix="$CRASHES/" \
        -rss_limit_mb="${FUZZ_RSS_MB:-2048}" "$WORK" "$SEEDS" || status=$?
    echo "fuzz: sanitizer replay exit $status"
fi

after="$(find "$CRASHES" -type f ! -name '*.txt' | wc -l)"
echo "fuzz: $TARGET done, exit $status, crash files $before -> $after in $CRASHES"
if [[ "$status" != 0 || "$after" != "$before" ]]; then
    exit 1
fi
