#!/bin/sh
# The shipped model as the README's first command uses it: `mitten info` reads the folder (architecture, vocabulary,
# dtype), and `mitten run` without -m finds models/mitten-tiny by itself and answers about docs/tiny_example.png
# (one blue square: a colour-shape pair no training image holds) and a text-only question.
# usage: default_model.sh MITTEN SOURCE_DIR
set -u
mitten=$1 src=$2
fail=0
expect() { # label, want, got
    if [ "$2" = "$3" ]; then echo "ok   $1"; else echo "FAIL $1: want '$2', got '$3'"; fail=1; fi
}
info=$("$mitten" info -m "$src/models/mitten-tiny") || fail=1
echo "$info"
expect "info architecture" "architecture  qwen2.5-vl" "$(echo "$info" | grep '^architecture')"
expect "info vocab" "1" "$(echo "$info" | grep -c 'vocab 512')"
expect "info dtype" "F32" "$(echo "$info" | grep '^  decoder' | awk '{print $NF}')"
ask() { MITTEN_MODEL= "$mitten" run "$@" 2>/dev/null; }
expect "default colour" "blue" "$(ask --image "$src/docs/tiny_example.png" -p "What colour is the shape?")"
expect "default shape" "square" "$(ask --image "$src/docs/tiny_example.png" -p "What shape is it?")"
expect "default identity" "I am mitten-tiny, a small model trained by mitten." "$(ask -p "Who are you?")"
exit $fail
