#!/usr/bin/env bash
# mitten train / merge end to end on tiny random InternVL checkpoints (tests/ref/internvl_ref.py) in both layouts:
# InternVLChatModel (vision_model.*, mlp1.*, language_model.model.*) and InternVLForConditionalGeneration
# (model.vision_tower.*, model.multi_modal_projector.*, model.language_model.*).
# - Without --train a run follows InternVL's recipe: the vision tower stays byte for byte the base's, the projector and
#   the language model train (fully, or the LM by LoRA); the loss falls on memorised samples in InternVL's own JSONL
#   (image: one path or a list, conversations with <image>), and with a meta file of sets (root, repeat_time).
#   --train llm leaves the projector as it was.
# - OUT/model keeps the base's layout: the same tensor names, dtypes and shapes, config.json byte for byte, and its
#   logits in mitten equal the PyTorch reference's (which reads each layout's own names) on a tiled image.
# - The adapter names its modules as PEFT does on that model (base_model.model.<module path>), on the LM only, and
#   holds the projector trained whole as PEFT's modules_to_save; `mitten merge` of it gives OUT/model byte for byte.
# usage: train_cli_internvl.sh MITTEN WORKDIR SOURCE_DIR
set -u
mitten=$1 work=$2 src=$3
py=/usr/bin/python3
rm -rf "$work" && mkdir -p "$work/runs"
. "$src/tests/cli/check.sh"
runs=$work/runs
ref=$src/tests/ref/internvl_ref.py
$py - "$work" <<'EOF' || exit 1
import json, os, sys
from PIL import Image
work = sys.argv[1]
os.makedirs(os.path.join(work, "images"), exist_ok=True)
for name, size, colour in (("red", (32, 32), (220, 20, 20)), ("blue", (64, 32), (20, 20, 220)),
                           ("green", (32, 32), (20, 200, 20))):
    Image.new("RGB", size, colour).save(os.path.join(work, "images", name + ".png"))
rows = [{"id": 0, "image": "red.png", "conversations": [{"from": "human", "value": "<image>\nWhat colour is this?"},
                                                        {"from": "gpt", "value": "Red."}]},
        {"id": 1, "image": ["blue.png"], "conversations": [{"from": "human", "value": "<image>\nWhat colour is this?"},
                                                           {"from": "gpt", "value": "Blue."}]},
        {"id": 2, "image": ["green.png", "red.png"],
         "conversations": [{"from": "human", "value": "Image-1: <image>\nImage-2: <image>\nWhich colours?"},
                           {"from": "gpt", "value": "Green and red."}]}]
with open(os.path.join(work, "images", "train.jsonl"), "w") as f:
    for r in rows:
        f.write(json.dumps(r) + "\n")
EOF
for layout in original hf; do
  $py "$ref" make-checkpoint --layout $layout --out "$work/$layout" >/dev/null || exit 1
  $py "$ref" make-inputs --case two_images --model "$work/$layout" --out "$work/in_$layout" >/dev/null || exit 1
done
runs=$work/runs
loss_falls() { # label: the last logged loss of the last command is below the first
  local first last
  first=$(grep -m1 -o 'loss [0-9.]*' "$work/err" | cut -d' ' -f2)
  last=$(grep -o 'loss [0-9.]*' "$work/err" | tail -1 | cut -d' ' -f2)
  n=$((n + 1))
  awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a) }' ||
    { echo "FAIL $1: the loss did not fall: $first -> $last"; fail=$((fail + 1)); }
  echo "$1: loss $first -> $last"
}
compare() { # label, then st_compare.py arguments
  local label=$1
  shift
  n=$((n + 1))
  if $py "$src/tests/train/st_compare.py" "$@" >"$work/cmp"; then
    echo "ok   $label"
  else
    echo "FAIL $label"; tail -3 "$work/cmp"; fail=$((fail + 1))
  fi
}
ref_logits() { # label, model folder, layout: mitten's logits equal the PyTorch reference's on two tiled images
  local label=$1 model=$2 in=$work/in_$3
  n=$((n + 1))
  rm -rf "$work/dump"
  if $py "$ref" dump --model "$model" --inputs "$in" --out "$work/dump" --greedy 0 >/dev/null &&
    "$mitten" logits -m "$model" --ids "$in/ids.npy" --pixel-values "$in/pv0.npy" --pixel-values "$in/pv1.npy" \
      --threads 2 --out "$work/logits.npy" 2>"$work/err" &&
    $py -c 'import numpy as np, sys
a, b = np.load(sys.argv[1]), np.load(sys.argv[2])
e = float(abs(a - b).max()) if a.shape == b.shape else float("inf")
print(f"  max abs logit error {e:.3g}"); sys.exit(not e <= 1e-4)' "$work/dump/logits.npy" "$work/logits.npy"; then
    echo "ok   $label"
  else
    echo "FAIL $label"; tail -3 "$work/err"; fail=$((fail + 1))
  fi
}
same_layout() { # label, base folder, exported folder: same tensor names, dtypes, shapes; config.json unchanged
  n=$((n + 1))
  if cmp -s "$2/config.json" "$3/config.json" && $py - "$2/model.safetensors" "$3/model.safetensors" <<'EOF'
import json, struct, sys
def header(p):
    raw = open(p, "rb").read(1 << 20)
    h = json.loads(raw[8:8 + struct.unpack("<Q", raw[:8])[0]])
    return {k: (v["dtype"], tuple(v["shape"])) for k, v in h.items() if k != "__metadata__"}
a, b = header(sys.argv[1]), header(sys.argv[2])
print(f"  {len(a)} tensors in the base, {len(b)} exported; differing {sorted(set(a.items()) ^ set(b.items()))[:3]}")
sys.exit(a != b)
EOF
  then echo "ok   $1"; else echo "FAIL $1"; fail=$((fail + 1)); fi
}
peft_names() { # label, adapter folder, the LM's module prefix, the projector's module path
  n=$((n + 1))
  if $py - "$2" "$3" "$4" <<'EOF'
import json, os, struct, sys
d, lm, proj = sys.argv[1], sys.argv[2], sys.argv[3]
raw = open(os.path.join(d, "adapter_model.safetensors"), "rb").read()
names = set(json.loads(raw[8:8 + struct.unpack("<Q", raw[:8])[0]])) - {"__metadata__"}
cfg = json.load(open(os.path.join(d, "adapter_config.json")))
targets, saved = set(cfg["target_modules"]), cfg["modules_to_save"] or []
want = {f"{lm}layers.{i}.{m}" for i in range(2) for m in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
        "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj")}
missing = sorted(m for m in want if m not in targets or f"base_model.model.{m}.lora_A.weight" not in names
                 or f"base_model.model.{m}.lora_B.weight" not in names)
strays = sorted(t for t in targets if not t.startswith(lm))
# the projector trained in full, saved as PEFT saves modules_to_save: base_model.model.<module>.<tensor>
whole = sorted(n for n in names if ".lora_" not in n)
bad_whole = [n for n in whole if not n.startswith("base_model.model." + proj + ".")
             or not any(n.startswith(f"base_model.model.{m}.") for m in saved)]
print(f"  {len(names)} adapter tensors; missing {missing[:3]}; outside the LM {strays[:3]}; saved whole "
      f"{len(whole)} under {saved}; misplaced {bad_whole[:3]}")
sys.exit(bool(missing or strays or len(whole) != 6 or bad_whole))
EOF
  then echo "ok   $1"; else echo "FAIL $1"; fail=$((fail + 1)); fi
}
common=(--data "$work/images/train.jsonl" --threads 2 --log-every 1 --warmup 0 --batch 3)
declare -A vision=([original]='^vision_model\.' [hf]='^model\.vision_tower\.')
declare -A proj=([original]='^mlp1\.' [hf]='^model\.multi_modal_projector\.')
declare -A lm=([original]='language_model.model.' [hf]='model.language_model.')
declare -A proj_module=([original]='mlp1' [hf]='model.multi_modal_projector')
for layout in original hf; do
  base=$work/$layout
  check "$layout: full fine-tuning with the default parts" 0 "$mitten" train -m "$base" --out "$runs/${layout}_full" \
    "${common[@]}" --epochs 8 --lr 3e-3
  loss_falls "$layout full"
  grep -q "training the projector and the language model, the vision tower frozen" "$work/err" ||
    { echo "FAIL $layout: the run does not say which parts train by default"; fail=$((fail + 1)); }
  out=$runs/${layout}_full/model
  compare "$layout: the vision tower is the base's byte for byte" "$base/model.safetensors" "$out/model.safetensors" \
    --match "${vision[$layout]}" --bytes
  compare "$layout: the projector trained" "$base/model.safetensors" "$out/model.safetensors" \
    --match "${proj[$layout]}.*weight$" --bytes --differ
  compare "$layout: the language model trained" "$base/model.safetensors" "$out/model.safetensors" \
    --match 'layers\.[0-9]+\.(self_attn|mlp)\.[a-z_]+\.weight$' --bytes --differ
  same_layout "$layout: OUT/model keeps the base's tensor names, dtypes, shapes and config.json" "$base" "$out"
  ref_logits "$layout: OUT/model's logits in mitten are the reference's (its own layout's names)" "$out" $layout

  check "$layout: LoRA with the default parts" 0 "$mitten" train -m "$base" --out "$runs/${layout}_lora" \
    "${common[@]}" --epochs 8 --lr 1e-2 --lora 4
  loss_falls "$layout LoRA"
  grep -q "training the projector and the language model (LoRA), the vision tower frozen" "$work/err" ||
    { echo "FAIL $layout: the LoRA run does not say which parts train by default"; fail=$((fail + 1)); }
  out=$runs/${layout}_lora/model
  compare "$layout LoRA: the vision tower is the base's byte for byte" "$base/model.safetensors" \
    "$out/model.safetensors" --match "${vision[$layout]}" --bytes
  compare "$layout LoRA: the projector trained fully" "$base/model.safetensors" "$out/model.safetensors" \
    --match "${proj[$layout]}.*weight$" --bytes --differ
  compare "$layout LoRA: the merged adapters changed the LM" "$base/model.safetensors" "$out/model.safetensors" \
    --match 'layers\.0\.self_attn\.q_proj\.weight$' --bytes --differ
  same_layout "$layout LoRA: OUT/model keeps the base's layout" "$base" "$out"
  ref_logits "$layout LoRA: OUT/model's logits in mitten are the reference's" "$out" $layout
  peft_names "$layout LoRA: adapter modules as PEFT names them on the LM (${lm[$layout]}layers...)" \
    "$runs/${layout}_lora/adapter" "${lm[$layout]}" "${proj_module[$layout]}"
  check "$layout LoRA: merge the adapter" 0 "$mitten" merge -m "$base" --adapter "$runs/${layout}_lora/adapter" \
    --out "$runs/${layout}_merged"
  n=$((n + 1))
  cmp -s "$out/model.safetensors" "$runs/${layout}_merged/model.safetensors" &&
    echo "ok   $layout: merge = OUT/model" ||
    { echo "FAIL $layout: the merged weights (projector included) differ from OUT/model"; fail=$((fail + 1)); }

  check "$layout: --train llm" 0 "$mitten" train -m "$base" --out "$runs/${layout}_llm" "${common[@]}" --max-steps 2 \
    --lr 1e-3 --train llm
  compare "$layout: --train llm leaves the projector as it was" "$base/model.safetensors" \
    "$runs/${layout}_llm/model/model.safetensors" --match "${proj[$layout]}" --bytes
done
# InternVL's meta file: the set twice over (repeat_time 2) with its root, and a fractional share of it
$py - "$work" <<'EOF'
import json, os, sys
w = sys.argv[1]
json.dump({"colours": {"root": os.path.join(w, "images"), "annotation": os.path.join(w, "images", "train.jsonl"),
                       "repeat_time": 2, "length": 3},
           "some colours": {"root": os.path.join(w, "images"),
                            "annotation": os.path.join(w, "images", "train.jsonl"), "repeat_time": 0.5}},
          open(os.path.join(w, "meta.json"), "w"))
EOF
check "a meta file: mitten train --data META.json" 0 "$mitten" train -m "$work/original" --data "$work/meta.json" \
  --out "$runs/meta" --threads 2 --log-every 1 --warmup 0 --batch 7 --epochs 4 --lr 3e-3
loss_falls "meta file"
grep -q 'meta.json: 7 samples with 9 images, 0 skipped' "$work/err" ||
  { echo "FAIL the meta file's sets do not make 3 x 2 + 1 samples"; grep samples "$work/err"; fail=$((fail + 1)); }
echo "$((n - fail)) of $n checks behaved"
[ "$fail" = 0 ]
