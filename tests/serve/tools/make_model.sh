#!/usr/bin/env bash
# The tool-using test model of tests/serve/tools.mjs, made at test time: a copy of models/mitten-tiny with the
# Hermes-style template of this folder, fully fine-tuned (language model) on train.jsonl until greedy decoding gives
# every answer exactly (the eval's "exact match 3/3" and a loss near 0, so each answer token wins with margin).
# usage: make_model.sh MITTEN SOURCE_DIR WORKDIR; the model is WORKDIR/run/model.
set -u
mitten=$1 src=$2 work=$3
rm -rf "$work" && mkdir -p "$work" || exit 1
cp -r "$src/models/mitten-tiny" "$work/base" && cp "$src/tests/serve/tools/chat_template.jinja" "$work/base/" || exit 1
data=$src/tests/serve/tools/train.jsonl
"$mitten" train -m "$work/base" --data "$data" --eval-data "$data" --eval-tokens 100 --out "$work/run" \
  --threads 2 --batch 3 --epochs 200 --lr 3e-3 --warmup 0 --log-every 50 --seed 1 --strict 2>"$work/train.log"
rc=$?
grep -E "step|exact match|skipp" "$work/train.log"
[ $rc = 0 ] || { echo "FAIL mitten train exited $rc"; tail -5 "$work/train.log"; exit 1; }
grep -q "exact match 3/3" "$work/train.log" || { echo "FAIL the answers are not memorised"; exit 1; }
loss=$(grep -o 'eval loss [0-9.]*' "$work/train.log" | tail -1 | cut -d' ' -f3)
awk -v l="$loss" 'BEGIN { exit !(l < 0.01) }' || { echo "FAIL eval loss $loss is not below 0.01"; exit 1; }
echo "tool model ready: $work/run/model (eval loss $loss)"
