#!/usr/bin/python3
"""llama.cpp's own quantizer against mitten's, and mitten reading llama.cpp's files:

  - `mitten quantize --type f32` writes the tiny Qwen2.5-VL's language model; llama.cpp's llama_model_quantize (the
    prebuilt libllama of node_modules/@node-llama-cpp/linux-x64, through ctypes) turns that file into Q8_0 and Q4_0
    files, as llama-quantize would;
  - mitten's own q8_0 and q4_0 files hold the same tensors, each of the same ggml type with the same bytes (the type
    rules and the block quantizers both agree with llama.cpp's);
  - mitten runs llama.cpp's files: the same logits as from its own;
  - q4_K (llama.cpp's Q4_K_M) and q6_K: the same, except where the rows are not whole 256-blocks: llama.cpp then
    writes Q5_0 (a type mitten does not write or read) and mitten Q8_0 for Q4_K; both write Q8_0 for Q6_K.

    llama_quantize.py --mitten MITTEN --source SOURCE_DIR --work DIR
"""
import argparse
import ctypes
import os
import shutil
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mmproj_check as mc  # noqa: E402  (ggml's reader through ctypes)

check, fails = mc.check, mc.fails


class QuantizeParams(ctypes.Structure):
    """llama_model_quantize_params of include/llama.h in llama.cpp v0.5.0 (the fields in their order)."""
    _fields_ = [("nthread", ctypes.c_int32), ("ftype", ctypes.c_int), ("output_tensor_type", ctypes.c_int),
                ("token_embedding_type", ctypes.c_int), ("allow_requantize", ctypes.c_bool),
                ("quantize_output_tensor", ctypes.c_bool), ("only_copy", ctypes.c_bool), ("pure", ctypes.c_bool),
                ("keep_split", ctypes.c_bool), ("dry_run", ctypes.c_bool), ("imatrix", ctypes.c_void_p),
                ("kv_overrides", ctypes.c_void_p), ("tt_overrides", ctypes.c_void_p),
                ("prune_layers", ctypes.c_void_p), ("max_buf_size", ctypes.c_size_t)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mitten", required=True)
    ap.add_argument("--source", required=True)
    ap.add_argument("--work", required=True)
    a = ap.parse_args()
    shutil.rmtree(a.work, ignore_errors=True)
    os.makedirs(a.work)
    g = mc.load_ggml(a.source)
    lib = os.path.join(a.source, "node_modules", "@node-llama-cpp", "linux-x64", "bins", "linux-x64",
                       "libllama.v0.5.0.so")
    if not os.path.exists(lib):
        sys.exit(f"FAIL: {lib} is missing: run npm install at the repository root")
    llama = ctypes.CDLL(lib)
    llama.llama_model_quantize_default_params.restype = QuantizeParams
    llama.llama_model_quantize.restype = ctypes.c_uint32
    llama.llama_model_quantize.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.POINTER(QuantizeParams)]
    model = os.path.join(a.source, "models", "mitten-tiny")

    def mitten(args):
        return subprocess.run([a.mitten] + args, capture_output=True, timeout=300)

    f32 = os.path.join(a.work, "tiny-f32.gguf")
    r = mitten(["quantize", "-m", model, "--type", "f32", "--out", f32, "--no-mmproj"])
    check("mitten quantize --type f32", r.returncode == 0, r.stderr.decode()[-300:])
    ids = [int(t) for t in mitten(["tokenize", "-m", model, "--ids-only", "--text",
                                   "<|im_start|>user\nWhat colour is the shape?<|im_end|>\n"]).stdout.split()]
    np.save(os.path.join(a.work, "ids.npy"), np.array(ids, dtype=np.int64))
    Q5_0 = 6
    for name, ftype in (("q8_0", 7), ("q4_0", 2), ("q4_K", 15), ("q6_K", 18)):
        theirs, ours = os.path.join(a.work, f"llama-{name}.gguf"), os.path.join(a.work, f"mitten-{name}.gguf")
        p = llama.llama_model_quantize_default_params()
        p.ftype, p.nthread = ftype, 2
        rc = llama.llama_model_quantize(f32.encode(), theirs.encode(), ctypes.byref(p))
        check(f"{name}: llama.cpp quantizes mitten's f32 file", rc == 0 and os.path.exists(theirs), f"rc {rc}")
        r = mitten(["quantize", "-m", model, "--type", name, "--out", ours, "--no-mmproj"])
        check(f"{name}: mitten quantize", r.returncode == 0, r.stderr.decode()[-300:])
        if rc or r.returncode:
            continue
        t, o = mc.Gguf(g, theirs), mc.Gguf(g, ours)
        check(f"{name}: the same tensors", sorted(t.tensors) == sorted(o.tensors),
              str(sorted(set(t.tensors) ^ set(o.tensors))))
        differ = [n for n in t.tensors if n in o.tensors and (t.tensors[n][0], t.tensors[n][2]) !=
                  (o.tensors[n][0], o.tensors[n][2]) and not (t.tensors[n][0] == Q5_0 and o.tensors[n][0] == mc.Q8_0)]
        kquant = [n for n in t.tensors if t.tensors[n][0] in (mc.Q4_K, mc.Q6_K)]
        if name in ("q4_K", "q6_K"):
            check(f"{name}: some tensors are K-quants in both ({len(kquant)})", len(kquant) > 0)
        check(f"{name}: every tensor of the same type and bytes as llama.cpp's quantizer gives "
              f"({len(t.tensors)} tensors)", not differ,
              ", ".join(f"{n} {mc.TYPE_NAMES.get(t.tensors[n][0])} vs {mc.TYPE_NAMES.get(o.tensors[n][0])}"
                        for n in differ[:6]))
        check(f"{name}: general.file_type as llama.cpp's", t.keys.get("general.file_type") ==
              o.keys.get("general.file_type"), f"{t.keys.get('general.file_type')} vs {o.keys.get('general.file_type')}")
        if any(v[0] == Q5_0 for v in t.tensors.values()):
            continue  # llama.cpp's Q5_0 fallback: mitten does not read that type
        outs = []
        for f in (theirs, ours):
            out = f + ".logits.npy"
            r = mitten(["logits", "-m", f, "--ids", os.path.join(a.work, "ids.npy"), "--out", out, "--threads", "2"])
            outs.append(np.load(out) if r.returncode == 0 else r.stderr.decode()[-300:])
        ok = all(isinstance(x, np.ndarray) for x in outs)
        check(f"{name}: mitten runs llama.cpp's file with its own file's logits",
              ok and np.array_equal(outs[0], outs[1]), str(outs[0])[:300] if not ok else "logits differ")
    print(f"{len(fails)} check(s) failed" if fails else "all checks passed")
    sys.exit(1 if fails else 0)


if __name__ == "__main__":
    main()
