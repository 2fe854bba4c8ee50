#!/usr/bin/python3
"""Checks the work `mitten bench` counts for InternVL's vision cases against a count made here from the checkpoint's
tensor shapes: a tiny random InternVL in each layout (tile 32 px, patch 4, 3 blocks), whose bench cases are one
tile and a 3:2 picture (96x64: 3 x 2 tiles + a thumbnail = 7 tiles).

Per tile: 2 g patch-embed params + 2 (g + 1) block matrix params (the class token goes through every block) +
2 (g / s^2) mlp1 matrix params + 4 E (g + 1)^2 per block, g patches, s = 1 / downsample_ratio.

    bench_work_check.py --mitten PATH --work DIR
"""

import argparse
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io as st  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


# tensor name prefixes per layout: projector, patch embedding, blocks
PREFIXES = {"original": ("mlp1.", "vision_model.embeddings.patch_embedding.", "vision_model.encoder."),
            "hf": ("model.multi_modal_projector.", "model.vision_tower.embeddings.patch_embeddings.",
                   "model.vision_tower.encoder.")}


def expected_flop(model_dir, layout, tiles):
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    vc = cfg["vision_config"]
    side = lambda v: v[0] if isinstance(v, list) else v  # noqa: E731  hf: [32, 32]
    E, p, depth = vc["hidden_size"], side(vc["patch_size"]), vc["num_hidden_layers"]
    g = (side(vc["image_size"]) // p) ** 2
    proj, patch, enc = PREFIXES[layout]
    s2 = round(1 / cfg["downsample_ratio"]) ** 2
    embed = blocks = mlp1 = 0
    for name, t in st.read_folder(model_dir).items():
        if t.dim() < 2:
            continue
        n = t.numel()
        if name.startswith(proj):
            mlp1 += n
        elif name.startswith(patch):
            embed += n
        elif name.startswith(enc):
            blocks += n
    per_tile = 2 * g * embed + 2 * (g + 1) * blocks + 2 * (g // s2) * mlp1 + 4 * E * (g + 1) ** 2 * depth
    return tiles * per_tile


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mitten", required=True)
    ap.add_argument("--work", required=True)
    a = ap.parse_args()
    want = {"vision 32x32 (1 tile, 64 patches)": 1, "vision 96x64 (7 tiles, 448 patches)": 7}
    failed = False
    for layout in PREFIXES:
        model = os.path.join(a.work, f"internvl-tiny-{layout}")
        subprocess.run([sys.executable, os.path.join(HERE, "internvl_ref.py"), "make-checkpoint", "--layout", layout,
                        "--out", model], check=True, stdout=subprocess.DEVNULL)
        out = subprocess.run([a.mitten, "bench", "-m", model, "--json", "--threads", "1", "--prefill", "4",
                              "--decode", "1"], check=True, capture_output=True, text=True).stdout
        cases = {r["case"]: r for r in json.loads(out)["results"] if r["case"].startswith("vision")}
        if sorted(cases) != sorted(want):
            print(f"{layout}: vision cases {sorted(cases)}, expected {sorted(want)}")
            failed = True
        for name, tiles in want.items():
            if name not in cases:
                continue
            r = cases[name]
            got, exp = r["gflops"] * r["seconds"] * 1e9, expected_flop(model, layout, tiles)
            ok = abs(got - exp) <= 1e-9 * exp
            print(f"{layout} {name}: {got:.0f} FLOP counted, {exp} expected{'' if ok else '  MISMATCH'}")
            failed |= not ok
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
