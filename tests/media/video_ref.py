#!/usr/bin/python3
"""Compare mitten's video decoding, frame sampling, resize and Qwen2-VL video preprocessing with PyAV and torch.

Usage: video_ref.py VIDEO_REF_DRIVER MITTEN WORK_DIR

Makes videos with the ffmpeg command (testsrc / testsrc2), then checks:
  - decode: the frames the video_ref driver reads by seeking == PyAV decoding the whole file in order, picking the
    frame shown at index / fps (the same frame as index for a constant rate, asserted), turned as ffmpeg's
    autorotate turns it (the ffmpeg command's first frame, checked)               bit-exact
    and every fifth frame read in order with the next one named decodes no more than the referenced frames and them
  - `mitten preprocess --video` == qwen-vl-utils 0.0.14's fetch_video re-implemented below (smart_nframes,
    torch.linspace(...).round(), smart_resize with the video pixel budget, torchvision resize BICUBIC antialias
    on uint8) followed by the Qwen2-VL processor (float64 rescale cast to float32, float32 normalize, temporal
    padding with the last frame, reshape + transpose): frame_indices, video_grid_thw equal, second_per_grid_ts
    equal as float32, pixel_values_videos within one uint8 level (PV_TOL_LEVELS / 255 / std in normalised units)
  - the same for a folder of frames and a list of image files (fetch_video with a list: PIL resize per image)
  - seeking: 4 frames of a one-hour clip decode at most a few keyframe intervals, and quickly
  - bad input: each fails with exit status 1 and a message naming the file (ctest's TIMEOUT catches a hang)
"""
import json
import math
import os
import subprocess
import sys
import time

import av
import numpy as np
import torch
from PIL import Image
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as TF

# One uint8 level of the resized frames. mitten's torchvision resize is byte-identical to torch 1.13's AVX2 build
# (media_resize_torch) and every case here comes out bit-identical; the level leaves room for a torch build that
# rounds its float resize differently (its DEFAULT build), which should not fail the video pipeline.
PV_TOL_LEVELS = 1.0
failures = []


def check(ok, msg):
    if not ok:
        failures.append(msg)
        print("FAIL:", msg)


# ---- qwen-vl-utils 0.0.14 (vision_process.py), re-implemented ----------------------------------------------

FRAME_FACTOR, FPS_MIN_FRAMES, FPS_MAX_FRAMES = 2, 4, 768


def round_by(n, f):
    return round(n / f) * f


def ceil_by(n, f):
    return math.ceil(n / f) * f


def floor_by(n, f):
    return math.floor(n / f) * f


def vu_smart_resize(h, w, factor, min_pixels, max_pixels):
    assert max_pixels >= min_pixels
    if max(h, w) / min(h, w) > 200:
        raise ValueError("aspect ratio")
    h_bar = max(factor, round_by(h, factor))
    w_bar = max(factor, round_by(w, factor))
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((h * w) / max_pixels)
        h_bar = floor_by(h / beta, factor)
        w_bar = floor_by(w / beta, factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (h * w))
        h_bar = ceil_by(h * beta, factor)
        w_bar = ceil_by(w * beta, factor)
    return h_bar, w_bar


def smart_nframes(ele, total, video_fps):
    if total == 1:                      # qwen-vl-utils raises; mitten takes the one frame (VALIDATION.md)
        return 1
    if "nframes" in ele:
        n = round_by(ele["nframes"], FRAME_FACTOR)
    else:
        fps = ele.get("fps", 2.0)
        min_frames = ceil_by(ele.get("min_frames", FPS_MIN_FRAMES), FRAME_FACTOR)
        max_frames = floor_by(ele.get("max_frames", min(FPS_MAX_FRAMES, total)), FRAME_FACTOR)
        n = total / video_fps * fps
        n = min(min(max(n, min_frames), max_frames), total)
        n = floor_by(n, FRAME_FACTOR)
    if not (FRAME_FACTOR <= n <= total):
        raise ValueError(f"nframes {n}")
    return n


def video_resize(frames, ele, factor):
    """frames: (N, 3, h, w) uint8 tensor -> resized (N, 3, H, W) uint8, as fetch_video's tail."""
    n, _, h, w = frames.shape
    min_pixels = ele.get("min_pixels", 128 * factor * factor)
    total_pixels = ele.get("total_pixels", 128000 * factor * factor * 0.9)
    max_pixels = max(min(768 * factor * factor, total_pixels / n * FRAME_FACTOR), int(min_pixels * 1.05))
    max_pixels = min(ele.get("max_pixels", max_pixels), max_pixels)
    H, W = vu_smart_resize(h, w, factor, min_pixels, max_pixels)
    return TF.resize(frames, [H, W], interpolation=InterpolationMode.BICUBIC, antialias=True)


def fetch_image_list(paths, ele, factor):
    """fetch_video with a list of images: PIL resize each within the image bounds, pad to an even count."""
    out = []
    for p in paths:
        im = Image.open(p).convert("RGB")
        w, h = im.size
        H, W = vu_smart_resize(h, w, factor, ele.get("min_pixels", 4 * factor * factor),
                               ele.get("max_pixels", 16384 * factor * factor))
        out.append(np.asarray(im.resize((W, H))))
    n = ceil_by(len(out), FRAME_FACTOR)
    out += [out[-1]] * (n - len(out))
    return torch.from_numpy(np.stack(out).transpose(0, 3, 1, 2).copy())


# ---- transformers' Qwen2-VL processor on the frames -----------------------------------------------------------

def processor(frames, cfg):
    """frames: (N, 3, H, W) uint8 -> pixel_values (grid_t*gh*gw, 3*T*P*P) float32, grid."""
    P, T, M = cfg["patch_size"], cfg["temporal_patch_size"], cfg["merge_size"]
    x = (frames.numpy().astype(np.float64) * (1 / 255)).astype(np.float32)
    mean = np.array(cfg["image_mean"], np.float32)[None, :, None, None]
    std = np.array(cfg["image_std"], np.float32)[None, :, None, None]
    x = (x - mean) / std
    if x.shape[0] % T:
        x = np.concatenate([x, np.repeat(x[-1:], T - x.shape[0] % T, axis=0)])
    n, C, H, W = x.shape
    gt, gh, gw = n // T, H // P, W // P
    x = x.reshape(gt, T, C, gh // M, M, P, gw // M, M, P).transpose(0, 3, 6, 4, 7, 2, 1, 5, 8)
    return x.reshape(gt * gh * gw, C * T * P * P), (gt, gh, gw)


# ---- reference decoding with PyAV -----------------------------------------------------------------------------

def probe_rotation(path):
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_streams", "-of", "json", path],
                         capture_output=True, text=True, check=True).stdout
    for s in json.loads(out)["streams"]:
        for sd in s.get("side_data_list", []):
            if "rotation" in sd:
                return int(sd["rotation"])
    return 0


def decode_all(path):
    """Every frame in order with its timestamp (seconds from the stream start), header fps and frame count."""
    with av.open(path) as c:
        st = c.streams.video[0]
        tb = float(st.time_base)
        start = st.start_time if st.start_time is not None else 0
        frames, times = [], []
        for f in c.decode(st):
            frames.append(f.to_ndarray(format="rgb24"))
            times.append(((f.pts if f.pts is not None else f.dts) - start) * tb)
        fps = float(st.average_rate) if st.average_rate else float(st.guessed_rate)
        dur = st.duration * tb if st.duration else c.duration / 1e6
        total = st.frames if st.frames > 0 else max(1, round(dur * fps))
    k = probe_rotation(path) // 90 % 4
    frames = [np.ascontiguousarray(np.rot90(a, k)) for a in frames]
    return frames, np.array(times), fps, total


def pick(times, fps, index):
    """The frame shown at index / fps: the last one less than half an interval later, else the first."""
    ok = np.nonzero(times < index / fps + 0.5 / fps - 1e-9)[0]
    return int(ok[-1]) if len(ok) else 0


# ---- test videos -------------------------------------------------------------------------------------------------

def ffmpeg(*args):
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True, env=dict(os.environ, SVT_LOG="1"))


def encoders():
    out = subprocess.run(["ffmpeg", "-hide_banner", "-encoders"], capture_output=True, text=True).stdout
    return {line.split()[1] for line in out.splitlines()[1:] if len(line.split()) > 1}


def make_videos(d):
    enc = encoders()
    v = {}

    def src(pattern, size, rate, secs):
        return ["-f", "lavfi", "-i", f"{pattern}=size={size}:rate={rate}", "-t", str(secs)]

    v["h264.mp4"] = src("testsrc2", "320x240", 25, 4) + ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-g", "12"]
    v["vp9.webm"] = src("testsrc2", "176x144", 24, 3) + ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used",
                                                         "8", "-b:v", "300k"]
    v["mjpeg.mkv"] = src("testsrc", "160x120", 15, 3) + ["-c:v", "mjpeg", "-q:v", "4"]
    v["odd.mp4"] = src("testsrc2", "97x61", 10, 2) + ["-c:v", "libx264", "-pix_fmt", "yuv444p"]
    v["one.mp4"] = src("testsrc2", "128x96", 10, 1) + ["-frames:v", "1", "-c:v", "libx264", "-pix_fmt", "yuv420p"]
    v["wide.mp4"] = src("testsrc2", "640x120", 30, 2) + ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-bf", "3"]
    if "libsvtav1" in enc:
        v["av1.mkv"] = src("testsrc2", "192x128", 10, 2) + ["-c:v", "libsvtav1", "-preset", "12"]
    elif "libaom-av1" in enc:
        v["av1.mkv"] = src("testsrc2", "192x128", 10, 2) + ["-c:v", "libaom-av1", "-cpu-used", "8"]
    else:
        print("note: this ffmpeg has no AV1 encoder; AV1 is not tested")
    # Variable frame rate: 12 frames 40 ms apart, then 12 frames 150 ms apart.
    v["vfr.mp4"] = src("testsrc2", "128x96", 25, 2) + [
        "-vf", "setpts='if(lt(N,12),N*0.04,0.48+(N-12)*0.15)/TB'", "-fps_mode", "vfr", "-c:v", "libx264",
        "-pix_fmt", "yuv420p"]
    v["long.mp4"] = src("testsrc", "32x32", 1, 3600) + ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-g", "60"]
    for name, args in v.items():
        ffmpeg(*args, os.path.join(d, name))
    for deg in (90, 180, 270):
        ffmpeg("-i", os.path.join(d, "h264.mp4"), "-c", "copy", "-metadata:s:v:0", f"rotate={deg}",
               os.path.join(d, f"rot{deg}.mp4"))
    return sorted(list(v) + ["rot90.mp4", "rot180.mp4", "rot270.mp4"])


def run(*args, timeout=120):
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=timeout)


def read_raw(path, n, w, h):
    return np.fromfile(path, np.uint8).reshape(n, h, w, 3)


def check_decode(driver, d, name):
    path = os.path.join(d, name)
    frames, times, fps, total = decode_all(path)
    r = run(driver, "info", path)
    check(r.returncode == 0, f"{name}: info failed: {r.stderr}")
    if r.returncode:
        return
    w, h, n, mfps, dur, rot = r.stdout.split()
    check(int(n) == total, f"{name}: frame count {n}, PyAV header gives {total}")
    check(abs(float(mfps) - fps) < 1e-9, f"{name}: fps {mfps}, PyAV {fps}")
    if not name.startswith("vfr"):
        check(len(frames) == total, f"{name}: PyAV decodes {len(frames)} frames, header says {total}")
    if name.startswith("rot"):
        # the turn itself checked against ffmpeg's autorotate, not only against ffprobe's angle
        raw = subprocess.run(["ffmpeg", "-v", "error", "-i", path, "-frames:v", "1", "-pix_fmt", "rgb24", "-f",
                              "rawvideo", "-"], capture_output=True, check=True).stdout
        check(np.array_equal(np.frombuffer(raw, np.uint8).reshape(frames[0].shape), frames[0]),
              f"{name}: PyAV's frame turned by ffprobe's angle differs from ffmpeg's autorotated frame")
    rng = np.random.default_rng(len(name))
    want = sorted(set([0, total - 1] + list(rng.integers(0, total, 6))))
    want += [want[len(want) // 2], 0]             # backward and repeated reads
    out = os.path.join(d, name + ".raw")
    r = run(driver, "frames", path, out, *want)
    check(r.returncode == 0, f"{name}: frames failed: {r.stderr}")
    if r.returncode:
        return
    got = read_raw(out, len(want), int(w), int(h))
    for k, i in enumerate(want):
        j = pick(times, fps, i)
        if not name.startswith("vfr"):
            check(j == min(i, len(frames) - 1), f"{name}: frame {i} by time is decoded frame {j}")
        check(got[k].shape == frames[j].shape and np.array_equal(got[k], frames[j]),
              f"{name}: frame {i} differs from PyAV's frame {j}")
    # every fifth frame in order, each read told the next (as the sampler reads): the frames PyAV gives, and no frame
    # decoded twice (a seek to a keyframe shown after the sought frame lands a whole GOP back) nor needlessly
    seq = list(range(0, total, 5))
    r = run(driver, "sampled", path, out, *seq)
    check(r.returncode == 0, f"{name}: sampled failed: {r.stderr}")
    if r.returncode:
        return
    got = read_raw(out, len(seq), int(w), int(h))
    for k, i in enumerate(seq):
        j = pick(times, fps, i)
        check(np.array_equal(got[k], frames[j]), f"{name}: sampled frame {i} differs from PyAV's frame {j}")
    # at most the frames others refer to (ffmpeg skipping the rest) and the samples themselves,
    md5 = subprocess.run(["ffmpeg", "-v", "error", "-skip_frame", "noref", "-i", path, "-map", "0:v:0", "-f",
                          "framemd5", "-"], capture_output=True, text=True, check=True).stdout
    # and 4 the decoder takes past the last sample, which no next one bounds
    needed = sum(1 for line in md5.splitlines() if line and not line.startswith("#")) + len(seq) + 4
    decoded = int(r.stdout.split()[1])
    check(decoded <= needed, f"{name}: {decoded} frames decoded to read every fifth of {total} in order, more than "
                             f"the {needed} referenced or read")


def write_cfg(d, patch, mean, std):
    os.makedirs(d, exist_ok=True)
    cfg = {"patch_size": patch, "temporal_patch_size": 2, "merge_size": 2, "image_mean": mean, "image_std": std,
           "min_pixels": 3136, "max_pixels": 12845056}
    with open(os.path.join(d, "preprocessor_config.json"), "w") as f:
        json.dump(cfg, f)
    return cfg


def compare(tag, out_dir, pv, grid, spg, indices, cfg):
    ld = lambda n: np.load(os.path.join(out_dir, n + ".npy"))
    got_pv, got_grid, got_spg, got_idx = (ld("pixel_values_videos"), ld("video_grid_thw"), ld("second_per_grid_ts"),
                                          ld("frame_indices"))
    check(got_idx.dtype == np.int64 and list(got_idx) == list(indices),
          f"{tag}: frame_indices {list(got_idx)[:12]} vs {list(indices)[:12]}")
    check(got_grid.dtype == np.int64 and got_grid.tolist() == [list(grid)], f"{tag}: grid {got_grid} vs {grid}")
    check(got_spg.dtype == np.float32 and got_spg.shape == (1,) and got_spg[0] == np.float32(spg),
          f"{tag}: second_per_grid_ts {got_spg} vs {np.float32(spg)}")
    check(got_pv.dtype == np.float32 and got_pv.shape == pv.shape, f"{tag}: pixel_values {got_pv.shape} vs {pv.shape}")
    if got_pv.shape == pv.shape:
        tol = PV_TOL_LEVELS / 255 / min(cfg["image_std"]) + 1e-5
        diff = np.abs(got_pv - pv)
        check(diff.max() <= tol, f"{tag}: pixel_values differ by {diff.max():.4g} (> {tol:.4g})")
        print(f"{tag}: grid {tuple(grid)}, max |diff| {diff.max():.3g} (tolerance {tol:.3g}), "
              f"{(diff > 1e-6).mean() * 100:.3f}% of values differ")


def check_preprocess(mitten, d, name, model, cfg, ele, flags):
    path = os.path.join(d, name)
    frames, times, fps, total = decode_all(path)
    factor = cfg["patch_size"] * 2
    n = smart_nframes(ele, total, fps)
    idx = torch.linspace(0, total - 1, n).round().long().tolist() if n > 1 else [0]
    clip = torch.from_numpy(np.stack([frames[pick(times, fps, i)] for i in idx]).transpose(0, 3, 1, 2).copy())
    clip = video_resize(clip, ele, factor)
    pv, grid = processor(clip, cfg)
    spg = cfg["temporal_patch_size"] / (n / max(total, 1e-6) * fps)
    out = os.path.join(d, "out_" + name + "_" + "_".join(flags).replace("-", ""))
    r = run(mitten, "preprocess", "-m", model, "--video", path, "--out-dir", out, *flags)
    check(r.returncode == 0, f"{name} {flags}: mitten failed: {r.stderr}")
    if r.returncode == 0:
        compare(f"{name} {' '.join(flags)}", out, pv, grid, spg, idx, cfg)


def check_image_list(mitten, d, model, cfg):
    frames, _, _, _ = decode_all(os.path.join(d, "mjpeg.mkv"))
    fd = os.path.join(d, "frames")
    os.makedirs(fd, exist_ok=True)
    paths = []
    for i in range(0, 45, 3)[:7]:                 # 7 frames: an odd count, padded to 8
        p = os.path.join(fd, f"f{i:03d}.png")
        Image.fromarray(frames[i]).save(p)
        paths.append(p)
    factor = cfg["patch_size"] * 2
    for tag, args, ele in (("folder", ["--video", fd], {}),
                           ("list", sum([["--video", p] for p in paths[:3]], []) + ["--fps", "4"], {"fps": 4.0})):
        use = paths if tag == "folder" else paths[:3]
        clip = video_resize(fetch_image_list(use, ele, factor), ele, factor)
        pv, grid = processor(clip, cfg)
        out = os.path.join(d, "out_" + tag)
        r = run(mitten, "preprocess", "-m", model, *args, "--out-dir", out)
        check(r.returncode == 0, f"{tag}: mitten failed: {r.stderr}")
        if r.returncode == 0:
            compare(tag, out, pv, grid, 2 / ele.get("fps", 2.0), range(clip.shape[0]), cfg)


def check_bad_lists(mitten, d, model):
    """Frame lists that cannot make a clip: each refused with exit 1 and the offending file or folder named."""
    bd = os.path.join(d, "badlists")
    empty, mixed = os.path.join(bd, "empty"), os.path.join(bd, "mixed")
    os.makedirs(empty, exist_ok=True)
    os.makedirs(mixed, exist_ok=True)
    Image.new("RGB", (64, 48), (10, 20, 30)).save(os.path.join(mixed, "a.png"))
    Image.new("RGB", (128, 48), (10, 20, 30)).save(os.path.join(mixed, "b.png"))
    text = os.path.join(bd, "notes.png")
    with open(text, "w") as f:
        f.write("not an image\n")
    cases = [("empty folder", ["--video", empty], empty),
             ("frames of two sizes", ["--video", mixed], os.path.join(mixed, "b.png")),
             ("a list with a text file", ["--video", os.path.join(mixed, "a.png"), "--video", text], text)]
    for tag, args, named in cases:
        r = run(mitten, "preprocess", "-m", model, *args, "--out-dir", os.path.join(bd, "out"))
        print(f"{tag}: exit {r.returncode}: {r.stderr.strip()}")
        check(r.returncode == 1 and named in r.stderr, f"{tag}: expected exit 1 naming {named}")
    r = run(mitten, "preprocess", "-m", model, "--video", mixed, "--nframes", "2", "--out-dir", os.path.join(bd, "o"))
    check(r.returncode == 2, f"--nframes with a folder of frames: exit {r.returncode}, expected a usage error")


def check_seeking(driver, d):
    path = os.path.join(d, "long.mp4")
    t0 = time.monotonic()
    r = run(driver, "frames", path, os.path.join(d, "long.raw"), 0, 1200, 2400, 3599)
    secs = time.monotonic() - t0
    check(r.returncode == 0, f"long.mp4: {r.stderr}")
    decoded = int(r.stdout.split()[1]) if r.returncode == 0 else -1
    print(f"long.mp4 (3600 frames, keyframe every 60): 4 frames read in {secs:.3f} s, {decoded} frames decoded")
    check(0 < decoded <= 4 * 60 + 16, f"long.mp4: {decoded} frames decoded for 4 (seeking not used?)")
    check(secs < 5, f"long.mp4: {secs:.1f} s for 4 frames")


def write_bad(d):
    b = {}
    with open(os.path.join(d, "src.mp4"), "rb") as f:
        good = f.read()

    def put(name, data):
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
        b[name] = os.path.join(d, name)

    put("text.mp4", b"this is not a video\n" * 50)
    ffmpeg("-f", "lavfi", "-i", "sine=d=1", "-c:a", "aac", os.path.join(d, "audio.m4a"))
    b["audio.m4a"] = os.path.join(d, "audio.m4a")
    put("zero.y4m", b"YUV4MPEG2 W64 H48 F10:1 Ip A1:1 C420jpeg\n")
    frame = b"FRAME\n" + bytes(64 * 48 * 3 // 2)
    put("huge.y4m", b"YUV4MPEG2 W12000 H12000 F10:1 Ip A1:1 C420jpeg\n" + frame)      # over mitten's limit
    put("thin.y4m", b"YUV4MPEG2 W12000 H2 F10:1 Ip A1:1 C420jpeg\n" + b"FRAME\n" + bytes(36000))
    put("huger.y4m", b"YUV4MPEG2 W60000 H60000 F10:1 Ip A1:1 C420jpeg\n" + frame)    # over FFmpeg's
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x48:rate=10", "-t", "2", "-c:v", "mjpeg", os.path.join(d, "m.avi"))
    with open(os.path.join(d, "m.avi"), "rb") as f:
        avi = bytearray(f.read())
    i = avi.find(b"strh")
    avi[i + 40:i + 44] = (10 ** 9).to_bytes(4, "little")         # strh.dwLength: a billion frames
    j = avi.find(b"avih")
    avi[j + 24:j + 28] = (10 ** 9).to_bytes(4, "little")         # avih.dwTotalFrames
    put("billion.avi", bytes(avi))
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=128x96:rate=25", "-t", "4", "-c:v", "mjpeg", os.path.join(d, "mj.mkv"))
    with open(os.path.join(d, "mj.mkv"), "rb") as f:
        mkv = f.read()
    put("truncated.mkv", mkv[:len(mkv) * 6 // 10])
    put("truncated.mp4", good[:len(good) // 2])
    rng = np.random.default_rng(7)
    bad = bytearray(good)
    mid = len(bad) // 2
    bad[mid:mid + 3000] = rng.integers(0, 256, 3000, dtype=np.uint8).tobytes()
    put("corrupt.mp4", bytes(bad))
    bad = bytearray(mkv)
    mid = len(bad) // 2
    bad[mid:mid + 3000] = rng.integers(0, 256, 3000, dtype=np.uint8).tobytes()
    put("corrupt.mkv", bytes(bad))
    return b


def check_bad(mitten, d, model):
    bd = os.path.join(d, "bad")
    os.makedirs(bd, exist_ok=True)
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25", "-t", "4", "-c:v", "libx264", "-pix_fmt", "yuv420p",
           "-movflags", "+faststart", os.path.join(bd, "src.mp4"))
    for name, path in write_bad(bd).items():
        # Every frame of corrupt.mkv is read: MJPEG frames are all keyframes, so sampling would seek past the damage.
        more = ["--nframes", "100"] if name == "corrupt.mkv" else []
        r = run(mitten, "preprocess", "-m", model, "--video", path, "--out-dir", os.path.join(bd, "out"), *more,
                timeout=60)
        msg = r.stderr.strip()
        print(f"{name}: exit {r.returncode}: {msg}")
        check(r.returncode == 1 and path in msg, f"{name}: expected exit 1 and a message naming the file")
        check("Sanitizer" not in r.stderr and "runtime error" not in r.stderr, f"{name}: sanitizer report")


def main():
    driver, mitten, work = sys.argv[1:4]
    d = os.path.join(work, "videos")
    os.makedirs(d, exist_ok=True)
    names = make_videos(d)
    for name in names:
        if name != "long.mp4":
            check_decode(driver, d, name)
    check_seeking(driver, d)

    q25 = write_cfg(os.path.join(work, "qwen25"), 14, [0.48145466, 0.4578275, 0.40821073],
                    [0.26862954, 0.26130258, 0.27577711])
    q3 = write_cfg(os.path.join(work, "qwen3"), 16, [0.5, 0.5, 0.5], [0.5, 0.5, 0.5])
    m25, m3 = os.path.join(work, "qwen25"), os.path.join(work, "qwen3")
    for name in names:
        if name != "long.mp4":
            check_preprocess(mitten, d, name, m25, q25, {}, [])
    check_preprocess(mitten, d, "long.mp4", m25, q25, {"nframes": 6}, ["--nframes", "6"])
    check_preprocess(mitten, d, "h264.mp4", m3, q3, {}, [])
    check_preprocess(mitten, d, "vp9.webm", m3, q3, {"fps": 1.0, "min_frames": 2}, ["--fps", "1", "--min-frames", "2"])
    check_preprocess(mitten, d, "h264.mp4", m25, q25, {"nframes": 5}, ["--nframes", "5"])
    check_preprocess(mitten, d, "h264.mp4", m25, q25, {"fps": 3.0, "max_frames": 10}, ["--fps", "3", "--max-frames",
                                                                                        "10"])
    check_preprocess(mitten, d, "h264.mp4", m25, q25, {"min_pixels": 3136, "max_pixels": 50000},
                     ["--min-pixels", "3136", "--max-pixels", "50000"])
    check_preprocess(mitten, d, "h264.mp4", m25, q25, {"min_pixels": 200000, "total_pixels": 1000000},
                     ["--min-pixels", "200000", "--total-pixels", "1000000"])
    check_preprocess(mitten, d, "mjpeg.mkv", m25, q25, {"total_pixels": 300000}, ["--total-pixels", "300000"])
    check_image_list(mitten, d, m25, q25)
    check_bad_lists(mitten, work, m25)

    r = run(mitten, "preprocess", "-m", m25, "--video", os.path.join(d, "h264.mp4"), "--nframes", "1000",
            "--out-dir", os.path.join(work, "o"))
    check(r.returncode == 1 and "nframes" in r.stderr, f"nframes over the frame count: {r.stderr}")
    r = run(mitten, "preprocess", "-m", m25, "--video", os.path.join(d, "h264.mp4"), "--max-pixels", "50000",
            "--out-dir", os.path.join(work, "o"))
    check(r.returncode == 1 and "max_pixels" in r.stderr, f"max_pixels below the default min_pixels: {r.stderr}")
    r = run(mitten, "preprocess", "--help")
    check(all(f in r.stdout for f in ("--video", "--fps", "--nframes", "--min-frames", "--max-frames",
                                      "--min-pixels", "--max-pixels", "--total-pixels")), "--help lists the options")
    check_bad(mitten, work, m25)
    if failures:
        print(f"{len(failures)} failures")
        sys.exit(1)
    print("video_ref: all checks passed")


if __name__ == "__main__":
    main()
