#!/usr/bin/python3
"""mitten-tiny's tokenizer against @lenml/tokenizers (tok_ids.mjs): same ids and the same decode, exactly, for every
question and answer the synthetic data can make, the chat-template prompts around them, and text outside the
training corpus (other scripts, digits, whitespace runs, broken special tokens) that falls back to byte tokens.

usage: tok_check.py MITTEN MODEL_DIR WORK_DIR          exit 0 all equal, 1 a difference, 77 no node / package
"""

import itertools
import json
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "scripts", "tiny"))
import tiny_data as d  # noqa: E402

OTHER = ["héllo wörld", "東京タワー 123", "🤖👍🏽 ok", "Ünïcödé\u00a0space", "  two  spaces\t\ttabs\n\n\nlines ",
         "It's, they'll; WE'RE", "3.14159 + 2,000", "<|im_start", "|>", "<|im_end|><|im_end|>", "<|endoftext|>x",
         "x<|image_pad|><|image_pad|>y", "\r\n", "", "WHERE IS THE RED SQUARE?", "redsquare", "a\u0301"]


def strings():
    out = list(OTHER)
    for q, a in d.IDENTITY:
        out += [q, a]
    out += [d.Q_COLOUR, d.Q_SHAPE, d.Q_COUNT, d.Q_DESCRIBE] + list(d.COLOURS) + list(d.SHAPES)
    out += list(d.PLACES) + list(d.COUNT_WORDS)
    out += [d.q_where(c, s) for c, s in itertools.product(d.COLOURS, d.SHAPES)]
    import random
    rng = random.Random(5)
    for n in (1, 2, 3, 3):
        scene = d.make_scene(rng, n, d.SEEN)
        out.append(d.describe(scene))
        out.append("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
                   "<|vision_start|><|image_pad|><|vision_end|>" + d.Q_DESCRIBE + "<|im_end|>\n<|im_start|>assistant\n"
                   + d.describe(scene) + "<|im_end|>\n")
    return out


def main():
    mitten, model, work = sys.argv[1:4]
    lenml = os.path.join(ROOT, "node_modules", "@lenml", "tokenizers")
    if not shutil.which("node") or not os.path.isdir(lenml):
        print(f"SKIPPED: needs node and {lenml} (npm install)")
        return 77
    os.makedirs(work, exist_ok=True)
    texts = strings()
    with open(os.path.join(work, "strings.json"), "w") as f:
        json.dump(texts, f)
    ref_path = os.path.join(work, "ref.json")
    subprocess.run(["node", os.path.join(HERE, "tok_ids.mjs"), model, os.path.join(work, "strings.json"), ref_path],
                   check=True)
    with open(ref_path) as f:
        refs = json.load(f)
    bad = 0
    text_path = os.path.join(work, "text.txt")
    for text, ref in zip(texts, refs):
        with open(text_path, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        r = subprocess.run([mitten, "tokenize", "-m", model, "--file", text_path, "--ids-only"], capture_output=True,
                           text=True, check=True)
        ids = [int(v) for v in r.stdout.split()]
        dec = ref["dec"]
        if ids:
            r = subprocess.run([mitten, "detokenize", "-m", model, "--ids", " ".join(map(str, ids))],
                               capture_output=True, check=True)
            dec_mt = r.stdout.decode("utf-8")[:-1]  # detokenize ends its output with a newline
        else:
            dec_mt = ""
        if ids != ref["ids"] or dec_mt != dec:
            bad += 1
            print(f"DIFF {text!r}:\n  mitten {ids} {dec_mt!r}\n  js     {ref['ids']} {dec!r}")
    print(f"tiny tokenizer: {len(texts) - bad}/{len(texts)} strings with the same ids and decode as @lenml/tokenizers")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
