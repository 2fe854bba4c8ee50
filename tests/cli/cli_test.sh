#!/usr/bin/env bash
# The CLI on the demo model (tiny random layers, real Qwen vocabulary and tokenizer): run, chat, info, preprocess,
# template (on models/mitten-tiny, which has a chat template: U+0000 kept, a JSON error named by line:column),
# --help and usage errors, with their exit codes. usage: cli_test.sh MITTEN WORKDIR SOURCE_DIR
set -u
mitten=$1 work=$2 src=$3
. "$src/tests/cli/check.sh"
. "$src/tests/cli/demo.sh"
check "run with an image" 0 "$mitten" run -m "$model" --image "$image" -p "What is in the picture?" --max-tokens 8
[ -s "$work/out" ] || { echo "FAIL run printed nothing"; fail=$((fail + 1)); }
check "run sampled, seed 5" 0 "$mitten" run -m "$model" -p "Hi" --temperature 1 --top-p 0.9 --seed 5 --max-tokens 12
cp "$work/out" "$work/first"
check "run sampled again" 0 "$mitten" run -m "$model" -p "Hi" --temperature 1 --top-p 0.9 --seed 5 --max-tokens 12
cmp -s "$work/out" "$work/first" || { echo "FAIL same seed gave different text"; fail=$((fail + 1)); }
printf '/image %s\nDescribe it.\nAnd the colours?\n/reset\nHello\n/quit\n' "$image" >"$work/chat_in"
check "chat, two turns with an image, reset" 0 sh -c "'$mitten' chat -m '$model' --max-tokens 6 <'$work/chat_in'"
turns=$(grep -c 'prompt tokens' "$work/err")
[ "$turns" = 3 ] || { echo "FAIL chat answered $turns turns, expected 3"; fail=$((fail + 1)); }
printf '/image %s/nope.png\nFirst\nSecond\n/quit\n' "$work" >"$work/chat_bad"
check "chat survives a missing image (and exits 1)" 1 sh -c "'$mitten' chat -m '$model' --max-tokens 4 <'$work/chat_bad'"
turns=$(grep -c 'prompt tokens' "$work/err")
[ "$turns" = 2 ] && grep -q "nope.png" "$work/err" || { echo "FAIL chat with a missing image: $turns answers"; fail=$((fail + 1)); }
check "info" 0 "$mitten" info -m "$model"
grep -q "^architecture  qwen2.5-vl" "$work/out" && grep -q "^  vision     qwen2.5-vl vision" "$work/out" ||
    { echo "FAIL info does not name the composition"; fail=$((fail + 1)); }
check "preprocess" 0 "$mitten" preprocess -m "$model" --image "$image" --out-dir "$work"
printf '[{"role": "user", "content": "a\\u0000b"}]' >"$work/nul.json"
check "template keeps U+0000" 0 "$mitten" template -m "$src/models/mitten-tiny" --messages "$work/nul.json"
LC_ALL=C grep -qaP '^a\x00b<' "$work/out" || { echo "FAIL template cut the text at U+0000"; fail=$((fail + 1)); }
printf '[{"role": "user",\n  "content": "\\ud800"}]' >"$work/lone.json"
check "template names a lone surrogate" 1 "$mitten" template -m "$src/models/mitten-tiny" --messages "$work/lone.json"
grep -qF 'lone.json: lone surrogate \ud800 at line 2, column 15' "$work/err" ||
    { echo "FAIL template: no line:column for a lone surrogate"; fail=$((fail + 1)); }
for cmd in run chat info logits perplexity preprocess bench template tokenize detokenize quantize export; do check "$cmd --help" 0 "$mitten" $cmd --help; done
check "no command" 2 "$mitten"
check "unknown command" 2 "$mitten" frobnicate
check "unknown option" 2 "$mitten" run -m "$model" -p x --bogus
check "bad number" 2 "$mitten" run -m "$model" -p x --temperature hot
check "missing prompt" 2 "$mitten" run -m "$model"
check "missing image file" 1 "$mitten" run -m "$model" --image "$work/nope.png" -p x
# an image path that is not a file, and an image the processor refuses: the message says which and why
check "image that is a device" 1 "$mitten" run -m "$model" --image /dev/zero -p x
expect "run --image /dev/zero" "$work/err" "/dev/zero: is a character device, not a regular file"
check "image that is a folder" 1 "$mitten" preprocess -m "$model" --image "$work" --out-dir "$work/pp"
expect "preprocess --image FOLDER" "$work/err" "$work: is a directory, not a file"
/usr/bin/python3 -c "from PIL import Image; Image.new('RGB', (402, 2)).save('$work/wide.png')"
check "run, aspect ratio over 200" 1 "$mitten" run -m "$model" --image "$work/wide.png" -p x
expect "run, aspect ratio over 200" "$work/err" "$work/wide.png: image 402x2: aspect ratio 201 is over the 200"
check "preprocess, aspect ratio over 200" 1 "$mitten" preprocess -m "$model" --image "$work/wide.png" \
    --out-dir "$work/pp"
expect "preprocess, aspect ratio over 200" "$work/err" "$work/wide.png: image 402x2: aspect ratio 201 is over the 200"
check "missing model" 1 "$mitten" run -m "$work/nope" -p x
echo "$n checks, $fail failed"
[ "$fail" = 0 ]
