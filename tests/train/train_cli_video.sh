#!/usr/bin/env bash
# mitten train on videos, end to end on models/mitten-tiny with clips made here by ffmpeg: LLaVA-Video, LLaMA-Factory
# and OpenAI-part samples (a file and a folder of frames) train the vision tower, projector and LM together; the loss
# falls and the tower's weights move (its backward ran on the videos); a run stopped after a checkpoint and resumed
# ends byte for byte as the uninterrupted one (frames are sampled as a function of the file and the params); a video
# is decoded once per time its sample is trained (its grid comes from the header);
# --strict stops at a placeholder count that is not the videos' count and at a missing video, naming line and file;
# a model whose video expansion holds text (a tiny InternVL: "FrameN: " and <img> edges per frame) trains too.
# usage: train_cli_video.sh MITTEN WORKDIR SOURCE_DIR
set -u
mitten=$1 work=$2 src=$3
py=/usr/bin/python3
if ! command -v ffmpeg >/dev/null; then echo "SKIP: no ffmpeg command to make the clips"; exit 77; fi
rm -rf "$work" && mkdir -p "$work/runs" "$work/data/frames"
. "$src/tests/cli/check.sh"
model=$src/models/mitten-tiny runs=$work/runs data=$work/data
ffmpeg -loglevel error -y -f lavfi -i testsrc=size=160x120:rate=10 -t 2 -pix_fmt yuv420p "$data/clip.mp4" || exit 1
ffmpeg -loglevel error -y -f lavfi -i color=c=red:size=96x72:rate=10 -t 1 -pix_fmt yuv420p "$data/red.mp4" || exit 1
ffmpeg -loglevel error -y -i "$data/clip.mp4" -vf "select=not(mod(n\,5))" -vsync vfr "$data/frames/f%03d.png" || exit 1
cat >"$data/v.jsonl" <<'JSON'
{"video": "clip.mp4", "conversations": [{"from": "human", "value": "<video>\nWhat is shown?"}, {"from": "gpt", "value": "A test pattern."}]}
{"videos": ["red.mp4"], "messages": [{"role": "user", "content": "<video>Colour?"}, {"role": "assistant", "content": "Red."}]}
{"messages": [{"role": "user", "content": [{"type": "video", "video": "frames"}, {"type": "text", "text": "Again?"}]}, {"role": "assistant", "content": "Yes."}]}
JSON
printf '%s\n' \
  '{"video": "clip.mp4", "conversations": [{"from": "human", "value": "Q"}, {"from": "gpt", "value": "A"}]}' \
  >"$data/count.jsonl"
printf '%s\n' '{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hi"}]}' \
  '{"videos": ["gone.mp4"], "messages": [{"role": "user", "content": "<video>"}, {"role": "assistant", "content": "A"}]}' \
  >"$data/missing.jsonl"

# mitten-tiny's processor takes at most 7056 pixels: frames are kept inside its bounds (see DESIGN.md)
common=(-m "$model" --data "$data/v.jsonl" --video-max-pixels 7056 --video-fps 2 --batch 3 --epochs 6 --lr 1e-3
        --warmup 0 --train vision,projector,llm --threads 2 --save-every 3 --keep 10)
check "train on videos" 0 "$mitten" train "${common[@]}" --out "$runs/a"
grep -q "3 samples with 0 images and 3 videos" "$work/err" || { echo "FAIL the summary does not count the videos"; fail=$((fail + 1)); }
first=$(grep -m1 -o 'loss [0-9.]*' "$work/err" | cut -d' ' -f2)
last=$(grep -o 'loss [0-9.]*' "$work/err" | tail -1 | cut -d' ' -f2)
echo "loss $first -> $last"
awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < 0.8 * a) }' || { echo "FAIL loss did not fall: $first -> $last"; fail=$((fail + 1)); }
# each video is decoded once each time its sample is trained (6 epochs), not once more to learn its token count
decoded=$(grep -c "clip.mp4: .*temporal groups" "$work/err")
[ "$decoded" = 6 ] || { echo "FAIL clip.mp4 was decoded $decoded times in 6 epochs"; fail=$((fail + 1)); }
check "the vision tower trained on the videos" 0 $py "$src/tests/train/st_compare.py" "$model/model.safetensors" \
  "$runs/a/model/model.safetensors" --match '^visual\.blocks\.0\.attn\.qkv\.weight$' --differ
check "train_args.json keeps the video params" 0 grep -q '"video_max_pixels":.*7056' "$runs/a/train_args.json"

check "the same run, for resume" 0 "$mitten" train "${common[@]}" --out "$runs/b"
rm -rf "$runs/b/checkpoint-6" "$runs/b/model"
check "--resume from step 3" 0 "$mitten" train --resume "$runs/b"
grep -q "resuming from.*checkpoint-3" "$work/err" || { echo "FAIL the run did not resume from step 3"; fail=$((fail + 1)); }
cmp -s "$runs/a/model/model.safetensors" "$runs/b/model/model.safetensors" ||
  { echo "FAIL the resumed model differs from the uninterrupted one"; fail=$((fail + 1)); }

check "--strict: a video without its placeholder" 1 "$mitten" train -m "$model" --data "$data/count.jsonl" \
  --out "$runs/c" --strict
grep -q "count.jsonl:1: .*0 video placeholders but 1 videos" "$work/err" ||
  { echo "FAIL the count error does not name the line"; sed 's/^/  /' "$work/err" | tail -3; fail=$((fail + 1)); }
check "--strict: a missing video" 1 "$mitten" train -m "$model" --data "$data/missing.jsonl" --out "$runs/d" --strict
grep -q "missing.jsonl:2: .*gone.mp4: no such video file" "$work/err" ||
  { echo "FAIL the missing video is not named"; sed 's/^/  /' "$work/err" | tail -3; fail=$((fail + 1)); }

$py "$src/tests/ref/internvl_ref.py" make-checkpoint --layout hf --out "$work/internvl" >/dev/null || exit 1
head -2 "$data/v.jsonl" >"$data/v2.jsonl" # InternVL samples video files only, not folders of frames
check "a model whose video expansion holds text trains (InternVL)" 0 "$mitten" train -m "$work/internvl" \
  --data "$data/v2.jsonl" --out "$runs/e" --strict --max-steps 2 --threads 2
grep -q "2 samples with 0 images and 2 videos" "$work/err" ||
  { echo "FAIL InternVL's video samples were not all taken"; sed 's/^/  /' "$work/err" | tail -3; fail=$((fail + 1)); }

echo "$((n - fail))/$n checks passed"
[ "$fail" = 0 ]
