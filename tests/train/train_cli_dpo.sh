#!/usr/bin/env bash
# mitten train --method dpo end to end on models/mitten-tiny (Qwen2.5-VL layout, its own small tokenizer) with
# images, in both pair layouts (LLaMA-Factory's conversations + chosen/rejected, TRL's prompt/chosen/rejected):
# full and LoRA runs raise the logged preference accuracy from 0 (policy = reference at step 1) and the margin,
# ipo, hinge and --sft-weight run; the reference is computed once (OUT/ref_logps.json) and a resume reuses it;
# kill -9 in the middle of a LoRA run with dropout and --resume end bit-identical to an uninterrupted run (adapter,
# model, per-step rewards); bad pairs (same answer twice, a missing answer, placeholders without images, a prompt in
# both layouts) are skipped naming file:line, or stop the run with --strict; DPO flags without --method dpo,
# label smoothing outside sigmoid are refused; held-out pairs (--eval-data) end above 90% preference accuracy.
# usage: train_cli_dpo.sh MITTEN WORKDIR SOURCE_DIR
set -u
mitten=$1 work=$2 src=$3
model=$src/models/mitten-tiny
rm -rf "$work" && mkdir -p "$work/runs"
data=$work/data
mkdir -p "$data"
/usr/bin/python3 - "$data" <<'PY' || exit 1
import json, sys
from PIL import Image
d = sys.argv[1]
colours = {"red": (200, 30, 30), "blue": (30, 30, 200), "green": (30, 180, 30), "yellow": (220, 220, 40)}
for name, rgb in colours.items():
    Image.new("RGB", (56, 56), rgb).save(f"{d}/{name}.png")
names = list(colours)
lf, trl = [], []
for i, c in enumerate(names):
    wrong = names[(i + 1) % len(names)]
    lf.append({"conversations": [{"from": "human", "value": "<image>What colour is this?"}],
               "chosen": {"from": "gpt", "value": c.capitalize() + "."},
               "rejected": {"from": "gpt", "value": wrong.capitalize() + "."}, "images": [f"{c}.png"]})
    trl.append({"prompt": [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Colour?"}]}],
                "chosen": [{"role": "assistant", "content": f"It is {c}."}], "rejected": f"It is {wrong}.",
                "images": [f"{c}.png"]})
json.dump(lf, open(f"{d}/lf.json", "w"), indent=1)
with open(f"{d}/pairs.jsonl", "w") as f:
    for p in lf + trl:
        f.write(json.dumps(p) + "\n")
good = trl[0]
with open(f"{d}/bad.jsonl", "w") as f:
    f.write(json.dumps(good) + "\n")
    f.write(json.dumps(dict(good, rejected="It is red.")) + "\n")                         # 2: same answer twice
    f.write(json.dumps({k: v for k, v in good.items() if k != "rejected"}) + "\n")         # 3: no rejected
    f.write(json.dumps(dict(good, images=[])) + "\n")                                      # 4: placeholder, no image
    f.write(json.dumps(dict(good, conversations=lf[0]["conversations"])) + "\n")           # 5: both layouts
    f.write(json.dumps(trl[1]) + "\n")
PY
. "$src/tests/cli/check.sh"
expect_err() { # label, text that must appear in the last command's stderr
  grep -q -- "$2" "$work/err" || { echo "FAIL $1: stderr lacks \"$2\""; tail -3 "$work/err"; fail=$((fail + 1)); }
}
not_err() { # label, text that must not appear in the last command's stderr
  ! grep -q -- "$2" "$work/err" || { echo "FAIL $1: stderr has \"$2\""; fail=$((fail + 1)); }
}
# learned RUN: step 1's accuracy is 0 and its rewards 0 (policy = reference); the last epoch's mean accuracy is at
# least 0.75 and its mean margin above 0.1
learned() {
  /usr/bin/python3 - "$1" "$2" <<'PY' || { echo "FAIL $1 did not learn the preferences"; fail=$((fail + 1)); }
import glob, json, sys
run, per_epoch = sys.argv[1], int(sys.argv[2])
last = max(glob.glob(f"{run}/checkpoint-*"), key=lambda p: int(p.rsplit("-", 1)[1]))
h = json.load(open(f"{last}/trainer_state.json"))["dpo_history"]
first, tail = h[0], h[-per_epoch:]
acc = sum(e["rewards/accuracies"] for e in tail) / len(tail)
margin = sum(e["rewards/margins"] for e in tail) / len(tail)
print(f"{run}: step 1 accuracy {first['rewards/accuracies']} margin {first['rewards/margins']}; "
      f"last epoch accuracy {acc:.3f} margin {margin:.3f}")
sys.exit(not (first["rewards/accuracies"] == 0 and first["rewards/margins"] == 0 and acc >= 0.75 and margin > 0.1))
PY
}
runs=$work/runs
common=(-m "$model" --method dpo --threads 2 --log-every 1 --warmup 0)

check "train --help names dpo" 0 "$mitten" train --help
grep -q -- "--method M" "$work/out" || { echo "FAIL --help lacks --method"; fail=$((fail + 1)); }
check "full DPO, LLaMA-Factory + TRL pairs with images" 0 "$mitten" train "${common[@]}" --data "$data/pairs.jsonl" \
  --out "$runs/full" --batch 4 --epochs 12 --lr 1e-3
expect_err "pairs counted" "8 preference pairs"
expect_err "reference pass" "reference log-probabilities of 8 pairs"
expect_err "logged rewards" "rewards chosen"
learned "$runs/full" 2
[ -s "$runs/full/ref_logps.json" ] && [ -s "$runs/full/model/model.safetensors" ] ||
  { echo "FAIL full: no ref_logps.json or model/"; fail=$((fail + 1)); }
check "the DPO model runs" 0 "$mitten" run -m "$runs/full/model" --image "$data/red.png" -p "Colour?" --max-tokens 4

check "LoRA DPO on the LLaMA-Factory .json" 0 "$mitten" train "${common[@]}" --data "$data/lf.json" \
  --out "$runs/lora" --batch 2 --epochs 15 --lr 5e-3 --lora 8
learned "$runs/lora" 2
[ -s "$runs/lora/adapter/adapter_model.safetensors" ] || { echo "FAIL LoRA: no adapter/"; fail=$((fail + 1)); }
for loss in ipo hinge; do
  check "--loss $loss" 0 "$mitten" train "${common[@]}" --data "$data/pairs.jsonl" --out "$runs/$loss" --batch 4 \
    --epochs 3 --lr 1e-3 --loss $loss
done
check "--sft-weight" 0 "$mitten" train "${common[@]}" --data "$data/pairs.jsonl" --out "$runs/rpo" --batch 4 \
  --epochs 3 --lr 1e-3 --sft-weight 1 --label-smoothing 0.1

# held-out pairs (dpo_synth.py: other pictures of the same colours): the chosen answer scores higher on at least
# 90% of them after training, and the reward accuracy reaches 90%
/usr/bin/python3 "$src/tests/train/dpo_synth.py" "$data/synth" || exit 1
check "DPO with held-out pairs" 0 "$mitten" train "${common[@]}" --data "$data/synth/train.jsonl" \
  --eval-data "$data/synth/eval.jsonl" --eval-every 16 --out "$runs/heldout" --batch 8 --epochs 8 --lr 2e-3
expect_err "before training" "before training: the chosen answer scores higher on"
tail_eval=$(grep "eval loss" "$work/err" | tail -1)
echo "$tail_eval" | awk '{ for (i = 1; i <= NF; i++) { if ($i == "accuracy") a = $(i + 1); if ($i == "on") h = $(i + 1);
  if ($i == "of") n = $(i + 1) } } END { exit !(a >= 0.9 && h >= 0.9 * n) }' ||
  { echo "FAIL held-out preference accuracy under 90%: $tail_eval"; fail=$((fail + 1)); }

# kill -9 and resume: LoRA with dropout, a checkpoint every step
lora=(--data "$data/pairs.jsonl" --batch 1 --epochs 10 --lr 1e-3 --lora 4 --lora-dropout 0.1 --save-every 1 --keep 0)
check "LoRA DPO, uninterrupted" 0 "$mitten" train "${common[@]}" --out "$runs/a" "${lora[@]}"
"$mitten" train "${common[@]}" --out "$runs/b" "${lora[@]}" >/dev/null 2>&1 &
pid=$!
for _ in $(seq 1 600); do [ -d "$runs/b/checkpoint-3" ] && break; sleep 0.02; done
kill -9 $pid 2>/dev/null
wait $pid 2>/dev/null
if [ -d "$runs/b/adapter" ]; then
  echo "FAIL the run ended before it could be killed"; fail=$((fail + 1))
fi
check "--resume after kill -9" 0 "$mitten" train --resume "$runs/b"
expect_err "--resume" "resuming from"
not_err "the reference is not computed again" "reference log-probabilities of"
for f in adapter/adapter_model.safetensors model/model.safetensors; do
  cmp -s "$runs/a/$f" "$runs/b/$f" ||
    { echo "FAIL the resumed $f differs from the uninterrupted one"; fail=$((fail + 1)); }
done
/usr/bin/python3 - "$runs/a" "$runs/b" <<'PY' || { echo "FAIL the resumed rewards differ"; fail=$((fail + 1)); }
import glob, json, sys
def state(run):
    last = max(glob.glob(f"{run}/checkpoint-*"), key=lambda p: int(p.rsplit("-", 1)[1]))
    s = json.load(open(f"{last}/trainer_state.json"))
    return s["loss_history"], s["dpo_history"]
a, b = state(sys.argv[1]), state(sys.argv[2])
sys.exit(a != b or not a[1])
PY
/usr/bin/python3 - "$runs/a/ref_logps.json" "$runs/b/ref_logps.json" <<'PY' ||
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:])
sys.exit(a["chosen"] != b["chosen"] or a["rejected"] != b["rejected"])
PY
  { echo "FAIL the reference log-probabilities differ between two runs"; fail=$((fail + 1)); }

# mpirun -np 2: the reference pass and the pairs of each step split over the ranks give one process's result
# setup.sh installs OpenMPI, so a missing mpirun or a build without MPI is a failure, not a skip
if ! command -v mpirun >/dev/null || ! ldd "$mitten" | grep -q libmpi; then
  echo "FAIL no mpirun, or mitten built without MPI (scripts/setup.sh installs OpenMPI)"; fail=$((fail + 1))
else
  mpi=(--data "$data/pairs.jsonl" --batch 4 --epochs 2 --threads 1 --lr 1e-3 --lora 4)
  check "DPO, one process" 0 "$mitten" train "${common[@]}" "${mpi[@]}" --out "$runs/single"
  check "DPO, mpirun -np 2" 0 mpirun2 "$mitten" train "${common[@]}" "${mpi[@]}" --out "$runs/mpi"
  # the all-reduce adds the ranks' gradient sums in another order; AdamW turns the sign of the near-zero gradients
  # of entries where chosen and rejected cancel into whole steps, so the adapter's small B entries differ most
  # (measured 1.8e-2 of a tensor's max after 4 steps) while the merged weights stay within 1.3e-5 of their max
  /usr/bin/python3 "$src/tests/train/st_compare.py" "$runs/single/model/model.safetensors" \
    "$runs/mpi/model/model.safetensors" --rtol 5e-5 >"$work/cmp" ||
    { echo "FAIL mpirun -np 2 differs from one process"; tail -3 "$work/cmp"; fail=$((fail + 1)); }
  /usr/bin/python3 - "$runs/single/ref_logps.json" "$runs/mpi/ref_logps.json" <<'PY' ||
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:])
sys.exit(a["chosen"] != b["chosen"] or a["rejected"] != b["rejected"])
PY
    { echo "FAIL mpirun -np 2 computed another reference"; fail=$((fail + 1)); }
  grep -q "accuracy" "$work/err" || { echo "FAIL mpirun: no DPO log line"; fail=$((fail + 1)); }
fi

# bad pairs
check "bad pairs are skipped" 0 "$mitten" train "${common[@]}" --data "$data/bad.jsonl" --out "$runs/bad" --max-steps 1
expect_err "same answer twice" "bad.jsonl:2: chosen and rejected are the same answer"
expect_err "missing answer" "bad.jsonl:3: bad fields: no \"rejected\" answer"
expect_err "placeholder count" "bad.jsonl:4: placeholder count"
expect_err "both layouts" "bad.jsonl:5: bad fields: both \"prompt\""
expect_err "kept pairs" "2 preference pairs (1 with the same answer twice skipped)"
check "--strict stops at the first bad pair" 1 "$mitten" train "${common[@]}" --data "$data/bad.jsonl" \
  --out "$runs/strict" --strict
expect_err "--strict" "bad.jsonl:3"
head -2 "$data/bad.jsonl" >"$data/same.jsonl"
check "--strict refuses a pair with the same answer twice" 1 "$mitten" train "${common[@]}" --data "$data/same.jsonl" \
  --out "$runs/same" --strict
expect_err "--strict same" "same.jsonl:2: chosen and rejected are the same answer"
check "--beta without --method dpo" 2 "$mitten" train -m "$model" --data "$data/pairs.jsonl" --out "$runs/x" --beta 0.2
check "--label-smoothing with ipo" 2 "$mitten" train "${common[@]}" --data "$data/pairs.jsonl" --out "$runs/x" \
  --loss ipo --label-smoothing 0.1
expect_err "label smoothing" "sigmoid only"
check "an unknown --loss" 2 "$mitten" train "${common[@]}" --data "$data/pairs.jsonl" --out "$runs/x" --loss kto
check "SFT data is not a preference pair" 1 "$mitten" train "${common[@]}" --strict --out "$runs/x" \
  --data "$src/tests/train/data/messages.jsonl"
expect_err "SFT data" "no \"chosen\" answer"
echo "$((n - fail)) of $n commands behaved"
[ "$fail" = 0 ]
