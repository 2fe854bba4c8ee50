#!/usr/bin/python3
"""`mitten perplexity` against PyTorch on models/mitten-tiny (f32):

  - the perplexity of tests/data/tiny_heldout.txt (llama-perplexity's windows: second halves scored), of fixed ids
    with overlapping windows (--stride), and of a text shorter than --ctx (one window) equals the one computed here:
    the same windows through the reference forward (tests/ref/qwen2_vl_model.py, float32), log-softmax in float64,
    within 1e-6 relative; the counts of tokens, windows and scored tokens are equal;
  - --base on the same model (and on its f32 GGUF file): ratio 1, KL 0, top-1 agreement 1, no logit difference;
  - bad inputs are refused naming what is wrong: an empty text, one token, --ctx over the model's maximum, a base
    with another vocabulary, a model without a tokenizer for --file, ids outside the vocabulary, --stride, options.

    perplexity_check.py --mitten MITTEN --source SOURCE_DIR --work DIR
"""
import argparse
import json
import math
import os
import shutil
import subprocess
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "ref"))
import qwen2_vl_model as qm  # noqa: E402
import qwen2_vl_ref as ref  # noqa: E402
import safetensors_io as st  # noqa: E402

failures = 0


def check(what, ok, detail=""):
    global failures
    print(("ok   " if ok else "FAIL ") + what + ("" if ok or not detail else f": {detail}"))
    failures += not ok


def windows(n, ctx, stride):
    """The windows and the window positions each scores, as `mitten perplexity --help` states them."""
    if n < ctx:
        ctx = stride = n
    first = ctx // 2 + 1 if stride == ctx else ctx - stride
    first = min(first, ctx - 1)
    return [(s, first, ctx) for s in range(0, n - ctx + 1, stride)], ctx


def reference(cfg, W, ids, ctx, stride):
    """(perplexity, tokens scored, windows) through the reference forward (float32, as transformers runs the
    checkpoint), log-softmax in float64."""
    wins, ctx = windows(len(ids), ctx, stride)
    nll = []
    for s, first, n in wins:
        win = torch.tensor(ids[s:s + n], dtype=torch.int64)
        pos = torch.arange(n).view(1, -1).expand(3, -1)
        logits = qm.text_forward(cfg, W, W["model.embed_tokens.weight"][win], pos, [None] * cfg.layers, 0)
        logp = torch.log_softmax(logits.to(torch.float64), dim=-1)
        nll += (-logp[torch.arange(first - 1, n - 1), win[first:]]).tolist()
    return math.exp(sum(nll) / len(nll)), len(nll), len(wins)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mitten", required=True)
    ap.add_argument("--source", required=True)
    ap.add_argument("--work", required=True)
    a = ap.parse_args()
    shutil.rmtree(a.work, ignore_errors=True)
    os.makedirs(a.work)
    model = os.path.join(a.source, "models", "mitten-tiny")
    text = os.path.join(a.source, "tests", "data", "tiny_heldout.txt")

    def run(*args):
        r = subprocess.run([a.mitten, *args], capture_output=True, text=True, timeout=300)
        return r.returncode, r.stdout, r.stderr

    def ppl(*args):
        rc, out, err = run("perplexity", "--json", "--threads", "2", *args)
        return json.loads(out) if rc == 0 else {"rc": rc, "stderr": err[-400:]}

    def work(name):
        return os.path.join(a.work, name)

    cfg = ref.load_config(model)
    W = st.read_folder(model)  # float32, as the checkpoint; the NLL is taken in float64

    def tokens(path):
        return [int(t) for t in run("tokenize", "-m", model, "--ids-only", "--file", path)[1].split()]

    def against_reference(label, got, ids, ctx, stride):
        want, scored, n_win = reference(cfg, W, ids, ctx, stride)
        if "perplexity" not in got:
            check(label, False, str(got))
            return
        rel = abs(got["perplexity"] / want - 1)
        print(f"     {label}: mitten {got['perplexity']:.9g}, torch {want:.9g}, relative {rel:.2e}")
        check(f"{label}: perplexity within 1e-6 of torch", rel <= 1e-6, f"{rel:.3e}")
        check(f"{label}: tokens, windows, scored", (got["tokens"], got["windows"], got["scored"]) ==
              (len(ids), n_win, scored), f"{(got['tokens'], got['windows'], got['scored'])} != "
              f"{(len(ids), n_win, scored)}")

    ids = tokens(text)
    against_reference("text, --ctx 256", ppl("-m", model, "--file", text, "--ctx", "256"), ids, 256, 256)
    # fixed ids without the image and video placeholders, which a prompt without pictures must not hold
    fixed = np.random.default_rng(3).integers(0, cfg.vocab, 300).astype(np.int64)
    fixed = fixed[~np.isin(fixed, [cfg.image_token_id, cfg.video_token_id])]
    np.save(work("ids.npy"), fixed)
    against_reference("ids, --ctx 64 --stride 16", ppl("-m", model, "--ids", work("ids.npy"), "--ctx", "64",
                                                       "--stride", "16"), fixed.tolist(), 64, 16)
    np.save(work("ids32.npy"), fixed.astype(np.int32))
    got32 = ppl("-m", model, "--ids", work("ids32.npy"), "--ctx", "64", "--stride", "16")
    got64 = ppl("-m", model, "--ids", work("ids.npy"), "--ctx", "64", "--stride", "16")
    check("int32 ids as int64 ids", got32.get("perplexity") == got64.get("perplexity"))
    with open(text) as f:
        short = f.read()[:150]
    with open(work("short.txt"), "w") as f:
        f.write(short)
    against_reference("a text shorter than --ctx", ppl("-m", model, "--file", work("short.txt")),
                      tokens(work("short.txt")), 512, 512)

    same = ppl("-m", model, "--file", text, "--ctx", "128", "--base", model)
    check("--base itself: ratio 1, KL 0, top-1 1, no logit difference",
          (same.get("perplexity_ratio"), same.get("kl_mean"), same.get("kl_max"), same.get("top1_agreement"),
           same.get("max_logit_diff_rel")) == (1, 0, 0, 1, 0), str(same)[:400])
    f32 = work("tiny-f32.gguf")
    rc, _, err = run("quantize", "-m", model, "--type", "f32", "--out", f32, "--no-mmproj")
    check("quantize f32", rc == 0, err[-300:])
    gg = ppl("-m", f32, "--file", text, "--ctx", "128", "--base", model)
    check("the f32 GGUF file against its folder: the same perplexity, KL 0",
          (gg.get("perplexity") == same.get("perplexity"), gg.get("kl_max"), gg.get("top1_agreement")) == (True, 0, 1),
          str(gg)[:400])
    q8 = work("tiny-q8_0.gguf")
    run("quantize", "-m", model, "--type", "q8_0", "--out", q8, "--no-mmproj")
    q = ppl("-m", q8, "--file", text, "--ctx", "128", "--base", model)
    check("q8_0 against the folder: a small nonzero KL, ratio near 1",
          q.get("kl_mean", 0) > 0 and q.get("kl_mean", 1) < 0.05 and abs(q.get("perplexity_ratio", 0) - 1) < 0.05,
          str(q)[:400])

    # refusals: (label, exit code, text the message holds, args)
    other = work("other-vocab")
    ref.cmd_make_checkpoint(argparse.Namespace(variant="qwen2_5_vl", out=other, seed=1, dtype="float32", shape="tiny",
                                               base_config=ref.REAL_3B_CONFIG, max_shard_bytes=2 * 1000 ** 3))
    open(work("empty.txt"), "w").close()
    with open(work("one.txt"), "w") as f:
        f.write("<|im_start|>")
    np.save(work("bad_ids.npy"), np.array([1, 2, 512], dtype=np.int64))
    cases = [
        ("an empty text", 1, "empty.txt: the text is empty", ["--file", work("empty.txt")]),
        ("a text of one token", 1, "one.txt: 1 token; perplexity needs at least 2", ["--file", work("one.txt")]),
        ("--ctx over the model's maximum", 1, "--ctx 200000 is over", ["--file", text, "--ctx", "200000"]),
        ("a base with another vocabulary", 1, "has a vocabulary of 320 tokens",
         ["--ids", work("ids.npy"), "--base", other]),
        ("--file with a model without a tokenizer", 1, "has no tokenizer", ["-m", other, "--file", text]),
        ("ids outside the vocabulary", 1, "token id 512 at position 2", ["--ids", work("bad_ids.npy")]),
        ("a missing text file", 1, "nope.txt", ["--file", work("nope.txt")]),
        ("--stride between ctx/2 and ctx", 2, "--stride 300 with --ctx 512", ["--file", text, "--stride", "300"]),
        ("--ctx 1", 2, "bad --ctx 1", ["--file", text, "--ctx", "1"]),
        ("both --file and --ids", 2, "exactly one of --file and --ids", ["--file", text, "--ids", work("ids.npy")]),
        ("neither --file nor --ids", 2, "exactly one of --file and --ids", []),
    ]
    for label, code, message, args in cases:
        if "-m" not in args:
            args = ["-m", model] + args
        rc, _, err = run("perplexity", *args)
        check(f"refused: {label} (exit {code})", rc == code and message in err, f"exit {rc}: {err.strip()[-300:]}")
    print("perplexity_check: " + ("all passed" if failures == 0 else f"{failures} FAILED"))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
