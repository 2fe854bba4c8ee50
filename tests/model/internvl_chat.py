#!/usr/bin/python3
"""mitten run, chat and serve on tiny InternVL checkpoints (tests/ref/internvl_ref.py) in both layouts, with an image
the processor tiles (96 x 48: a 4 x 2 grid plus the thumbnail, 9 tiles of 32 px).

For each layout:
  - `mitten template` renders the folder's chat template (tokenizer_config.json) as jinja2 does: the -hf one over
    content parts, the original one (text only) over the question as InternVL's chat() writes it, "<image>\n" first;
  - the reference prompt ids are that text tokenized (bytes, added tokens) with each image's placeholder (-hf: its
    <IMG_CONTEXT>; original: "<image>") replaced by <img> + <IMG_CONTEXT> x (tiles * 16) + </img>, tiles from
    `mitten preprocess`; internvl_ref.py's greedy answer on those ids and pixels is the answer `mitten run` must print,
    with that many prompt tokens;
  - `mitten chat` gives the same first answer, then a second turn with a second image;
  - `mitten serve` gives the same answer to an OpenAI request with the image as a data: URL.

    internvl_chat.py --mitten MITTEN --work DIR
"""
import argparse
import base64
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request

import jinja2
import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
REF = os.path.join(HERE, "..", "ref", "internvl_ref.py")
sys.path.insert(0, os.path.join(HERE, "..", "ref"))
import internvl_ref as ivr  # noqa: E402

PROMPT = "What colour is this?"
N_NEW = 6
fails = []


def check(label, ok, detail=""):
    print(("ok   " if ok else "FAIL ") + label + ("" if ok else ": " + detail))
    if not ok:
        fails.append(label)


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, timeout=120, **kw)


def reference_ids(text, tiles_per_image, placeholder):
    """transformers' tokenization of the tiny tokenizer (added tokens split out, every other byte its own id), with
    each image's placeholder text expanded as InternVL's processor and chat() do."""
    specials = {t: i for i, t in ivr.ADDED.items()}
    ids, images = [], iter(tiles_per_image)
    pieces = re.split("(" + "|".join(re.escape(t) for t in [placeholder, *specials]) + ")", text)
    for piece in pieces:
        if piece == placeholder:
            ids += [ivr.IMG_START] + [ivr.IMG_CONTEXT] * (next(images) * 16) + [ivr.IMG_END]
        elif piece in specials:
            ids.append(specials[piece])
        else:
            ids += list(piece.encode())
    return ids


def check_layout(mitten, work, layout, images):
    model = os.path.join(work, layout)
    subprocess.run([sys.executable, REF, "make-checkpoint", "--layout", layout, "--out", model], check=True,
                   stdout=subprocess.DEVNULL)
    if layout == "original":
        messages = [{"role": "user", "content": ivr.IMAGE_TEXT + "\n" + PROMPT}]
        template, placeholder = ivr.ORIGINAL_CHAT_TEMPLATE, ivr.IMAGE_TEXT
    else:
        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": PROMPT}]}]
        template, placeholder = ivr.CHAT_TEMPLATE, "<IMG_CONTEXT>"
    mpath = os.path.join(work, "messages.json")
    with open(mpath, "w") as f:
        json.dump(messages, f)
    want = jinja2.Environment().from_string(template).render(messages=messages, add_generation_prompt=True)
    r = run([mitten, "template", "-m", model, "--messages", mpath, "--generation-prompt"])
    check(f"{layout}: mitten template renders the folder's template as jinja2", r.returncode == 0 and
          r.stdout.decode() == want, repr(r.stdout.decode()[-80:]) + r.stderr.decode()[-200:])

    pre = os.path.join(work, layout + "_pre")
    r = run([mitten, "preprocess", "-m", model, "--image", images[0], "--out-dir", pre])
    check(f"{layout}: mitten preprocess", r.returncode == 0, r.stderr.decode()[-300:])
    pv = np.load(os.path.join(pre, "pixel_values.npy"))
    check(f"{layout}: the image is tiled (4 x 2 + thumbnail)", pv.shape == (9, 3, 32, 32), str(pv.shape))
    ids = reference_ids(want, [pv.shape[0]], placeholder)
    inputs, dump = os.path.join(work, layout + "_in"), os.path.join(work, layout + "_dump")
    os.makedirs(inputs, exist_ok=True)
    np.save(os.path.join(inputs, "ids.npy"), np.array(ids, dtype=np.int64))
    np.save(os.path.join(inputs, "pv0.npy"), pv)
    subprocess.run([sys.executable, REF, "dump", "--model", model, "--inputs", inputs, "--out", dump, "--greedy",
                    str(N_NEW)], check=True, stdout=subprocess.DEVNULL)
    greedy = [int(t) for t in np.load(os.path.join(dump, "greedy.npy")) if t not in (300, 301)]
    r = run([mitten, "detokenize", "-m", model, "--ids", " ".join(str(t) for t in greedy)])
    check(f"{layout}: detokenize the reference answer", r.returncode == 0, r.stderr.decode()[-300:])
    answer = r.stdout.rstrip(b"\n")

    r = run([mitten, "run", "-m", model, "--image", images[0], "-p", PROMPT, "--max-tokens", str(N_NEW),
             "--threads", "2"])
    err = r.stderr.decode()
    check(f"{layout}: mitten run answers as the reference", r.returncode == 0 and r.stdout.rstrip(b"\n") == answer,
          f"{r.stdout!r} vs {answer!r}; {err[-300:]}")
    check(f"{layout}: mitten run's prompt is the reference's ({len(ids)} tokens, {pv.shape[0] * 16} image)",
          f"[{len(ids)} prompt tokens (0 reused, {pv.shape[0] * 16} image)" in err, err[-300:])

    r = run([mitten, "chat", "-m", model, "--max-tokens", str(N_NEW), "--threads", "2"],
            input=f"/image {images[0]}\n{PROMPT}\n/image {images[1]}\nAnd this one?\n".encode())
    err = r.stderr.decode()
    turns = re.findall(r"\[(\d+) prompt tokens \((\d+) reused, (\d+) image\)", err)
    check(f"{layout}: mitten chat answers two turns with an image each", r.returncode == 0 and len(turns) == 2,
          err[-400:])
    check(f"{layout}: chat's first answer is run's", r.stdout.startswith(answer), f"{r.stdout[:80]!r} vs {answer!r}")
    if len(turns) == 2:
        check(f"{layout}: chat's second turn reuses the first and adds the second image's tiles",
              int(turns[1][1]) >= len(ids) and int(turns[1][2]) > pv.shape[0] * 16, str(turns))

    srv = subprocess.Popen([mitten, "serve", "-m", model, "--port", "0", "--threads", "2", "--quiet"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        port, log, t0 = None, "", time.time()
        while port is None and time.time() - t0 < 60:
            line = srv.stderr.readline().decode()
            if not line:
                break
            log += line
            m = re.search(r"127\.0\.0\.1:(\d+)", line)
            port = m and int(m.group(1))
        check(f"{layout}: mitten serve starts", port is not None, log[-300:])
        if port is None:
            return
        with open(images[0], "rb") as f:
            url = "data:image/png;base64," + base64.b64encode(f.read()).decode()
        body = {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}},
                                                          {"type": "text", "text": PROMPT}]}],
                "max_tokens": N_NEW, "temperature": 0}
        req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/chat/completions", json.dumps(body).encode(),
                                     {"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as resp:
            out = json.loads(resp.read())
        content = out["choices"][0]["message"]["content"]
        usage = out.get("usage", {})
        check(f"{layout}: mitten serve answers as run", content.encode() == answer.decode(errors="replace").encode(),
              f"{content!r} vs {answer!r}")
        check(f"{layout}: serve's prompt holds the expanded image", usage.get("prompt_tokens") == len(ids), str(usage))
    finally:
        srv.terminate()
        srv.wait(timeout=30)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mitten", required=True)
    ap.add_argument("--work", required=True)
    a = ap.parse_args()
    shutil.rmtree(a.work, ignore_errors=True)
    os.makedirs(a.work)
    images = [os.path.join(a.work, "red.png"), os.path.join(a.work, "blue.png")]
    Image.new("RGB", (96, 48), (200, 30, 30)).save(images[0])
    Image.new("RGB", (40, 40), (30, 30, 200)).save(images[1])
    for layout in ("original", "hf"):
        check_layout(a.mitten, a.work, layout, images)
    print(f"{len(fails)} failed")
    sys.exit(1 if fails else 0)


if __name__ == "__main__":
    main()
