#!/usr/bin/python3
"""Scores a model folder on single-question cases (tiny_data.write_eval's .jsonl) with `mitten run` (greedy):
exact match after trimming whitespace, per question kind.

usage: tiny_eval.py MITTEN MODEL_DIR CASES.jsonl [--min KIND=FRACTION]... [--show N] [--jobs N]
Prints one line per kind ("colour  38/40  95.0%") and up to N wrong answers; exits 1 when a kind named by --min
scores below its fraction (or a run fails), so a test can hold the shipped model to its stated accuracy.
"""

import argparse
import collections
import concurrent.futures
import json
import os
import subprocess
import sys


def answer(mitten, model, case, base):
    cmd = [mitten, "run", "-m", model, "-p", case["question"], "--max-tokens", "48"]
    if case["image"]:
        cmd += ["--image", os.path.join(base, case["image"])]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: exit {r.returncode}: {r.stderr.strip()[-400:]}")
    return r.stdout.strip()


def evaluate(mitten, model, cases_path, jobs):
    with open(cases_path) as f:
        cases = [json.loads(line) for line in f if line.strip()]
    base = os.path.dirname(os.path.abspath(cases_path))
    with concurrent.futures.ThreadPoolExecutor(jobs) as ex:
        got = list(ex.map(lambda c: answer(mitten, model, c, base), cases))
    return cases, got


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mitten")
    ap.add_argument("model")
    ap.add_argument("cases")
    ap.add_argument("--min", action="append", default=[], help="KIND=FRACTION, e.g. colour=0.9")
    ap.add_argument("--show", type=int, default=8)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args()
    cases, got = evaluate(args.mitten, args.model, args.cases, args.jobs)
    right, total, wrong = collections.Counter(), collections.Counter(), []
    for c, g in zip(cases, got):
        total[c["kind"]] += 1
        if g == c["answer"]:
            right[c["kind"]] += 1
        else:
            wrong.append((c, g))
    for kind in total:
        print(f"{kind:9s} {right[kind]:4d}/{total[kind]:<4d} {100.0 * right[kind] / total[kind]:5.1f}%")
    n_right, n = sum(right.values()), sum(total.values())
    print(f"{'all':9s} {n_right:4d}/{n:<4d} {100.0 * n_right / n:5.1f}%")
    for c, g in wrong[:args.show]:
        print(f"  wrong: {c['image']} {c['question']!r}: want {c['answer']!r}, got {g!r}")
    failed = False
    for spec in args.min:
        kind, frac = spec.split("=")
        if total[kind] == 0 or right[kind] < float(frac) * total[kind]:
            print(f"FAIL: {kind} below {float(frac):.0%}")
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
