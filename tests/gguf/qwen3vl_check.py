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
  - mitten reads the files back (-m F.gguf --mmproj P.gguf, Qwen3VLForConditionalGeneration from the metadata):
    the folder's logits on a prompt with an image (f32: the same numbers; f16 and q8_0 within their rounding), and
    the language model file alone as the folder's text model.

    qwen3vl_check.py --mitten MITTEN --source SOURCE_DIR --work DIR
"""
import argparse
import json
import os
import shutil
import subprocess
import sys

import numpy as np

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
    for k, v in (("mitten.preprocessor.min_pixels", 65536), ("mitten.preprocessor.max_pixels", 16777216)):
        key(f, label, k, GGUF_U32, v)
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
    ap.add_argument("--llama-bin", required=True, help="llama.cpp's tools (scripts/build_llama_cpp.sh)")
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
    added = {300: "<|endoftext|>", 301: "<|im_end|>", 302: "<|vision_start|>", 303: "<|vision_end|>",
             304: "<|vision_pad|>", 305: "<|image_pad|>", 306: "<|video_pad|>"}  # qwen3_ckpt's TINY_IDS
    with open(os.path.join(model, "tokenizer.json"), "w") as fh:
        json.dump(internvl_ref.tokenizer_json(added), fh)
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
    # read back: a prompt with one 4 x 4-patch image (4 merged rows), the folder's logits against the files'
    ids = os.path.join(a.work, "ids.npy")
    pv = os.path.join(a.work, "pv.npy")
    np.save(ids, np.array([72, 105, 302] + [305] * 4 + [303, 33, 301, 97], dtype=np.int64))
    np.save(pv, np.random.default_rng(3).standard_normal((16, 3 * 2 * 16 * 16)).astype(np.float32))

    def logits(args, name):
        o = os.path.join(a.work, name + ".npy")
        r = subprocess.run([a.mitten, "logits", "--ids", ids, "--pixel-values", pv, "--grid", "1,4,4", "--out", o,
                            "--threads", "2"] + args, capture_output=True)
        return np.load(o) if r.returncode == 0 else r.stderr.decode()[-300:]

    ref = logits(["-m", model], "ref")
    check("the folder's logits", isinstance(ref, np.ndarray), str(ref))
    # f32: the same numbers (the patch embedding's halves joined back bit for bit); f16 and q8_0: their rounding,
    # measured 6.2e-4 and 1.5e-2
    for ftype, bound in (("f32", 1e-5), ("f16", 3e-3), ("q8_0", 5e-2)):
        got = logits(["-m", os.path.join(a.work, f"q-{ftype}.gguf"), "--mmproj",
                      os.path.join(a.work, f"mmproj-q-{ftype}.gguf")], ftype)
        ok = isinstance(ref, np.ndarray) and isinstance(got, np.ndarray) and got.shape == ref.shape
        gap = float(np.abs(got - ref).max() / np.abs(ref).max()) if ok else float("inf")
        check(f"{ftype}: mitten runs -m F.gguf --mmproj P.gguf as Qwen3-VL, logits with an image within {bound} of "
              f"the folder's (largest difference {gap:.2e} of the largest logit)", ok and gap <= bound, str(got)[:300])
    text_ids = os.path.join(a.work, "text_ids.npy")
    np.save(text_ids, np.array([72, 105, 33, 301, 97, 98], dtype=np.int64))
    outs = []
    for src in (model, os.path.join(a.work, "q-f32.gguf")):
        o = os.path.join(a.work, f"text-{len(outs)}.npy")
        r = subprocess.run([a.mitten, "logits", "-m", src, "--ids", text_ids, "--out", o, "--threads", "2"],
                           capture_output=True)
        outs.append(np.load(o) if r.returncode == 0 else None)
    check("the f32 qwen3vl file alone runs as the folder's text model (same logits on text)",
          outs[0] is not None and outs[1] is not None and outs[0].shape == outs[1].shape and
          float(np.abs(outs[0] - outs[1]).max()) <= 1e-5 * float(np.abs(outs[0]).max()))
    # llama.cpp's own multimodal CLI loads the pair and encodes an image (clip.cpp's qwen3vl graph: its keys, the
    # DeepStack mergers); the tiny checkpoint has no chat template, so ChatML is named, and its random weights make
    # no answer worth comparing
    for ftype in ("f32", "q8_0"):
        r = subprocess.run([os.path.join(a.llama_bin, "llama-mtmd-cli"), "-m", os.path.join(a.work, f"q-{ftype}.gguf"),
                            "--mmproj", os.path.join(a.work, f"mmproj-q-{ftype}.gguf"), "--image",
                            os.path.join(a.source, "docs", "tiny_example.png"), "-p", "Describe.", "-n", "2",
                            "--temp", "0", "-t", "2", "-c", "512", "--chat-template", "chatml"],
                           capture_output=True, text=True)
        check(f"{ftype}: llama-mtmd-cli loads the files and encodes an image",
              r.returncode == 0, r.stderr[-400:])
    print(f"{len(fails)} check(s) failed" if fails else "all checks passed")
    sys.exit(1 if fails else 0)


if __name__ == "__main__":
    main()
