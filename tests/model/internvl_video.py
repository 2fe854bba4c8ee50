#!/usr/bin/python3
"""mitten run --video and serve's video_url on tiny InternVL checkpoints (tests/ref/internvl_ref.py) in both layouts,
with a clip ffmpeg makes here (exit 77, skipped, without the ffmpeg command).

For each layout the reference prompt is built as its reference builds it, from the folder's chat template rendered
by jinja2:
  - original (the model card): the question is video_prefix + PROMPT, video_prefix = "".join(f"Frame{i}: <image>\\n")
    over the frames, and each "<image>" becomes <img> + <IMG_CONTEXT> x 16 + </img> (one tile a frame);
  - hf (InternVLProcessor): the template's "<video>" becomes "\\n".join(f"Frame{i}: <img>" + <IMG_CONTEXT> x 16 +
    "</img>");
the frames are `mitten preprocess --video`'s (media_internvl_video checks those against the references). The greedy
answer of internvl_ref.py on those ids and frames is what `mitten run --video` must print, with that many prompt
tokens; `mitten serve` must give it for a video_url data: URL too, and an image with the video must be answered as
the reference answers the two. --max-frames caps the frames.

    internvl_video.py --mitten MITTEN --work DIR
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

PROMPT = "What happens in the video?"
N_NEW = 6
fails = []


def check(label, ok, detail=""):
    print(("ok   " if ok else "FAIL ") + label + ("" if ok else ": " + detail))
    if not ok:
        fails.append(label)


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, timeout=180, **kw)


def reference_ids(text, tiles):
    """The tiny tokenizer's ids of text (added tokens split out, every other byte its own id), each "<image>" made
    <img> + <IMG_CONTEXT> x (tiles * 16) + </img> in order."""
    specials = {t: i for i, t in ivr.ADDED.items()}
    ids, it = [], iter(tiles)
    for piece in re.split("(" + "|".join(re.escape(t) for t in ["<image>", *specials]) + ")", text):
        if piece == "<image>":
            ids += [ivr.IMG_START] + [ivr.IMG_CONTEXT] * (next(it) * 16) + [ivr.IMG_END]
        elif piece in specials:
            ids.append(specials[piece])
        elif piece:
            ids += list(piece.encode())
    return ids


def prompt_text(layout, frames, with_image):
    """The rendered prompt with every image and frame as "<image>", as each reference writes it."""
    if layout == "original":
        prefix = "<image>\n" if with_image else ""
        prefix += "".join(f"Frame{i + 1}: <image>\n" for i in range(frames))
        messages = [{"role": "user", "content": prefix + PROMPT}]
        return jinja2.Environment().from_string(ivr.ORIGINAL_CHAT_TEMPLATE).render(messages=messages,
                                                                                  add_generation_prompt=True)
    parts = ([{"type": "image"}] if with_image else []) + [{"type": "video"}, {"type": "text", "text": PROMPT}]
    text = jinja2.Environment().from_string(ivr.CHAT_TEMPLATE).render(messages=[{"role": "user", "content": parts}],
                                                                      add_generation_prompt=True)
    video = "\n".join(f"Frame{i + 1}: <image>" for i in range(frames))
    return text.replace("<IMG_CONTEXT>", "<image>").replace("<video>", video)


def reference_answer(mitten, work, model, name, ids, pixel_arrays):
    inputs, dump = os.path.join(work, name + "_in"), os.path.join(work, name + "_dump")
    os.makedirs(inputs, exist_ok=True)
    np.save(os.path.join(inputs, "ids.npy"), np.array(ids, dtype=np.int64))
    for k, pv in enumerate(pixel_arrays):
        np.save(os.path.join(inputs, f"pv{k}.npy"), pv)
    subprocess.run([sys.executable, REF, "dump", "--model", model, "--inputs", inputs, "--out", dump, "--greedy",
                    str(N_NEW)], check=True, stdout=subprocess.DEVNULL)
    greedy = [int(t) for t in np.load(os.path.join(dump, "greedy.npy")) if t not in (300, 301)]
    r = run([mitten, "detokenize", "-m", model, "--ids", " ".join(str(t) for t in greedy)])
    check(f"{name}: detokenize the reference answer", r.returncode == 0, r.stderr.decode()[-300:])
    return r.stdout.rstrip(b"\n")


def serve_answer(mitten, model, clip):
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
        if port is None:
            return None, log
        with open(clip, "rb") as f:
            url = "data:video/mp4;base64," + base64.b64encode(f.read()).decode()
        body = {"messages": [{"role": "user", "content": [{"type": "video_url", "video_url": {"url": url}},
                                                          {"type": "text", "text": PROMPT}]}],
                "max_tokens": N_NEW, "temperature": 0}
        req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/chat/completions", json.dumps(body).encode(),
                                     {"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=120) as resp:
            return json.loads(resp.read()), log
    finally:
        srv.terminate()
        srv.wait(timeout=30)


def check_layout(mitten, work, layout, clip, image):
    model = os.path.join(work, layout)
    subprocess.run([sys.executable, REF, "make-checkpoint", "--layout", layout, "--out", model], check=True,
                   stdout=subprocess.DEVNULL)
    pre = os.path.join(work, layout + "_pre")
    r = run([mitten, "preprocess", "-m", model, "--video", clip, "--out-dir", pre])
    check(f"{layout}: mitten preprocess --video", r.returncode == 0, r.stderr.decode()[-300:])
    frames = np.load(os.path.join(pre, "pixel_values.npy"))
    # the original samples 32 segments by default, transformers every frame of the 12
    want_frames = 32 if layout == "original" else 12
    check(f"{layout}: {want_frames} frames of one tile", frames.shape == (want_frames, 3, 32, 32), str(frames.shape))
    n = frames.shape[0]

    ids = reference_ids(prompt_text(layout, n, False), [1] * n)
    answer = reference_answer(mitten, work, model, layout + "_video", ids, [frames])
    r = run([mitten, "run", "-m", model, "--video", clip, "-p", PROMPT, "--max-tokens", str(N_NEW), "--threads", "2"])
    err = r.stderr.decode()
    check(f"{layout}: mitten run --video answers as the reference", r.returncode == 0 and
          r.stdout.rstrip(b"\n") == answer, f"{r.stdout!r} vs {answer!r}; {err[-300:]}")
    check(f"{layout}: run's prompt is the reference's ({len(ids)} tokens, {n * 16} image)",
          f"[{len(ids)} prompt tokens (0 reused, {n * 16} image)" in err, err[-300:])

    r = run([mitten, "preprocess", "-m", model, "--image", image, "--out-dir", pre + "_img"])
    tiles = np.load(os.path.join(pre + "_img", "pixel_values.npy"))
    ids2 = reference_ids(prompt_text(layout, n, True), [tiles.shape[0]] + [1] * n)
    answer2 = reference_answer(mitten, work, model, layout + "_image_video", ids2, [tiles, frames])
    r = run([mitten, "run", "-m", model, "--image", image, "--video", clip, "-p", PROMPT, "--max-tokens", str(N_NEW),
             "--threads", "2"])
    err = r.stderr.decode()
    check(f"{layout}: an image then a video answered as the reference", r.returncode == 0 and
          r.stdout.rstrip(b"\n") == answer2 and f"[{len(ids2)} prompt tokens" in err,
          f"{r.stdout!r} vs {answer2!r}; {err[-300:]}")

    out, log = serve_answer(mitten, model, clip)
    check(f"{layout}: mitten serve starts", out is not None, log[-300:])
    if out:
        content = out["choices"][0]["message"]["content"]
        check(f"{layout}: serve answers a video_url as run", content.encode() == answer.decode(errors="replace")
              .encode(), f"{content!r} vs {answer!r}")
        check(f"{layout}: serve's prompt holds the expanded video", out.get("usage", {}).get("prompt_tokens") ==
              len(ids), str(out.get("usage")))

    r = run([mitten, "run", "-m", model, "--video", clip, "-p", PROMPT, "--max-tokens", "1", "--max-frames", "4"])
    check(f"{layout}: --max-frames 4 gives 4 frames", r.returncode == 0 and "64 image)" in r.stderr.decode(),
          r.stderr.decode()[-300:])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mitten", required=True)
    ap.add_argument("--work", required=True)
    a = ap.parse_args()
    if not shutil.which("ffmpeg"):
        print("SKIP: no ffmpeg command to make the clip")
        sys.exit(77)
    shutil.rmtree(a.work, ignore_errors=True)
    os.makedirs(a.work)
    clip = os.path.join(a.work, "clip.mp4")
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    "testsrc2=size=80x48:rate=6:duration=2", "-c:v", "libx264", "-pix_fmt", "yuv420p", clip],
                   check=True)
    image = os.path.join(a.work, "red.png")
    Image.new("RGB", (64, 32), (200, 30, 30)).save(image)
    for layout in ("original", "hf"):
        check_layout(a.mitten, a.work, layout, clip, image)
    print(f"{len(fails)} failed")
    sys.exit(1 if fails else 0)


if __name__ == "__main__":
    main()
