#!/usr/bin/python3
"""What bf16 dot products (vdpbf16ps: activations rounded to bf16 before the product) do to a model's logits: the
shipped tiny Qwen2.5-VL as a bf16 GGUF pair (every matrix bf16: the vision tower's and the text GEMMs of the image
prompt run on them; the decode GEMV of the greedy answer stays f32), as q8_0 and q4_K pairs (their GEMM panels
dequantized, then rounded to bf16), and as an f16 pair (its panels rounded to bf16: the weights take a bf16 file's
rounding too), run by `mitten logits` with MT_BF16_DOT=0 and =1.

  - On a CPU with AVX-512-BF16: the logits differ (the path ran) by less than the bound below, relative to the
    largest logit, and the greedy continuation is the same.
  - On a CPU without it: MT_BF16_DOT=1 changes nothing (the f32 path runs), which is checked instead, and the test
    says so.

    bf16_dot.py --mitten MITTEN --source SOURCE_DIR --work DIR
"""
import argparse
import os
import shutil
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mmproj_check import check, fails  # noqa: E402

QUESTION = "What colour is the shape?"
# Measured 2026-12-06 on a Sapphire Rapids-class Xeon: 2.1e-3 of the largest logit; the f32 path against PyTorch is
# within 1e-5 (docs/VALIDATION.md), so this is the rounding of the activations alone.
BOUND = 1e-2


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mitten", required=True)
    ap.add_argument("--source", required=True)
    ap.add_argument("--work", required=True)
    a = ap.parse_args()
    shutil.rmtree(a.work, ignore_errors=True)
    os.makedirs(a.work)
    model = os.path.join(a.source, "models", "mitten-tiny")
    image = os.path.join(a.source, "docs", "tiny_example.png")

    def run(args, bf16):
        env = dict(os.environ, MT_BF16_DOT=bf16)
        return subprocess.run([a.mitten] + args, capture_output=True, env=env, timeout=300)

    ids = run(["tokenize", "-m", model, "--ids-only", "--text",
               "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>" + QUESTION +
               "<|im_end|>\n<|im_start|>assistant\n"], "0").stdout.split()
    pad = int(run(["tokenize", "-m", model, "--ids-only", "--text", "<|image_pad|>"], "0").stdout)
    full = []
    for t in map(int, ids):
        full += [pad] * 9 if t == pad else [t]  # the 84 x 84 example: 9 merged image rows
    np.save(os.path.join(a.work, "ids.npy"), np.array(full, dtype=np.int64))
    flags = open("/proc/cpuinfo").read()
    has_bf16 = " avx512_bf16" in flags and " avx512bw" in flags
    print("path avx512-bf16 runs" if has_bf16 else
          "path avx512-bf16 not on this CPU: MT_BF16_DOT=1 must leave the f32 path")
    for qtype in ("bf16", "f16", "q8_0", "q4_K"):
        lm = os.path.join(a.work, f"tiny-{qtype}.gguf")
        proj = os.path.join(a.work, f"mmproj-tiny-{qtype}.gguf")
        q = run(["quantize", "-m", model, "--type", qtype, "--out", lm], "0")
        check(f"mitten quantize --type {qtype}", q.returncode == 0, q.stderr.decode()[-300:])
        out = {}
        for bf16 in ("0", "1"):
            lg = os.path.join(a.work, f"logits-{qtype}-{bf16}.npy")
            gr = os.path.join(a.work, f"greedy-{qtype}-{bf16}.npy")
            r = run(["logits", "-m", lm, "--mmproj", proj, "--image", image, "--ids", os.path.join(a.work, "ids.npy"),
                     "--out", lg, "--greedy", "8", "--greedy-out", gr, "--threads", "2"], bf16)
            check(f"{qtype}: mitten logits with MT_BF16_DOT={bf16}", r.returncode == 0, r.stderr.decode()[-300:])
            if r.returncode == 0:
                out[bf16] = (np.load(lg), np.load(gr))
        if len(out) < 2:
            continue
        (l0, g0), (l1, g1) = out["0"], out["1"]
        rel = float(np.abs(l1 - l0).max() / np.abs(l0).max())
        if has_bf16:
            check(f"{qtype}: bf16 dot products change the logits by {rel:.2e} of the largest, within {BOUND}",
                  0 < rel <= BOUND)
            check(f"{qtype}: the same greedy answer {g1.tolist()}", np.array_equal(g0, g1), f"f32 path {g0.tolist()}")
        else:
            check(f"{qtype}: MT_BF16_DOT=1 changes nothing without AVX-512-BF16", rel == 0 and np.array_equal(g0, g1))
    print(f"{len(fails)} check(s) failed" if fails else "all checks passed")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
