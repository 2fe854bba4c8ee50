#!/usr/bin/python3
"""Makes models/mitten-tiny from nothing: synthetic data, a tokenizer learned from it, a random-weight Qwen2.5-VL
of toy size, `mitten train` (full fine-tuning of vision, projector and language model), and the held-out score.
docs/TINY.md describes the model, the data and the numbers.

usage: scripts/make_tiny.py [--mitten build/mitten] [--work build/tiny-work] [--out models/mitten-tiny]
                            [--images N] [--epochs E] [--seed S] [--width W] [--rope-theta T]
                            [--skip-train | --init-only]

Steps, each into --work:
    data/        train.jsonl + images/  (tiny_data.write_train, seed S)
    eval/        heldout.jsonl, seen.jsonl + images (seeds S+1, S+2)
    init/        config, tokenizer, random weights (seed S)
    run/         mitten train's output; run/model is the trained folder
then run/model is copied to --out (weights, config, tokenizer, template, processor), docs/tiny_example.png is
drawn, and both eval sets are scored.
Same seed and same mitten give the same folder: the data and init are seeded, and mitten's training is
deterministic for a fixed --threads (TRAIN_ARGS pins it).
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(HERE, "tiny"))
import tiny_data  # noqa: E402
import tiny_model  # noqa: E402
import tiny_tokenizer  # noqa: E402

TEMPLATE = os.path.join(ROOT, "tests", "jinja", "templates", "qwen2_vl.jinja")
SHIPPED = ("config.json", "generation_config.json", "preprocessor_config.json", "tokenizer.json",
           "tokenizer_config.json", "model.safetensors")
TRAIN_ARGS = ["--train", "vision,projector,llm", "--batch", "8", "--lr", "3e-3", "--warmup", "0.05",
              "--schedule", "cosine", "--weight-decay", "0.01", "--max-grad-norm", "1.0", "--threads", "2",
              "--log-every", "50"]


def render_corpus(train_path, template_text):
    """The training conversations as the chat template writes them, cut at special tokens: the BPE corpus."""
    import jinja2
    env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True)
    tmpl = env.from_string(template_text)
    specials = re.compile("|".join(re.escape(s) for s in tiny_tokenizer.SPECIALS))
    texts = []
    with open(train_path) as f:
        for line in f:
            text = tmpl.render(messages=json.loads(line)["messages"], add_generation_prompt=False)
            texts += [t for t in specials.split(text) if t]
    return texts


def make_init(work, seed, template_text, width, rope_theta):
    init = os.path.join(work, "init")
    os.makedirs(init, exist_ok=True)
    merges = tiny_tokenizer.learn_merges(render_corpus(os.path.join(work, "data", "train.jsonl"), template_text))
    tok = tiny_tokenizer.write(init, merges, template_text)
    n = len(tok["model"]["vocab"]) + len(tok["added_tokens"])
    vocab = (n + 63) // 64 * 64  # rows past the last token are never used
    text = dict(tiny_model.TEXT, hidden_size=width, intermediate_size=2 * width)
    tiny_model.write_initial(init, tiny_tokenizer.special_ids(tok), vocab, seed, text, rope_theta)
    print(f"make_tiny: {len(merges)} merges, {n} tokens, vocab_size {vocab}")
    return init


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mitten", default=os.path.join(ROOT, "build", "mitten"))
    ap.add_argument("--work", default=os.path.join(ROOT, "build", "tiny-work"))
    ap.add_argument("--out", default=os.path.join(ROOT, "models", "mitten-tiny"))
    ap.add_argument("--images", type=int, default=14000)
    ap.add_argument("--epochs", type=int, default=7)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--eval-images", type=int, default=40)
    ap.add_argument("--width", type=int, default=tiny_model.TEXT["hidden_size"], help="language model width")
    ap.add_argument("--rope-theta", type=float, default=tiny_model.ROPE_THETA)
    ap.add_argument("--skip-train", action="store_true", help="reuse --work/run/model")
    ap.add_argument("--init-only", action="store_true", help="stop after data and init (train elsewhere)")
    args = ap.parse_args()
    with open(TEMPLATE) as f:
        template_text = f.read()
    work = os.path.abspath(args.work)
    data = os.path.join(work, "data")
    if not os.path.exists(os.path.join(data, "train.jsonl")):
        tiny_data.write_train(data, args.images, args.seed)
    for k, split in enumerate(("heldout", "seen")):
        tiny_data.write_eval(os.path.join(work, "eval"), split, args.eval_images, args.seed + 1 + k)
    run = os.path.join(work, "run")
    if not args.skip_train:
        init = make_init(work, args.seed, template_text, args.width, args.rope_theta)
        if args.init_only:
            return
        shutil.rmtree(run, ignore_errors=True)
        cmd = [args.mitten, "train", "-m", init, "--data", os.path.join(data, "train.jsonl"), "--out", run,
               "--epochs", str(args.epochs), "--seed", str(args.seed)] + TRAIN_ARGS
        print("make_tiny: " + " ".join(cmd), flush=True)
        t0 = time.time()
        subprocess.run(cmd, check=True)
        print(f"make_tiny: trained in {time.time() - t0:.0f} s")
    tiny_data.draw_scene(tiny_data.example_scene()).save(os.path.join(ROOT, "docs", "tiny_example.png"))
    os.makedirs(args.out, exist_ok=True)
    for name in SHIPPED:
        shutil.copyfile(os.path.join(run, "model", name), os.path.join(args.out, name))
    for split in ("heldout", "seen"):
        print(f"make_tiny: {split}:", flush=True)
        subprocess.run([sys.executable, os.path.join(HERE, "tiny", "tiny_eval.py"), args.mitten, args.out,
                        os.path.join(work, "eval", f"{split}.jsonl")], check=False)


if __name__ == "__main__":
    main()
