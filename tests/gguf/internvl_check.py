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
  - mitten reads the files back (-m F.gguf --mmproj P.gguf, composed as InternVLChatModel from the metadata): the
    folder's logits on a prompt with an image tile (f32: the same numbers; f16 within its rounding) and, for the
    original layout, the folder's greedy answer about docs/tiny_example.png; the language model file alone runs
    as the folder's text model.

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
                          check, expect_tensor, fails, load_ggml, matrix_type, read_safetensors, run_llama_cli)

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
    ap.add_argument("--llama-bin", required=True, help="llama.cpp's tools (scripts/build_llama_cpp.sh)")
    a = ap.parse_args()
    shutil.rmtree(a.work, ignore_errors=True)
    os.makedirs(a.work)
    g = load_ggml(a.source)
    maker = os.path.join(a.source, "tests", "ref", "internvl_ref.py")
    for layout, llm, arch in CASES:
        model = os.path.join(a.work, layout)
        subprocess.run([sys.executable, maker, "make-checkpoint", "--layout", layout, "--llm", llm, "--out", model],
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
        # text, then one 32-pixel tile: <img>, its 16 merged rows, </img>
        ids = os.path.join(a.work, "ids.npy")
        pv = os.path.join(a.work, "pv.npy")
        np.save(ids, np.array([302, 72, 105, 303] + [305] * 16 + [304, 33, 301, 10, 302, 97], dtype=np.int64))
        np.save(pv, np.random.default_rng(3).standard_normal((1, 3, 32, 32)).astype(np.float32))

        def logits(args, name):
            o = os.path.join(a.work, f"{layout}-{name}.npy")
            r = subprocess.run([a.mitten, "logits", "--ids", ids, "--pixel-values", pv, "--out", o, "--threads", "2"] +
                               args, capture_output=True)
            return np.load(o) if r.returncode == 0 else r.stderr.decode()[-300:]

        ref = logits(["-m", model], "ref")
        check(f"{layout}: the folder's logits", isinstance(ref, np.ndarray), str(ref))
        # f32: the same numbers (q / k / v joined back bit for bit); f16 and q8_0: their rounding, measured 1.6e-3
        # and 3.6e-2 (before nn.c split quantized rows by their block bytes, q8_0 read 0.94 off)
        for ftype, bound in (("f32", 1e-5), ("f16", 3e-3), ("q8_0", 5e-2)):
            f = os.path.join(a.work, f"{layout}-{ftype}.gguf")
            got = logits(["-m", f, "--mmproj", os.path.join(a.work, f"mmproj-{layout}-{ftype}.gguf")], ftype)
            ok = isinstance(ref, np.ndarray) and isinstance(got, np.ndarray) and got.shape == ref.shape
            gap = float(np.abs(got - ref).max() / np.abs(ref).max()) if ok else float("inf")
            check(f"{layout} {ftype}: mitten runs -m F.gguf --mmproj P.gguf as InternVL, logits with an image within "
                  f"{bound} of the folder's (largest difference {gap:.2e} of the largest logit)", ok and gap <= bound,
                  str(got)[:300])
        if layout == "original":
            image = os.path.join(a.source, "docs", "tiny_example.png")
            answers = []
            for args in (["-m", model], ["-m", os.path.join(a.work, "original-f32.gguf"), "--mmproj",
                                         os.path.join(a.work, "mmproj-original-f32.gguf")]):
                r = subprocess.run([a.mitten, "run", "--image", image, "-p", "What colour is the shape?",
                                    "--max-tokens", "8"] + args, capture_output=True)
                answers.append((r.returncode, r.stdout))
            check(f"{layout} f32: the same greedy answer to a question about an image as the folder {answers[0]!r}",
                  answers[0][0] == 0 and answers[0] == answers[1], str(answers[1]))
        outs = []
        text_ids = os.path.join(a.work, "text_ids.npy")
        np.save(text_ids, np.array([302, 72, 105, 33, 301, 10, 302, 97], dtype=np.int64))
        for src in (model, os.path.join(a.work, f"{layout}-f32.gguf")):
            o = os.path.join(a.work, f"{layout}-text-{len(outs)}.npy")
            r = subprocess.run([a.mitten, "logits", "-m", src, "--ids", text_ids, "--out", o, "--threads", "2"],
                               capture_output=True)
            outs.append(np.load(o) if r.returncode == 0 else None)
        check(f"{layout}: the f32 language model file alone runs as the folder's text model (same logits on text)",
              outs[0] is not None and outs[1] is not None and outs[0].shape == outs[1].shape and
              float(np.abs(outs[0] - outs[1]).max()) <= 1e-5 * float(np.abs(outs[0]).max()))
        # llama.cpp's own multimodal CLI runs the pair (clip.cpp's internvl graph: its keys, tensors, the pixel
        # shuffle and mlp1) and answers as mitten does from the same files
        image = os.path.join(a.source, "docs", "tiny_example.png")
        for ftype in ("f32", "q8_0"):
            pair = ["-m", os.path.join(a.work, f"{layout}-{ftype}.gguf"), "--mmproj",
                    os.path.join(a.work, f"mmproj-{layout}-{ftype}.gguf"), "--image", image, "-p",
                    "What colour is the shape?"]
            # bytes: random weights answer with pieces of UTF-8 sequences
            ours = subprocess.run([a.mitten, "run", "--max-tokens", "6"] + pair, capture_output=True)
            theirs = run_llama_cli([os.path.join(a.llama_bin, "llama-mtmd-cli"), "-n", "6", "--temp", "0", "-t", "2",
                                    "-c", "512"] + pair)
            # the -hf tiny has no preprocessor_config.json, and mitten's published GotOcr2 values are not the
            # original processor's that llama.cpp applies: its answer is compared on the original layout only
            if theirs.lost:
                print(f"     {layout} {ftype}: llama.cpp's answer was lost by its logger in 5 runs "
                      "(ggml-org/llama.cpp#22142): only its exit status is judged")
            same = ours.stdout.strip() == theirs.stdout.strip() or layout != "original" or theirs.lost
            check(f"{layout} {ftype}: llama-mtmd-cli runs the files" + (f" and answers as mitten ({ours.stdout.strip()!r})"
                  if layout == "original" else ""), ours.returncode == 0 and theirs.returncode == 0 and same,
                  f"llama.cpp exit {theirs.returncode}: {theirs.stdout.strip()!r} {theirs.stderr[-300:]!r}")
    print(f"{len(fails)} check(s) failed" if fails else "all checks passed")
    sys.exit(1 if fails else 0)


if __name__ == "__main__":
    main()
