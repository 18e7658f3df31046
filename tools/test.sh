#!/usr/bin/env bash
# Sets everything up and runs every test: the full suite (pure C, engine,
# CLI, Python) and the pure-C unit suite again under AddressSanitizer and
# UndefinedBehaviorSanitizer. Exits non-zero if anything fails.
set -euo pipefail
cd "$(dirname "$0")/.."

bash tools/setup.sh

jobs=$(nproc)
echo "== full suite (build-test) =="
[ -d build-test ] || meson setup build-test -Dtorch=enabled
ninja -C build-test -j "$jobs"
meson test -C build-test --print-errorlogs --num-processes "$jobs"

echo "== pure-C unit suite under ASan + UBSan (build-asan) =="
[ -d build-asan ] || meson setup build-asan -Dtorch=disabled -Db_sanitize=address,undefined -Db_lundef=false
ninja -C build-asan -j "$jobs"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  meson test -C build-asan --suite unit --print-errorlogs --num-processes "$jobs"

echo "== fuzz targets: corpora + ${FUZZ_SECONDS:-60} s each (build-fuzz, clang) =="
FUZZ_JOBS="$jobs" tests/fuzz/run.sh
