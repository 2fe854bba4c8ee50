#!/usr/bin/env python3
"""Writes the fixtures of tests/unit/test_train_dataset.c into this folder (run it here; the outputs are committed).

images/   red.png (8x6 RGB), blue.jpg (10x7), gray.png (5x5 L): made by PIL; corrupt.jpg: the first half of a
          valid JPEG (PIL refuses it: truncated); notimage.png: text.
llava.*, sharegpt.*, messages.*: the same kinds of sample in .json (one element a line, element i on line i + 2)
          and .jsonl (sample i on line i + 1).
bad.jsonl, bad.json: one bad-input case a line (or element); the tests name each by its line.
"""
import io
import json
import os

from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))


def images():
    os.makedirs(os.path.join(HERE, "images"), exist_ok=True)
    Image.new("RGB", (8, 6), (200, 10, 10)).save(os.path.join(HERE, "images/red.png"))
    Image.new("RGB", (10, 7), (10, 20, 220)).save(os.path.join(HERE, "images/blue.jpg"), quality=90)
    Image.new("L", (5, 5), 128).save(os.path.join(HERE, "images/gray.png"))
    buf = io.BytesIO()
    Image.effect_noise((64, 48), 40).convert("RGB").save(buf, "JPEG", quality=90)
    data = buf.getvalue()
    with open(os.path.join(HERE, "images/corrupt.jpg"), "wb") as f:
        f.write(data[: len(data) // 2])
    try:
        Image.open(os.path.join(HERE, "images/corrupt.jpg")).convert("RGB")
        raise SystemExit("corrupt.jpg decoded in PIL: make it more broken")
    except OSError:
        pass
    with open(os.path.join(HERE, "images/notimage.png"), "w") as f:
        f.write("hello, not an image\n")


def turn(frm, value):
    return {"from": frm, "value": value}


def msg(role, content):
    return {"role": role, "content": content}


LLAVA = [
    {"id": "l0", "image": "images/red.png",
     "conversations": [turn("human", "<image>\nWhat colour is this?"), turn("gpt", "Red.")]},
    {"id": "l1", "conversations": [turn("human", "Say hi."), turn("gpt", "Hi.")]},
    {"id": "l2", "image": ["images/red.png", "images/blue.jpg"],
     "conversations": [turn("human", "Compare <image> and <image>."), turn("gpt", "Red, blue."),
                       turn("human", "Sure?"), turn("gpt", "Yes.")]},
]

SHAREGPT = [
    {"conversations": [turn("system", "Be brief."), turn("human", "<image>Describe."), turn("gpt", "Blue.")],
     "images": ["images/blue.jpg"]},
    {"conversations": [turn("human", "Weather?"), turn("function_call", "{\"name\": \"w\", \"arguments\": {}}"),
                       turn("observation", "{\"t\": 20}"), turn("gpt", "20 degrees.")]},
]

MESSAGES = [
    {"messages": [msg("user", "<image>What is it?"), msg("assistant", "Gray.")], "images": ["images/gray.png"]},
    {"messages": [msg("system", "S."),
                  msg("user", [{"type": "text", "text": "Look: "}, {"type": "image"},
                               {"type": "image", "image": "images/red.png"}]),
                  msg("assistant", [{"type": "text", "text": "Gray, red."}])],
     "images": ["images/gray.png"]},
    {"messages": [msg("user", "Q"), msg("assistant", "A"), msg("tool", "T"), msg("assistant", "B")],
     "videos": []},
]

GOOD = json.dumps(LLAVA[1])
BAD_JSONL = [
    GOOD,                                                                          # 1 good
    '{"conversations": [',                                                         # 2 malformed
    "",                                                                            # 3 blank
    json.dumps({"image": "images/missing.png",                                     # 4 missing image
                "conversations": [turn("human", "<image>"), turn("gpt", "x")]}),
    json.dumps({"image": "images/corrupt.jpg",                                     # 5 corrupt image
                "conversations": [turn("human", "<image>"), turn("gpt", "x")]}),
    json.dumps({"image": "images/red.png",                                         # 6 placeholders 2 != 1
                "conversations": [turn("human", "<image><image>"), turn("gpt", "x")]}),
    json.dumps({"conversations": [turn("human", "alone")]}),                       # 7 no assistant turn
    json.dumps({"conversations": [turn("human", "q"), turn("bing", "a")]}),        # 8 unknown role
    json.dumps({"videos": ["v.mp4"], "messages": [msg("user", "<video>"),          # 9 video
                                                  msg("assistant", "a")]}),
    json.dumps(LLAVA[0]),                                                          # 10 good
    json.dumps({"conversations": [turn("human", "q"), turn("gpt", "a"),            # 11 last turn not assistant
                                  turn("human", "q2")]}),
    json.dumps({"image": "images/notimage.png",                                    # 12 not an image
                "conversations": [turn("human", "<image>"), turn("gpt", "x")]}),
    json.dumps({"images": ["images/red.png"],                                      # 13 image, no placeholder
                "conversations": [turn("human", "q"), turn("gpt", "a")]}),
    json.dumps({"conversations": [turn("human", "q"), turn("system", "s"),         # 14 system in the middle
                                  turn("gpt", "a")]}),
    json.dumps({"conversations": [turn("human", 5), turn("gpt", "a")]}),           # 15 value not a string
    GOOD + " x",                                                                   # 16 text after the JSON value
    json.dumps({"messages": [msg("user", [{"type": "image_url",                    # 17 data: URL
                                           "image_url": {"url": "data:image/png;base64,AAAA"}}]),
                             msg("assistant", "a")]}),
    json.dumps({"image": "images", "conversations": [turn("human", "<image>"),      # 18 a folder as the image
                                                     turn("gpt", "a")]}),
    '{"messages": [{"role": "user", "con',                                         # 19 truncated, no newline
]

BAD_JSON = """[
  {"image": "images/red.png",
   "conversations": [{"from": "human", "value": "<image>\\nHi"},
                     {"from": "gpt", "value": "Red"}]},
  {"conversations": [{"from": "human", "value": "x"}, {"from": "gpt", "value": tru}]},
  {"image": "images/missing.png",
   "conversations": [{"from": "human", "value": "<image>"}, {"from": "gpt", "value": "?"}]},
  {"conversations": [{"from": "human", "value": "a,]}{\\"b"}, {"from": "gpt", "value": "ok"}]},
  {"conversations": [{"from": "human", "value": "cut"""


def write(name, text):
    with open(os.path.join(HERE, name), "w") as f:
        f.write(text)


def main():
    images()
    for name, samples in (("llava", LLAVA), ("sharegpt", SHAREGPT), ("messages", MESSAGES)):
        write(name + ".json", "[\n" + ",\n".join(json.dumps(s) for s in samples) + "\n]\n")
        write(name + ".jsonl", "".join(json.dumps(s) + "\n" for s in samples))
    write("bad.jsonl", "\n".join(BAD_JSONL))
    write("bad.json", BAD_JSON)


if __name__ == "__main__":
    main()
