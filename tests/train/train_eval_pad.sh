#!/usr/bin/env bash
# --eval-data's exact-match answers when the model greedily picks ids of the LM head's padding rows (vocab_size
# 512, 457 tokens: no text): models/mitten-tiny with its final norm cut to one channel, and rows 500 / 501 of the
# tied embedding +-1000 on that channel, so every answer is 500s or 501s. Such an answer is wrong (its ids without a
# token drop out, as in GRPO's completions) and the run goes on; it once stopped training with "decode: id 501 is
# outside the vocab". `mitten run` on it answers with no text instead of failing the same way.
# usage: train_eval_pad.sh MITTEN WORKDIR SOURCE_DIR
set -u
mitten=$1 work=$2 src=$3
rm -rf "$work" && mkdir -p "$work"
model=$work/pad
/usr/bin/python3 - "$src" "$model" "$work" <<'PY' || exit 1
import json, os, shutil, sys
from PIL import Image
src, out, work = sys.argv[1:]
sys.path.insert(0, os.path.join(src, "tests", "ref"))
import safetensors_io as st
tiny = os.path.join(src, "models", "mitten-tiny")
os.makedirs(out)
for f in os.listdir(tiny):
    if f != "model.safetensors":
        shutil.copyfile(os.path.join(tiny, f), os.path.join(out, f))
w = st.read_file(os.path.join(tiny, "model.safetensors"))
w["model.norm.weight"].zero_()
w["model.norm.weight"][0] = 1
w["model.embed_tokens.weight"][500, 0] = 1000
w["model.embed_tokens.weight"][501, 0] = -1000
st.write_file(os.path.join(out, "model.safetensors"), w)
Image.new("RGB", (84, 84), (40, 80, 220)).save(os.path.join(work, "blue.png"))
question = [{"type": "image"}, {"type": "text", "text": "What colour is the shape?"}]
row = {"messages": [{"role": "user", "content": question}, {"role": "assistant", "content": "blue"}],
       "images": ["blue.png"]}
with open(os.path.join(work, "data.jsonl"), "w") as f:
    f.write(json.dumps(row) + "\n")
PY
. "$src/tests/cli/check.sh"
check "eval of answers in padding ids" 0 "$mitten" train -m "$model" --data "$work/data.jsonl" --out "$work/run" \
  --max-steps 1 --batch 1 --lr 1e-9 --warmup 0 --train projector --threads 2 --eval-data "$work/data.jsonl" \
  --eval-tokens 4
n=$((n + 1))
grep -q "exact match 0/1" "$work/err" ||
  { echo "FAIL no \"exact match 0/1\" line"; tail -3 "$work/err"; fail=$((fail + 1)); }
# mitten run on the same model: the padding ids give no text, as transformers' decode, and the answer ends normally
check "run with answers in padding ids" 0 "$mitten" run -m "$model" --image "$work/blue.png" \
  -p "What colour is the shape?" --max-tokens 4 --threads 2
echo "$((n - fail))/$n passed"
[ "$fail" = 0 ]
