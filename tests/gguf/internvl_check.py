#!/usr/bin/python3
"""InternVL's GGUF files as llama.cpp's converter writes them (conversion/internvl.py), read by ggml's own reader
(mmproj_check.py's ctypes on libggml-base), for tiny checkpoints of both layouts (tests/ref/internvl_ref.py: the
original InternVLChatModel with a Qwen2 LLM, transformers' InternVLForConditionalGeneration with a Qwen3 LLM):

  - the language model file: the LLM's arch (qwen2 / qwen3), language_model.* under llama.cpp's names, no vision or
    mlp1 tensor, the bytes of every tensor;
  - the projector file: projector_type internvl with every key clip.cpp reads (types as it asserts them), the
    converter's scale_factor and tile bounds (the original layout's min/max_dynamic_patch; the transformers layout
    has none), InternViT's blocks (the original's fused qkv split), class and position embeddings in F32, ls1/ls2,
    mlp1 as mm.model.mlp.0/1/3, and nothing else, each tensor's ggml type and bytes;
  - mitten reads the language model file back as its text model: the folder's logits on text; with the projector
    file it says that reading InternVL's projector back is not done.

    internvl_check.py --mitten MITTEN --source SOURCE_DIR --work DIR
"""
import argparse
import json
import os
import shutil
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mmproj_check import (F16, F32, GGUF_ARR, GGUF_BOOL, GGUF_F32, GGUF_STR, GGUF_U32, Q8_0, Gguf,  # noqa: E402
                          check, expect_tensor, fails, load_ggml, matrix_type, read_safetensors)

CASES = [  # (layout, llm, arch)
    ("original", "qwen2", "qwen2"),
    ("hf", "qwen3", "qwen3"),
]
NAMES = {
    "original": dict(vision="vision_model.", proj="mlp1.", text="language_model.model.",
                     head="language_model.lm_head.weight", patch="embeddings.patch_embedding.",
                     cls="embeddings.class_embedding", pos="embeddings.position_embedding", layers="encoder.layers.",
                     block=[("attn.proj", "attn_out"), ("norm1", "ln1"), ("norm2", "ln2"), ("mlp.fc1", "ffn_up"),
                            ("mlp.fc2", "ffn_down")], ls=("ls1", "ls2"),
                     mlp=[("0", "mm.model.mlp.0"), ("1", "mm.model.mlp.1"), ("3", "mm.model.mlp.3")]),
    "hf": dict(vision="model.vision_tower.", proj="model.multi_modal_projector.", text="model.language_model.",
               head="lm_head.weight", patch="embeddings.patch_embeddings.projection.", cls="embeddings.cls_token",
               pos="embeddings.position_embeddings", layers="encoder.layer.",
               block=[("attention.q_proj", "attn_q"), ("attention.k_proj", "attn_k"), ("attention.v_proj", "attn_v"),
                      ("attention.projection_layer", "attn_out"), ("layernorm_before", "ln1"),
                      ("layernorm_after", "ln2"), ("mlp.fc1", "ffn_up"), ("mlp.fc2", "ffn_down")],
               ls=("lambda_1", "lambda_2"),
               mlp=[("layer_norm", "mm.model.mlp.0"), ("linear_1", "mm.model.mlp.1"), ("linear_2", "mm.model.mlp.3")]),
}
TEXT = [("input_layernorm", "attn_norm"), ("self_attn.q_proj", "attn_q"), ("self_attn.k_proj", "attn_k"),
        ("self_attn.v_proj", "attn_v"), ("self_attn.o_proj", "attn_output"), ("self_attn.q_norm", "attn_q_norm"),
        ("self_attn.k_norm", "attn_k_norm"), ("post_attention_layernorm", "ffn_norm"), ("mlp.gate_proj", "ffn_gate"),
        ("mlp.up_proj", "ffn_up"), ("mlp.down_proj", "ffn_down")]


def key(f, label, k, t, v):
    got = f.keys.get(k)
    ok = got is not None and got[0] == t and (abs(got[1] - v) < 1e-9 if t == GGUF_F32 else got[1] == v)
    check(f"{label}: {k} = {v}", ok, str(got))


def check_text(g, f, label, W, n, cfg_text, arch, file_type):
    key(f, label, "general.architecture", GGUF_STR, arch)
    names = set()

    def want(name, src, gtype):
        names.add(name)
        expect_tensor(g, f, label, name, src, gtype)

    L = cfg_text["num_hidden_layers"]
    want("token_embd.weight", W[n["text"] + "embed_tokens.weight"], matrix_type(file_type, cfg_text["hidden_size"]))
    for layer in range(L):
        for hf, gg in TEXT:
            for s in ("weight", "bias"):
                src = W.get(f"{n['text']}layers.{layer}.{hf}.{s}")
                if src is not None:
                    role = gg if gg in ("attn_v", "ffn_down") else ""
                    want(f"blk.{layer}.{gg}.{s}", src,
                         matrix_type(file_type, src.shape[-1], role, layer, L) if src.ndim == 2 else F32)
    want("output_norm.weight", W[n["text"] + "norm.weight"], F32)
    want("output.weight", W[n["head"]], matrix_type(file_type, cfg_text["hidden_size"], "output"))
    extra = set(f.tensors) - names
    check(f"{label}: no vision or mlp1 tensor, nothing else", not extra, str(sorted(extra)))


def check_mmproj(g, f, label, W, n, cfg, layout, file_type):
    vc, text = cfg["vision_config"], cfg["llm_config" if layout == "original" else "text_config"]
    first = (lambda v: v[0] if isinstance(v, list) else v)
    u32 = {"clip.vision.projection_dim": text["hidden_size"], "clip.vision.image_size": first(vc["image_size"]),
           "clip.vision.patch_size": first(vc["patch_size"]), "clip.vision.embedding_length": vc["hidden_size"],
           "clip.vision.feed_forward_length": vc["intermediate_size"],
           "clip.vision.block_count": vc["num_hidden_layers"],
           "clip.vision.attention.head_count": vc["num_attention_heads"],
           "clip.vision.projector.scale_factor": round(1 / cfg["downsample_ratio"]), "general.quantization_version": 2}
    if layout == "original":
        u32.update({"clip.vision.preproc_min_tiles": cfg["min_dynamic_patch"],
                    "clip.vision.preproc_max_tiles": cfg["max_dynamic_patch"]})
    else:
        for k in ("clip.vision.preproc_min_tiles", "clip.vision.preproc_max_tiles"):
            check(f"{label}: no {k} (the config has no tile bounds)", k not in f.keys)
    for k, v in u32.items():
        key(f, label, k, GGUF_U32, v)
    for k, v in {"general.architecture": "clip", "general.type": "mmproj", "clip.projector_type": "internvl"}.items():
        key(f, label, k, GGUF_STR, v)
    for k in ("clip.has_vision_encoder", "clip.use_gelu"):
        key(f, label, k, GGUF_BOOL, True)
    check(f"{label}: no clip.use_silu", "clip.use_silu" not in f.keys)
    eps = f.keys.get("clip.vision.attention.layer_norm_epsilon")
    check(f"{label}: layer_norm_epsilon f32 {vc['layer_norm_eps']}",
          eps is not None and eps[0] == GGUF_F32 and abs(eps[1] - vc["layer_norm_eps"]) < 1e-12, str(eps))
    for k, v in (("clip.vision.image_mean", [0.485, 0.456, 0.406]), ("clip.vision.image_std", [0.229, 0.224, 0.225])):
        t = f.keys.get(k)
        check(f"{label}: {k} ImageNet's, 3 f32", t is not None and t[0] == (GGUF_ARR, GGUF_F32) and
              np.allclose(t[1], v), str(t))

    proj = file_type
    names = set()

    def want(name, src, gtype):
        names.add(name)
        expect_tensor(g, f, label, name, src, gtype)

    def mat(name, src):
        want(name, src, matrix_type(proj, src.shape[-1]) if src.ndim == 2 else F32)

    V, C = n["vision"], vc["hidden_size"]
    want("v.patch_embd.weight", W[V + n["patch"] + "weight"], F16 if file_type == F16 else F32)
    want("v.patch_embd.bias", W[V + n["patch"] + "bias"], F32)
    want("v.class_embd", W[V + n["cls"]], F32)
    want("v.position_embd.weight", W[V + n["pos"]], F32)
    for layer in range(vc["num_hidden_layers"]):
        p = f"{V}{n['layers']}{layer}."
        if layout == "original":
            for k, part in enumerate(("attn_q", "attn_k", "attn_v")):
                for s in ("weight", "bias"):
                    mat(f"v.blk.{layer}.{part}.{s}", W[f"{p}attn.qkv.{s}"][k * C:(k + 1) * C])
        for hf, gg in n["block"]:
            for s in ("weight", "bias"):
                if f"{p}{hf}.{s}" in W:
                    mat(f"v.blk.{layer}.{gg}.{s}", W[f"{p}{hf}.{s}"])
        for k, ls in enumerate(n["ls"]):
            want(f"v.blk.{layer}.ls{k + 1}.weight", W[p + ls], F32)
    for hf, gg in n["mlp"]:
        for s in ("weight", "bias"):
            mat(f"{gg}.{s}", W[f"{n['proj']}{hf}.{s}"])
    extra = set(f.tensors) - names
    check(f"{label}: no other tensors", not extra, str(sorted(extra)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mitten", required=True)
    ap.add_argument("--source", required=True)
    ap.add_argument("--work", required=True)
    a = ap.parse_args()
    shutil.rmtree(a.work, ignore_errors=True)
    os.makedirs(a.work)
    g = load_ggml(a.source)
    ref = os.path.join(a.source, "tests", "ref", "internvl_ref.py")
    for layout, llm, arch in CASES:
        model = os.path.join(a.work, layout)
        subprocess.run([sys.executable, ref, "make-checkpoint", "--layout", layout, "--llm", llm, "--out", model],
                       check=True, capture_output=True)
        with open(os.path.join(model, "config.json")) as fh:
            cfg = json.load(fh)
        W = read_safetensors(os.path.join(model, "model.safetensors"))
        n = NAMES[layout]
        text_cfg = cfg["llm_config" if layout == "original" else "text_config"]
        for ftype, gtype in (("f16", F16), ("q8_0", Q8_0), ("f32", F32)):
            out = os.path.join(a.work, f"{layout}-{ftype}.gguf")
            r = subprocess.run([a.mitten, "quantize", "-m", model, "--type", ftype, "--out", out], capture_output=True)
            label = f"{layout} {ftype}"
            check(f"{label}: mitten quantize", r.returncode == 0, r.stderr.decode()[-300:])
            if r.returncode:
                continue
            check_text(g, Gguf(g, out), label, W, n, text_cfg, arch, gtype)
            check_mmproj(g, Gguf(g, os.path.join(a.work, f"mmproj-{layout}-{ftype}.gguf")), label + " mmproj", W, n,
                         cfg, layout, gtype)
        ids = os.path.join(a.work, "ids.npy")
        np.save(ids, np.array([302, 72, 105, 33, 301, 10, 302, 97], dtype=np.int64))
        outs = []
        for src in (model, os.path.join(a.work, f"{layout}-f32.gguf")):
            o = os.path.join(a.work, f"{layout}-{len(outs)}.npy")
            r = subprocess.run([a.mitten, "logits", "-m", src, "--ids", ids, "--out", o, "--threads", "2"],
                               capture_output=True)
            outs.append(np.load(o) if r.returncode == 0 else None)
            if r.returncode:
                print(r.stderr.decode()[-300:])
        check(f"{layout}: mitten reads the f32 language model file as the folder's text model (same logits)",
              outs[0] is not None and outs[1] is not None and outs[0].shape == outs[1].shape and
              float(np.abs(outs[0] - outs[1]).max()) <= 1e-5 * float(np.abs(outs[0]).max()))
        r = subprocess.run([a.mitten, "run", "-m", os.path.join(a.work, f"{layout}-f32.gguf"), "--mmproj",
                            os.path.join(a.work, f"mmproj-{layout}-f32.gguf"), "-p", "hi", "--max-tokens", "1"],
                           capture_output=True)
        err = r.stderr.decode()
        check(f"{layout}: --mmproj with an internvl projector is refused, naming it",
              r.returncode == 1 and "internvl" in err and "mmproj" in err, err[-300:])
    print(f"{len(fails)} check(s) failed" if fails else "all checks passed")
    sys.exit(1 if fails else 0)


if __name__ == "__main__":
    main()
