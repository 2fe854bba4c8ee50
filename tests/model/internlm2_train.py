#!/usr/bin/env python3
"""Training InternLM2 (InternVL 2.5's language model, alone as InternLM2ForCausalLM): the packed wqkv trains through
its grouped split. LoRA lowers the loss, puts adapters on attention.wqkv / wo and feed_forward.w1 / w2 / w3 under
PEFT's names and none on the head (output), and `mitten merge` of the adapter gives OUT/model's logits; full
fine-tuning lowers the loss and saves the checkpoint's own tensor names.

usage: internlm2_train.py --mitten BIN --work DIR
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "ref"))
import safetensors_io  # noqa: E402

REF = [sys.executable, os.path.join(HERE, "..", "ref", "internvl_ref.py")]
TEMPLATE = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
            "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
SAMPLES = [[("user", "Hi there"), ("assistant", "Hello back.")], [("user", "Color?"), ("assistant", "Gray and red.")]]


def sh(cmd):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)
    if r.returncode:
        sys.exit("FAILED: %s\n%s" % (" ".join(cmd), r.stdout[-2000:]))
    return r.stdout


def losses(log):
    return [float(x) for x in re.findall(r"^step \d+/\d+\s+loss ([0-9.]+)", log, re.M)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mitten", required=True)
    ap.add_argument("--work", required=True)
    a = ap.parse_args()
    shutil.rmtree(a.work, ignore_errors=True)
    os.makedirs(a.work)
    ivl, llm = os.path.join(a.work, "internvl"), os.path.join(a.work, "llm")
    sh(REF + ["make-checkpoint", "--layout", "original", "--llm", "internlm2", "--out", ivl])
    sh(REF + ["extract-llm", "--model", ivl, "--out", llm])
    with open(os.path.join(llm, "tokenizer_config.json"), "w") as f:
        json.dump({"chat_template": TEMPLATE, "eos_token": "<|im_end|>"}, f)
    data = os.path.join(a.work, "data.jsonl")
    with open(data, "w") as f:
        for turns in SAMPLES:
            f.write(json.dumps({"messages": [{"role": r, "content": c} for r, c in turns]}) + "\n")
    ids = os.path.join(a.work, "ids.npy")
    np.save(ids, np.arange(40, 52, dtype=np.int64))
    common = ["--data", data, "--epochs", "8", "--batch", "2", "--threads", "2", "--warmup", "0"]
    failures = []

    def check(label, ok, detail=""):
        print("%s %s %s" % ("ok  " if ok else "FAIL", label, detail))
        if not ok:
            failures.append(label)

    lora = os.path.join(a.work, "lora")
    log = sh([a.mitten, "train", "-m", llm, "--out", lora, "--lora", "4", "--lr", "1e-2"] + common)
    ls = losses(log)
    check("LoRA lowers the loss", len(ls) > 1 and ls[-1] < ls[0], "%s -> %s" % (ls[:1], ls[-1:]))
    names = set(safetensors_io.read_file(os.path.join(lora, "adapter", "adapter_model.safetensors")))
    want = {"base_model.model.model.layers.%d.%s.lora_%s.weight" % (i, m, x) for i in range(3)
            for m in ("attention.wqkv", "attention.wo", "feed_forward.w1", "feed_forward.w2", "feed_forward.w3")
            for x in "AB"}
    check("adapters under PEFT's names, none on the head", names == want,
          "missing %s, extra %s" % (sorted(want - names)[:3], sorted(names - want)[:3]))
    merged = os.path.join(a.work, "merged")
    sh([a.mitten, "merge", "-m", llm, "--adapter", os.path.join(lora, "adapter"), "--out", merged])
    out = []
    for model in (os.path.join(lora, "model"), merged):
        path = os.path.join(a.work, "logits_%d.npy" % len(out))
        sh([a.mitten, "logits", "-m", model, "--ids", ids, "--out", path, "--threads", "2"])
        out.append(np.load(path))
    check("merge gives OUT/model's logits", out[0].shape == out[1].shape and np.array_equal(out[0], out[1]))

    full = os.path.join(a.work, "full")
    log = sh([a.mitten, "train", "-m", llm, "--out", full, "--lr", "1e-3"] + common)
    ls = losses(log)
    check("full fine-tuning lowers the loss", len(ls) > 1 and ls[-1] < ls[0], "%s -> %s" % (ls[:1], ls[-1:]))
    base = set(safetensors_io.read_file(os.path.join(llm, "model.safetensors")))
    saved = set(safetensors_io.read_folder(os.path.join(full, "model")))
    check("the saved model keeps InternLM2's tensor names", saved == base,
          "missing %s, extra %s" % (sorted(base - saved)[:3], sorted(saved - base)[:3]))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
