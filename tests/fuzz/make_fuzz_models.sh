#!/usr/bin/env bash
# The tiny random checkpoints fuzz_config loads fuzzed configs over: DIR/{qwen2_5_vl,qwen3_vl_moe,qwen3_moe,qwen2_moe}.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=$1
export PYTHONDONTWRITEBYTECODE=1
[ -f "$out/qwen2_5_vl/model.safetensors" ] ||
  /usr/bin/python3 "$root/tests/ref/qwen2_vl_ref.py" make-checkpoint --variant qwen2_5_vl --out "$out/qwen2_5_vl" --seed 5 >/dev/null
for v in qwen3_vl_moe qwen3_moe qwen2_moe; do
  [ -f "$out/$v/model.safetensors" ] ||
    /usr/bin/python3 "$root/tests/ref/qwen3_ref.py" make-checkpoint --variant $v --out "$out/$v" --seed 5 >/dev/null
done
