#!/usr/bin/python3
"""Writes tests/data/tiny_heldout.txt: a fixed text of mitten-tiny's own kind for `mitten perplexity`.

The 40 held-out scenes of the tiny_heldout test (scripts/tiny/tiny_data.py, split "heldout", seed 8), each one
conversation asking every question the scoring set asks of it, one per turn, then the three identity
conversations, each rendered through the model's chat template (tokenizer_config.json, as transformers renders it)
and joined. Text only: perplexity takes no images, so the turns carry no picture and the answers about colour,
shape and place are guesses from the text alone; what the text measures is how much quantization moves the
model's predictions, not how well it sees.

    tests/data/tiny_heldout_text.py [--source SOURCE_DIR] [--out FILE]
"""
import argparse
import json
import os
import random
import sys

import jinja2

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(SOURCE, "scripts", "tiny"))
import tiny_data as td  # noqa: E402

SEED, SCENES = 8, 40  # tests/tiny/heldout_check.py's set


def conversations():
    rng = random.Random(SEED)
    for i in range(SCENES):  # the draws of tiny_data.write_eval("heldout"), in its order
        n = 1 if i % 2 == 0 else rng.choice((2, 3))
        must = td.HELD_OUT[(i // 2) % len(td.HELD_OUT)]
        scene = td.make_scene(rng, n, td.SEEN, must)
        msgs = []
        for _, q, a in td.questions(scene, focus=must):
            msgs += [{"role": "user", "content": [{"type": "text", "text": q}]}, {"role": "assistant", "content": a}]
        yield msgs
    for q, a in td.IDENTITY:
        yield [{"role": "user", "content": [{"type": "text", "text": q}]}, {"role": "assistant", "content": a}]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--source", default=SOURCE)
    ap.add_argument("--out", default=os.path.join(HERE, "tiny_heldout.txt"))
    a = ap.parse_args()
    with open(os.path.join(a.source, "models", "mitten-tiny", "tokenizer_config.json")) as f:
        template = json.load(f)["chat_template"]
    env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True)  # transformers' settings
    t = env.from_string(template)
    text = "".join(t.render(messages=m, add_generation_prompt=False) for m in conversations())
    with open(a.out, "w") as f:
        f.write(text)
    print(f"wrote {a.out}: {len(text)} characters")


if __name__ == "__main__":
    main()
