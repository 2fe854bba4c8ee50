#!/usr/bin/env python3
"""Real checkpoint shapes load: for each config of a published checkpoint (tests/ref/configs), a checkpoint with
exactly the tensors it implies (qwen3_ref.py --shape-from --sparse: bf16, data a hole, so 60 GB cost no disk) must
open in `mitten info`, and the parameters per part must equal what the reference counts from the config.

usage: real_shapes.py --mitten BIN --work DIR
"""
import argparse
import os
import re
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REF = [sys.executable, os.path.join(HERE, "..", "ref", "qwen3_ref.py")]
CONFIGS = os.path.join(HERE, "..", "ref", "configs")
CASES = ["qwen3-vl-4b-instruct.json", "qwen3-vl-2b-instruct.DERIVED.json", "qwen3-30b-a3b.json",
         "qwen3-vl-30b-a3b-instruct.DERIVED.json", "qwen1.5-moe-a2.7b.DERIVED.json", "qwen2-57b-a14b.DERIVED.json"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mitten", required=True)
    ap.add_argument("--work", required=True)
    a = ap.parse_args()
    failures = []
    for name in CASES:
        out = os.path.join(a.work, name)
        shutil.rmtree(out, ignore_errors=True)
        r = subprocess.run(REF + ["make-checkpoint", "--shape-from", os.path.join(CONFIGS, name), "--sparse",
                                  "--out", out], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        m = re.search(r"total ([\d,]+)(?:\s+vision ([\d,]+)\s+projector ([\d,]+)\s+language ([\d,]+))?", r.stdout)
        if r.returncode or not m:
            failures.append("%s: reference failed: %s" % (name, r.stdout[-400:]))
            continue
        want = [int(x.replace(",", "")) if x else None for x in m.groups()]
        r = subprocess.run([a.mitten, "info", "-m", out], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        got = {}
        for line in r.stdout.splitlines():
            f = line.split()
            if len(f) >= 2 and f[0] in ("vision", "projector", "decoder", "total"):
                nums = [x for x in f[1:] if x.isdigit()]
                if nums:
                    got[f[0]] = int(nums[0])
        expect = {"total": want[0], "vision": want[1], "projector": want[2], "decoder": want[3]}
        bad = [k for k, v in expect.items() if v is not None and got.get(k, 0) != v]  # text-only: no vision lines
        if r.returncode or bad:
            failures.append("%s: exit %d, %s: mitten %s, reference %s\n%s" % (
                name, r.returncode, bad, {k: got.get(k) for k in bad}, {k: expect[k] for k in bad}, r.stdout))
        else:
            print("ok   %-42s %s parameters" % (name, format(want[0], ",")))
        shutil.rmtree(out, ignore_errors=True)
    for f in failures:
        print("FAIL", f)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
