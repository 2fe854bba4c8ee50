#!/usr/bin/python3
"""Compare `mitten preprocess --video` on InternVL folders (both layouts) with the references re-implemented in
Python: decord is not in Debian, so PyAV decodes every frame (frame i of a constant-rate clip is the i-th decoded).

Usage: internvl_video_ref.py MITTEN WORK_DIR

  - original (the model card's load_video): get_index(bound=None, fps, max_frame=len-1, first_idx=0,
    num_segments) = int(seg/2 + np.round(seg*idx)); each frame PIL-resized to S x S (dynamic_preprocess with
    max_num=1 calls Image.resize without a filter: BICUBIC), ToTensor, ImageNet Normalize
  - hf (transformers' InternVLVideoProcessor): sample_frames = torch.arange(initial_shift, T, T / N).int() when
    sampling, else every frame; frames resized as uint8 tensors with torchvision's BICUBIC antialias, then the fused
    rescale + normalize (x - mean / rescale) / (std / rescale) in float32
  - mitten's flags: --nframes N is num_segments / num_frames, --fps N int(T / video_fps * N) frames, --max-frames N
    lowers the count to N; a video_preprocessor_config.json's do_sample_frames, num_frames, initial_shift, mean, std
Frame indices must be equal, pixels within one uint8 level (1 / 255 / std in normalised units).
"""
import json
import os
import shutil
import subprocess
import sys

import av
import numpy as np
import torch
from PIL import Image
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as TF

HERE = os.path.dirname(os.path.abspath(__file__))
IVL_REF = os.path.join(HERE, "..", "ref", "internvl_ref.py")
IMAGENET = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
CLIP = ([0.48145466, 0.4578275, 0.40821073], [0.26862954, 0.26130258, 0.27577711])
failures = []


def check(ok, msg):
    if not ok:
        failures.append(msg)
        print("FAIL:", msg)


def decode_all(path):
    with av.open(path) as c:
        st = c.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(st)]
        fps = float(st.average_rate)
        total = st.frames if st.frames > 0 else len(frames)
    assert total == len(frames), (total, len(frames))
    return frames, fps, total


# ---- the original's load_video (model card), re-implemented ----------------------------------------------------

def get_index(fps, max_frame, num_segments, first_idx=0):
    start, end = -100000, 100000
    start_idx = max(first_idx, round(start * fps))
    end_idx = min(round(end * fps), max_frame)
    seg_size = float(end_idx - start_idx) / num_segments
    return np.array([int(start_idx + (seg_size / 2) + np.round(seg_size * idx)) for idx in range(num_segments)])


def original_frames(frames, fps, total, n, S):
    idx = get_index(fps, total - 1, n)
    mean, std = torch.tensor(IMAGENET[0]).view(3, 1, 1), torch.tensor(IMAGENET[1]).view(3, 1, 1)
    tiles = []
    for i in idx:
        img = Image.fromarray(frames[i]).convert("RGB").resize((S, S))  # BICUBIC, Pillow's default
        x = torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).permute(2, 0, 1).float() / 255.0
        tiles.append((x - mean) / std)
    return idx, torch.stack(tiles).numpy(), IMAGENET[1]


# ---- transformers' InternVLVideoProcessor, re-implemented ------------------------------------------------------

def hf_indices(total, video_fps, num_frames=None, fps=None, initial_shift=True):
    if num_frames is None and fps is not None:
        num_frames = int(total / video_fps * fps)
    if initial_shift is True:
        initial_shift = total / num_frames / 2
    if num_frames > total:
        raise ValueError("num_frames exceeds total")
    return torch.arange(initial_shift, total, total / num_frames).int().numpy()


def hf_frames(frames, idx, S, mean, std, rescale=1 / 255):
    video = torch.from_numpy(np.stack([frames[i] for i in idx])).permute(0, 3, 1, 2)
    video = TF.resize(video, [S, S], interpolation=InterpolationMode.BICUBIC, antialias=True)
    m = torch.tensor(mean) * (1.0 / rescale)
    s = torch.tensor(std) * (1.0 / rescale)
    return TF.normalize(video.to(torch.float32), m, s).numpy()


# ---- driving mitten --------------------------------------------------------------------------------------------

def run(*args):
    return subprocess.run(list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def compare(name, got_dir, idx, pv, std):
    gi = np.load(os.path.join(got_dir, "frame_indices.npy"))
    gp = np.load(os.path.join(got_dir, "pixel_values.npy"))
    check(np.array_equal(gi, np.asarray(idx, dtype=np.int64)), f"{name}: frame indices {gi.tolist()} != "
          f"{np.asarray(idx).tolist()}")
    if gp.shape != pv.shape:
        check(False, f"{name}: pixel_values shape {gp.shape} != {pv.shape}")
        return
    tol = (1.0 / 255 / np.array(std)).reshape(1, 3, 1, 1) + 1e-5
    err = np.abs(gp.astype(np.float64) - pv) / tol
    check(float(err.max()) <= 1.0, f"{name}: pixels off by up to {float(err.max()):.3f} levels")
    print(f"{name}: {len(gi)} frames, worst {float(err.max()):.3f} of a level")


def case(mitten, work, model, video, name, flags, ref):
    out = os.path.join(work, "out_" + name)
    shutil.rmtree(out, ignore_errors=True)
    r = run(mitten, "preprocess", "-m", model, "--video", video, "--out-dir", out, *flags)
    if r.returncode != 0:
        check(False, f"{name}: mitten failed: {r.stderr}")
        return
    compare(name, out, *ref)


def main():
    mitten, work = sys.argv[1], sys.argv[2]
    os.makedirs(work, exist_ok=True)
    models = {}
    for layout in ("original", "hf"):
        models[layout] = os.path.join(work, layout)
        r = run(sys.executable, IVL_REF, "make-checkpoint", "--layout", layout, "--out", models[layout])
        assert r.returncode == 0, r.stderr
    # the hf folder with its own video processor file: sampling on, 12 frames, no shift, other mean and std
    hfv = os.path.join(work, "hf_video_cfg")
    shutil.rmtree(hfv, ignore_errors=True)
    shutil.copytree(models["hf"], hfv)
    vcfg = {"video_processor_type": "InternVLVideoProcessor", "do_sample_frames": True, "num_frames": 12,
            "initial_shift": 0, "image_mean": [0.5, 0.5, 0.5], "image_std": [0.25, 0.3, 0.35],
            "size": {"height": 32, "width": 32}, "resample": 3, "do_resize": True, "do_rescale": True,
            "do_normalize": True, "do_convert_rgb": True, "rescale_factor": 1 / 255}
    with open(os.path.join(hfv, "video_preprocessor_config.json"), "w") as f:
        json.dump(vcfg, f)
    vids = {}
    for name, size, rate, secs in (("a.mp4", "96x64", 10, 5), ("b.mkv", "160x120", 7, 37 / 7)):
        vids[name] = os.path.join(work, name)
        codec = ["-c:v", "libx264", "-pix_fmt", "yuv444p"] if name.endswith("mp4") else ["-c:v", "mjpeg", "-q:v", "2"]
        r = run("ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                f"testsrc2=size={size}:rate={rate}:duration={secs}", *codec, "-frames:v", str(round(rate * secs)),
                vids[name])
        assert r.returncode == 0, r.stderr
    S = 32
    for vname, vpath in vids.items():
        frames, fps, total = decode_all(vpath)
        o = models["original"]
        for label, flags, n in (("default", [], 32), ("nframes5", ["--nframes", "5"], 5),
                                ("fps1", ["--fps", "1"], max(1, int(total / fps * 1))),
                                ("max7", ["--max-frames", "7"], 7)):
            case(mitten, work, o, vpath, f"original_{vname}_{label}", flags, original_frames(frames, fps, total, n, S))
        h = models["hf"]
        mean, std = IMAGENET  # the tiny hf folder has no processor files: the image tiles' values (ImageNet)
        for label, flags, kw in (("all", [], None), ("nframes8", ["--nframes", "8"], {"num_frames": 8}),
                                 ("fps2", ["--fps", "2"], {"fps": 2}), ("max6", ["--max-frames", "6"],
                                                                        {"num_frames": 6})):
            idx = np.arange(total) if kw is None else hf_indices(total, fps, **kw)
            case(mitten, work, h, vpath, f"hf_{vname}_{label}", flags, (idx, hf_frames(frames, idx, S, mean, std), std))
        idx = hf_indices(total, fps, num_frames=12, initial_shift=0)
        case(mitten, work, hfv, vpath, f"hf_cfg_{vname}", [],
             (idx, hf_frames(frames, idx, S, vcfg["image_mean"], vcfg["image_std"]), vcfg["image_std"]))
        idx = hf_indices(total, fps, num_frames=9, initial_shift=0)  # the file's shift stays
        case(mitten, work, hfv, vpath, f"hf_cfg_{vname}_nframes9", ["--nframes", "9"],
             (idx, hf_frames(frames, idx, S, vcfg["image_mean"], vcfg["image_std"]), vcfg["image_std"]))

    # refusals, each naming what is wrong
    a = vids["a.mp4"]
    out = os.path.join(work, "o_bad")
    r = run(mitten, "preprocess", "-m", models["hf"], "--video", a, "--nframes", "51", "--out-dir", out)
    check(r.returncode == 1 and "num_frames" in r.stderr and "a.mp4" in r.stderr,
          f"hf: more frames than the video has: {r.stderr}")
    r = run(mitten, "preprocess", "-m", models["original"], "--video", a, "--min-pixels", "100", "--out-dir", out)
    check(r.returncode == 2 and "--min-pixels" in r.stderr, f"a Qwen-only flag: {r.returncode} {r.stderr}")
    r = run(mitten, "preprocess", "-m", models["original"], "--video", work, "--out-dir", out)
    check(r.returncode == 1 and "folder" in r.stderr, f"a folder: {r.stderr}")
    broken = os.path.join(work, "broken.mp4")
    with open(broken, "wb") as f:
        f.write(b"not a video at all")
    r = run(mitten, "preprocess", "-m", models["original"], "--video", broken, "--out-dir", out)
    check(r.returncode == 1 and "broken.mp4" in r.stderr, f"a broken file: {r.stderr}")
    bad = os.path.join(work, "hf_bad_size")
    shutil.rmtree(bad, ignore_errors=True)
    shutil.copytree(hfv, bad)
    with open(os.path.join(bad, "video_preprocessor_config.json"), "w") as f:
        json.dump(dict(vcfg, size={"height": 40, "width": 40}), f)
    r = run(mitten, "preprocess", "-m", bad, "--video", a, "--out-dir", out)
    check(r.returncode == 1 and "40" in r.stderr and "32" in r.stderr, f"frames of another side: {r.stderr}")
    if failures:
        print(f"{len(failures)} failures")
        sys.exit(1)
    print("internvl_video_ref: all checks passed")


if __name__ == "__main__":
    main()
