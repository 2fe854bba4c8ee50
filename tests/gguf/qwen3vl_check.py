#!/usr/bin/python3
"""Qwen3-VL's GGUF files as llama.cpp's converter writes them (conversion/qwen3vl.py), read by ggml's own reader
(mmproj_check.py's ctypes on libggml-base), for the tiny dense Qwen3-VL (tests/ref/qwen3_ref.py, DeepStack after
blocks 0 and 2 of 4) with internvl_ref.py's tiny byte-level tokenizer:

  - the language model file: arch qwen3vl, rope.dimension_sections the four i32 sections llama.cpp's IMROPE reads
    (mrope_section padded with 0), n_deepstack_layers, key/value length, model.language_model.* under llama.cpp's
    names (q/k norms included, nothing permuted), no vision tensor, each tensor's type and bytes;
  - the projector file: projector_type qwen3vl_merger with the keys clip.cpp reads, is_deepstack_layers (a bool per
    block), the Conv3d patch embedding as two Conv2d halves and its bias, the position table in F32, the fused qkv
    kept as attn_qkv, the merger as v.post_ln / mm.0 / mm.2, each DeepStack merger as v.deepstack.L.{norm,fc1,fc2}
    under the block L it follows, and nothing else;
  - reading the files back is refused by name (not done yet).

    qwen3vl_check.py --mitten MITTEN --source SOURCE_DIR --work DIR
"""
import argparse
import json
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mmproj_check import (F16, F32, GGUF_ARR, GGUF_BOOL, GGUF_F32, GGUF_I32, GGUF_STR, GGUF_U32, Q8_0, Gguf,  # noqa: E402
                          check, expect_tensor, fails, load_ggml, matrix_type, read_safetensors)

TEXT = [("input_layernorm", "attn_norm"), ("self_attn.q_proj", "attn_q"), ("self_attn.k_proj", "attn_k"),
        ("self_attn.v_proj", "attn_v"), ("self_attn.o_proj", "attn_output"), ("self_attn.q_norm", "attn_q_norm"),
        ("self_attn.k_norm", "attn_k_norm"), ("post_attention_layernorm", "ffn_norm"), ("mlp.gate_proj", "ffn_gate"),
        ("mlp.up_proj", "ffn_up"), ("mlp.down_proj", "ffn_down")]


def key(f, label, k, t, v):
    got = f.keys.get(k)
    ok = got is not None and got[0] == t and (abs(got[1] - v) < 1e-9 if t == GGUF_F32 else got[1] == v)
    check(f"{label}: {k} = {v}", ok, str(got))


def check_text(g, f, label, W, cfg, file_type):
    tc = cfg["text_config"]
    key(f, label, "general.architecture", GGUF_STR, "qwen3vl")
    sec = tc.get("rope_parameters", tc.get("rope_scaling"))["mrope_section"]
    key(f, label, "qwen3vl.rope.dimension_sections", (GGUF_ARR, GGUF_I32), sec + [0] * (4 - len(sec)))
    key(f, label, "qwen3vl.n_deepstack_layers", GGUF_U32, len(cfg["vision_config"]["deepstack_visual_indexes"]))
    key(f, label, "qwen3vl.attention.key_length", GGUF_U32, tc["head_dim"])
    key(f, label, "qwen3vl.attention.value_length", GGUF_U32, tc["head_dim"])
    names = set()

    def want(name, src, gtype):
        names.add(name)
        expect_tensor(g, f, label, name, src, gtype)

    P, L, tied = "model.language_model.", tc["num_hidden_layers"], "lm_head.weight" not in W
    want("token_embd.weight", W[P + "embed_tokens.weight"], matrix_type(file_type, tc["hidden_size"],
                                                                        "output" if tied else ""))
    for layer in range(L):
        for hf, gg in TEXT:
            src = W.get(f"{P}layers.{layer}.{hf}.weight")
            if src is not None:
                role = gg if gg in ("attn_v", "ffn_down") else ""
                want(f"blk.{layer}.{gg}.weight", src,
                     matrix_type(file_type, src.shape[-1], role, layer, L) if src.ndim == 2 else F32)
    want("output_norm.weight", W[P + "norm.weight"], F32)
    if not tied:
        want("output.weight", W["lm_head.weight"], matrix_type(file_type, tc["hidden_size"], "output"))
    extra = set(f.tensors) - names
    check(f"{label}: no vision tensor, nothing else", not extra, str(sorted(extra)))


def check_mmproj(g, f, label, W, cfg, file_type):
    vc, tc = cfg["vision_config"], cfg["text_config"]
    deep = vc["deepstack_visual_indexes"]
    side = round(vc["num_position_embeddings"] ** 0.5)
    u32 = {"clip.vision.projection_dim": tc["hidden_size"], "clip.vision.image_size": side * vc["patch_size"],
           "clip.vision.patch_size": vc["patch_size"], "clip.vision.embedding_length": vc["hidden_size"],
           "clip.vision.feed_forward_length": vc["intermediate_size"], "clip.vision.block_count": vc["depth"],
           "clip.vision.attention.head_count": vc["num_heads"], "clip.vision.spatial_merge_size": 2}
    for k, v in u32.items():
        key(f, label, k, GGUF_U32, v)
    for k, v in {"general.architecture": "clip", "general.type": "mmproj",
                 "clip.projector_type": "qwen3vl_merger"}.items():
        key(f, label, k, GGUF_STR, v)
    for k in ("clip.has_vision_encoder", "clip.use_gelu"):
        key(f, label, k, GGUF_BOOL, True)
    key(f, label, "clip.vision.attention.layer_norm_epsilon", GGUF_F32, tc["rms_norm_eps"])
    got = f.keys.get("clip.vision.is_deepstack_layers")
    check(f"{label}: is_deepstack_layers bools true at {deep}",
          got is not None and got[0] == (GGUF_ARR, GGUF_BOOL), str(got))
    for k in ("clip.vision.image_mean", "clip.vision.image_std"):
        t = f.keys.get(k)
        check(f"{label}: {k} 3 f32 of 0.5", t is not None and t[0] == (GGUF_ARR, GGUF_F32) and list(t[1]) == [0.5] * 3,
              str(t))
    names = set()

    def want(name, src, gtype):
        names.add(name)
        expect_tensor(g, f, label, name, src, gtype)

    def mat(name, src):
        want(name, src, matrix_type(file_type, src.shape[-1]) if src.ndim == 2 else F32)

    V = "model.visual."
    pe = W[V + "patch_embed.proj.weight"]
    want("v.patch_embd.weight", pe[:, :, 0], F16 if file_type == F16 else F32)
    want("v.patch_embd.weight.1", pe[:, :, 1], F16 if file_type == F16 else F32)
    want("v.patch_embd.bias", W[V + "patch_embed.proj.bias"], F32)
    want("v.position_embd.weight", W[V + "pos_embed.weight"], F32)
    for layer in range(vc["depth"]):
        for hf, gg in (("attn.qkv", "attn_qkv"), ("attn.proj", "attn_out"), ("norm1", "ln1"), ("norm2", "ln2"),
                       ("mlp.linear_fc1", "ffn_up"), ("mlp.linear_fc2", "ffn_down")):
            for s in ("weight", "bias"):
                mat(f"v.blk.{layer}.{gg}.{s}", W[f"{V}blocks.{layer}.{hf}.{s}"])
    for hf, gg in (("merger.norm", "v.post_ln"), ("merger.linear_fc1", "mm.0"), ("merger.linear_fc2", "mm.2")):
        for s in ("weight", "bias"):
            mat(f"{gg}.{s}", W[f"{V}{hf}.{s}"])
    for j, layer in enumerate(deep):
        for hf, gg in (("norm", "norm"), ("linear_fc1", "fc1"), ("linear_fc2", "fc2")):
            for s in ("weight", "bias"):
                mat(f"v.deepstack.{layer}.{gg}.{s}", W[f"{V}deepstack_merger_list.{j}.{hf}.{s}"])
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
    ref = os.path.join(a.source, "tests", "ref")
    model = os.path.join(a.work, "model")
    subprocess.run([sys.executable, os.path.join(ref, "qwen3_ref.py"), "make-checkpoint", "--variant", "qwen3_vl",
                    "--out", model, "--seed", "7"], check=True, capture_output=True)
    sys.path.insert(0, ref)
    import internvl_ref  # noqa: E402  (its tiny byte-level tokenizer; the Qwen3-VL maker writes none)
    with open(os.path.join(model, "tokenizer.json"), "w") as fh:
        json.dump(internvl_ref.tokenizer_json(), fh)
    with open(os.path.join(model, "tokenizer_config.json"), "w") as fh:
        json.dump({"eos_token": "<|im_end|>"}, fh)
    with open(os.path.join(model, "config.json")) as fh:
        cfg = json.load(fh)
    W = read_safetensors(os.path.join(model, "model.safetensors"))
    for ftype, gtype in (("f32", F32), ("f16", F16), ("q8_0", Q8_0)):
        out = os.path.join(a.work, f"q-{ftype}.gguf")
        r = subprocess.run([a.mitten, "quantize", "-m", model, "--type", ftype, "--out", out], capture_output=True)
        check(f"{ftype}: mitten quantize", r.returncode == 0, r.stderr.decode()[-300:])
        if r.returncode:
            continue
        check_text(g, Gguf(g, out), ftype, W, cfg, gtype)
        m = Gguf(g, os.path.join(a.work, f"mmproj-q-{ftype}.gguf"))
        check_mmproj(g, m, ftype + " mmproj", W, cfg, gtype)
        got = m.keys.get("clip.vision.is_deepstack_layers")
        if got:
            check(f"{ftype} mmproj: is_deepstack_layers true exactly at {cfg['vision_config']['deepstack_visual_indexes']}",
                  [i for i, b in enumerate(got[1]) if b] == cfg["vision_config"]["deepstack_visual_indexes"] and
                  len(got[1]) == cfg["vision_config"]["depth"], str(got))
    r = subprocess.run([a.mitten, "run", "-m", os.path.join(a.work, "q-f32.gguf"), "-p", "hi", "--max-tokens", "1"],
                       capture_output=True)
    err = r.stderr.decode()
    check("reading a qwen3vl file back is refused by name", r.returncode == 1 and "qwen3vl" in err, err[-300:])
    print(f"{len(fails)} check(s) failed" if fails else "all checks passed")
    sys.exit(1 if fails else 0)


if __name__ == "__main__":
    main()
