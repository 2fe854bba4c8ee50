#!/usr/bin/python3
"""Compare mitten's torchvision-style resize (mt_image_resize_bicubic_torch) with torchvision itself.

Usage: resize_torch_ref.py RESIZE_TORCH_REF_DRIVER WORK_DIR

Reference: torchvision.transforms.functional.resize(uint8 (3, H, W) tensor, [h, w], BICUBIC, antialias=True) from
Debian 12's python3-torchvision 0.14.1 on python3-torch 1.13.1 (float32 interpolate, clamp, round, cast).

Cases: upscaling, downscaling, factors up to ~600 either way, 1-pixel sides, odd and non-square sizes, InternVL's
tile canvases; random noise, sharp black/white edges, a 1-pixel checkerboard and smooth gradients. Expected: every
byte equal. Premises checked as well: PIL's bicubic differs from torchvision's on some of these cases (so the test
tells the two resizes apart), and torch's kernel ran its AVX2 (or AVX-512) build, whose fused multiply-adds mitten
follows; on a CPU without AVX2 torch runs its DEFAULT build, which rounds differently, and the test is skipped (77).
"""
import os
import random
import struct
import subprocess
import sys

import numpy as np
import torch
from PIL import Image

try:
    from torchvision.transforms import functional as F
    from torchvision.transforms.functional import InterpolationMode
except ImportError:
    print("SKIP: torchvision is not installed (apt-get install python3-torchvision)")
    sys.exit(77)


def images(rng):
    """(name, w, h) -> (h, w, 3) uint8 generators."""
    def noise(w, h):
        return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)

    def edges(w, h):
        y, x = np.mgrid[0:h, 0:w]
        a = np.where((x * 7 // max(w, 1) + y * 5 // max(h, 1)) % 2 == 0, 255, 0)
        b = np.where((x + y) % 2 == 0, 255, 0)                # 1-pixel checkerboard
        c = np.where(x < w // 2, 0, 255) if w > 1 else np.where(y < h // 2, 0, 255)
        return np.stack([a, b, c], -1).astype(np.uint8)

    def gradient(w, h):
        y, x = np.mgrid[0:h, 0:w]
        return np.stack([x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1), (x * y) % 256], -1).astype(np.uint8)

    return {"noise": noise, "edges": edges, "gradient": gradient}


def cases(rnd):
    """(src_w, src_h, dst_w, dst_h)."""
    out = [(448, 448, 448, 448), (1000, 750, 1344, 896), (640, 480, 448, 448), (1600, 1200, 1792, 1344),
           (333, 1017, 448, 1344), (2000, 40, 448, 448), (7, 5, 448, 448), (1, 1, 448, 448), (1, 1, 1, 1),
           (1, 300, 1, 7), (300, 1, 7, 1), (1, 300, 5, 5), (640, 1, 448, 448), (3000, 2000, 7, 5),
           (4000, 3, 5, 1), (3, 4000, 1, 5), (1200, 1200, 2, 2), (5, 3, 3000, 1800), (2, 2, 1200, 3),
           (448, 448, 449, 447), (448, 448, 224, 224), (1001, 999, 333, 666), (640, 480, 640, 481),
           (640, 480, 639, 480), (97, 131, 97, 1), (97, 131, 1, 131),
           (1280, 720, 1008, 560), (1920, 1080, 868, 476)]   # qwen-vl-utils' frame sizes for 720p and 1080p clips
    for _ in range(60):
        sw, sh = rnd.randint(1, 700), rnd.randint(1, 700)
        f = rnd.choice((0.01, 0.1, 0.3, 0.77, 1.0, 1.3, 2.5, 7.0, 40.0))
        g = f * rnd.uniform(0.5, 2.0)
        out.append((sw, sh, max(1, min(1500, round(sw * f))), max(1, min(1500, round(sh * g)))))
    return out


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    driver, work = sys.argv[1], sys.argv[2]
    os.makedirs(work, exist_ok=True)
    config = torch.__config__.show()
    if "CPU capability usage: AVX2" not in config and "CPU capability usage: AVX512" not in config:
        print("SKIP: torch runs its DEFAULT CPU build here (no AVX2), whose rounding mitten does not follow")
        return 77

    rng = np.random.default_rng(5)
    rnd = random.Random(5)
    gens = images(rng)
    todo = []
    for k, (sw, sh, dw, dh) in enumerate(cases(rnd)):
        name = list(gens)[k % len(gens)]
        todo.append((name, sw, sh, dw, dh, gens[name](sw, sh)))
    for sw, sh, dw, dh in [(31, 17, 9, 40), (1000, 2, 3, 300)]:     # every pattern on a few shapes
        for name, gen in gens.items():
            todo.append((name, sw, sh, dw, dh, gen(sw, sh)))

    inp, outp = os.path.join(work, "in.bin"), os.path.join(work, "out.bin")
    with open(inp, "wb") as f:
        for _, sw, sh, dw, dh, arr in todo:
            f.write(struct.pack("<4q", sw, sh, dw, dh))
            f.write(np.ascontiguousarray(arr).tobytes())
    p = subprocess.run([driver, inp, outp], capture_output=True, text=True)
    if p.returncode != 0:
        print("FAIL: driver:", p.returncode, p.stderr.strip()[:500])
        return 1
    print(p.stdout.strip())
    got_all = open(outp, "rb").read()

    failures, off, n_bytes, differ_pil = [], 0, 0, 0
    for name, sw, sh, dw, dh, arr in todo:
        size = dw * dh * 3
        got = np.frombuffer(got_all[off:off + size], np.uint8).reshape(dh, dw, 3)
        off += size
        t = torch.from_numpy(arr).permute(2, 0, 1).contiguous()
        ref = F.resize(t, [dh, dw], interpolation=InterpolationMode.BICUBIC, antialias=True)
        ref = ref.permute(1, 2, 0).numpy()
        n_bytes += size
        diff = np.abs(got.astype(int) - ref.astype(int))
        if diff.any():
            failures.append(f"{name} {sw}x{sh} -> {dw}x{dh}: {np.count_nonzero(diff)} of {size} bytes differ, "
                            f"max {diff.max()}")
            print("FAIL:", failures[-1])
        pil = np.asarray(Image.fromarray(arr).resize((dw, dh), Image.Resampling.BICUBIC))
        differ_pil += not np.array_equal(pil, ref)
    if len(got_all) != off:
        failures.append(f"driver wrote {len(got_all)} bytes, expected {off}")
    if differ_pil < len(todo) // 4:
        failures.append(f"premise: PIL should differ from torchvision on many cases, differs on {differ_pil}")
    print(f"{len(todo)} resizes, {n_bytes} bytes compared with torchvision {F.__name__} "
          f"(torch {torch.__version__}); PIL differs on {differ_pil} of them; {len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
