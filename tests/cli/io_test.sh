#!/usr/bin/env bash
# What the CLI reads and writes (issue 9, items 11 and 17): output folders made with their parents (logits
# --dump-dir, preprocess --out-dir, train --out, merge --out), a failed write exits 1, stdout holds the answer and
# a newline only, the stats line starts its own line in one pipe, stdin as input (-p -, tokenize --file -), ids as a
# JSON list (detokenize) and int32 ids (logits). usage: io_test.sh MITTEN WORKDIR SOURCE_DIR
set -u
mitten=$1 work=$2 src=$3
. "$src/tests/cli/check.sh"
. "$src/tests/cli/demo.sh"
rm -rf "$work/new" "$work/blocked" && mkdir -p "$work/new" "$work/blocked"
py=/usr/bin/python3
$py -c "import numpy as np, sys
np.save(sys.argv[1] + '/ids64.npy', np.array([9707, 1879, 11, 1052], dtype=np.int64))
np.save(sys.argv[1] + '/ids32.npy', np.array([9707, 1879, 11, 1052], dtype=np.int32))" "$work" || exit 1

# output folders are made, with their parents
check "logits --dump-dir NEW/a/b" 0 "$mitten" logits -m "$model" --ids "$work/ids64.npy" --out "$work/l64.npy" \
  --dump-dir "$work/new/dump/a/b"
[ -s "$work/new/dump/a/b/position_ids.npy" ] && [ -s "$work/new/dump/a/b/final_norm.npy" ] ||
  { echo "FAIL logits wrote no dump files"; fail=$((fail + 1)); }
check "preprocess --out-dir NEW/a/b" 0 "$mitten" preprocess -m "$model" --image "$image" --out-dir "$work/new/pre/a/b"
[ -s "$work/new/pre/a/b/pixel_values.npy" ] || { echo "FAIL preprocess wrote nothing"; fail=$((fail + 1)); }
cp "$image" "$work/new/shape.png"
printf '[{"image": "shape.png", "conversations": [{"from": "human", "value": "<image>\\nColour?"}, %s]}]\n' \
  '{"from": "gpt", "value": "Blue."}' >"$work/new/train.json"
check "train --out NEW/a/b/c" 0 "$mitten" train -m "$model" --data "$work/new/train.json" --out "$work/new/run/a/b/c" \
  --lora 2 --max-steps 1 --batch 1 --threads 2
[ -s "$work/new/run/a/b/c/adapter/adapter_model.safetensors" ] || { echo "FAIL train wrote no adapter"; fail=$((fail + 1)); }
check "merge --out NEW/a/b" 0 "$mitten" merge -m "$model" --adapter "$work/new/run/a/b/c/adapter" --out "$work/new/merged/a/b"
[ -s "$work/new/merged/a/b/model.safetensors" ] || { echo "FAIL merge wrote no weights"; fail=$((fail + 1)); }

# a failed write is a failure: a folder stands where a dump file goes; a file stands where a folder goes
mkdir -p "$work/blocked/dump/position_ids.npy"
check "logits --dump-dir with an unwritable file exits 1" 1 "$mitten" logits -m "$model" --ids "$work/ids64.npy" \
  --out "$work/l.npy" --dump-dir "$work/blocked/dump"
expect "the unwritable dump file is named" "$work/err" "position_ids.npy"
touch "$work/blocked/file"
check "logits --dump-dir under a file exits 1" 1 "$mitten" logits -m "$model" --ids "$work/ids64.npy" \
  --out "$work/l.npy" --dump-dir "$work/blocked/file/dump"
check "preprocess --out-dir under a file exits 1" 1 "$mitten" preprocess -m "$model" --image "$image" \
  --out-dir "$work/blocked/file/pre"

# logits takes int32 ids as it takes int64 ones
check "logits with int32 ids" 0 "$mitten" logits -m "$model" --ids "$work/ids32.npy" --out "$work/l32.npy"
cmp -s "$work/l32.npy" "$work/l64.npy" || { echo "FAIL int32 and int64 ids gave different logits"; fail=$((fail + 1)); }

# detokenize takes a JSON list as well as spaced or comma-separated ids
check "detokenize a JSON list" 0 "$mitten" detokenize -m "$model" --ids "[9707, 1879]"
[ "$(cat "$work/out")" = "Hello world" ] || { echo "FAIL detokenize [9707, 1879]: $(cat "$work/out")"; fail=$((fail + 1)); }
check "detokenize 9707,1879" 0 "$mitten" detokenize -m "$model" --ids "9707,1879"
[ "$(cat "$work/out")" = "Hello world" ] || { echo "FAIL detokenize 9707,1879: $(cat "$work/out")"; fail=$((fail + 1)); }
check "detokenize an unclosed list" 2 "$mitten" detokenize -m "$model" --ids "[9707, 1879"

# stdin as input
check "tokenize --text" 0 "$mitten" tokenize -m "$model" --text "Hello world" --ids-only
cp "$work/out" "$work/tok_text"
check "tokenize --file -" 0 sh -c "printf 'Hello world' | '$mitten' tokenize -m '$model' --file - --ids-only"
cmp -s "$work/out" "$work/tok_text" || { echo "FAIL tokenize --file - differs from --text"; fail=$((fail + 1)); }
check "run -p TEXT" 0 "$mitten" run -m "$model" -p "What is this?" --max-tokens 6
cp "$work/out" "$work/run_text"
check "run -p - (stdin)" 0 sh -c "echo 'What is this?' | '$mitten' run -m '$model' -p - --max-tokens 6"
cmp -s "$work/out" "$work/run_text" || { echo "FAIL run -p - differs from -p TEXT"; fail=$((fail + 1)); }
check "run -p - with nothing on stdin" 2 sh -c "'$mitten' run -m '$model' -p - </dev/null"

# stdout: the answer and one newline; nothing when it fails after loading; stats on their own line in one pipe
check "run with stdout and stderr in one pipe" 0 sh -c "'$mitten' run -m '$model' -p Hi --max-tokens 4 2>&1 | cat"
grep -q '^\[.*prompt tokens' "$work/out" || { echo "FAIL the stats line does not start a line:"; cat "$work/out"; fail=$((fail + 1)); }
check "run that fails after loading" 1 "$mitten" run -m "$model" --image "$image" -p Hi --ctx 32
[ -s "$work/out" ] && { echo "FAIL a failed run wrote to stdout: $(od -c "$work/out" | head -2)"; fail=$((fail + 1)); }
echo "$n checks, $fail failed"
[ "$fail" = 0 ]
