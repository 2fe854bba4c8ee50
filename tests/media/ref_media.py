#!/usr/bin/python3
"""Compare mitten's image decode, bicubic resize and Qwen2-VL / Qwen3-VL preprocessing with PIL and numpy.

Usage: ref_media.py MEDIA_REF_DRIVER WORK_DIR

Writes test images with PIL (and a small PNG writer below for what PIL cannot write: 16-bit colour, sub-byte
depths, palette indices past PLTE, Adam7), then for each one checks, through the media_ref driver:
  - decode  == numpy.asarray(Image.open(f).convert("RGB"))                  bit-exact
  - resize  == Image.resize((w, h), Image.BICUBIC) for several sizes           bit-exact
  - pixel_values, image_grid_thw == the numpy re-implementation below of transformers' slow
    Qwen2VLImageProcessor (4.57: smart_resize, PIL resize, float64 rescale then float32, float32 normalize,
    temporal padding, reshape + transpose(0,3,6,4,7,2,1,5,8))           bit-exact (see PV_TOL)
    for each of several preprocessor configs, among them Qwen2.5-VL's and Qwen3-VL's published files
    (Qwen3-VL: patch 16, merge 2 -> factor 32, mean/std 0.5, bounds from size.shortest/longest_edge)
  - the config mitten reads from many preprocessor_config.json variants == load_cfg below, which combines
    size and min/max_pixels as transformers' Qwen2VLImageProcessorFast.__init__ does  exact, errors alike
  - smart_resize on thousands of sizes == the Python function below         exact
  - truncated files: PIL and mitten both refuse them
"""
import io
import json
import math
import os
import struct
import subprocess
import sys
import zlib

import numpy as np
from PIL import Image

# Every float operation of HF's procedure is reproduced in the same dtype and order, so the values agree bit for
# bit. A looser bound (1e-6 would do for the model) would hide a changed operation, e.g. rescaling in float32,
# which moves ~1 ulp in most arrays.
PV_TOL = 0.0
failures = []


def check(ok, msg):
    if not ok:
        failures.append(msg)
        print("FAIL:", msg)


# ---- transformers' Qwen2-VL procedure, re-implemented from transformers 4.57 -------------------------------

def smart_resize(height, width, factor, min_pixels, max_pixels):
    if max(height, width) / min(height, width) > 200:
        raise ValueError("aspect ratio")
    h_bar = round(height / factor) * factor
    w_bar = round(width / factor) * factor
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


HERE = os.path.dirname(os.path.abspath(__file__))
QWEN3_VL_DIR = os.path.join(HERE, "data", "qwen3-vl-4b-instruct")   # the published file, byte for byte

# What mitten uses for a folder without preprocessor_config.json (transformers would fail to load one).
FAMILY_DEFAULTS = {
    "qwen2.5-vl": {"min_pixels": 3136, "max_pixels": 12845056, "patch_size": 14, "temporal_patch_size": 2,
                   "merge_size": 2, "image_mean": [0.48145466, 0.4578275, 0.40821073],
                   "image_std": [0.26862954, 0.26130258, 0.27577711], "rescale_factor": 1 / 255},
    "qwen3-vl": {"min_pixels": 65536, "max_pixels": 16777216, "patch_size": 16, "temporal_patch_size": 2,
                 "merge_size": 2, "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5],
                 "rescale_factor": 1 / 255},
}
# Qwen2VLImageProcessorFast's class attributes: what a field the file omits gets.
HF_CLASS_DEFAULTS = dict(FAMILY_DEFAULTS["qwen2.5-vl"], min_pixels=56 * 56, max_pixels=28 * 28 * 1280)
VALID_SIZE_DICT_KEYS = ({"height", "width"}, {"shortest_edge"}, {"shortest_edge", "longest_edge"},
                        {"longest_edge"}, {"max_height", "max_width"})


def hf_fast_bounds(j):
    """(min_pixels, max_pixels) as transformers 5.0.0.dev0 gets them from a preprocessor_config.json:
    Qwen2VLImageProcessorFast.__init__ (top-level min/max_pixels each replace one edge of size, after which both
    edges must be there), then BaseImageProcessorFast.__init__'s get_size_dict (only the allowed key sets).
    _further_process_kwargs later rebuilds size from min/max_pixels when both are set: the same values.
    Raises ValueError (TypeError, AttributeError for a size that is no dict) where transformers does."""
    size, min_pixels, max_pixels = j.get("size"), j.get("min_pixels"), j.get("max_pixels")
    size = {"shortest_edge": 56 * 56, "longest_edge": 28 * 28 * 1280} if size is None else dict(size)
    if min_pixels is not None:
        size["shortest_edge"] = min_pixels
        size.pop("min_pixels", None)
    if max_pixels is not None:
        size["longest_edge"] = max_pixels
        size.pop("max_pixels", None)
    if "shortest_edge" not in size or "longest_edge" not in size:
        raise ValueError("size must contain 'shortest_edge' and 'longest_edge' keys.")
    if set(size) not in VALID_SIZE_DICT_KEYS:
        raise ValueError(f"size must have one of the following set of keys: {VALID_SIZE_DICT_KEYS}")
    return size["shortest_edge"], size["longest_edge"]


def load_cfg(model_dir, family="qwen2.5-vl"):
    path = os.path.join(model_dir, "preprocessor_config.json")
    if not os.path.exists(path):
        return dict(FAMILY_DEFAULTS[family])
    j = json.load(open(path))
    cfg = dict(HF_CLASS_DEFAULTS)
    for k in cfg:
        if j.get(k) is not None:
            cfg[k] = j[k]
    try:
        lo, hi = hf_fast_bounds(j)
    except (TypeError, AttributeError) as e:
        raise ValueError(str(e))
    # mitten's own checks on top (transformers would go on and fail later, or resize oddly).
    for v in (lo, hi):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v != math.floor(v) or not 1 <= v <= 1 << 30:
            raise ValueError(f"bound {v!r}")
    if lo > hi:
        raise ValueError("min_pixels > max_pixels")
    cfg["min_pixels"], cfg["max_pixels"] = int(lo), int(hi)
    return cfg


def hf_preprocess(rgb, cfg):
    """rgb: (H, W, 3) uint8 from PIL. Returns (pixel_values float32 (N, C*T*P*P), (t, gh, gw))."""
    P, T, M = cfg["patch_size"], cfg["temporal_patch_size"], cfg["merge_size"]
    h, w = rgb.shape[:2]
    rh, rw = smart_resize(h, w, P * M, cfg["min_pixels"], cfg["max_pixels"])
    img = np.asarray(Image.fromarray(rgb).resize((rw, rh), resample=Image.Resampling.BICUBIC))
    x = (img.astype(np.float64) * cfg["rescale_factor"]).astype(np.float32)
    mean = np.array(cfg["image_mean"], dtype=np.float32)
    std = np.array(cfg["image_std"], dtype=np.float32)
    x = (x - mean) / std
    x = x.transpose(2, 0, 1)                                    # (C, H, W)
    patches = np.array([x])                                     # (1, C, H, W)
    patches = np.concatenate([patches, np.repeat(patches[-1][None], T - 1, axis=0)], axis=0)
    C, gt, gh, gw = 3, 1, rh // P, rw // P
    patches = patches.reshape(gt, T, C, gh // M, M, P, gw // M, M, P)
    patches = patches.transpose(0, 3, 6, 4, 7, 2, 1, 5, 8)
    return patches.reshape(gt * gh * gw, C * T * P * P), (gt, gh, gw)


# ---- a small PNG writer for the cases PIL does not write --------------------------------------------------

ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def _chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _pack_rows(samples, depth):
    """samples (h, w, ch) ints -> raw scanlines with filter byte 0."""
    out = bytearray()
    for row in samples:
        flat = row.reshape(-1)
        if depth == 16:
            data = flat.astype(">u2").tobytes()
        elif depth == 8:
            data = flat.astype(np.uint8).tobytes()
        else:
            bits = (flat[:, None] >> np.arange(depth - 1, -1, -1)) & 1
            data = np.packbits(bits.reshape(-1).astype(np.uint8)).tobytes()
        out += b"\0" + data
    return bytes(out)


def png_bytes(samples, depth, ctype, plte=None, trns=None, interlace=False):
    h, w = samples.shape[:2]
    ihdr = struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, 1 if interlace else 0)
    if interlace:
        raw = b"".join(_pack_rows(samples[y0::dy, x0::dx], depth) for x0, y0, dx, dy in ADAM7
                       if samples[y0::dy, x0::dx].size)
    else:
        raw = _pack_rows(samples, depth)
    body = _chunk(b"IHDR", ihdr)
    if plte is not None:
        body += _chunk(b"PLTE", bytes(np.asarray(plte, dtype=np.uint8).reshape(-1)))
    if trns is not None:
        body += _chunk(b"tRNS", trns)
    return b"\x89PNG\r\n\x1a\n" + body + _chunk(b"IDAT", zlib.compress(raw, 6)) + _chunk(b"IEND", b"")


# ---- test images -------------------------------------------------------------------------------------------

def content(w, h, seed):
    """Smooth colour ramps, a few edges and noise: something JPEG and the resampler both have work to do on."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 128 + 100 * np.sin(x / max(w, 1) * 6.0 + seed)
    g = 128 + 100 * np.cos(y / max(h, 1) * 5.0 - seed)
    b = ((x + y) * 3) % 256
    img = np.stack([r, g, b], axis=-1) + rng.normal(0, 12, (h, w, 3))
    img[(x // 7 + y // 5) % 4 == 0] = [250, 20, 30]
    return np.clip(img, 0, 255).astype(np.uint8)


def pil_save(img, path, fmt, **kw):
    img.save(path, fmt, **kw)


def make_images(d):
    rng = np.random.default_rng(7)
    cases = {}

    def pil(name, img, fmt, **kw):
        path = os.path.join(d, name)
        pil_save(img, path, fmt, **kw)
        cases[name] = path

    def raw(name, data):
        path = os.path.join(d, name)
        open(path, "wb").write(data)
        cases[name] = path

    base = Image.fromarray(content(160, 120, 1))
    odd = Image.fromarray(content(37, 23, 2))
    alpha = Image.fromarray(rng.integers(0, 256, (120, 160), dtype=np.uint8), "L")
    rgba = base.copy()
    rgba.putalpha(alpha)
    # JPEG: 4:4:4, 4:2:2, 4:2:0 baseline, progressive, gray, CMYK (Adobe), odd and extreme sizes.
    pil("j444.jpg", base, "JPEG", quality=92, subsampling=0)
    pil("j422.jpg", base, "JPEG", quality=85, subsampling=1)
    pil("j420.jpg", base, "JPEG", quality=75, subsampling=2)
    pil("jprog420.jpg", base, "JPEG", quality=80, subsampling=2, progressive=True)
    pil("jprog444.jpg", base, "JPEG", quality=95, subsampling=0, progressive=True)
    pil("jgray.jpg", base.convert("L"), "JPEG", quality=90)
    pil("jcmyk.jpg", base.convert("CMYK"), "JPEG", quality=90)
    pil("jodd420.jpg", odd, "JPEG", quality=85, subsampling=2)
    pil("j1x1.jpg", Image.new("RGB", (1, 1), (200, 30, 99)), "JPEG")
    pil("jwide.jpg", Image.fromarray(content(3000, 20, 3)), "JPEG", quality=85)
    pil("jtall.jpg", Image.fromarray(content(15, 1100, 4)), "JPEG", quality=85, subsampling=2)
    pil("jtiny.jpg", Image.fromarray(content(5, 4, 5)), "JPEG", quality=90, subsampling=0)
    # PNG through PIL.
    pil("prgb.png", base, "PNG")
    pil("prgba.png", rgba, "PNG")
    pil("pgray.png", base.convert("L"), "PNG")
    pil("pla.png", rgba.convert("LA"), "PNG")
    pil("p1bit.png", base.convert("1"), "PNG")
    pal = base.convert("P", palette=Image.Palette.ADAPTIVE, colors=200)
    pil("ppal_trns.png", pal, "PNG", transparency=5)
    pil("pgray16_pil.png", Image.fromarray((np.arange(37 * 23).reshape(23, 37) * 77 % 65536).astype(np.uint16)),
        "PNG")
    pil("podd.png", odd, "PNG")
    pil("p1x1.png", Image.new("RGB", (1, 1), (1, 2, 3)), "PNG")
    pil("pwide.png", Image.fromarray(content(3000, 20, 6)), "PNG")
    pil("ptiny.png", Image.fromarray(content(2, 3, 8)), "PNG")
    pil("pstrip.png", Image.fromarray(content(450, 2, 9)), "PNG")  # aspect ratio 225: HF refuses it
    # PNG written here: 16-bit colour, sub-byte depths, short palettes, Adam7.
    r16 = rng.integers(0, 65536, (23, 37, 3))
    raw("prgb16.png", png_bytes(r16, 16, 2))
    raw("prgba16.png", png_bytes(rng.integers(0, 65536, (23, 37, 4)), 16, 6))
    raw("pgray16.png", png_bytes(rng.integers(0, 600, (23, 37, 1)), 16, 0))
    raw("pga16.png", png_bytes(rng.integers(0, 65536, (23, 37, 2)), 16, 4))
    raw("prgb16_trns.png", png_bytes(r16, 16, 2, trns=b"\0\1\0\2\0\3"))
    for depth in (1, 2, 4):
        raw(f"pgray{depth}.png", png_bytes(rng.integers(0, 1 << depth, (23, 37, 1)), depth, 0))
        n = (1 << depth) - 1 if depth > 1 else 1   # one index past PLTE for 2/4 bit: PIL shows it gray
        plte = rng.integers(0, 256, (n, 3))
        raw(f"ppal{depth}.png", png_bytes(rng.integers(0, 1 << depth, (23, 37, 1)), depth, 3, plte=plte,
                                          trns=b"\x00"))
    raw("ppal8_short.png", png_bytes(rng.integers(0, 256, (23, 37, 1)), 8, 3, plte=rng.integers(0, 256, (17, 3)),
                                     trns=b"\x10\x80\xff"))
    raw("padam7_rgb.png", png_bytes(np.asarray(odd), 8, 2, interlace=True))
    raw("padam7_pal2.png", png_bytes(rng.integers(0, 4, (13, 11, 1)), 2, 3, plte=rng.integers(0, 256, (4, 3)),
                                     interlace=True))
    raw("padam7_rgba16.png", png_bytes(rng.integers(0, 65536, (9, 10, 4)), 16, 6, interlace=True))
    raw("padam7_1x1.png", png_bytes(np.array([[[3]]]), 4, 0, interlace=True))
    # WebP: lossy, lossless, each with and without alpha.
    pil("wlossy.webp", base, "WEBP", quality=80)
    pil("wlossy_alpha.webp", rgba, "WEBP", quality=80)
    pil("wlossless.webp", base, "WEBP", lossless=True)
    pil("wlossless_alpha.webp", rgba, "WEBP", lossless=True)
    pil("wodd.webp", odd, "WEBP", quality=70)
    pil("wodd_alpha.webp", odd.convert("RGBA"), "WEBP", quality=70, exact=True)
    # Noise for the resampler, where every rounding shows.
    pil("noise.png", Image.fromarray(rng.integers(0, 256, (157, 211, 3), dtype=np.uint8)), "PNG")
    pil("flat.png", Image.new("RGB", (40, 30), (0, 255, 128)), "PNG")
    return cases


def model_dirs(d):
    cfgs = {
        "qwen25": {"min_pixels": 3136, "max_pixels": 12845056, "patch_size": 14, "temporal_patch_size": 2,
                   "merge_size": 2, "image_mean": [0.48145466, 0.4578275, 0.40821073],
                   "image_std": [0.26862954, 0.26130258, 0.27577711],
                   "image_processor_type": "Qwen2VLImageProcessor"},
        "small": {"size": {"shortest_edge": 3136, "longest_edge": 40000}, "patch_size": 16,
                  "temporal_patch_size": 2, "merge_size": 2, "image_mean": [0.5, 0.5, 0.5],
                  "image_std": [0.5, 0.5, 0.5]},
        "override": {"size": {"shortest_edge": 100, "longest_edge": 1000000}, "max_pixels": 20000,
                     "min_pixels": 10000, "patch_size": 7, "temporal_patch_size": 3, "merge_size": 3,
                     "rescale_factor": 0.004, "image_mean": [0.1, 0.2, 0.3], "image_std": [0.9, 0.7, 0.31]},
        # Qwen3-VL shape, the bounds from both forms: size.longest_edge, a top-level min_pixels for shortest_edge.
        "partial3": {"size": {"longest_edge": 150000}, "min_pixels": 70000, "patch_size": 16,
                     "image_mean": 0.5, "image_std": [0.5, 0.5, 0.5]},
        "absent": None,
    }
    out = {}
    for name, cfg in cfgs.items():
        p = os.path.join(d, "model_" + name)
        os.makedirs(p, exist_ok=True)
        cf = os.path.join(p, "preprocessor_config.json")
        if cfg is None:
            if os.path.exists(cf):
                os.remove(cf)
        else:
            json.dump(cfg, open(cf, "w"))
        out[name] = (p, "qwen2.5-vl")
    out["qwen3vl"] = (QWEN3_VL_DIR, "qwen3-vl")                 # the published Qwen3-VL-4B-Instruct file
    out["absent3"] = (out["absent"][0], "qwen3-vl")              # no file: mitten's Qwen3-VL defaults
    return out


# preprocessor_config.json variants for the config cross-check: each is read by load_cfg and by mitten.
CFG_VARIANTS = [
    "{}",
    '{"size": {"shortest_edge": 65536, "longest_edge": 16777216}, "patch_size": 16, "image_mean": 0.5}',
    '{"min_pixels": 3136, "max_pixels": 12845056, "image_std": [0.25, 0.5, 0.75]}',
    '{"size": {"shortest_edge": 65536, "longest_edge": 16777216}, "min_pixels": 1000}',
    '{"size": {"shortest_edge": 65536, "longest_edge": 16777216}, "max_pixels": 100000}',
    '{"size": {"shortest_edge": 65536, "longest_edge": 16777216}, "min_pixels": 10, "max_pixels": 20}',
    '{"size": {"longest_edge": 5000}, "min_pixels": 1000}',
    '{"size": {"shortest_edge": 5000}, "max_pixels": 9000}',
    '{"size": {}, "min_pixels": 1, "max_pixels": 1}',
    '{"size": null, "min_pixels": null, "max_pixels": 4096}',
    '{"min_pixels": 4096}',
    '{"size": {"min_pixels": 3136, "max_pixels": 12845056}, "min_pixels": 3136, "max_pixels": 12845056}',
    '{"size": {"shortest_edge": 65536.0, "longest_edge": 16777216}, "merge_size": 3, "temporal_patch_size": 1}',
    '{"size": {"min_pixels": 3136, "max_pixels": 12845056}}',
    '{"size": {"min_pixels": 3136, "max_pixels": 12845056, "longest_edge": 9}, "min_pixels": 3}',
    '{"size": {"shortest_edge": 3136}}',
    '{"size": {"longest_edge": 3136}}',
    '{"size": {}}',
    '{"size": {"height": 224, "width": 224}}',
    '{"size": {"shortest_edge": 1, "longest_edge": 9, "height": 3}}',
    '{"size": 224}',
    '{"size": {"shortest_edge": 16777216, "longest_edge": 65536}}',
    '{"min_pixels": 2000000}',
    '{"size": {"shortest_edge": 65536.5, "longest_edge": 16777216}}',
    '{"size": {"shortest_edge": "65536", "longest_edge": 16777216}}',
    '{"size": {"shortest_edge": 0, "longest_edge": 16777216}}',
    '{"max_pixels": 2147483648}',
]


def check_configs(driver, work):
    """mitten's reading of each variant == load_cfg's, with either family's defaults; both refuse the same ones.
    Returns the number of variants."""
    d = os.path.join(work, "model_variant")
    os.makedirs(d, exist_ok=True)
    for text in CFG_VARIANTS:
        open(os.path.join(d, "preprocessor_config.json"), "w").write(text)
        try:
            ref = load_cfg(d)
        except ValueError:
            ref = None
        for family in FAMILY_DEFAULTS:
            rc, msg = run(driver, "cfg", d, family)
            if ref is None:
                check(rc == 2 and msg.startswith("ERR 3") and "preprocessor_config.json" in msg,
                      f"config {text}: transformers (or mitten's range check) refuses it, mitten said: {msg}")
                continue
            want = [ref["min_pixels"], ref["max_pixels"], ref["patch_size"], ref["temporal_patch_size"],
                    ref["merge_size"]]
            mean = np.broadcast_to(np.asarray(ref["image_mean"], dtype=np.float32), 3)
            std = np.broadcast_to(np.asarray(ref["image_std"], dtype=np.float32), 3)
            f = msg.split() if rc == 0 else []
            ok = (len(f) == 12 and [int(v) for v in f[:5]] == want
                  and np.array_equal(np.asarray(f[5:8], dtype=np.float32), mean)
                  and np.array_equal(np.asarray(f[8:11], dtype=np.float32), std)
                  and float(f[11]) == ref["rescale_factor"])
            check(ok, f"config {text} ({family}): mitten {msg!r}, expected {want} mean {mean} std {std}")
    return len(CFG_VARIANTS)


# ---- driver I/O --------------------------------------------------------------------------------------------

def run(driver, *args):
    p = subprocess.run([driver, *map(str, args)], capture_output=True, text=True)
    return p.returncode, p.stdout.strip() + p.stderr.strip()


def read_image(path):
    b = open(path, "rb").read()
    assert b[:8] == b"MTRGB\0\0\1", path
    w, h = struct.unpack("<qq", b[8:24])
    return np.frombuffer(b, dtype=np.uint8, offset=24).reshape(h, w, 3)


def read_pv(path):
    b = open(path, "rb").read()
    assert b[:8] == b"MTPV\0\0\0\1", path
    rows, cols, t, gh, gw = struct.unpack("<5q", b[8:48])
    return np.frombuffer(b, dtype=np.float32, offset=48).reshape(rows, cols), (t, gh, gw)


def resize_targets(w, h):
    t = {(w, h), (1, 1), (max(1, w // 3), max(1, h // 2)), (w * 2 + 1, h), (w, h * 3 + 2), (w + 1, h - 1 or 1),
         (7, 200), (max(1, w // 17), h * 2)}
    return sorted(t)


def main():
    driver, work = sys.argv[1], sys.argv[2]
    os.makedirs(work, exist_ok=True)
    cases = make_images(work)
    dirs = model_dirs(work)
    out = os.path.join(work, "out.bin")
    n_exact_pv = n_pv = 0
    per_cfg = {name: [0, 0] for name in dirs}     # pixel_values comparisons, bit-identical ones

    for name, path in sorted(cases.items()):
        expect = np.asarray(Image.open(path).convert("RGB"))
        rc, msg = run(driver, "decode", path, out)
        if rc != 0:
            check(False, f"{name}: decode failed: {msg}")
            continue
        got = read_image(out)
        check(got.shape == expect.shape, f"{name}: decoded shape {got.shape} != PIL {expect.shape}")
        if got.shape == expect.shape:
            diff = np.abs(got.astype(int) - expect.astype(int))
            check(diff.max() == 0, f"{name}: decode differs from PIL in {np.count_nonzero(diff)} samples, "
                                   f"max {diff.max()}")
        h, w = expect.shape[:2]
        src = Image.fromarray(expect)
        if name in ("noise.png", "podd.png", "j420.jpg", "jwide.jpg", "flat.png", "p1x1.png", "ptiny.png",
                    "jtall.jpg"):
            for tw, th in resize_targets(w, h):
                ref = np.asarray(src.resize((tw, th), Image.Resampling.BICUBIC))
                rc, msg = run(driver, "resize", path, tw, th, out)
                if rc != 0:
                    check(False, f"{name}: resize to {tw}x{th} failed: {msg}")
                    continue
                got = read_image(out)
                check(got.shape == ref.shape and np.array_equal(got, ref),
                      f"{name}: resize {w}x{h} -> {tw}x{th} differs from PIL")
        for cname, (mdir, family) in dirs.items():
            cfg = load_cfg(mdir, family)
            try:
                ref_pv, ref_grid = hf_preprocess(expect, cfg)
            except ValueError:
                rc, msg = run(driver, "pre", path, mdir, out, family)
                check(rc == 2 and msg.startswith("ERR 6"), f"{name}/{cname}: expected the aspect-ratio error")
                continue
            rc, msg = run(driver, "pre", path, mdir, out, family)
            if rc != 0:
                check(False, f"{name}/{cname}: preprocess failed: {msg}")
                continue
            got, grid = read_pv(out)
            check(grid == ref_grid, f"{name}/{cname}: grid {grid} != {ref_grid}")
            if got.shape != ref_pv.shape:
                check(False, f"{name}/{cname}: pixel_values {got.shape} != {ref_pv.shape}")
                continue
            err = float(np.max(np.abs(got - ref_pv)))
            check(err <= PV_TOL and not np.isnan(got).any(),
                  f"{name}/{cname}: pixel_values max |diff| {err} > {PV_TOL}")
            n_pv += 1
            n_exact_pv += int(np.array_equal(got, ref_pv))
            per_cfg[cname][0] += 1
            per_cfg[cname][1] += int(np.array_equal(got, ref_pv))

    # Truncated files: PIL refuses them, and so must mitten.
    for name in ("j420.jpg", "jprog420.jpg", "prgb.png", "padam7_rgb.png", "wlossy.webp", "wlossless.webp"):
        data = open(cases[name], "rb").read()
        cut = os.path.join(work, "cut_" + name)
        open(cut, "wb").write(data[: len(data) * 2 // 3])
        try:
            Image.open(cut).convert("RGB")
            pil_ok = True
        except Exception:
            pil_ok = False
        rc, msg = run(driver, "decode", cut, out)
        check(not pil_ok, f"{name}: PIL accepted the truncated file (test premise)")
        check(rc == 2 and msg.startswith("ERR 3") and cut in msg, f"{name}: truncated file: rc {rc}, {msg}")

    # smart_resize on many sizes and settings.
    rng = np.random.default_rng(3)
    lines, expect = [], []
    sizes = [(1, 1), (1, 200), (1, 201), (200, 1), (28, 28), (14, 14), (3, 700), (56, 56), (10000, 50),
             (27, 28), (42, 42), (70, 98), (4000, 3000), (8000, 8000), (1, 2), (13, 2600)]
    sizes += [tuple(int(v) for v in rng.integers(1, 5000, 2)) for _ in range(3000)]
    sizes += [tuple(int(v) for v in rng.integers(1, 60, 2)) for _ in range(500)]
    settings = [(28, 3136, 12845056), (28, 3136, 1003520), (32, 65536, 16777216), (14, 196, 50000),
                (21, 1000, 1000)]
    for i, (h, w) in enumerate(sizes):
        f, lo, hi = settings[i % len(settings)]
        lines.append(f"{h} {w} {f} {lo} {hi}")
        try:
            expect.append("%d %d" % smart_resize(h, w, f, lo, hi))
        except ValueError:
            expect.append("ERR 6")
    sin, sout = os.path.join(work, "smart_in.txt"), os.path.join(work, "smart_out.txt")
    open(sin, "w").write("\n".join(lines) + "\n")
    rc, msg = run(driver, "smart", sin, sout)
    got = open(sout).read().split("\n")[: len(expect)] if rc == 0 else []
    bad = [(l, e, g) for l, e, g in zip(lines, expect, got) if e != g]
    check(rc == 0 and len(got) == len(expect) and not bad, f"smart_resize: {len(bad)} mismatches, first {bad[:3]}")

    n_variants = check_configs(driver, work)

    print(f"{len(cases)} images; pixel_values compared {n_pv} times, {n_exact_pv} bit-identical "
          f"({', '.join(f'{k} {v[1]}/{v[0]}' for k, v in per_cfg.items())}); "
          f"{len(lines)} smart_resize cases; {n_variants} config variants; {len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
