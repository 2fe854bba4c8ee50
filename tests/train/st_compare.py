"""Compares two safetensors files tensor by tensor: same names and shapes, values within a tolerance relative to
each tensor's largest magnitude. usage: st_compare.py A B [--rtol 1e-5] [--subset]. With --subset, B may hold
more tensors than A (only A's names are compared). Exit 0 when they agree."""
import json
import struct
import sys

import numpy as np

DTYPES = {"F32": np.float32, "F16": np.float16, "BF16": np.uint16, "I64": np.int64, "I32": np.int32}


def read(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        a, b = t["data_offsets"]
        arr = np.frombuffer(raw[8 + n + a:8 + n + b], dtype=DTYPES[t["dtype"]]).reshape(t["shape"])
        if t["dtype"] == "BF16":
            arr = (arr.astype(np.uint32) << 16).view(np.float32)
        out[name] = arr.astype(np.float64)
    return out


def main():
    args = sys.argv[1:]
    rtol = 1e-5
    if "--rtol" in args:
        i = args.index("--rtol")
        rtol = float(args[i + 1])
        del args[i:i + 2]
    subset = "--subset" in args
    if subset:
        args.remove("--subset")
    a, b = read(args[0]), read(args[1])
    if subset:
        b = {k: v for k, v in b.items() if k in a}
    if a.keys() != b.keys():
        print(f"tensor names differ: {sorted(a.keys() ^ b.keys())[:5]}")
        return 1
    worst, bad = 0.0, 0
    for name in sorted(a):
        if a[name].shape != b[name].shape:
            print(f"{name}: shape {a[name].shape} vs {b[name].shape}")
            bad += 1
            continue
        scale = max(np.abs(a[name]).max(initial=0.0), 1e-30)
        err = np.abs(a[name] - b[name]).max(initial=0.0) / scale
        worst = max(worst, err)
        if not err <= rtol:
            print(f"{name}: differs by {err:.3g} of its max (tolerance {rtol:g})")
            bad += 1
    print(f"{len(a)} tensors, worst relative difference {worst:.3g}, {bad} over {rtol:g}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
