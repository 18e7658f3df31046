#!/bin/sh
# Builds the libFuzzer targets with clang (-Dfuzz=true, ASan + UBSan) in
# build-fuzz and runs each for FUZZ_SECONDS (default 60) on top of its
# regression corpus (tests/fuzz/corpus/<target>/), which is replayed first.
# A crash, leak, UB report or timeout fails the script; the input that caused
# it is left in build-fuzz/fuzz-artifacts/ (docs/fuzzing.md: keep it in the
# corpus once fixed).
#   FUZZ_SECONDS=600 tests/fuzz/run.sh           longer run
#   FUZZ_TARGETS="json png" tests/fuzz/run.sh    some targets only
#   FUZZ_SECONDS=0 tests/fuzz/run.sh             replay the corpora only
#   FUZZ_SEED=0 tests/fuzz/run.sh                a new random seed each run
# The default seed is fixed (1): CI explores the same mutation sequence on
# every run, so a red CI is a reproducible finding, not luck; longer or
# random-seeded runs (docs/fuzzing.md) look further.
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${FUZZ_BUILD_DIR:-$root/build-fuzz}
seconds=${FUZZ_SECONDS:-60}
seed=${FUZZ_SEED:-1}
targets=${FUZZ_TARGETS:-png json model cli serve}

if [ ! -f "$build/build.ninja" ]; then
    CC=clang CXX=clang++ meson setup "$build" "$root" -Dfuzz=true -Db_sanitize=address,undefined \
        -Db_lundef=false -Dbuildtype=debugoptimized
fi

built=""
for t in $targets; do
    if grep -q "tests/fuzz/fuzz_$t:" "$build/build.ninja"; then
        built="$built $t"
    else
        echo "fuzz: target '$t' is not built in this configuration (model needs libtorch)" >&2
    fi
done
# Only the fuzz targets: the rest of an ASan clang build is not needed here.
ninja -C "$build" -j"${FUZZ_JOBS:-1}" $(for t in $built; do printf 'tests/fuzz/fuzz_%s ' "$t"; done)

artifacts="$build/fuzz-artifacts"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$artifacts"
status=0
for t in $built; do
    corpus="$root/tests/fuzz/corpus/$t"
    mkdir -p "$work/$t"
    extra=""
    case $t in
        cli) extra="-close_fd_mask=2" ;;     # usage errors on stderr
        model) extra="-max_len=65536 -close_fd_mask=2" ;;
        *) extra="-max_len=16384" ;;
    esac
    if [ "$seconds" -gt 0 ]; then
        run="-max_total_time=$seconds"
    else
        run="-runs=0"
    fi
    echo "fuzz: $t for ${seconds} s (corpus: $(ls "$corpus" | wc -l) inputs)"
    # New inputs go to the scratch directory (first); the committed corpus
    # is only read.
    if ! ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
        LSAN_OPTIONS="suppressions=$root/tests/fuzz/lsan.supp" \
        "$build/tests/fuzz/fuzz_$t" "$work/$t" "$corpus" $run $extra -seed="$seed" -timeout=30 -rss_limit_mb=4096 \
        -artifact_prefix="$artifacts/$t-" -print_final_stats=1 > "$work/$t.log" 2>&1; then
        tail -n 60 "$work/$t.log" >&2
        echo "fuzz: $t FAILED; reproducer in $artifacts/" >&2
        status=1
    else
        grep -E "^stat::number_of_executed_units|^Done|INITED" "$work/$t.log" | tail -n 2
    fi
done
exit $status
