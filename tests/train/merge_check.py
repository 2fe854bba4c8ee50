"""mitten merge against numpy: a PEFT-style adapter whose target_modules name a leaf ("gate_proj") that occurs in
the vision tower and in the language model must be folded into every such module, W + (alpha / r) B A, and leave
every other tensor as it was; an adapter tensor that matches no module must be refused.
usage: merge_check.py MITTEN BASE_DIR WORK_DIR (the base's weights in f32)."""
import json
import os
import struct
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from st_compare import read  # noqa: E402


def write_st(path, tensors):
    header, blobs, off = {}, [], 0
    for name, arr in tensors.items():
        b = np.ascontiguousarray(arr, dtype=np.float32).tobytes()
        header[name] = {"dtype": "F32", "shape": list(arr.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def main():
    mitten, base, work = sys.argv[1:4]
    weights = read(os.path.join(base, "model.safetensors"))
    rng = np.random.default_rng(3)
    r, alpha = 2, 4.0
    adapter = {}
    targets = [n[:-len(".weight")] for n in weights if n.endswith("gate_proj.weight")]
    if not any("visual" in t for t in targets) or not any("visual" not in t for t in targets):
        print("the base needs gate_proj in the vision tower and in the language model")
        return 1
    for module in targets:
        out_f, in_f = weights[module + ".weight"].shape
        adapter[f"base_model.model.{module}.lora_A.weight"] = rng.standard_normal((r, in_f)) * 0.1
        adapter[f"base_model.model.{module}.lora_B.weight"] = rng.standard_normal((out_f, r)) * 0.1
    good = os.path.join(work, "peft_adapter")
    os.makedirs(good, exist_ok=True)
    json.dump({"peft_type": "LORA", "r": r, "lora_alpha": alpha, "target_modules": ["gate_proj"]},
              open(os.path.join(good, "adapter_config.json"), "w"))
    write_st(os.path.join(good, "adapter_model.safetensors"), adapter)
    out = os.path.join(work, "peft_merged")
    subprocess.run([mitten, "merge", "-m", base, "--adapter", good, "--out", out], check=True,
                   stderr=subprocess.DEVNULL)
    merged = read(os.path.join(out, "model.safetensors"))
    worst = 0.0
    for name, w in weights.items():
        module = name[:-len(".weight")]
        want = w
        if module in targets:
            a = adapter[f"base_model.model.{module}.lora_A.weight"]
            b = adapter[f"base_model.model.{module}.lora_B.weight"]
            want = w + (alpha / r) * (b @ a)
        err = np.abs(merged[name] - want).max(initial=0.0) / max(np.abs(want).max(initial=0.0), 1e-30)
        worst = max(worst, err)
        if err > 1e-6:
            print(f"{name}: merged differs by {err:.3g} of its max")
            return 1
    print(f"{len(targets)} modules merged ({sum('visual' in t for t in targets)} in the vision tower), "
          f"worst relative difference {worst:.3g}")
    bad = os.path.join(work, "bad_adapter")
    os.makedirs(bad, exist_ok=True)
    json.dump({"peft_type": "LORA", "r": r, "lora_alpha": alpha, "target_modules": ["gate_proj"]},
              open(os.path.join(bad, "adapter_config.json"), "w"))
    extra = dict(adapter)
    extra["base_model.model.model.no_such_module.lora_A.weight"] = np.zeros((r, 4))
    write_st(os.path.join(bad, "adapter_model.safetensors"), extra)
    p = subprocess.run([mitten, "merge", "-m", base, "--adapter", bad, "--out", os.path.join(work, "bad_merged")],
                       capture_output=True, text=True)
    if p.returncode != 1 or "no_such_module" not in p.stderr:
        print(f"an adapter tensor matching no module was not refused: exit {p.returncode}, {p.stderr.strip()}")
        return 1
    print("an adapter tensor matching no module is refused")
    return 0


if __name__ == "__main__":
    sys.exit(main())
