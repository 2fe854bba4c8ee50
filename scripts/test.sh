#!/usr/bin/env bash
# Runs the whole test suite: unit and reference tests on the release build, the same again under ASan + UBSan (but
# the few labelled release_only, see tests/CMakeLists.txt),
# then each fuzz target briefly. Run scripts/setup.sh first.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)

echo "== release build: all tests"
cmake --build build -j"$jobs" >/dev/null
(cd build && ctest --output-on-failure -j"$jobs")

echo "== ASan + UBSan build: all tests"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMT_SANITIZE=ON >/dev/null
cmake --build build-asan -j"$jobs" >/dev/null
(cd build-asan && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -j"$jobs" -LE release_only)

if [ -x tests/fuzz/run_fuzz.sh ]; then
  echo "== fuzzing (${MT_FUZZ_SECONDS:-20} s per target)"
  tests/fuzz/run_fuzz.sh "${MT_FUZZ_SECONDS:-20}"
fi
