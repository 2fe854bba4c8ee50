#!/usr/bin/python3
"""Compare mitten's InternVL image processor with PIL + torch / numpy re-implementations of its two references.

Usage: internvl_pre_ref.py INTERNVL_REF_DRIVER WORK_DIR

References, re-implemented below from their code:
  - original: OpenGVLab/InternVL internvl_chat/internvl/train/dataset.py - dynamic_preprocess,
    find_closest_aspect_ratio (candidates built as a Python set, sorted by tile count), then build_transform's
    T.Resize((S, S), BICUBIC) + T.ToTensor() + T.Normalize(IMAGENET_MEAN, IMAGENET_STD) on each tile. torchvision is
    not installed here, so its two tensor steps are written with the torch ops they run: ToTensor is
    `from_numpy(array).permute(2, 0, 1).float().div(255)`, Normalize is `sub(mean).div(std)` with float32 mean/std.
    T.Resize of a PIL image is PIL's resize.
  - hf: transformers 4.57 models/got_ocr2/image_processing_got_ocr2.py, the slow GotOcr2ImageProcessor
    (get_all_supported_aspect_ratios, get_optimal_tiled_canvas, crop_image_to_patches with use_thumbnail on, then
    per tile resize + rescale + normalize), with InternVLProcessor's crop_to_patches=True. transformers' resize of a
    uint8 array goes through PIL.Image.resize, rescale is float64 multiply then float32, normalize float32.

Writes PNG images and model folders (config.json, tokenizer.json, preprocessor_config.json; no weights) into
WORK_DIR, the expected pixel_values of each (folder, image) as .npy [tiles, 3, S, S], and has the driver check:
  - pixel_values equal bit for bit (every step is the same float32 operation in the same order, so no tolerance:
    a changed rounding, e.g. rescaling by a float32 multiply with 1/255, moves 126 of the 256 byte values by one
    ulp and fails; the original's float32 division by 255 and hf's float64 multiply happen to agree on all 256)
  - images of aspect ratio over 200 refused with MT_ERR_LIMIT naming the file
  - the grid both forms choose, for every min..max in 1..40 and sizes built to tie two candidates exactly (the
    cases where the original's set order and the tie rule decide)
"""
import json
import os
import random
import subprocess
import sys

import numpy as np
import torch
from PIL import Image

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)   # transformers' OPENAI_CLIP_MEAN
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
MAX_ASPECT = 200
failures = []


def check(ok, msg):
    if not ok:
        failures.append(msg)
        print("FAIL:", msg)


# ---- the original: dataset.py ---------------------------------------------------------------------------------

def original_candidates(min_num, max_num):
    target_ratios = set(
        (i, j) for n in range(min_num, max_num + 1) for i in range(1, n + 1) for j in range(1, n + 1)
        if i * j <= max_num and i * j >= min_num)
    return sorted(target_ratios, key=lambda x: x[0] * x[1])


def closest(aspect_ratio, ratios, width, height, image_size):
    """find_closest_aspect_ratio; get_optimal_tiled_canvas is the same loop over another candidate list."""
    best_ratio_diff = float("inf")
    best_ratio = (1, 1)
    area = width * height
    for ratio in ratios:
        ratio_diff = abs(aspect_ratio - ratio[0] / ratio[1])
        if ratio_diff < best_ratio_diff:
            best_ratio_diff = ratio_diff
            best_ratio = ratio
        elif ratio_diff == best_ratio_diff:
            if area > 0.5 * image_size * image_size * ratio[0] * ratio[1]:
                best_ratio = ratio
    return best_ratio


def dynamic_preprocess(image, min_num, max_num, image_size, use_thumbnail):
    w, h = image.size
    c, r = closest(w / h, original_candidates(min_num, max_num), w, h, image_size)
    resized = image.resize((image_size * c, image_size * r))     # no filter given: BICUBIC
    tiles = []
    for i in range(c * r):
        box = ((i % c) * image_size, (i // c) * image_size, (i % c + 1) * image_size, (i // c + 1) * image_size)
        tiles.append(resized.crop(box))
    if use_thumbnail and len(tiles) != 1:
        tiles.append(image.resize((image_size, image_size)))
    return tiles


def original_pixel_values(image, cfg):
    S = cfg.get("force_image_size") or cfg["vision_config"]["image_size"]
    if cfg.get("dynamic_image_size", False):
        tiles = dynamic_preprocess(image, cfg.get("min_dynamic_patch", 1), cfg.get("max_dynamic_patch", 6), S,
                                   cfg.get("use_thumbnail", False))
    else:
        tiles = [image]
    mean = torch.as_tensor(IMAGENET_MEAN, dtype=torch.float32).view(-1, 1, 1)
    std = torch.as_tensor(IMAGENET_STD, dtype=torch.float32).view(-1, 1, 1)
    out = []
    for t in tiles:
        t = t.resize((S, S), Image.BICUBIC)                            # T.Resize((S, S), BICUBIC)
        x = torch.from_numpy(np.array(t, np.uint8, copy=True)).permute((2, 0, 1)).contiguous()
        x = x.to(dtype=torch.float32).div(255)                         # T.ToTensor
        out.append(x.sub(mean).div(std))                               # T.Normalize
    return torch.stack(out).numpy()


# ---- transformers: image_processing_got_ocr2.py ---------------------------------------------------------------

def hf_candidates(min_image_tiles, max_image_tiles):
    aspect_ratios = []
    for width in range(1, max_image_tiles + 1):
        for height in range(1, max_image_tiles + 1):
            if width * height <= max_image_tiles and width * height >= min_image_tiles:
                aspect_ratios.append((width, height))
    return sorted(aspect_ratios, key=lambda x: x[0] * x[1])


def pil_resize(arr, w, h, resample=Image.BICUBIC):
    return np.array(Image.fromarray(arr).resize((w, h), resample=resample))


def hf_pixel_values(image, pre):
    size = pre.get("size", {"height": 384, "width": 384})
    S = size if isinstance(size, int) else size["height"]
    lo, hi = pre.get("min_patches", 1), pre.get("max_patches", 12)
    mean = np.array(pre.get("image_mean", CLIP_MEAN), dtype=np.float32)
    std = np.array(pre.get("image_std", CLIP_STD), dtype=np.float32)
    scale = pre.get("rescale_factor", 1 / 255)
    arr = np.array(image.convert("RGB"))
    if hi > 1:                                    # crop_to_patches is forced on by InternVLProcessor
        h, w = arr.shape[:2]
        c, r = closest(w / h, hf_candidates(lo, hi), w, h, S)
        resized = pil_resize(arr, S * c, S * r)
        tiles = [resized[(i // c) * S:(i // c + 1) * S, (i % c) * S:(i % c + 1) * S] for i in range(c * r)]
        if len(tiles) != 1:
            tiles.append(pil_resize(arr, S, S))
    else:
        tiles = [arr]
    out = []
    for t in tiles:
        t = pil_resize(t, S, S, pre.get("resample", 3))
        x = (t.astype(np.float64) * scale).astype(np.float32)
        x = (x - mean) / std
        out.append(x.transpose(2, 0, 1))
    return np.stack(out)


# ---- fixtures -------------------------------------------------------------------------------------------------

def make_image(path, w, h, seed):
    """Noise over gradients and edges, so every resize tap matters."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([(x * 255 // max(w - 1, 1)), (y * 255 // max(h - 1, 1)), ((x // 7 + y // 5) % 2) * 255], -1)
    noise = rng.integers(-60, 61, (h, w, 3))
    Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8)).save(path)


TOKENIZER = {"version": "1.0", "added_tokens": [
    {"id": 151665, "content": "<img>", "special": True},
    {"id": 151666, "content": "</img>", "special": True},
    {"id": 151667, "content": "<IMG_CONTEXT>", "special": True}],
    "model": {"type": "BPE", "vocab": {"a": 0}}}


def original_config(**kw):
    cfg = {"architectures": ["InternVLChatModel"], "model_type": "internvl_chat", "downsample_ratio": 0.5,
           "dynamic_image_size": True, "force_image_size": 448, "max_dynamic_patch": 12, "min_dynamic_patch": 1,
           "use_thumbnail": True, "pad2square": False, "ps_version": "v2", "template": "internvl2_5",
           "llm_config": {"architectures": ["Qwen2ForCausalLM"], "vocab_size": 151674},
           "vision_config": {"architectures": ["InternVisionModel"], "image_size": 448, "patch_size": 14}}
    cfg.update(kw)
    return cfg


def hf_config():
    return {"architectures": ["InternVLForConditionalGeneration"], "model_type": "internvl", "downsample_ratio": 0.5,
            "image_seq_length": 256, "image_token_id": 151667,
            "text_config": {"model_type": "qwen2", "vocab_size": 151674},
            "vision_config": {"model_type": "internvl_vision", "image_size": [448, 448], "patch_size": [14, 14]}}


# InternVL3-1B-hf's file as transformers' converter writes it (GotOcr2ImageProcessorFast; its crop_to_patches is
# false, and InternVLProcessor passes True).
HF_PUBLISHED = {"crop_size": None, "crop_to_patches": False, "data_format": "channels_first",
                "default_to_square": True, "do_center_crop": None, "do_convert_rgb": True, "do_normalize": True,
                "do_rescale": True, "do_resize": True, "image_mean": [0.485, 0.456, 0.406],
                "image_processor_type": "GotOcr2ImageProcessorFast", "image_std": [0.229, 0.224, 0.225],
                "input_data_format": None, "max_patches": 12, "min_patches": 1, "processor_class": "InternVLProcessor",
                "resample": 3, "rescale_factor": 0.00392156862745098, "return_tensors": None,
                "size": {"height": 448, "width": 448}}


def write_folder(root, name, config, pre=None, processor=None):
    d = os.path.join(root, name)
    os.makedirs(d, exist_ok=True)
    for fname, obj in (("config.json", config), ("tokenizer.json", TOKENIZER), ("preprocessor_config.json", pre),
                       ("processor_config.json", processor)):
        if obj is not None:
            json.dump(obj, open(os.path.join(d, fname), "w"), indent=1)
    return d


def run_check(driver, work, folder, ref_fn, images):
    """Writes the expected arrays of one folder, has the driver compare them, then removes them."""
    lines, written = [], []
    for path, img in images:
        w, h = img.size
        if max(w / h, h / w) > MAX_ASPECT:
            lines.append(f"{folder} {path} ERR:6")
            continue
        pv = ref_fn(img)
        out = os.path.join(work, "expect_%d.npy" % len(written))
        np.save(out, pv)
        written.append(out)
        lines.append(f"{folder} {path} {out}")
    manifest = os.path.join(work, "manifest.txt")
    open(manifest, "w").write("\n".join(lines) + "\n")
    p = subprocess.run([driver, "check", manifest], capture_output=True, text=True)
    print(p.stdout, end="")
    check(p.returncode == 0, f"{os.path.basename(folder)}: driver: rc {p.returncode} {p.stderr.strip()[:300]}")
    for f in written:
        os.remove(f)
    return len(lines)


def grid_cases():
    """(form, S, min, max, w, h): every tile range, random sizes and sizes that sit exactly between two candidate
    aspect ratios, at areas on both sides of the tie rule's threshold."""
    rnd = random.Random(11)
    cases = []
    for hi in range(1, 41):
        for lo in range(1, hi + 1):
            ratios = sorted({i / j: (i, j) for i, j in hf_candidates(lo, hi)}.items())
            picks = rnd.sample(range(len(ratios) - 1), min(4, len(ratios) - 1)) if len(ratios) > 1 else []
            sizes = [(rnd.randint(1, 3000), rnd.randint(1, 3000)) for _ in range(2)]
            for k in picks:
                (_, (i1, j1)), (_, (i2, j2)) = ratios[k], ratios[k + 1]
                w, h = i1 * j2 + i2 * j1, 2 * j1 * j2
                f = rnd.choice((1, 3, 37, 211))
                sizes.append((w * f, h * f))
            sizes.append((lo * 448 // 2, 448))
            # every tie between neighbouring aspect ratios that some grids of equal tile count share: there the
            # original's set order decides, on both sides of the area threshold
            cands = hf_candidates(lo, hi)
            for (v1, (i1, j1)), (v2, (i2, j2)) in zip(ratios, ratios[1:]):
                p1 = {i * j for i, j in cands if i / j == v1}
                p2 = {i * j for i, j in cands if i / j == v2}
                if p1 & p2:
                    sizes += [(i1 * j2 + i2 * j1, 2 * j1 * j2), (211 * (i1 * j2 + i2 * j1), 211 * 2 * j1 * j2)]
            for w, h in sizes:
                for form in ("original", "hf"):
                    cases.append((form, rnd.choice((448, 448, 224, 14)), lo, hi, w, h))
    cases += [("original", 448, 1, 12, 1, 201), ("hf", 448, 1, 12, 402, 2), ("original", 448, 1, 12, 3, 600)]
    return cases


def expected_grid(form, S, lo, hi, w, h):
    if max(w / h, h / w) > MAX_ASPECT:
        return "ERR 6"
    cands = original_candidates(lo, hi) if form == "original" else hf_candidates(lo, hi)
    return "%d %d" % closest(w / h, cands, w, h, S)


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    driver, work = sys.argv[1], sys.argv[2]
    os.makedirs(work, exist_ok=True)

    # Sizes: 1 tile, 2 (+ thumbnail), 6, 12, a square that ties (1,1), (2,2), (3,3) and takes (3,3), a tie of equal
    # tile counts (5:2 under min = max = 4), long and tall ones up to the 200:1 limit, tiny ones, and two refused.
    sizes = {"one": (448, 448), "two": (900, 448), "six": (1200, 800), "twelve": (1600, 1200),
             "square_tie": (1000, 1000), "five_two": (500, 200), "small_tie": (560, 448), "wide50": (2000, 40),
             "tall50": (40, 2000), "wide200": (600, 3), "tiny": (1, 1), "odd": (7, 5), "portrait": (333, 1017),
             "refused_wide": (201, 1), "refused_tall": (3, 700)}
    images = []
    for k, (name, (w, h)) in enumerate(sizes.items()):
        path = os.path.join(work, name + ".png")
        make_image(path, w, h, k)
        images.append((path, Image.open(path).convert("RGB")))

    n_cases = 0
    folders = [
        ("orig_default", original_config(), None),
        ("orig_nothumb6", original_config(use_thumbnail=False, max_dynamic_patch=6), None),
        ("orig_static", original_config(dynamic_image_size=False), None),
        ("orig_min4", original_config(min_dynamic_patch=4, max_dynamic_patch=4), None),
        ("orig_224", original_config(force_image_size=224, max_dynamic_patch=6), None),
        ("orig_vision_side", original_config(force_image_size=None), None),
        ("hf_published", hf_config(), HF_PUBLISHED),
        ("hf_min4", hf_config(), dict(HF_PUBLISHED, min_patches=4, max_patches=4)),
        ("hf_one", hf_config(), dict(HF_PUBLISHED, max_patches=1)),
        ("hf_class_defaults", dict(hf_config(), image_seq_length=64),
         {"image_processor_type": "GotOcr2ImageProcessor", "size": 224, "max_patches": 6}),
    ]
    for name, cfg, pre in folders:
        processor = {"image_seq_length": cfg.get("image_seq_length", 256)} if pre is not None else None
        folder = write_folder(work, name, cfg, pre, processor)
        fn = (lambda img, cfg=cfg: original_pixel_values(img, cfg)) if pre is None else \
            (lambda img, pre=pre: hf_pixel_values(img, pre))
        n_cases += run_check(driver, work, folder, fn, images)

    # The premise of orig_min4 / hf_min4: the forms choose different grids for a 5:2 image under 4..4 tiles.
    check(closest(2.5, original_candidates(4, 4), 500, 200, 448) != closest(2.5, hf_candidates(4, 4), 500, 200, 448),
          "premise: the set order and the hf order should choose differently for 5:2 under 4..4 tiles")

    # The rescales: ToTensor's float32 division and hf's float64 multiply agree on every byte, a float32 multiply
    # does not (so the bit-exact comparison would see it).
    v = np.arange(256)
    div = torch.from_numpy(v.astype(np.uint8)).to(torch.float32).div(255).numpy()
    check(np.array_equal(div, (v.astype(np.float64) * (1 / 255)).astype(np.float32)),
          "premise: torch's division by 255 and float64 rescaling should agree on all bytes")
    check(not np.array_equal(div, v.astype(np.float32) * np.float32(1 / 255)),
          "premise: a float32 multiply by 1/255 should differ somewhere")

    cases = grid_cases()
    gin, gout = os.path.join(work, "grid_in.txt"), os.path.join(work, "grid_out.txt")
    open(gin, "w").write("".join("%s %d %d %d %d %d\n" % c for c in cases))
    p = subprocess.run([driver, "grid", gin, gout], capture_output=True, text=True)
    got = open(gout).read().split("\n") if p.returncode == 0 else []
    bad = [(c, expected_grid(*c), g) for c, g in zip(cases, got) if expected_grid(*c) != g]
    check(p.returncode == 0 and len(got) >= len(cases) and not bad,
          f"grid: rc {p.returncode}, {len(bad)} of {len(cases)} differ, first {bad[:3]}")
    ties = sum(1 for c in cases if c[0] == "original" and c[2] > 1 and
               closest(c[4] / c[5], original_candidates(c[2], c[3]), c[4], c[5], c[1]) !=
               closest(c[4] / c[5], hf_candidates(c[2], c[3]), c[4], c[5], c[1]))
    check(ties > 0, "premise: some grid cases should tell the set order from the hf order")

    print(f"{len(images)} images x {len(folders)} folders: {n_cases} pixel_values cases; {len(cases)} grid cases "
          f"({ties} decided by the original's set order); {len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
