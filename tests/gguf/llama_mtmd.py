#!/usr/bin/python3
"""mitten's GGUF pair run by llama.cpp's own multimodal CLI (llama-mtmd-cli, built on this machine by
scripts/build_llama_cpp.sh from the release npm ships): the shipped tiny Qwen2.5-VL written by `mitten quantize`
as F.gguf + mmproj-F.gguf, for every type, asked about pictures of its own kind. llama.cpp loads the projector
file (keys, names, types, the merger, the window attention pattern) and must give mitten's answer on each picture.

The pictures differ in colour, shape and count, and the answers must differ with them, so a projector that
llama.cpp reads wrongly (the image ignored or garbled) fails: the language model alone answers one thing.
llama.cpp resizes pictures by its own rule (it has no min/max pixels for Qwen-VL), so the image tokens are not
mitten's; the tiny model's answers are robust to that, which is what lets whole answers be compared.

    llama_mtmd.py --mitten MITTEN --llama-bin DIR --source SOURCE_DIR --work DIR
"""
import argparse
import json
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mmproj_check import check, fails, run_llama_cli  # noqa: E402

TYPES = ("f32", "f16", "bf16", "q8_0", "q6_K", "q4_K", "q4_0")
KINDS = ("colour", "shape", "count")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mitten", required=True)
    ap.add_argument("--llama-bin", required=True)
    ap.add_argument("--source", required=True)
    ap.add_argument("--work", required=True)
    a = ap.parse_args()
    mtmd = os.path.join(a.llama_bin, "llama-mtmd-cli")
    if not os.access(mtmd, os.X_OK):
        print(f"FAIL {mtmd} is missing: scripts/build_llama_cpp.sh builds it (scripts/setup.sh runs it)")
        return 1
    sys.path.insert(0, os.path.join(a.source, "scripts", "tiny"))
    import tiny_data

    shutil.rmtree(a.work, ignore_errors=True)
    os.makedirs(a.work)
    model = os.path.join(a.source, "models", "mitten-tiny")
    cases = []
    with open(tiny_data.write_eval(a.work, "seen", 6, 11)) as f:
        for line in f:
            c = json.loads(line)
            if c["kind"] in KINDS and c["image"]:
                cases.append(c)

    def answer(cmd):
        r = run_llama_cli(cmd, timeout=120) if cmd[0] == mtmd else subprocess.run(cmd, capture_output=True, timeout=120)
        out, err = r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")
        if getattr(r, "lost", False):
            return None  # llama.cpp's logger lost the answer in every run (ggml-org/llama.cpp#22142)
        return out.strip() if r.returncode == 0 else f"<exit {r.returncode}: {err.strip()[-300:]}>"

    for t in TYPES:
        lm = os.path.join(a.work, f"tiny-{t}.gguf")
        proj = os.path.join(a.work, f"mmproj-tiny-{t}.gguf")
        q = subprocess.run([a.mitten, "quantize", "-m", model, "--type", t, "--out", lm], capture_output=True,
                           text=True, timeout=120)
        if q.returncode != 0:
            check(f"{t}: mitten quantize", False, q.stderr[-300:])
            continue
        agree, lost, answers = 0, 0, set()
        for c in cases:
            image = os.path.join(a.work, c["image"])
            ours = answer([a.mitten, "run", "-m", lm, "--mmproj", proj, "--image", image, "-p", c["question"],
                           "--threads", "2", "--max-tokens", "16"])
            theirs = answer([mtmd, "-m", lm, "--mmproj", proj, "--image", image, "-p", c["question"], "-t", "2",
                             "--temp", "0", "-n", "16"])
            answers.add(ours)
            if theirs is None:
                lost += 1
            elif ours == theirs:
                agree += 1
            else:
                print(f"     {t} {c['image']} {c['question']!r}: mitten {ours!r}, llama.cpp {theirs!r}")
        # an answer llama.cpp's logger lost in five runs is not judged; most must be
        check(f"{t}: llama-mtmd-cli gives mitten's answer on {agree}/{len(cases) - lost} questions ({lost} lost by "
              "its logger)", agree == len(cases) - lost and lost <= len(cases) // 2)
        check(f"{t}: the answers depend on the picture ({len(answers)} different)", len(answers) >= 4)
    print(f"{len(fails)} check(s) failed" if fails else "all checks passed")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
