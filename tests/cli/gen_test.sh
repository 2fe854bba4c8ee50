#!/usr/bin/env bash
# Generation settings (issue 9, items 9 and 13): generation_config.json's sampling fields are the defaults, as in
# transformers (greedy unless do_sample; the flags win); a sampled run draws its seed, prints it, and that seed
# repeats it; --ctx over the model's maximum is refused; a prompt over the context names --ctx and --max-pixels,
# and --max-pixels makes images fewer tokens. usage: gen_test.sh MITTEN WORKDIR SOURCE_DIR
set -u
mitten=$1 work=$2 src=$3
. "$src/tests/cli/check.sh"
. "$src/tests/cli/demo.sh"
variant() { # name, generation_config.json text: the demo model with another generation config
  local dir=$work/$1
  rm -rf "$dir" && mkdir -p "$dir"
  for f in "$model"/*; do ln -s "$f" "$dir/"; done
  rm "$dir/generation_config.json" && printf '%s\n' "$2" >"$dir/generation_config.json"
}
eos='"eos_token_id": [151645, 151643]'
variant sampled "{$eos, \"do_sample\": true, \"temperature\": 1.3, \"top_k\": 40, \"top_p\": 0.9, \"repetition_penalty\": 1.1}"
variant greedy "{$eos, \"do_sample\": false, \"temperature\": 5.0, \"top_p\": 0.5}"
variant defaults "{$eos, \"do_sample\": true}"
variant bad "{$eos, \"do_sample\": true, \"top_p\": 2}"
run() { "$mitten" run -p "Tell me a story." --max-tokens 12 "$@"; }
same() { # label, file a, file b
  cmp -s "$2" "$3" || { echo "FAIL $1: the answers differ"; fail=$((fail + 1)); }
}

check "demo (no sampling fields): greedy" 0 run -m "$model"
cp "$work/out" "$work/greedy.out"
expect "greedy is said" "$work/err" "; greedy]"

# generation_config.json samples: its settings show, and equal the same flags on the demo model
check "do_sample model, seed 7" 0 run -m "$work/sampled" --seed 7
cp "$work/out" "$work/sampled7"
expect "the model's sampling settings are used" "$work/err" \
  "sampled: temperature 1.3, top-k 40, top-p 0.9, repeat-penalty 1.1, seed 7]"
check "the same settings as flags" 0 run -m "$model" --temperature 1.3 --top-k 40 --top-p 0.9 --repeat-penalty 1.1 --seed 7
same "generation_config.json against the same flags" "$work/out" "$work/sampled7"
check "do_sample with transformers' defaults" 0 run -m "$work/defaults" --seed 7
expect "absent fields take transformers' defaults" "$work/err" "sampled: temperature 1, top-k 50, seed 7]"

# flags win: --temperature 0 on a sampling model is greedy (its repetition penalty stays, as in transformers)
check "flags win over generation_config.json" 0 run -m "$work/sampled" --temperature 0
expect "--temperature 0 is greedy" "$work/err" "; greedy, repeat-penalty 1.1]"
cp "$work/out" "$work/penalty.out"
check "demo with the same repetition penalty" 0 run -m "$model" --repeat-penalty 1.1
same "greedy with the model's penalty" "$work/out" "$work/penalty.out"
# do_sample false is greedy whatever temperature says
check "do_sample false, temperature 5" 0 run -m "$work/greedy"
same "do_sample false" "$work/out" "$work/greedy.out"
expect "do_sample false is greedy" "$work/err" "; greedy]"
check "a generation_config.json value out of range fails the load" 1 run -m "$work/bad"
expect "the bad field is named" "$work/err" "generation_config.json: field \"top_p\""

# a sampled run without --seed draws one and prints it; that seed repeats the run
check "sampled, no seed" 0 run -m "$model" --temperature 1.5
cp "$work/out" "$work/random1"
seed1=$(sed -n 's/.*, seed \([0-9]*\)]$/\1/p' "$work/err")
check "sampled, no seed, again" 0 run -m "$model" --temperature 1.5
seed2=$(sed -n 's/.*, seed \([0-9]*\)]$/\1/p' "$work/err")
[ -n "$seed1" ] && [ -n "$seed2" ] && [ "$seed1" != "$seed2" ] ||
  { echo "FAIL two runs without --seed used seeds '$seed1' and '$seed2'"; fail=$((fail + 1)); }
check "the printed seed repeats the run" 0 run -m "$model" --temperature 1.5 --seed "${seed1:-0}"
same "--seed with the printed seed" "$work/out" "$work/random1"

# context: the model's maximum, and what to do when a prompt does not fit
check "--ctx over the model's maximum" 2 run -m "$model" --ctx 200000
expect "the maximum is named" "$work/err" "--ctx 200000 is over this model's maximum context of 128000 tokens"
check "--ctx at the model's maximum" 0 run -m "$model" --ctx 128000 --max-tokens 2
check "an image over the context" 1 run -m "$model" --image "$image" --ctx 64
expect "the fixes are named" "$work/err" "--ctx N gives more room, up to this model's 128000; --max-pixels N shrinks the images (99 tokens now)"
check "--max-pixels makes it fit" 0 run -m "$model" --image "$image" --ctx 64 --max-pixels 20000
expect "fewer image tokens" "$work/err" "reused, 20 image)"
check "--max-pixels below the processor's min_pixels" 1 run -m "$model" --image "$image" --max-pixels 1000
expect "min_pixels is named" "$work/err" "below the processor's min_pixels 3136"
echo "$n checks, $fail failed"
[ "$fail" = 0 ]
