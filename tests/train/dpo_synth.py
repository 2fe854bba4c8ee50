#!/usr/bin/python3
"""Synthetic preference pairs with images for DPO: what colour fills a picture, with a held-out split.

    dpo_synth.py OUT_DIR [--train 64] [--eval 32] [--seed 0]

Each image is a 28x28 to 84x84 picture filled with one of eight colours, its shade jittered, with a few dots of
another colour; a prompt (one of four phrasings, in LLaMA-Factory's ShareGPT layout or TRL's, alternately) asks
for the colour; the chosen answer names it, the rejected one names another colour in the same sentence. The
held-out pairs use images of their own (other shades, sizes and dots), so their accuracy measures what the model
learned about colours, not the training pictures.

Writes OUT_DIR/train.jsonl, OUT_DIR/eval.jsonl and the images under OUT_DIR/img/.
"""
import argparse
import json
import os
import random

from PIL import Image, ImageDraw

COLOURS = {"red": (200, 30, 30), "green": (30, 170, 40), "blue": (30, 40, 200), "yellow": (225, 215, 40),
           "black": (15, 15, 15), "white": (240, 240, 240), "orange": (240, 140, 20), "purple": (130, 40, 160)}
PROMPTS = ["What colour is this?", "Which colour fills the picture?", "Name the colour.", "Colour of the image?"]
ANSWER = "It is {}."


def picture(rng, rgb, path):
    w, h = rng.choice([28, 56, 84]), rng.choice([28, 56, 84])
    shade = tuple(max(0, min(255, c + rng.randint(-25, 25))) for c in rgb)
    im = Image.new("RGB", (w, h), shade)
    d = ImageDraw.Draw(im)
    for _ in range(rng.randint(0, 3)):
        x, y = rng.randrange(w), rng.randrange(h)
        d.ellipse([x, y, x + 3, y + 3], fill=rng.choice(list(COLOURS.values())))
    im.save(path)


def pairs(rng, n, out_dir, tag):
    names = list(COLOURS)
    rows = []
    for i in range(n):
        right = names[i % len(names)]
        wrong = rng.choice([c for c in names if c != right])
        img = f"img/{tag}{i}.png"
        picture(rng, COLOURS[right], os.path.join(out_dir, img))
        q = rng.choice(PROMPTS)
        if i % 2:
            rows.append({"conversations": [{"from": "human", "value": "<image>" + q}],
                         "chosen": {"from": "gpt", "value": ANSWER.format(right)},
                         "rejected": {"from": "gpt", "value": ANSWER.format(wrong)}, "images": [img]})
        else:
            rows.append({"prompt": [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": q}]}],
                         "chosen": ANSWER.format(right), "rejected": ANSWER.format(wrong), "images": [img]})
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--train", type=int, default=64)
    ap.add_argument("--eval", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    os.makedirs(os.path.join(args.out, "img"), exist_ok=True)
    rng = random.Random(args.seed)
    for name, n in (("train", args.train), ("eval", args.eval)):
        with open(os.path.join(args.out, f"{name}.jsonl"), "w") as f:
            for row in pairs(rng, n, args.out, name):
                f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
