"""Compares two safetensors files tensor by tensor: same names and shapes, values within a tolerance relative to
each tensor's largest magnitude. usage: st_compare.py A B [--rtol 1e-5] [--subset] [--match REGEX] [--bytes] [--differ].
With --subset, B may hold more tensors than A (only A's names are compared). --match REGEX compares only the
tensors whose name it finds (re.search; at least one must). --bytes compares the stored bytes, dtypes and shapes
instead of values. --differ inverts the verdict per tensor: every compared tensor must differ by more than rtol
(with --bytes: in its bytes). Exit 0 when the verdict holds for every tensor."""
import json
import re
import struct
import sys

import numpy as np

DTYPES = {"F32": np.float32, "F16": np.float16, "BF16": np.uint16, "I64": np.int64, "I32": np.int32}


def read(path, raw_bytes=False):
    """name -> float64 array; with raw_bytes, name -> (dtype, shape, bytes)."""
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        a, b = t["data_offsets"]
        if raw_bytes:
            out[name] = (t["dtype"], tuple(t["shape"]), raw[8 + n + a:8 + n + b])
            continue
        arr = np.frombuffer(raw[8 + n + a:8 + n + b], dtype=DTYPES[t["dtype"]]).reshape(t["shape"])
        if t["dtype"] == "BF16":
            arr = (arr.astype(np.uint32) << 16).view(np.float32)
        out[name] = arr.astype(np.float64)
    return out


def take(args, flag, has_value=False):
    if flag not in args:
        return None
    i = args.index(flag)
    value = args[i + 1] if has_value else True
    del args[i:i + (2 if has_value else 1)]
    return value


def main():
    args = sys.argv[1:]
    rtol = float(take(args, "--rtol", True) or 1e-5)
    subset, differ = take(args, "--subset"), take(args, "--differ")
    match = take(args, "--match", True)
    exact = bool(take(args, "--bytes"))
    a, b = read(args[0], exact), read(args[1], exact)
    if match:
        a = {k: v for k, v in a.items() if re.search(match, k)}
        b = {k: v for k, v in b.items() if re.search(match, k)}
        if not a:
            print(f"no tensor matches {match!r}")
            return 1
    if subset:
        b = {k: v for k, v in b.items() if k in a}
    if a.keys() != b.keys():
        print(f"tensor names differ: {sorted(a.keys() ^ b.keys())[:5]}")
        return 1
    worst, bad = 0.0, 0
    for name in sorted(a):
        if exact:
            same = a[name] == b[name]
            err = 0.0 if same else 1.0
        else:
            if a[name].shape != b[name].shape:
                print(f"{name}: shape {a[name].shape} vs {b[name].shape}")
                bad += 1
                continue
            scale = max(np.abs(a[name]).max(initial=0.0), 1e-30)
            err = np.abs(a[name] - b[name]).max(initial=0.0) / scale
            same = err <= rtol
        worst = max(worst, err)
        if same == bool(differ):
            print(f"{name}: " + ("the same" if same else f"differs by {err:.3g} of its max") +
                  (" (byte for byte)" if exact else f" (tolerance {rtol:g})"))
            bad += 1
    what = "differ" if differ else "agree"
    print(f"{len(a)} tensors, worst relative difference {worst:.3g}, {bad} do not {what} (rtol {rtol:g})")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
