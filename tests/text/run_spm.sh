#!/bin/sh
# Trains the SentencePiece models of spm_ref.py and checks mitten against each.
# usage: run_spm.sh SPM_CHECK TESTS_DIR WORK_DIR      (exit 77 when python3-sentencepiece is missing)
set -eu
check=$1 tests=$2 work=$3
py=/usr/bin/python3
[ -x "$py" ] || py=python3
names=$("$py" "$tests/text/spm_ref.py" "$tests/data" "$tests/text/corpus.jsonl" "$work") || exit $?
rc=0
for n in $names; do "$check" "$work/$n.model" "$work/$n.jsonl" || rc=1; done
exit $rc
