#!/usr/bin/python3
"""The GGUF files of `mitten quantize` on the shipped tiny Qwen2.5-VL, read by ggml's own GGUF reader
(libggml-base.so of the prebuilt llama.cpp in node_modules/@node-llama-cpp/linux-x64, through ctypes):

  - the projector file (llama.cpp's --mmproj, read by mtmd's clip.cpp, which asserts each key's type): every key
    with the type and value clip.cpp reads, every tensor name, ne, ggml type, and the bytes: the checkpoint's values
    in F32 / F16 / BF16, or exactly what ggml's own ggml_quantize_chunk makes of them in Q8_0;
  - the language model file: every tensor's ggml type as llama.cpp's quantizer would pick it (output matrix, the
    Q4_K_M layers, row-length fallbacks), and its bytes likewise.

    mmproj_check.py --mitten MITTEN --source SOURCE_DIR --work DIR
"""
import argparse
import ctypes
import json
import os
import struct
import subprocess
import sys

import numpy as np

F32, F16, Q4_0, Q8_0, Q4_K, Q6_K, BF16 = 0, 1, 2, 8, 12, 14, 30
TYPE_NAMES = {F32: "F32", F16: "F16", Q4_0: "Q4_0", Q8_0: "Q8_0", Q4_K: "Q4_K", Q6_K: "Q6_K", BF16: "BF16"}
BLOCK = {Q4_0: (32, 18), Q8_0: (32, 34), Q4_K: (256, 144), Q6_K: (256, 210)}
GGUF_U32, GGUF_I32, GGUF_F32, GGUF_BOOL, GGUF_STR, GGUF_ARR = 4, 5, 6, 7, 8, 9

fails = []


def run_llama_cli(cmd, timeout=300):
    """A llama.cpp CLI (llama-mtmd-cli) run to the end of its output. Release v0.5.0 logs from a thread of its own,
    the answer too, and can exit before that thread has written everything (ggml-org/llama.cpp#22142). Its last
    message is a blank line ("\n\n") and messages leave in order, so a run whose stdout does not end with it lost
    some: it is run again, up to five times, and marked lost (r.lost) if every run was cut."""
    for _ in range(5):
        r = subprocess.run(cmd, capture_output=True, timeout=timeout)
        r.lost = r.returncode == 0 and not r.stdout.endswith(b"\n\n")
        if not r.lost:
            break
    return r


def check(label, ok, detail=""):
    print(("ok   " if ok else "FAIL ") + label + ("" if ok or not detail else ": " + detail))
    if not ok:
        fails.append(label)


class InitParams(ctypes.Structure):
    _fields_ = [("no_alloc", ctypes.c_bool), ("ctx", ctypes.c_void_p)]


def load_ggml(source):
    path = os.path.join(source, "node_modules", "@node-llama-cpp", "linux-x64", "bins", "linux-x64",
                        "libggml-base.so")
    if not os.path.exists(path):
        sys.exit(f"FAIL: {path} is missing: run npm install at the repository root (scripts/setup.sh does)")
    g = ctypes.CDLL(path)
    sigs = {
        "gguf_init_from_file": (ctypes.c_void_p, [ctypes.c_char_p, InitParams]),
        "gguf_free": (None, [ctypes.c_void_p]),
        "gguf_get_n_kv": (ctypes.c_int64, [ctypes.c_void_p]),
        "gguf_get_key": (ctypes.c_char_p, [ctypes.c_void_p, ctypes.c_int64]),
        "gguf_get_kv_type": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_int64]),
        "gguf_get_arr_type": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_int64]),
        "gguf_get_arr_n": (ctypes.c_size_t, [ctypes.c_void_p, ctypes.c_int64]),
        "gguf_get_arr_data": (ctypes.c_void_p, [ctypes.c_void_p, ctypes.c_int64]),
        "gguf_get_arr_str": (ctypes.c_char_p, [ctypes.c_void_p, ctypes.c_int64, ctypes.c_size_t]),
        "gguf_get_val_u32": (ctypes.c_uint32, [ctypes.c_void_p, ctypes.c_int64]),
        "gguf_get_val_f32": (ctypes.c_float, [ctypes.c_void_p, ctypes.c_int64]),
        "gguf_get_val_bool": (ctypes.c_bool, [ctypes.c_void_p, ctypes.c_int64]),
        "gguf_get_val_str": (ctypes.c_char_p, [ctypes.c_void_p, ctypes.c_int64]),
        "gguf_get_n_tensors": (ctypes.c_int64, [ctypes.c_void_p]),
        "gguf_get_tensor_name": (ctypes.c_char_p, [ctypes.c_void_p, ctypes.c_int64]),
        "gguf_get_tensor_type": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_int64]),
        "gguf_get_tensor_offset": (ctypes.c_size_t, [ctypes.c_void_p, ctypes.c_int64]),
        "gguf_get_tensor_ne": (ctypes.POINTER(ctypes.c_int64), [ctypes.c_void_p, ctypes.c_int64]),
        "gguf_get_tensor_size": (ctypes.c_size_t, [ctypes.c_void_p, ctypes.c_int64]),
        "gguf_get_data_offset": (ctypes.c_size_t, [ctypes.c_void_p]),
        "ggml_quantize_chunk": (ctypes.c_size_t, [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64,
                                                  ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p]),
        "ggml_quantize_init": (None, [ctypes.c_int]),
    }
    for name, (res, args) in sigs.items():
        f = getattr(g, name)
        f.restype, f.argtypes = res, args
    return g


class Gguf:
    """A file as ggml reads it: keys {name: (type, value)} and tensors {name: (ggml type, ne, bytes)}."""

    def __init__(self, g, path):
        ctx = g.gguf_init_from_file(path.encode(), InitParams(True, None))
        if not ctx:
            raise SystemExit(f"FAIL: ggml refuses {path}")
        self.keys, self.tensors = {}, {}
        for i in range(g.gguf_get_n_kv(ctx)):
            key, t = g.gguf_get_key(ctx, i).decode(), g.gguf_get_kv_type(ctx, i)
            if t == GGUF_U32:
                v = g.gguf_get_val_u32(ctx, i)
            elif t == GGUF_F32:
                v = g.gguf_get_val_f32(ctx, i)
            elif t == GGUF_BOOL:
                v = g.gguf_get_val_bool(ctx, i)
            elif t == GGUF_STR:
                v = g.gguf_get_val_str(ctx, i).decode()
            elif t == GGUF_ARR:
                et, n = g.gguf_get_arr_type(ctx, i), g.gguf_get_arr_n(ctx, i)
                if et == GGUF_STR:
                    v = [g.gguf_get_arr_str(ctx, i, k).decode() for k in range(n)]
                else:
                    ct = {GGUF_F32: ctypes.c_float, GGUF_I32: ctypes.c_int32, GGUF_BOOL: ctypes.c_bool}[et]
                    v = list((ct * n).from_address(g.gguf_get_arr_data(ctx, i)))
                t = (GGUF_ARR, et)
            else:
                v = None
            self.keys[key] = (t, v)
        base = g.gguf_get_data_offset(ctx)
        with open(path, "rb") as f:
            blob = f.read()
        for i in range(g.gguf_get_n_tensors(ctx)):
            name = g.gguf_get_tensor_name(ctx, i).decode()
            ne = tuple(g.gguf_get_tensor_ne(ctx, i)[d] for d in range(4))
            off, size = base + g.gguf_get_tensor_offset(ctx, i), g.gguf_get_tensor_size(ctx, i)
            self.tensors[name] = (g.gguf_get_tensor_type(ctx, i), ne, blob[off:off + size])
        g.gguf_free(ctx)


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    dtypes = {"F32": np.float32, "F16": np.float16, "BF16": np.uint16}
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        a, b = e["data_offsets"]
        arr = np.frombuffer(data[a:b], dtype=dtypes[e["dtype"]]).reshape(e["shape"])
        if e["dtype"] == "BF16":
            arr = (arr.astype(np.uint32) << 16).view(np.float32)
        out[name] = arr.astype(np.float32)
    return out


def encode(g, gtype, x):
    """x (rows, cols) f32 as the bytes of gtype: numpy for the plain types, ggml itself for the quantized."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    if gtype == F32:
        return x.tobytes()
    if gtype == F16:
        return x.astype(np.float16).tobytes()
    if gtype == BF16:
        u = x.view(np.uint32).astype(np.uint64)
        return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16).tobytes()
    rows, cols = x.shape
    blk, nbytes = BLOCK[gtype]
    out = ctypes.create_string_buffer(rows * cols // blk * nbytes)
    g.ggml_quantize_init(gtype)
    g.ggml_quantize_chunk(gtype, x.ctypes.data, out, 0, rows, cols, None)
    return out.raw


def expect_tensor(g, f, label, name, src, gtype):
    """Tensor name of f holds src (any shape; ne is its shape reversed) in gtype."""
    got = f.tensors.get(name)
    if got is None:
        check(f"{label}: {name} present", False)
        return
    t, ne, data = got
    want_ne = tuple(reversed(src.shape)) + (1,) * (4 - src.ndim)
    cols = src.shape[-1]
    ok = t == gtype and ne == want_ne and data == encode(g, gtype, src.reshape(-1, cols))
    check(f"{label}: {name} {TYPE_NAMES.get(t, t)} ne {ne[:src.ndim]}", ok,
          f"want {TYPE_NAMES[gtype]} ne {want_ne[:src.ndim]}" + ("" if t != gtype or ne != want_ne else ", bytes differ"))


def more_bits(i, n):
    return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2


def matrix_type(file_type, cols, role="", layer=0, n_layers=1):
    """llama.cpp's quantizer's choice (src/llama-quant.cpp), with mitten's Q8_0 fallback for Q4_K."""
    want = file_type
    if role == "output" and file_type in (Q4_0, Q4_K, Q6_K):
        want = Q6_K
    if role in ("attn_v", "ffn_down") and file_type == Q4_K and more_bits(layer, n_layers):
        want = Q6_K
    if want in BLOCK and cols % BLOCK[want][0]:
        want = Q8_0 if cols % 32 == 0 else F16
    return want


def check_mmproj(g, f, label, W, cfg, file_type):
    vc = cfg["vision_config"]
    u32 = {"clip.vision.projection_dim": cfg["hidden_size"], "clip.vision.image_size": vc.get("image_size", 560),
           "clip.vision.patch_size": vc["patch_size"], "clip.vision.embedding_length": vc["hidden_size"],
           "clip.vision.feed_forward_length": vc["intermediate_size"], "clip.vision.block_count": vc["depth"],
           "clip.vision.attention.head_count": vc["num_heads"], "clip.vision.spatial_merge_size": 2,
           "clip.vision.n_wa_pattern": vc["fullatt_block_indexes"][0] + 1, "general.quantization_version": 2}
    for k, v in u32.items():
        check(f"{label}: {k} u32 {v}", f.keys.get(k) == (GGUF_U32, v), str(f.keys.get(k)))
    for k, v in {"general.architecture": "clip", "general.type": "mmproj",
                 "clip.projector_type": "qwen2.5vl_merger"}.items():
        check(f"{label}: {k} = {v}", f.keys.get(k) == (GGUF_STR, v), str(f.keys.get(k)))
    for k in ("clip.has_vision_encoder", "clip.use_silu"):
        check(f"{label}: {k} bool true", f.keys.get(k) == (GGUF_BOOL, True), str(f.keys.get(k)))
    eps = f.keys.get("clip.vision.attention.layer_norm_epsilon")
    check(f"{label}: layer_norm_epsilon f32", eps and eps[0] == GGUF_F32 and abs(eps[1] - 1e-6) < 1e-12, str(eps))
    for k in ("clip.vision.image_mean", "clip.vision.image_std"):
        t = f.keys.get(k)
        check(f"{label}: {k} is 3 f32", t and t[0] == (GGUF_ARR, GGUF_F32) and len(t[1]) == 3, str(t))

    proj = Q8_0 if file_type in (Q4_0, Q4_K, Q6_K) else file_type  # the projector's matrices (gguf_mmproj.c)
    names = set()

    def want(name, src, gtype):
        names.add(name)
        expect_tensor(g, f, label, name, src, gtype)

    pe = W["visual.patch_embed.proj.weight"]
    want("v.patch_embd.weight", pe[:, :, 0], F16 if file_type == F16 else F32)
    want("v.patch_embd.weight.1", pe[:, :, 1], F16 if file_type == F16 else F32)
    C = vc["hidden_size"]

    def mat(name, src):
        want(name, src, matrix_type(proj, src.shape[-1]) if src.ndim == 2 else F32)

    for layer in range(vc["depth"]):
        p = f"visual.blocks.{layer}."
        qkv_w, qkv_b = W[p + "attn.qkv.weight"], W[p + "attn.qkv.bias"]
        for k, part in enumerate(("attn_q", "attn_k", "attn_v")):
            mat(f"v.blk.{layer}.{part}.weight", qkv_w[k * C:(k + 1) * C])
            mat(f"v.blk.{layer}.{part}.bias", qkv_b[k * C:(k + 1) * C])
        for hf, gg in (("attn.proj", "attn_out"), ("norm1", "ln1"), ("norm2", "ln2"), ("mlp.gate_proj", "ffn_gate"),
                       ("mlp.up_proj", "ffn_up"), ("mlp.down_proj", "ffn_down")):
            for s in ("weight", "bias"):
                if f"{p}{hf}.{s}" in W:
                    mat(f"v.blk.{layer}.{gg}.{s}", W[f"{p}{hf}.{s}"])
    for hf, gg in (("visual.merger.ln_q", "v.post_ln"), ("visual.merger.mlp.0", "mm.0"), ("visual.merger.mlp.2", "mm.2")):
        for s in ("weight", "bias"):
            if f"{hf}.{s}" in W:
                mat(f"{gg}.{s}", W[f"{hf}.{s}"])
    extra = set(f.tensors) - names
    check(f"{label}: no other tensors", not extra, str(sorted(extra)))


def check_text(g, f, label, W, cfg, file_type):
    n_layers = cfg["num_hidden_layers"]
    for k, v in {"general.architecture": "qwen2vl", "tokenizer.ggml.model": "gpt2", "tokenizer.ggml.pre": "qwen2"}.items():
        check(f"{label}: {k} = {v}", f.keys.get(k) == (GGUF_STR, v), str(f.keys.get(k)))
    sec = f.keys.get("qwen2vl.rope.dimension_sections")
    check(f"{label}: rope.dimension_sections i32 x 4", sec == ((GGUF_ARR, GGUF_I32),
                                                               cfg["rope_scaling"]["mrope_section"] + [0]), str(sec))
    for k, v in {"qwen2vl.block_count": n_layers, "qwen2vl.embedding_length": cfg["hidden_size"],
                 "qwen2vl.context_length": cfg["max_position_embeddings"],
                 "qwen2vl.feed_forward_length": cfg["intermediate_size"],
                 "qwen2vl.attention.head_count": cfg["num_attention_heads"],
                 "qwen2vl.attention.head_count_kv": cfg["num_key_value_heads"],
                 "tokenizer.ggml.eos_token_id": cfg["eos_token_id"]}.items():
        check(f"{label}: {k} u32 {v}", f.keys.get(k) == (GGUF_U32, v), str(f.keys.get(k)))
    names = set()

    def want(name, src, role="", layer=0):
        names.add(name)
        gtype = matrix_type(file_type, src.shape[-1], role, layer, n_layers) if src.ndim == 2 else F32
        expect_tensor(g, f, label, name, src, gtype)

    want("token_embd.weight", W["model.embed_tokens.weight"], "output")  # tied: token_embd is the output matrix
    for layer in range(n_layers):
        p = f"model.layers.{layer}."
        for hf, gg in (("input_layernorm", "attn_norm"), ("self_attn.q_proj", "attn_q"), ("self_attn.k_proj", "attn_k"),
                       ("self_attn.v_proj", "attn_v"), ("self_attn.o_proj", "attn_output"),
                       ("post_attention_layernorm", "ffn_norm"), ("mlp.gate_proj", "ffn_gate"),
                       ("mlp.up_proj", "ffn_up"), ("mlp.down_proj", "ffn_down")):
            for s in ("weight", "bias"):
                if p + hf + "." + s in W:
                    want(f"blk.{layer}.{gg}.{s}", W[p + hf + "." + s], gg, layer)
    want("output_norm.weight", W["model.norm.weight"])
    extra = set(f.tensors) - names
    check(f"{label}: no other tensors (a tied head has no output.weight)", not extra, str(sorted(extra)))


def check_refusals(a, model):
    """Usage errors exit 2 and runtime refusals 1, each saying why, leaving no file behind."""
    out = os.path.join(a.work, "refused.gguf")
    cases = [
        (["--type", "q5_K", "--out", out], 2, "unknown --type q5_K"),
        (["--type", "q8_0"], 2, "--type and --out are required"),
        (["--type", "q8_0", "--out", out, "--no-mmproj", "--mmproj-out", out + "2"], 2, "contradict"),
        (["--type", "q8_0", "--out", out, "--mmproj-out", out], 1, "are both"),
        (["-m", os.path.join(a.work, "missing"), "--type", "q8_0", "--out", out], 1, "config.json"),
    ]
    export = os.path.join(a.work, "export.gguf")
    for p in (export, os.path.join(a.work, "mmproj-export.gguf")):
        if os.path.exists(p):
            os.remove(p)
    r = subprocess.run([a.mitten, "export", "-m", model, "--gguf", export], capture_output=True)
    f = Gguf(a.g, export) if r.returncode == 0 else None
    check("mitten export --gguf: a bf16 model and its mmproj beside it",
          f is not None and f.keys.get("general.file_type") == (GGUF_U32, 32) and
          os.path.exists(os.path.join(a.work, "mmproj-export.gguf")), r.stderr.decode()[-300:])
    for args, code, words in cases:
        r = subprocess.run([a.mitten, "quantize", "-m", model] + args, capture_output=True)
        err = r.stderr.decode()
        check(f"quantize {' '.join(args[:4])}: exit {code}, says \"{words}\"",
              r.returncode == code and words in err and not os.path.exists(out), f"exit {r.returncode}: {err[-300:]}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mitten", required=True)
    ap.add_argument("--source", required=True)
    ap.add_argument("--work", required=True)
    a = ap.parse_args()
    g = a.g = load_ggml(a.source)
    model = os.path.join(a.source, "models", "mitten-tiny")
    W = read_safetensors(os.path.join(model, "model.safetensors"))
    with open(os.path.join(model, "config.json")) as fh:
        cfg = json.load(fh)
    os.makedirs(a.work, exist_ok=True)
    for name, file_type in (("f32", F32), ("f16", F16), ("bf16", BF16), ("q8_0", Q8_0), ("q4_0", Q4_0),
                            ("q4_K", Q4_K), ("q6_K", Q6_K)):
        out = os.path.join(a.work, f"tiny-{name}.gguf")
        for p in (out, os.path.join(a.work, f"mmproj-tiny-{name}.gguf")):
            if os.path.exists(p):
                os.remove(p)
        r = subprocess.run([a.mitten, "quantize", "-m", model, "--type", name, "--out", out], capture_output=True)
        check(f"{name}: mitten quantize", r.returncode == 0, r.stderr.decode()[-400:])
        if r.returncode:
            continue
        check_text(g, Gguf(g, out), f"{name} model", W, cfg, file_type)
        check_mmproj(g, Gguf(g, os.path.join(a.work, f"mmproj-tiny-{name}.gguf")), f"{name} mmproj", W, cfg, file_type)
    check_refusals(a, model)
    print(f"{len(fails)} check(s) failed" if fails else "all checks passed")
    sys.exit(1 if fails else 0)


if __name__ == "__main__":
    main()
