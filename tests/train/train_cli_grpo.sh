#!/usr/bin/env bash
# mitten train --method grpo end to end on models/mitten-tiny with images, prompts in both layouts (ShareGPT
# conversations, TRL's prompt) and an "answer" field: two runs with one seed give the same rewards, metrics and
# weights (full, beta > 0); LoRA with --inner-steps 2 and dr_grpo, bnpo with --scale-rewards none run with finite
# metrics; kill -9 + --resume ends bit-identical to an uninterrupted run; a prompt without the "answer" the answer
# reward needs, or ending with the assistant's turn, is skipped naming file:line; a reward command that hangs, crashes
# or prints garbage scores 0 with a warning and the run goes on; groups whose rewards are all equal give zero
# advantages and no NaN; GRPO flags without --method grpo are refused; mpirun -np 2 gives one process's rewards and
# weights; held-out prompts (--eval-data) are answered greedily, their mean reward logged and kept in trainer_state
# (the same after a resume and under mpirun), and evaluating changes nothing of the training.
# usage: train_cli_grpo.sh MITTEN WORKDIR SOURCE_DIR
set -u
mitten=$1 work=$2 src=$3
model=$src/models/mitten-tiny
rm -rf "$work" && mkdir -p "$work/runs"
data=$work/data runs=$work/runs
mkdir -p "$data"
/usr/bin/python3 - "$data" <<'PY' || exit 1
import json, sys
from PIL import Image
d = sys.argv[1]
colours = {"red": (200, 30, 30), "blue": (30, 30, 200), "green": (30, 180, 30), "yellow": (220, 220, 40)}
for name, rgb in colours.items():
    Image.new("RGB", (56, 56), rgb).save(f"{d}/{name}.png")
rows = []
for c in colours:
    rows.append({"conversations": [{"from": "human", "value": "<image>What colour is this?"}],
                 "images": [f"{c}.png"], "answer": c})
    rows.append({"prompt": [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Colour?"}]}],
                 "images": [f"{c}.png"], "answer": c})
with open(f"{d}/prompts.jsonl", "w") as f:
    for r in rows:
        f.write(json.dumps(r) + "\n")
with open(f"{d}/eval.jsonl", "w") as f:
    for r in rows[1:4]:
        f.write(json.dumps(r) + "\n")
with open(f"{d}/bad.jsonl", "w") as f:
    f.write(json.dumps(rows[0]) + "\n")
    f.write(json.dumps({k: v for k, v in rows[1].items() if k != "answer"}) + "\n")            # 2: no answer
    f.write(json.dumps(dict(rows[0], conversations=rows[0]["conversations"] +
                            [{"from": "gpt", "value": "Red."}])) + "\n")                       # 3: ends answered
    f.write(json.dumps(rows[2]) + "\n")
PY
printf '#!/bin/sh\nexec sleep 30\n' >"$data/hang.sh"
printf '#!/bin/sh\nkill -SEGV $$\n' >"$data/crash.sh"
printf '#!/bin/sh\ncat >/dev/null\necho "not a number"\n' >"$data/garbage.sh"
chmod +x "$data"/*.sh
. "$src/tests/cli/check.sh"
expect_err() { # label, text that must appear in the last command's stderr
  grep -q -- "$2" "$work/err" || { echo "FAIL $1: stderr lacks \"$2\""; tail -3 "$work/err"; fail=$((fail + 1)); }
}
# history RUN: trainer_state.json's losses and GRPO metrics of the last checkpoint, the rollout speed left out
history() {
  /usr/bin/python3 - "$1" <<'PY'
import glob, json, math, sys
last = max(glob.glob(f"{sys.argv[1]}/checkpoint-*"), key=lambda p: int(p.rsplit("-", 1)[1]))
s = json.load(open(f"{last}/trainer_state.json"))
h = [{k: v for k, v in e.items() if k != "rollout_tokens_per_s"} for e in s["grpo_history"]]
assert all(v is not None and math.isfinite(v) for e in h for v in e.values()), "a metric is not finite"
print(json.dumps([s["loss_history"], h]))
PY
}
# evals RUN: trainer_state.json's held-out evaluations of the last checkpoint ([] when none ran)
evals() {
  /usr/bin/python3 - "$1" <<'PY'
import glob, json, sys
last = max(glob.glob(f"{sys.argv[1]}/checkpoint-*"), key=lambda p: int(p.rsplit("-", 1)[1]))
print(json.dumps(json.load(open(f"{last}/trainer_state.json")).get("grpo_eval", [])))
PY
}
same_runs() { # label, run a, run b, files
  local label=$1 a=$2 b=$3; shift 3
  for f in "$@"; do
    cmp -s "$a/$f" "$b/$f" || { echo "FAIL $label: $f differs"; fail=$((fail + 1)); }
  done
  [ "$(history "$a")" = "$(history "$b")" ] && [ -n "$(history "$a")" ] ||
    { echo "FAIL $label: the rewards and metrics differ (or are not finite)"; fail=$((fail + 1)); }
  [ "$(evals "$a")" = "$(evals "$b")" ] || { echo "FAIL $label: the evaluations differ"; fail=$((fail + 1)); }
}
common=(-m "$model" --method grpo --data "$data/prompts.jsonl" --threads 2 --reward answer --reward 'regex@0.5=^[A-Za-z]'
        --group 4 --max-new 12 --batch 2 --lr 1e-3 --seed 7)

check "GRPO full, run 1" 0 "$mitten" train "${common[@]}" --max-steps 3 --out "$runs/full1" --log-completions 3
expect_err "log line" "reward .* std .*(answer .*, regex .*)  kl .*  clip .*  len .*rollout .* tok/s"
check "GRPO full, run 2" 0 "$mitten" train "${common[@]}" --max-steps 3 --out "$runs/full2" --log-completions 3
same_runs "two runs with one seed" "$runs/full1" "$runs/full2" model/model.safetensors completions.jsonl
[ "$(wc -l <"$runs/full1/completions.jsonl")" = 9 ] ||
  { echo "FAIL --log-completions 3 over 3 steps: $(wc -l <"$runs/full1/completions.jsonl") lines"; fail=$((fail + 1)); }

# held-out prompts: each evaluation answers them greedily and logs the mean reward (per term), kept in trainer_state;
# evaluating changes nothing of the training: the weights, rewards and completions of run 1
check "GRPO with held-out prompts" 0 "$mitten" train "${common[@]}" --max-steps 3 --out "$runs/eval" \
  --log-completions 3 --eval-data "$data/eval.jsonl" --eval-every 2
expect_err "eval at step 2" "step 2  eval reward [0-9.]* (answer [0-9.]*, regex [0-9.]*)  greedy answers to 3 prompts"
expect_err "eval at the end" "step 3  eval reward [0-9.]* (answer"
for f in model/model.safetensors completions.jsonl; do
  cmp -s "$runs/full1/$f" "$runs/eval/$f" || { echo "FAIL evaluating changed the run's $f"; fail=$((fail + 1)); }
done
[ "$(history "$runs/full1")" = "$(history "$runs/eval")" ] ||
  { echo "FAIL evaluating changed the run's rewards or metrics"; fail=$((fail + 1)); }
/usr/bin/python3 - "$(evals "$runs/eval")" <<'PY' || { echo "FAIL eval records: $(evals "$runs/eval")"; fail=$((fail + 1)); }
import json, math, sys
e = json.loads(sys.argv[1])
ok = [x["step"] for x in e] == [2, 3] and all(
    math.isfinite(x[k]) and 0 <= x[k] <= 1 for x in e for k in ("rewards/answer/mean", "rewards/regex/mean")) and all(
    abs(x["reward"] - x["rewards/answer/mean"] - 0.5 * x["rewards/regex/mean"]) < 1e-12 for x in e)
sys.exit(not ok)
PY

check "GRPO LoRA, dr_grpo, 2 inner steps" 0 "$mitten" train "${common[@]}" --max-steps 2 --out "$runs/lora" \
  --lora 4 --inner-steps 2 --loss-type dr_grpo --epsilon-high 0.28
[ -f "$runs/lora/adapter/adapter_model.safetensors" ] || { echo "FAIL LoRA GRPO saved no adapter"; fail=$((fail + 1)); }
history "$runs/lora" >/dev/null || { echo "FAIL LoRA GRPO metrics"; fail=$((fail + 1)); }
check "GRPO bnpo, unscaled, beta 0" 0 "$mitten" train "${common[@]}" --max-steps 2 --out "$runs/bnpo" \
  --loss-type bnpo --scale-rewards none --beta 0
history "$runs/bnpo" >/dev/null || { echo "FAIL bnpo GRPO metrics"; fail=$((fail + 1)); }

# kill -9 and resume: LoRA with dropout, a checkpoint every step, held-out evaluations (those before the checkpoint
# kept in trainer_state); completions.jsonl keeps the lines of the steps before the checkpoint and drops those the
# killed run wrote past it, so the replayed steps are not there twice
lora=(--max-steps 6 --lora 4 --lora-dropout 0.1 --save-every 1 --keep 0 --beta 0.1 --eval-data "$data/eval.jsonl"
      --eval-every 2 --log-completions 2)
check "GRPO LoRA, uninterrupted" 0 "$mitten" train "${common[@]}" --out "$runs/a" "${lora[@]}"
"$mitten" train "${common[@]}" --out "$runs/b" "${lora[@]}" >/dev/null 2>&1 &
pid=$!
for _ in $(seq 1 1500); do [ -d "$runs/b/checkpoint-3" ] && break; sleep 0.01; done
kill -9 $pid 2>/dev/null
wait $pid 2>/dev/null
[ -d "$runs/b/adapter" ] && { echo "FAIL the run ended before it could be killed"; fail=$((fail + 1)); }
# the killed run's checkpoints from step 3 on go too: as if it died after step 3's rollouts but before saving, so
# completions.jsonl holds lines past the checkpoint the run resumes from
rm -rf "$runs/b"/checkpoint-[3-9]
grep -q '"step":3,' "$runs/b/completions.jsonl" ||
  { echo "FAIL the killed run wrote no completions past checkpoint 2"; fail=$((fail + 1)); }
check "--resume after kill -9" 0 "$mitten" train --resume "$runs/b"
expect_err "--resume" "resuming from"
same_runs "resumed after kill -9" "$runs/a" "$runs/b" adapter/adapter_model.safetensors model/model.safetensors \
  completions.jsonl

# mpirun -np 2: each rank generates for its own prompts (seeded by their place in the step), gradients summed: the
# rewards of one process, the weights within the all-reduce's rounding
# setup.sh installs OpenMPI, so a missing mpirun or a build without MPI is a failure, not a skip
if ! command -v mpirun >/dev/null || ! ldd "$mitten" | grep -q libmpi; then
  echo "FAIL no mpirun, or mitten built without MPI (scripts/setup.sh installs OpenMPI)"; fail=$((fail + 1))
else
  mpi=(--threads 1 --batch 4 --max-steps 2 --lora 4 --eval-data "$data/eval.jsonl")
  check "GRPO, one process" 0 "$mitten" train "${common[@]}" "${mpi[@]}" --out "$runs/single"
  check "GRPO, mpirun -np 2" 0 mpirun2 "$mitten" train "${common[@]}" "${mpi[@]}" --out "$runs/mpi"
  /usr/bin/python3 "$src/tests/train/st_compare.py" "$runs/single/model/model.safetensors" \
    "$runs/mpi/model/model.safetensors" --rtol 5e-5 >"$work/cmp" ||
    { echo "FAIL mpirun -np 2 differs from one process"; tail -3 "$work/cmp"; fail=$((fail + 1)); }
  /usr/bin/python3 - "$runs/single" "$runs/mpi" <<'PY' || { echo "FAIL mpirun -np 2: other rewards"; fail=$((fail + 1)); }
import json, sys
r = [[e["reward"] for e in json.load(open(f"{d}/checkpoint-2/trainer_state.json"))["grpo_history"]] for d in sys.argv[1:]]
sys.exit(r[0] != r[1])
PY
  [ "$(evals "$runs/single")" = "$(evals "$runs/mpi")" ] && [ "$(evals "$runs/mpi")" != "[]" ] ||
    { echo "FAIL mpirun -np 2: other held-out rewards"; fail=$((fail + 1)); }
fi

# bad prompts
check "bad prompts are skipped" 0 "$mitten" train "${common[@]}" --data "$data/bad.jsonl" --out "$runs/bad" --max-steps 1
expect_err "missing answer" "bad.jsonl:2: bad fields: a reward's field: the answer reward needs an \"answer\""
expect_err "prompt already answered" "bad.jsonl:3: "
check "--strict stops at a missing answer" 1 "$mitten" train "${common[@]}" --data "$data/bad.jsonl" \
  --out "$runs/strict" --max-steps 1 --strict
expect_err "--strict" "bad.jsonl:2"

# reward commands that fail: each completion scores 0, a warning is logged, the run goes on
for kind_why in "hang:it ran past the 0.5 s timeout" "crash:" "garbage:"; do
  kind=${kind_why%%:*} why=${kind_why#*:}
  check "reward command: $kind" 0 "$mitten" train -m "$model" --method grpo --data "$data/prompts.jsonl" \
    --threads 2 --group 2 --max-new 4 --batch 1 --max-steps 1 --reward-cmd "$data/$kind.sh" --reward-timeout 0.5 \
    --out "$runs/cmd-$kind"
  expect_err "reward command: $kind, warned" "warning: reward command \"$data/$kind.sh\" counted as 0: $why"
  history "$runs/cmd-$kind" | grep -q '"reward": 0,' || { echo "FAIL $kind: the reward is not 0"; fail=$((fail + 1)); }
done

# every reward equal (a regex every answer matches): zero advantages, the KL term only, nothing NaN
check "groups with equal rewards" 0 "$mitten" train -m "$model" --method grpo --data "$data/prompts.jsonl" \
  --threads 2 --group 4 --max-new 6 --batch 2 --max-steps 2 --reward "regex=^" --out "$runs/equal" --log-completions 8 \
  --eval-data "$data/eval.jsonl"
expect_err "every held-out answer earns the reward" "step 2  eval reward 1.0000  greedy answers to 3 prompts"
history "$runs/equal" >/dev/null || { echo "FAIL equal rewards: a metric is not finite"; fail=$((fail + 1)); }
/usr/bin/python3 - "$runs/equal/completions.jsonl" <<'PY' || { echo "FAIL equal rewards: advantage not 0"; fail=$((fail + 1)); }
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
sys.exit(not rows or any(r["advantage"] != 0 or r["reward"] != 1 for r in rows))
PY

# a high temperature draws ids of the LM head's padding (vocab_size 512, 457 tokens: no text) and image or video
# placeholders (the completion ends before them): the run goes on
check "ids without a token, placeholders sampled" 0 "$mitten" train "${common[@]}" --max-steps 2 --temperature 50 \
  --group 8 --max-new 32 --out "$runs/hot"

# flags
check "GRPO flags need --method grpo" 2 "$mitten" train -m "$model" --data "$data/prompts.jsonl" --out "$runs/x" \
  --reward answer
check "GRPO needs a reward" 2 "$mitten" train -m "$model" --method grpo --data "$data/prompts.jsonl" --out "$runs/x"
check "an unknown reward is named" 2 "$mitten" train "${common[@]}" --reward nope --out "$runs/x"
expect_err "unknown reward" "nope"
check "--group 1 is refused" 2 "$mitten" train "${common[@]}" --group 1 --out "$runs/x"

echo "$((n - fail))/$n passed"
[ "$fail" = 0 ]
