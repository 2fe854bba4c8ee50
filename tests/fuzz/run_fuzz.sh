#!/usr/bin/env bash
# Builds every libFuzzer target with clang (ASan + UBSan) and fuzzes each for SECONDS (default 30).
#
#     tests/fuzz/run_fuzz.sh [SECONDS]        build dir: $MT_FUZZ_BUILD or build-fuzz/ at the repository root
#
# Seeds come from tests/fuzz/corpus/<fuzzer>/ (committed, read only), tokens from tests/fuzz/<fuzzer>.dict when
# there is one; inputs libFuzzer finds go to
# <build>/fuzz-corpus/<fuzzer>/. A crash, leak, timeout or out-of-memory stops that fuzzer, leaves the input in
# tests/fuzz/crashes/<fuzzer>/ (commit it with the fix: the <fuzzer>_regress ctest replays it) and makes this
# script exit 1 after the remaining fuzzers ran.
set -euo pipefail

secs=${1:-30}
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${MT_FUZZ_BUILD:-$root/build-fuzz}

cmake -S "$root" -B "$build" -DCMAKE_C_COMPILER=clang -DMT_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" --target fuzzers -j"$(nproc)"
export MT_FUZZ_MODELS=$build/fuzz-models
"$root/tests/fuzz/make_fuzz_models.sh" "$MT_FUZZ_MODELS"

status=0
for src in "$root"/tests/fuzz/fuzz_*.c; do
  name=$(basename "$src" .c)
  bin=$build/tests/fuzz/$name
  work=$build/fuzz-corpus/$name
  crashes=$root/tests/fuzz/crashes/$name
  mkdir -p "$work" "$crashes"
  opts=()
  [ -f "$root/tests/fuzz/$name.dict" ] && opts+=("-dict=$root/tests/fuzz/$name.dict")
  seeds=()
  [ -d "$root/tests/fuzz/corpus/$name" ] && seeds=("$root/tests/fuzz/corpus/$name")
  echo "== $name: ${secs}s"
  if ! "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 "${opts[@]}" \
      -artifact_prefix="$crashes/" "$work" "${seeds[@]}" >"$build/$name.log" 2>&1; then
    echo "FAIL $name: see $build/$name.log; input kept in $crashes/"
    grep -m1 -E "ERROR|SUMMARY" "$build/$name.log" || true
    status=1
  else
    grep -E "stat::number_of_executed_units|INFO: Done" "$build/$name.log" | tail -2 || true
  fi
  rmdir "$crashes" 2>/dev/null || true # keep only folders that hold something
done
rmdir "$root/tests/fuzz/crashes" 2>/dev/null || true
exit $status
