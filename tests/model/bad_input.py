#!/usr/bin/env python3
"""Bad input for model loading and the logits path: each case must make `mitten logits` exit with status 1 (no
signal, no hang) and print a message naming what is wrong (the file and the field or tensor).

usage: bad_input.py --mitten BIN --work DIR
"""
import argparse
import os
import struct
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
from bad_cases import Runner, sh  # noqa: E402

REF = [sys.executable, os.path.join(HERE, "..", "ref", "qwen2_vl_ref.py")]
QWEN3 = [sys.executable, os.path.join(HERE, "..", "ref", "qwen3_ref.py")]


class Cases(Runner):
    """Edits of one good Qwen2.5-VL checkpoint (base), run through `mitten logits` on its one-image inputs."""

    def __init__(self, mitten, work):
        super().__init__(mitten, work)
        self.base = os.path.join(work, "base")
        self.inputs = os.path.join(work, "inputs")

    def variant(self, name, base=None, **edits):
        return super().variant(base or self.base, name, **edits)

    def edit_config(self, name, fn, base=None):
        return self.variant(name, base, config=fn)

    def edit_tensors(self, name, fn, base=None):
        return self.variant(name, base, tensors=fn)

    def _cmd(self, model, out, ids, images, extra):
        cmd = ["logits", "-m", model, "--ids", ids or os.path.join(self.inputs, "ids.npy"), "--out", out]
        if images:
            cmd += ["--pixel-values", os.path.join(self.inputs, "pv0.npy"), "--grid", "1,8,12"]
        return cmd + list(extra)

    def logits(self, label, model, extra=(), ids=None):
        """Runs logits that must succeed; returns the logits (None on failure, recorded). ids: a text-only prompt."""
        out = os.path.join(self.work, label.replace(" ", "_") + ".npy")
        return np.load(out) if self.ok(label, self._cmd(model, out, ids, not ids, extra)) else None

    def expect(self, label, model, needles, ids=None, images=True, extra=(), code=1):
        self.refused(label, self._cmd(model, os.path.join(self.work, "out.npy"), ids, images, extra), needles, code)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mitten", required=True)
    ap.add_argument("--work", required=True)
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    c = Cases(a.mitten, a.work)
    sh(REF + ["make-checkpoint", "--variant", "qwen2_5_vl", "--out", c.base, "--seed", "3"])
    sh(REF + ["make-inputs", "--case", "one_image", "--model", c.base, "--out", c.inputs])

    c.expect("missing folder", os.path.join(a.work, "nowhere"), ["nowhere", "config.json"])
    d = c.variant("no_weights")
    os.remove(os.path.join(d, "model.safetensors"))
    c.expect("missing weights", d, ["no_weights"])
    d = c.variant("bad_json")
    open(os.path.join(d, "config.json"), "w").write('{"architectures": [')
    c.expect("config not JSON", d, ["config.json", "invalid JSON"])
    c.expect("missing hidden_size", c.edit_config("no_hidden", lambda k: k.pop("hidden_size")),
             ["config.json", "hidden_size", "missing"])
    c.expect("hidden_size a string", c.edit_config("str_hidden", lambda k: k.update(hidden_size="64")),
             ["config.json", "hidden_size"])
    c.expect("absurd layer count", c.edit_config("many_layers", lambda k: k.update(num_hidden_layers=10 ** 9)),
             ["config.json", "num_hidden_layers"])
    c.expect("negative heads", c.edit_config("neg_heads", lambda k: k.update(num_attention_heads=-4)),
             ["config.json", "num_attention_heads"])
    c.expect("heads do not divide", c.edit_config("odd_heads", lambda k: k.update(num_key_value_heads=3)),
             ["config.json", "heads"])
    c.expect("unknown architecture", c.edit_config("arch", lambda k: k.update(architectures=["NopeForCausalLM"])),
             ["NopeForCausalLM", "not supported"])
    c.expect("architectures not a list", c.edit_config("arch2", lambda k: k.update(architectures=7)),
             ["architectures"])
    c.expect("mrope_section wrong sum",
             c.edit_config("mrope", lambda k: k["rope_scaling"].update(mrope_section=[1, 1, 1])), ["mrope_section"])
    c.expect("missing vision_config", c.edit_config("novis", lambda k: k.pop("vision_config")), ["vision_config"])
    c.expect("vision depth huge", c.edit_config("vdepth", lambda k: k["vision_config"].update(depth=1 << 40)),
             ["depth"])
    c.expect("vision width/heads", c.edit_config("vheads", lambda k: k["vision_config"].update(num_heads=3)),
             ["vision width"])

    def wrong_shape(t):
        t["model.layers.0.self_attn.q_proj.weight"] = t["model.layers.0.self_attn.q_proj.weight"][:, :32].contiguous()
    c.expect("tensor of wrong shape", c.edit_tensors("shape", wrong_shape), ["q_proj.weight", "shape"])
    c.expect("tensor missing", c.edit_tensors("missing", lambda t: t.pop("model.norm.weight")), ["model.norm.weight"])

    def int_dtype(t):
        t["model.norm.weight"] = t["model.norm.weight"].to(dtype=__import__("torch").int32)
    c.expect("tensor of integer dtype", c.edit_tensors("dtype", int_dtype), ["model.norm.weight", "dtype"])

    d = c.variant("fifo")
    os.remove(os.path.join(d, "model.safetensors"))
    os.mkfifo(os.path.join(d, "model.safetensors"))
    c.expect("weights file is a FIFO", d, ["model.safetensors", "not a regular file"])
    d = c.variant("truncated")
    path = os.path.join(d, "model.safetensors")
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.truncate(size // 2)
    c.expect("truncated safetensors", d, ["model.safetensors"])
    d = c.variant("lying_header")
    with open(path.replace("truncated", "lying_header"), "r+b") as f:
        f.write(struct.pack("<Q", 1 << 40))
    c.expect("header length absurd", d, ["model.safetensors"])

    # strict loading: every tensor is read by a part, or the load fails naming it
    extra = c.edit_tensors("extra", lambda t: t.update({"model.layers.0.mlp.surprise.weight": t["model.norm.weight"]}))
    c.expect("unused tensor", extra, ["model.layers.0.mlp.surprise.weight", "not used", "--allow-unused"])
    base_logits = c.logits("base checkpoint", c.base)
    allowed = c.logits("unused tensor, --allow-unused", extra, ["--allow-unused"])
    if base_logits is not None and allowed is not None and not np.array_equal(base_logits, allowed):
        c.failures.append("--allow-unused changed the logits")
    c.expect("vision tensor missing",
             c.edit_tensors("vmissing", lambda t: t.pop("visual.blocks.1.attn.proj.bias")),
             ["visual.blocks.1.attn.proj.bias"])
    c.expect("merger of wrong shape",
             c.edit_tensors("mshape", lambda t: t.update({"visual.merger.mlp.2.weight": t["visual.merger.mlp.2.weight"][:8]})),
             ["visual.merger.mlp.2.weight", "shape"])

    def five_x(k):
        """The same model as transformers 5.x writes its config: nested text_config, rope_parameters, dtype."""
        text = {key: k.pop(key) for key in list(k) if key not in ("architectures", "model_type", "vision_config",
                                                                  "image_token_id", "video_token_id",
                                                                  "vision_start_token_id", "vision_end_token_id",
                                                                  "tie_word_embeddings", "eos_token_id",
                                                                  "bos_token_id")}
        rs = text.pop("rope_scaling")
        text["rope_parameters"] = {"rope_type": "default", "rope_theta": text.pop("rope_theta"),
                                   "mrope_section": rs["mrope_section"]}
        text["dtype"] = text.pop("torch_dtype", "float32")
        k["text_config"] = text
        vc = k["vision_config"]
        if "in_chans" in vc:
            vc["in_channels"] = vc.pop("in_chans")
    five = c.logits("config in transformers 5.x form", c.edit_config("five", five_x))
    if base_logits is not None and five is not None and not np.array_equal(base_logits, five):
        c.failures.append("the 5.x config form gives other logits than the 4.x form")
    d = c.variant("template_unreadable")
    os.makedirs(os.path.join(d, "chat_template.jinja"))
    c.expect("a chat template that cannot be read", d, ["chat_template.jinja"])
    d = c.variant("template_broken")
    open(os.path.join(d, "chat_template.jinja"), "w").write("{% for x in %}")
    c.expect("a chat template that does not parse", d, ["chat_template.jinja"])
    c.expect("layers fewer than the checkpoint's",
             c.edit_config("fewlayers", lambda k: k.update(num_hidden_layers=2)), ["not used", "model.layers.2."])
    c.expect("untied head without lm_head",
             c.edit_config("untied", lambda k: k.update(tie_word_embeddings=False)),
             ["lm_head.weight", "tie_word_embeddings"])
    c.expect("unknown rope type",
             c.edit_config("ropetype", lambda k: k["rope_scaling"].update(type="wobbly")), ["rope type", "wobbly"])

    # sliding-window fields that do not hold together (a text-only Qwen2, 3 layers; VL text models never slide)
    text_ids = os.path.join(a.work, "text_ids.npy")
    np.save(text_ids, np.arange(1, 9, dtype=np.int64))
    q2 = os.path.join(a.work, "base_qwen2")
    sh(QWEN3 + ["make-checkpoint", "--variant", "qwen2", "--out", q2, "--seed", "3"])

    def slide(**kw):
        def edit(k):
            k.pop("layer_types", None)  # the 5.x config lists the layers; these cases set what they need
            k.update(dict(use_sliding_window=True, sliding_window=4), **kw)
        return edit

    def cfg(name, fn):
        return c.edit_config(name, fn, q2)

    def expect_text(label, model, needles):
        c.expect(label, model, needles, ids=text_ids, images=False)

    c.logits("sliding window from layer 1", cfg("slide_ok", slide(max_window_layers=1)), ids=text_ids)
    expect_text("sliding layers unspecified", cfg("slide_nomwl", lambda k: (slide()(k), k.pop("max_window_layers", 0))),
                ["use_sliding_window", "layer_types", "max_window_layers"])
    expect_text("sliding_window zero", cfg("slide_zero", slide(sliding_window=0)), ["sliding_window", "0"])
    expect_text("max_window_layers negative", cfg("slide_neg", slide(max_window_layers=-1)),
                ["max_window_layers", "-1"])
    full3 = ["full_attention"] * 3
    expect_text("sliding layer without a window",
                cfg("slide_off", lambda k: k.update(layer_types=["full_attention", "sliding_attention",
                                                                 "full_attention"])),
                ["layer_types[1]", "use_sliding_window is false"])
    expect_text("layer_types too short", cfg("slide_short", lambda k: k.update(layer_types=full3[:2])),
                ["layer_types", "num_hidden_layers = 3"])
    expect_text("layer type unknown",
                cfg("slide_chunk", lambda k: k.update(layer_types=["chunked_attention"] + full3[1:])),
                ["layer_types[0]", "chunked_attention"])
    expect_text("layer_types against max_window_layers",
                cfg("slide_contra", slide(max_window_layers=1, layer_types=full3)),
                ["layer_types[1]", "max_window_layers = 1"])
    c.expect("a VL text model asked to slide", c.edit_config("slide_vl", slide(max_window_layers=1)),
             ["use_sliding_window = true is not supported"])

    # Qwen3 family configs that do not hold together
    moe, vl = os.path.join(a.work, "base_moe"), os.path.join(a.work, "base_vl")
    sh(QWEN3 + ["make-checkpoint", "--variant", "qwen3_moe", "--out", moe, "--seed", "3"])
    sh(QWEN3 + ["make-checkpoint", "--variant", "qwen3_vl", "--out", vl, "--seed", "3"])
    c.expect("top-k above the experts", c.edit_config("topk", lambda k: k.update(num_experts_per_tok=99), moe),
             ["num_experts_per_tok", "num_experts"], ids=text_ids, images=False)
    c.expect("mlp_only_layers out of range", c.edit_config("mlponly", lambda k: k.update(mlp_only_layers=[7]), moe),
             ["mlp_only_layers", "7"], ids=text_ids, images=False)
    c.expect("experts fewer than the checkpoint's", c.edit_config("fewexp", lambda k: k.update(num_experts=4), moe),
             ["mlp.gate.weight", "shape"], ids=text_ids, images=False)
    c.expect("deepstack index out of range",
             c.edit_config("deep", lambda k: k["vision_config"].update(deepstack_visual_indexes=[0, 9]), vl),
             ["deepstack_visual_indexes", "9"], ids=text_ids, images=False)
    c.expect("interleaved sections do not sum",
             c.edit_config("sec", lambda k: k["text_config"]["rope_parameters"].update(mrope_section=[6, 3, 4]), vl),
             ["mrope_section", "head_dim / 2"], ids=text_ids, images=False)
    c.expect("position table not square",
             c.edit_config("posgrid", lambda k: k["vision_config"].update(num_position_embeddings=15), vl),
             ["num_position_embeddings", "square"], ids=text_ids, images=False)
    c.expect("head_dim odd", c.edit_config("hd", lambda k: k["text_config"].update(head_dim=23), vl),
             ["head_dim"], ids=text_ids, images=False)

    # config values the family does not implement are refused, naming config.json, the field and what is accepted
    # (issue 9); an activation nn computes is used as given, as transformers' MLPs take ACT2FN[hidden_act]
    acts = "silu, swish, gelu, gelu_pytorch_tanh, gelu_new, quick_gelu, sigmoid"
    c.expect("tie_word_embeddings a string", c.edit_config("tie_yes", lambda k: k.update(tie_word_embeddings="yes")),
             ["config.json", "\"tie_word_embeddings\" must be true or false"])
    c.expect("decoder hidden_act unknown", c.edit_config("act_relu", lambda k: k.update(hidden_act="relu")),
             ["config.json", "\"hidden_act\" = \"relu\"", "accepted: " + acts])
    c.expect("vision hidden_act unknown",
             c.edit_config("vact_relu", lambda k: k["vision_config"].update(hidden_act="relu")),
             ["config.json", "vision_config", "\"hidden_act\" = \"relu\"", "accepted: " + acts])
    c.expect("torch_dtype unknown", c.edit_config("dtype8", lambda k: k.update(torch_dtype="float8_e4m3fn")),
             ["config.json", "\"torch_dtype\" = \"float8_e4m3fn\"", "accepted: float32, bfloat16, float16"])
    c.expect("text_config.dtype not a string", c.edit_config("dtype_num", lambda k: k["text_config"].update(dtype=16), vl),
             ["config.json", "text_config", "\"dtype\" must be a string"], ids=text_ids, images=False)
    c.expect("vision_config.torch_dtype unknown",
             c.edit_config("vdtype", lambda k: k["vision_config"].update(torch_dtype="half")),
             ["config.json", "vision_config", "\"torch_dtype\" = \"half\""])
    c.expect("use_sliding_window a string", c.edit_config("sw_str", lambda k: k.update(use_sliding_window="false")),
             ["config.json", "\"use_sliding_window\" must be true or false"])
    c.expect("attention_dropout out of range", c.edit_config("adrop", lambda k: k.update(attention_dropout=1.5)),
             ["config.json", "attention_dropout"])
    gelu = c.edit_config("act_gelu", lambda k: k.update(hidden_act="gelu"), q2)
    gelu_ref = os.path.join(a.work, "act_gelu_ref")
    sh(QWEN3 + ["dump", "--model", gelu, "--ids", text_ids, "--out", gelu_ref, "--greedy", "0"])
    got = c.logits("decoder hidden_act gelu", gelu, ids=text_ids)
    silu = c.logits("decoder hidden_act silu", q2, ids=text_ids)
    ref = np.load(os.path.join(gelu_ref, "logits.npy"))
    if got is not None and silu is not None:
        err = float(np.abs(got - ref).max() / np.abs(ref).max())
        apart = float(np.abs(silu - ref).max() / np.abs(ref).max())
        if not (err < 1e-5 and apart > 1e-3):
            c.failures.append("hidden_act gelu: logits %.2e from the gelu reference, silu's %.2e" % (err, apart))

    # Qwen2-MoE: the shared expert's width and the q/k/v biases come from the config
    q2moe = os.path.join(a.work, "base_qwen2_moe")
    sh(QWEN3 + ["make-checkpoint", "--variant", "qwen2_moe", "--out", q2moe, "--seed", "3"])
    c.expect("shared expert narrower than the checkpoint's",
             c.edit_config("sharedw", lambda k: k.update(shared_expert_intermediate_size=64), q2moe),
             ["model.layers.0.mlp.shared_expert.gate_proj.weight", "shape"], ids=text_ids, images=False)
    c.expect("shared expert width missing",
             c.edit_config("sharedmiss", lambda k: k.pop("shared_expert_intermediate_size"), q2moe),
             ["shared_expert_intermediate_size"], ids=text_ids, images=False)
    c.expect("q/k/v biases switched off", c.edit_config("qkvbias", lambda k: k.update(qkv_bias=False), q2moe),
             ["self_attn.q_proj.bias", "not used"], ids=text_ids, images=False)
    c.expect("shared expert gate missing",
             c.edit_tensors("sharedgate", lambda t: t.pop("model.layers.2.mlp.shared_expert_gate.weight"), q2moe),
             ["model.layers.2.mlp.shared_expert_gate.weight"], ids=text_ids, images=False)

    ids = np.load(os.path.join(c.inputs, "ids.npy"))
    bad_ids = os.path.join(a.work, "bad_ids.npy")
    np.save(bad_ids, np.concatenate([ids, np.array([10 ** 6], dtype=np.int64)]))
    c.expect("token id out of range", c.base, ["token id", "outside the vocabulary"], ids=bad_ids)
    neg_ids = os.path.join(a.work, "neg_ids.npy")
    np.save(neg_ids, np.concatenate([ids, np.array([-5], dtype=np.int64)]))
    c.expect("negative token id", c.base, ["outside the vocabulary"], ids=neg_ids)
    c.expect("image tokens without image", c.base, ["image"], images=False)
    c.expect("grid does not match pixels", c.base, ["grid"], images=False,
             extra=["--pixel-values", os.path.join(c.inputs, "pv0.npy"), "--grid", "1,8,14"])
    c.expect("grid not a multiple of merge", c.base, ["grid"], images=False,
             extra=["--pixel-values", os.path.join(c.inputs, "pv0.npy"), "--grid", "1,3,32"])
    float_ids = os.path.join(a.work, "float_ids.npy")
    np.save(float_ids, ids.astype(np.float32))
    c.expect("ids not int64", c.base, ["int64"], ids=float_ids)
    video_in = os.path.join(a.work, "video_inputs")
    sh(REF + ["make-inputs", "--case", "video", "--model", c.base, "--out", video_in])
    video_ids = os.path.join(video_in, "ids.npy")
    video_pv = os.path.join(video_in, "pv0.npy")  # grid 3,4,6

    def video(grid="3,4,6", seconds=None):
        return ["--video-pixel-values", video_pv, "--video-grid", grid] + (
            ["--second-per-grid", seconds] if seconds else [])

    c.logits("video", c.base, ids=video_ids, extra=video())
    c.expect("video grid does not match pixels", c.base, ["video", "grid 3x4x8", "72 patches"], ids=video_ids,
             images=False, extra=video("3,4,8"))
    c.expect("video grid t = 0", c.base, ["video", "grid 0x4x6"], ids=video_ids, images=False, extra=video("0,4,6"))
    c.expect("video grid not T,H,W", c.base, ["--video-grid 3,4", "T,H,W"], ids=video_ids, images=False,
             extra=video("3,4"), code=2)
    c.expect("negative second_per_grid", c.base, ["--second-per-grid -1"], ids=video_ids, images=False,
             extra=video(seconds="-1"), code=2)
    c.expect("NaN second_per_grid", c.base, ["--second-per-grid nan"], ids=video_ids, images=False,
             extra=video(seconds="nan"), code=2)
    c.expect("video for image tokens", c.base, ["input 1 is a video", "image tokens"], images=False,
             extra=["--video-pixel-values", os.path.join(c.inputs, "pv0.npy"), "--video-grid", "1,8,12"])
    c.expect("image for video tokens", c.base, ["input 1 is an image", "video tokens"], ids=video_ids, images=False,
             extra=["--pixel-values", video_pv, "--grid", "3,4,6"])
    c.expect("video without its tokens", c.base, ["video", "placeholders"], images=True, extra=video())
    # Qwen3-VL videos: the timestamps mitten writes between frames (logits --expand)
    q3 = os.path.join(a.work, "q3vl")
    sh(QWEN3 + ["make-checkpoint", "--variant", "qwen3_vl", "--byte-tokenizer", "--out", q3, "--seed", "3"])
    q3_in = os.path.join(a.work, "q3vl_video")
    sh(QWEN3 + ["make-inputs", "--case", "video", "--model", q3, "--out", q3_in])
    q3_prompt = os.path.join(q3_in, "prompt_ids.npy")

    def q3_video(*more):
        return ["--expand", "--video-pixel-values", os.path.join(q3_in, "pv0.npy"), "--video-grid", "3,4,6"] + list(more)

    c.logits("qwen3-vl video expanded", q3, ids=q3_prompt, extra=q3_video("--video-timestamps", "0,1.5,3"))
    c.expect("too few video timestamps", q3, ["--video-timestamps 0,1", "3 comma-separated", "fewer"],
             ids=q3_prompt, images=False, extra=q3_video("--video-timestamps", "0,1"), code=2)
    c.expect("negative video timestamp", q3, ["--video-timestamps 0,-1,2", "value 2"], ids=q3_prompt, images=False,
             extra=q3_video("--video-timestamps", "0,-1,2"), code=2)
    c.expect("video timestamps for an image", q3, ["--video-timestamps follows --video-pixel-values"], ids=q3_prompt,
             images=True, extra=["--video-timestamps", "1"], code=2)
    no_tok = c.variant("q3vl_no_tokenizer", q3)
    os.remove(os.path.join(no_tok, "tokenizer.json"))
    c.expect("qwen3-vl video without tokenizer.json", no_tok, ["prompt_ids.npy", "tokenizer.json", "time"],
             ids=q3_prompt, images=False, extra=q3_video())
    q3_text = os.path.join(a.work, "q3vl_text_ids.npy")
    np.save(q3_text, np.array([1, 2, 3], dtype=np.int64))
    c.expect("qwen3-vl video without its placeholder", q3, ["q3vl_text_ids.npy", "1 image(s) and video(s) given",
                                                            "0 placeholder"], ids=q3_text, images=False,
             extra=q3_video())

    corrupt = os.path.join(a.work, "corrupt.png")
    open(corrupt, "wb").write(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    c.expect("corrupt image", c.base, ["corrupt.png"], images=False, extra=["--image", corrupt])

    c.report()


if __name__ == "__main__":
    main()
