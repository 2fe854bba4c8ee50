"""Cross-check mitten's .npy and safetensors code against NumPy, PyTorch and the safetensors format as specified.

usage: io_ref.py PATH/TO/io_ref

The safetensors package is not installed here, so files are written and read with struct + json following the
format's specification (huggingface/safetensors docs and safetensors/src/tensor.rs): u64 little-endian header
length, JSON header padded with spaces to 8 bytes, tensors sorted by alignment then name, contiguous data.
All comparisons are exact (bit for bit): nothing here is rounded.
"""
import json
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np
import torch

TOOL = sys.argv[1]
ST_DTYPE = {np.dtype("<f4"): "F32", np.dtype("<f2"): "F16", np.dtype("<i4"): "I32", np.dtype("<i8"): "I64",
            np.dtype("u1"): "U8"}
ITEMSIZE = {"F64": 8, "I64": 8, "F32": 4, "I32": 4, "BF16": 2, "F16": 2, "U8": 1}
failures = []
checks = [0]


def check(cond, what):
    checks[0] += 1
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def run(*args):
    out = subprocess.run([TOOL, *args], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"io_ref {' '.join(args)} failed: {out.stderr}")
    return out.stdout


def arrays():
    rng = np.random.default_rng(1234)
    a = {
        "w.f32": rng.standard_normal((3, 4)).astype("<f4"),
        "h.f16": rng.standard_normal(5).astype("<f2"),
        "ids.i32": rng.integers(-2**31, 2**31 - 1, (2, 3, 4), dtype="<i4"),
        "pos.i64": np.array([-2**63, -1, 0, 1, 2**63 - 1, 5, 6], dtype="<i8"),
        "mask.u8": rng.integers(0, 256, (4, 4), dtype="u1"),
        "scalar": np.array(2.5, dtype="<f4"),
        "empty": np.zeros((0, 3), dtype="<f4"),
    }
    a["h.f16"][0] = np.inf
    a["w.f32"][0, 0] = np.float32(1e-40)  # subnormal
    return a


def bf16_tensor():
    g = torch.Generator().manual_seed(7)
    t = torch.randn(6, 5, generator=g).to(torch.bfloat16)
    t[0, 0] = float("-inf")
    return t


def st_bytes(tensors, metadata=None, rust_order=True):
    """tensors: name -> (dtype string, shape, raw bytes). Returns the file image."""
    names = list(tensors)
    if rust_order:
        names.sort(key=lambda n: (-ITEMSIZE[tensors[n][0]], n))
    header, data, off = {}, b"", 0
    if metadata is not None:
        header["__metadata__"] = metadata
    for n in names:
        dt, shape, raw = tensors[n]
        header[n] = {"dtype": dt, "shape": list(shape), "data_offsets": [off, off + len(raw)]}
        data += raw
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


def parse_st(path):
    """A strict reader: what the Rust library accepts, plus mitten's writer's promises (aligned, sorted)."""
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    check(n % 8 == 0, f"{path}: header length {n} not a multiple of 8")
    header = json.loads(raw[8:8 + n].decode())
    meta = header.pop("__metadata__", None)
    data = raw[8 + n:]
    entries = sorted(header.items(), key=lambda kv: kv[1]["data_offsets"])
    end = 0
    for name, e in entries:
        b, f = e["data_offsets"]
        check(b == end, f"{path}: {name} starts at {b}, not {end}")
        check(b % ITEMSIZE[e["dtype"]] == 0, f"{path}: {name} misaligned")
        check(f - b == ITEMSIZE[e["dtype"]] * int(np.prod(e["shape"], dtype=np.int64)), f"{path}: {name} size")
        end = f
    check(end == len(data), f"{path}: data area {len(data)} bytes, tensors cover {end}")
    order = [k for k, _ in entries]
    want = sorted(header, key=lambda k: (-ITEMSIZE[header[k]["dtype"]], k))
    check(order == want, f"{path}: layout order {order}, want {want}")
    out = {}
    for name, e in header.items():
        b, f = e["data_offsets"]
        out[name] = (e["dtype"], e["shape"], data[b:f])
    return out, meta


def same(a, b):
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def test_read_safetensors(work):
    arrs = arrays()
    bf = bf16_tensor()
    tensors = {n: (ST_DTYPE[a.dtype], a.shape, a.tobytes()) for n, a in arrs.items()}
    tensors["emb.bf16"] = ("BF16", tuple(bf.shape), bf.view(torch.int16).numpy().tobytes())
    tensors["skip.f64"] = ("F64", (2,), np.array([1.0, 2.0]).tobytes())
    for variant, rust_order in (("sorted", True), ("unaligned", False)):
        path = os.path.join(work, f"{variant}.safetensors")
        open(path, "wb").write(st_bytes(tensors, {"format": "pt", "note": "hi"}, rust_order))
        out = os.path.join(work, variant)
        os.mkdir(out)
        lines = run("st2npy", path, out).splitlines()
        check("meta format pt" in lines and "meta note hi" in lines, f"{variant}: metadata {lines}")
        for n, a in arrs.items():
            got = np.load(os.path.join(out, n + ".npy"))
            check(same(got, a), f"{variant}: tensor {n} differs")
        got = np.load(os.path.join(out, "emb.bf16.npy"))
        check(same(got, bf.float().numpy()), f"{variant}: bf16 tensor differs from torch's float conversion")
        check(not os.path.exists(os.path.join(out, "skip.f64.npy")), f"{variant}: F64 should be skipped")


def test_read_sharded(work):
    arrs = arrays()
    model = os.path.join(work, "model")
    os.mkdir(model)
    names = sorted(arrs)
    shards = {"model-00001-of-00002.safetensors": names[:3], "model-00002-of-00002.safetensors": names[3:]}
    wm = {}
    for shard, ns in shards.items():
        t = {n: (ST_DTYPE[arrs[n].dtype], arrs[n].shape, arrs[n].tobytes()) for n in ns}
        open(os.path.join(model, shard), "wb").write(st_bytes(t, {"format": "pt"}))
        wm.update({n: shard for n in ns})
    json.dump({"metadata": {"total_size": 0}, "weight_map": wm}, open(os.path.join(model, "model.safetensors.index.json"), "w"))
    out = os.path.join(work, "model_out")
    os.mkdir(out)
    lines = run("st2npy", model, out).splitlines()
    for n, a in arrs.items():
        check(same(np.load(os.path.join(out, n + ".npy")), a), f"sharded: tensor {n} differs")
        check(f"file {n} {wm[n]}" in lines, f"sharded: {n} not reported in {wm[n]}")


def test_npy(work):
    arrs = arrays()
    for n, a in arrs.items():
        for version in ((1, 0), (2, 0), (3, 0)):
            src = os.path.join(work, f"{n}.v{version[0]}.npy")
            with open(src, "wb") as f:
                np.lib.format.write_array(f, a, version=version)
            dst = os.path.join(work, f"{n}.v{version[0]}.back.npy")
            run("npy2npy", src, dst)
            got = np.load(dst)
            check(same(got, a), f"npy {n} v{version}: round trip differs")
            with open(dst, "rb") as f:
                check(np.lib.format.read_magic(f) == (1, 0), f"npy {n}: we should write version 1.0")
                np.lib.format.read_array_header_1_0(f)
                check(f.tell() % 64 == 0, f"npy {n}: data not at a multiple of 64")
    # transposed arrays are stored fortran_order=True: mitten must refuse them, not misread them
    src = os.path.join(work, "fortran.npy")
    np.save(src, np.asfortranarray(np.ones((2, 3), dtype="<f4")))
    bad = subprocess.run([TOOL, "npy2npy", src, os.path.join(work, "x.npy")], capture_output=True, text=True)
    check(bad.returncode != 0 and "fortran_order" in bad.stderr, f"fortran order accepted: {bad.stderr}")


def test_write_safetensors(work):
    arrs = arrays()
    paths = []
    for n, a in arrs.items():
        p = os.path.join(work, "in", n + ".npy")
        os.makedirs(os.path.dirname(p), exist_ok=True)
        np.save(p, a)
        paths.append(p)
    out = os.path.join(work, "ours.safetensors")
    run("npy2st", out, *paths)
    got, meta = parse_st(out)
    check(meta == {"format": "pt"}, f"written metadata {meta}")
    check(set(got) == set(arrs), f"written names {sorted(got)}")
    for n, a in arrs.items():
        dt, shape, raw = got[n]
        check(dt == ST_DTYPE[a.dtype] and tuple(shape) == a.shape and raw == a.tobytes(), f"written {n} differs")

    model = os.path.join(work, "ours_model")
    os.mkdir(model)
    run("shard", model, "64", *paths)
    index = json.load(open(os.path.join(model, "model.safetensors.index.json")))
    total = sum(a.nbytes for a in arrs.values())
    check(index["metadata"]["total_size"] == total, f"index total_size {index['metadata']} != {total}")
    check(sorted(index["weight_map"]) == sorted(arrs), "index names")
    shard_files = sorted(set(index["weight_map"].values()))
    check(len(shard_files) > 1 and all(f == f"model-{i + 1:05d}-of-{len(shard_files):05d}.safetensors"
                                       for i, f in enumerate(shard_files)), f"shard names {shard_files}")
    for shard in shard_files:
        got, _ = parse_st(os.path.join(model, shard))
        check(got.keys() <= arrs.keys(), f"{shard}: unexpected names")
        check(sum(len(r) for _, _, r in got.values()) <= 64 or len(got) == 1, f"{shard}: over the limit")
        for n, (dt, shape, raw) in got.items():
            check(index["weight_map"][n] == shard, f"{n} in {shard}, index says {index['weight_map'][n]}")
            check(raw == arrs[n].tobytes() and tuple(shape) == arrs[n].shape, f"sharded {n} differs")


def main():
    with tempfile.TemporaryDirectory() as work:
        for test in (test_read_safetensors, test_read_sharded, test_npy, test_write_safetensors):
            d = os.path.join(work, test.__name__)
            os.mkdir(d)
            test(d)
    print(f"{checks[0]} checks, {len(failures)} failed")
    sys.exit(1 if failures else 0)


main()
