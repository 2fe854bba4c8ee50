#!/usr/bin/env python3
"""Bad input for InternVL in both checkpoint layouts: each case must make `mitten logits` exit with status 1 (no
signal, no hang) and print a message naming what is wrong. A good case runs first so the failures are the edits'.

usage: internvl_bad_input.py --mitten BIN --work DIR
"""
import argparse
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
from bad_cases import Runner, sh  # noqa: E402

REF = [sys.executable, os.path.join(HERE, "..", "ref", "internvl_ref.py")]
QWEN = [sys.executable, os.path.join(HERE, "..", "ref", "qwen2_vl_ref.py")]


class Cases(Runner):
    """`mitten logits` on a model folder, its ids and pixel-values arrays."""

    @staticmethod
    def _cmd(model, inputs, pvs, out):
        cmd = ["logits", "-m", model, "--ids", os.path.join(inputs, "ids.npy"), "--out", out]
        for pv in pvs:
            cmd += ["--pixel-values", pv]
        return cmd

    def good(self, label, model, inputs, pvs):
        self.ok(label + " runs", self._cmd(model, inputs, pvs, os.path.join(self.work, "out.npy")))

    def expect(self, label, model, inputs, pvs, needles):
        self.refused(label, self._cmd(model, inputs, pvs, os.path.join(self.work, "out.npy")), needles)


def pv_file(work, name, shape):
    path = os.path.join(work, name + ".npy")
    np.save(path, np.random.default_rng(0).standard_normal(shape).astype(np.float32))
    return path


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mitten", required=True)
    ap.add_argument("--work", required=True)
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    c = Cases(a.mitten, a.work)
    orig, hf = os.path.join(a.work, "orig"), os.path.join(a.work, "hf")
    ins = os.path.join(a.work, "in")
    sh(REF + ["make-checkpoint", "--layout", "original", "--out", orig])
    sh(REF + ["make-checkpoint", "--layout", "hf", "--out", hf])
    sh(REF + ["make-inputs", "--case", "one_tile", "--model", orig, "--out", ins])
    text = os.path.join(a.work, "text")
    sh(REF + ["make-inputs", "--case", "text", "--model", orig, "--out", text])
    pv = [os.path.join(ins, "pv0.npy")]
    c.good("original layout", orig, ins, pv)
    c.good("transformers layout", hf, ins, pv)

    def setv(key, value, section="vision_config"):
        return lambda k: (k[section] if section else k).update({key: value})

    # downsample_ratio 1/4 does not divide the 6 x 6 patch grid of 24-pixel tiles; 1/5 not the trained 8 x 8
    c.expect("ratio vs force_image_size", c.variant(orig, "ratio_o", lambda k: k.update(
        downsample_ratio=0.25, force_image_size=24)), ins, pv, ["config.json", "downsample_ratio", "6x6"])
    c.expect("ratio vs image_size", c.variant(hf, "ratio_h", setv("downsample_ratio", 0.2, None)), ins, pv,
             ["config.json", "downsample_ratio", "8x8"])
    c.expect("ratio not 1/integer", c.variant(orig, "ratio_x", setv("downsample_ratio", 0.3, None)), ins, pv,
             ["config.json", "downsample_ratio", "0.3"])
    c.expect("tiles not divisible", orig, ins, [pv_file(a.work, "pv28", (1, 3, 28, 28))],
             ["image 1", "grid 1x7x7", "divisible by 2"])
    c.expect("tiles not square", orig, ins, [pv_file(a.work, "pv_rect", (1, 3, 32, 24))],
             ["pv_rect.npy", "[1, 3, 32, 24]", "[tiles, 3, S, S]"])
    c.expect("tiles not multiple of patch", orig, ins, [pv_file(a.work, "pv30", (1, 3, 30, 30))],
             ["pv30.npy", "multiple of the patch size 4"])
    c.expect("more tiles than tokens", orig, ins, [pv_file(a.work, "pv3", (3, 3, 32, 32))], ["image tokens"])

    no_ctx = lambda t: t.update(added_tokens=[x for x in t["added_tokens"] if x["content"] != "<IMG_CONTEXT>"])  # noqa
    c.expect("no <IMG_CONTEXT> token", c.variant(orig, "no_ctx", tokenizer=no_ctx), ins, pv,
             ["image_token_id", "tokenizer.json", "<IMG_CONTEXT>"])
    d = c.variant(orig, "no_tok")
    os.remove(os.path.join(d, "tokenizer.json"))
    c.expect("no tokenizer.json", d, ins, pv, ["tokenizer.json", "<IMG_CONTEXT>"])
    no_img = lambda t: t.update(added_tokens=[x for x in t["added_tokens"] if x["content"] != "<img>"])  # noqa
    c.expect("no <img> token", c.variant(hf, "no_img", tokenizer=no_img), ins, pv, ["tokenizer.json", "<img>"])

    c.expect("Phi3 (not a decoder mitten has)", c.variant(orig, "phi3_o", lambda k: k["llm_config"].update(
        architectures=["Phi3ForCausalLM"])), ins, pv,
             ["llm_config", "Phi3ForCausalLM", "InternLM2ForCausalLM", "LlamaForCausalLM"])
    c.expect("Qwen2 tensors labelled InternLM2", c.variant(orig, "lm2_label", lambda k: k["llm_config"].update(
        architectures=["InternLM2ForCausalLM"])), ins, pv, ["tok_embeddings.weight"])
    # InternVL 2.5: 8 query heads over 2 KV heads of 8 dims, wqkv [(8 + 2 * 2) * 8, 64] in grouped order
    lm2 = os.path.join(a.work, "lm2")
    sh(REF + ["make-checkpoint", "--layout", "original", "--llm", "internlm2", "--out", lm2])
    c.good("InternLM2 decoder", lm2, ins, pv)
    llm = lambda **kw: lambda k: k["llm_config"].update(kw)  # noqa: E731
    c.expect("wqkv rows vs 4 KV heads", c.variant(lm2, "lm2_kv4", llm(num_key_value_heads=4)), ins, pv,
             ["language_model.model.layers.0.attention.wqkv.weight", "96 rows", "2 x 4 key-value heads", "128"])
    c.expect("wqkv rows vs 16 heads", c.variant(lm2, "lm2_h16", llm(num_attention_heads=16)), ins, pv,
             ["attention.wqkv.weight", "96 rows", "(16 query", "head_dim 4"])
    c.expect("heads not a multiple of KV heads", c.variant(lm2, "lm2_kv3", llm(num_key_value_heads=3)), ins, pv,
             ["8 attention heads", "3 KV heads"])
    c.expect("wqkv bias missing", c.variant(lm2, "lm2_bias", tensors=lambda t: t.pop(
        "language_model.model.layers.2.attention.wqkv.bias")), ins, pv,
             ["language_model.model.layers.2.attention.wqkv.bias"])
    c.expect("wqkv bias unused", c.variant(lm2, "lm2_nobias", llm(bias=False)), ins, pv,
             ["attention.wqkv.bias", "not used"])
    c.expect("V2PE positions", c.variant(lm2, "lm2_v2pe", llm(rope_pos_id_version="v2pe")), ins, pv,
             ["llm_config", "rope_pos_id_version", "v2pe"])
    c.expect("rope_scaling type yarn without factor", c.variant(lm2, "lm2_rope", llm(rope_scaling={"type": "ntk"})),
             ins, pv, ["llm_config.rope_scaling", "ntk"])
    c.expect("text model_type phi3", c.variant(hf, "phi3", setv("model_type", "phi3", "text_config")), ins, pv,
             ["text_config", "model_type", "phi3", "qwen3_moe"])
    c.expect("llm_config without architectures", c.variant(orig, "noarch", lambda k: k["llm_config"].pop(
        "architectures")), ins, pv, ["llm_config", "architectures", "missing"])
    c.expect("architectures not a name", c.variant(hf, "mt_num", setv("model_type", 7, "text_config")), ins, pv,
             ["text_config", "model_type", "string"])
    c.expect("ps_version v3", c.variant(orig, "ps", setv("ps_version", "v3", None)), ins, pv, ["ps_version", "v3"])
    c.expect("select_layer past the depth", c.variant(orig, "sel", setv("select_layer", 7, None)), ins, pv,
             ["select_layer"])
    c.expect("feature strategy full", c.variant(hf, "full", setv("vision_feature_select_strategy", "full", None)),
             ins, pv, ["vision_feature_select_strategy", "full"])
    c.expect("norm_type unknown", c.variant(orig, "norm", setv("norm_type", "batch_norm")), ins, pv,
             ["norm_type", "batch_norm"])
    c.expect("image_size not square", c.variant(hf, "rect", setv("image_size", [32, 24])), ins, pv,
             ["image_size", "square"])
    c.expect("use_mean_pooling false", c.variant(hf, "pool", setv("use_mean_pooling", False)), ins, pv,
             ["use_mean_pooling"])
    c.expect("layer scale missing", c.variant(orig, "ls", tensors=lambda t: t.pop(
        "vision_model.encoder.layers.1.ls2")), ins, pv, ["vision_model.encoder.layers.1.ls2"])
    c.expect("position table of another size", c.variant(hf, "pos", setv("image_size", [40, 40])), ins, pv,
             ["position_embeddings", "shape"])
    c.expect("mlp1 of the wrong width", c.variant(orig, "mlp1", tensors=lambda t: t.update({
        "mlp1.1.weight": t["mlp1.1.weight"][:, :64].contiguous()})), ins, pv, ["mlp1.1.weight", "shape"])

    qwen, qin = os.path.join(a.work, "qwen"), os.path.join(a.work, "qin")
    sh(QWEN + ["make-checkpoint", "--variant", "qwen2_vl", "--out", qwen])
    sh(QWEN + ["make-inputs", "--case", "text", "--model", qwen, "--out", qin])
    c.expect("tiles to a patch-row tower", qwen, qin, pv, ["pv0.npy", "patch rows", "grid"])

    c.report()


if __name__ == "__main__":
    main()
