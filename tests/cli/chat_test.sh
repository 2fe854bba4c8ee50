#!/usr/bin/env bash
# mitten chat as a user types it (issue 9, item 12): exit codes, commands handled rather than sent to the model,
# /image checked when given, paths pasted with quotes or escapes, whole lines however long, and a conversation
# longer than the context (its oldest turns dropped). usage: chat_test.sh MITTEN WORKDIR SOURCE_DIR
set -u
mitten=$1 work=$2 src=$3
. "$src/tests/cli/check.sh"
. "$src/tests/cli/demo.sh"
chat() { # stdin file, options...: runs chat on the demo model
  local in=$1; shift
  "$mitten" chat -m "$model" "$@" <"$in"
}
turns() { grep -c 'prompt tokens' "$work/err"; }
want_turns() { # label, count
  local got; got=$(turns)
  [ "$got" = "$2" ] || { echo "FAIL $1: $got answers, expected $2"; fail=$((fail + 1)); }
}

echo "Hi" >"$work/hi"
check "chat with a model that does not load exits 1" 1 "$mitten" chat -m "$work/nope" <"$work/hi"

# /help and a bare /image are commands, never turns; a missing image is said at once and eats no message
printf '/help\n/image\n/image %s/nope.png\nFirst\nSecond\n/quit\nnot read\n' "$work" >"$work/in1"
check "chat: a missing image, /help, a bare /image (exit 1: something failed)" 1 chat "$work/in1" --max-tokens 3
want_turns "two messages after a missing image" 2
expect "/help lists the commands" "$work/err" "/reset          forget the conversation"
expect "a bare /image says what it needs" "$work/err" "/image needs a file"
expect "a missing image is named" "$work/err" "nope.png: cannot open"
grep -q "^> mitten: /image (nothing attached)" "$work/err" || { echo "FAIL the missing image was not said at once"; fail=$((fail + 1)); }

# paths as terminals paste them: quoted, double-quoted, backslash-escaped, and as typed with a space
mkdir -p "$work/my pics"
cp "$image" "$work/my pics/it's a shape.png"
p="$work/my pics/it's a shape.png"
esc=$(printf '%s' "$p" | sed "s/[ ']/\\\\&/g")
sq=$(printf '%s' "$p" | sed "s/'/'\\\\''/g")
{
  printf "/image '%s'\nOne.\n" "$sq"
  printf '/image "%s" \nTwo.\n' "$p"
  printf '/image %s\nThree.\n' "$esc"
  printf '/image %s\nFour.\n' "$p"
  printf '/bogus\n//a message that starts with a slash\n'
} >"$work/in2"
check "chat: quoted and escaped image paths" 1 chat "$work/in2" --max-tokens 2
[ "$(grep -c "^> attached .*it's a shape.png" "$work/err")" = 4 ] ||
  { echo "FAIL not every pasted path was attached"; grep -i "image\|attached" "$work/err" | head; fail=$((fail + 1)); }
want_turns "four turns with images and one starting with /" 5
imgs=$(sed -n 's/.* reused, \([0-9]*\) image).*/\1/p' "$work/err" | tr '\n' ' ')
one=${imgs%% *}
[ "$imgs" = "$one $((2 * one)) $((3 * one)) $((4 * one)) $((4 * one)) " ] ||
  { echo "FAIL image tokens per turn: $imgs"; fail=$((fail + 1)); }
expect "an unknown command is refused" "$work/err" "unknown command /bogus"

# a line over 64 KiB is one turn (it does not fit the default context, and says how to make room)
head -c 70000 /dev/zero | tr '\0' 'x' | sed 's/x\{10\}/word word /g' >"$work/in3"
echo >>"$work/in3"
check "chat: a 70 KB line" 1 chat "$work/in3" --max-tokens 2
[ "$(grep -c 'does not fit' "$work/err")" = 1 ] && [ "$(turns)" = 0 ] ||
  { echo "FAIL the long line was not one turn"; tail -5 "$work/err"; fail=$((fail + 1)); }
expect "the long line's error says how to make room" "$work/err" "--ctx N gives more room, up to this model's 128000"

# a conversation longer than the context goes on, dropping its oldest turns
printf 'Hello there\nA second message\nA third one\nAnd a fourth\nA fifth\n/reset\nAfter the reset\n' >"$work/in4"
check "chat: more turns than the context holds" 0 chat "$work/in4" --max-tokens 8 --ctx 64
want_turns "every turn answered" 6
expect "dropping turns is said" "$work/err" "so its oldest turn is dropped; --ctx N gives more room"
expect "/reset is said" "$work/err" "the conversation is forgotten"
echo "$n checks, $fail failed"
[ "$fail" = 0 ]
