#!/usr/bin/env bash
# mitten chat as a user types it (issue 9, item 12): exit codes, commands handled rather than sent to the model,
# /image and /video checked when given, paths pasted with quotes or escapes, whole lines however long, a conversation
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
# /video: checked when given (missing, bare), then decoded with its turn; an image and a video in one turn, in order
if command -v ffmpeg >/dev/null; then
  ffmpeg -loglevel error -y -f lavfi -i testsrc=size=160x120:rate=10 -t 2 -pix_fmt yuv420p "$work/my pics/a clip.mp4"
  printf '/video\n/video %s/nope.mp4\n/video "%s"\nWhat happens?\n/image %s\n/video %s\nAnd now?\n' "$work" \
    "$work/my pics/a clip.mp4" "$image" "$(printf '%s' "$work/my pics/a clip.mp4" | sed 's/ /\\ /g')" >"$work/in5"
  check "chat: /video (exit 1: a missing one)" 1 chat "$work/in5" --max-tokens 3
  want_turns "two turns with videos" 2
  expect "a bare /video says what it needs" "$work/err" "/video needs a file"
  grep -q "^> mitten: /video (nothing attached): .*nope.mp4: no such file or folder" "$work/err" ||
    { echo "FAIL the missing video was not said at once"; fail=$((fail + 1)); }
  [ "$(grep -c "^> attached video .*a clip.mp4" "$work/err")" = 2 ] ||
    { echo "FAIL the videos were not attached"; grep -i "video" "$work/err" | head; fail=$((fail + 1)); }
  expect "the decoding is said" "$work/err" "decoding $work/my pics/a clip.mp4 (20 frames, 2.0 s, 160x120)"
  # the second turn sends the first turn's video again and attaches it once more: the session's copy serves both
  [ "$(grep -c "decoding $work/my pics/a clip.mp4" "$work/err")" = 1 ] ||
    { echo "FAIL the video was decoded again in the second turn"; grep "decoding" "$work/err"; fail=$((fail + 1)); }
  vids=$(sed -n 's/.* reused, \([0-9]*\) image).*/\1/p' "$work/err" | tr '\n' ' ')
  one=${vids%% *}
  [ "$one" -gt 0 ] && [ "${vids#* }" != "$((2 * one)) " ] && [ "${vids#* }" -gt "$((2 * one))" ] ||
    { echo "FAIL video and image tokens per turn: $vids"; fail=$((fail + 1)); }
  grep -q "/video PATH" <(printf '/help\n' | "$mitten" chat -m "$model" 2>&1) ||
    { echo "FAIL /help does not list /video"; fail=$((fail + 1)); }
else
  echo "(no ffmpeg command: /video is not checked)"
fi
echo "$n checks, $fail failed"
[ "$fail" = 0 ]
