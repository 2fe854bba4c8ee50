#!/usr/bin/python3
"""Reference data for InternVL (InternViT + pixel shuffle + mlp1 + a Qwen2 / Qwen3 decoder) in both checkpoint
layouts: random tiny checkpoints, a converter between the layouts, inputs and PyTorch dumps.

Written from (read for facts, nothing copied):
    OpenGVLab/InternVL internvl_chat/internvl/model/internvl_chat/modeling_intern_vit.py   "orig-vit:"
    OpenGVLab/InternVL internvl_chat/internvl/model/internvl_chat/modeling_internvl_chat.py "orig:"
    transformers models/internvl/modeling_internvl.py (feisenyu/transformers_4573 mirror)     "hf:"
    transformers models/internvl/convert_internvl_weights_to_hf.py                         "convert:"
The decoder is qwen3_model.py's (Qwen2 / Qwen3 as transformers 5.0.0.dev0) or internlm2_model.py's (InternVL 2.5's
InternLM2, the remote code), 1-D positions (arange).

    internvl_ref.py make-checkpoint --layout hf|original --out DIR [--llm qwen2|qwen3|internlm2|llama] [--vision 300m|6b]
                                    [--select-layer K] [--ps-version v1|v2] [--via hf|original] [--seed N]
    internvl_ref.py make-checkpoint --layout original --shape internvl3-1b --out DIR [--seed N]
    internvl_ref.py convert --model DIR --out DIR          # to the other layout (tokenizer and generation config kept)
    internvl_ref.py extract-llm --model DIR --out DIR      # the language model alone, as its own CausalLM folder
    internvl_ref.py make-inputs --case text|one_tile|two_images|interp --model DIR --out DIR [--seed N]
    internvl_ref.py dump --model DIR --inputs DIR --out OUTDIR [--greedy 16]
    internvl_ref.py self-check

--via L writes the checkpoint in layout L, then converts it to --layout (the round trip of the parity test).

Shapes (npy): T tiles, S tile side in pixels, p patch, g = (S/p)^2, E vision width, s = 1 / downsample_ratio,
L prompt tokens, H text hidden, V vocab.
"""

import argparse
import json
import math
import os
import shutil
import sys
import tempfile

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import qwen2_vl_model as qm  # noqa: E402  (rms_norm, act, eager_attention, greedy loop)
import qwen3_ckpt as q3ck  # noqa: E402  (tiny text configs and tensors)
import qwen3_model as q3  # noqa: E402  (the decoder)
import internlm2_model as lm2  # noqa: E402  (InternVL 2.5's decoder)
import safetensors_io as st  # noqa: E402

TEXT_ID_LIMIT = 256  # make-inputs draws text ids from the byte tokens, below every added token
# tiny tokenizer: bytes 0-255 as GPT-2 characters, then these added tokens (bos 300, eos 301 as q3ck's tiny text)
ADDED = {300: "<|endoftext|>", 301: "<|im_end|>", 302: "<|im_start|>", 303: "<img>", 304: "</img>",
         305: "<IMG_CONTEXT>", 306: "<video>"}
IMG_START, IMG_END, IMG_CONTEXT, VIDEO = 303, 304, 305, 306
VOCAB = 320  # q3ck's tiny text vocabulary

CASES = {
    # text runs and images (tiles, tile side S in pixels), in sequence order; the tiny tower is trained at S = 32
    "text": [20],
    "one_tile": [5, (1, 32), 7],
    "two_images": [4, (3, 32), 5, (1, 32), 6],
    "interp": [3, (2, 24), 4, (1, 40), 2],  # position embedding interpolated down (8 -> 6) and up (8 -> 10)
    # videos ("video", frames, S): each frame one tile after its "FrameN: " text (see video_ids)
    "video": [4, ("video", 3, 32), 6],
    "image_video": [3, (2, 32), 4, ("video", 2, 32), 5],
    "video_image": [2, ("video", 4, 32), 3, (1, 32), 4],
    "video_chunks": [2, ("video", 11, 32), 3],  # more frames than mitten's tower takes in one pass (8)
}

# Tensor names after the vision prefix / projector prefix (convert: ORIGINAL_TO_CONVERTED_KEY_MAPPING_*)
NAMES = {
    "original": dict(vision="vision_model.", proj="mlp1.", text="language_model.model.",
                     head="language_model.lm_head.weight", cls="embeddings.class_embedding",
                     pos="embeddings.position_embedding", patch="embeddings.patch_embedding.",
                     layers="encoder.layers.", proj_out="attn.proj.", q_norm="attn.q_norm.", k_norm="attn.k_norm.",
                     ls1="ls1", ls2="ls2", norm1="norm1.", norm2="norm2.", fc1="mlp.fc1.", fc2="mlp.fc2.",
                     mlp_norm="0.", mlp_fc1="1.", mlp_fc2="3."),
    "hf": dict(vision="model.vision_tower.", proj="model.multi_modal_projector.", text="model.language_model.",
               head="lm_head.weight", cls="embeddings.cls_token", pos="embeddings.position_embeddings",
               patch="embeddings.patch_embeddings.projection.", layers="encoder.layer.",
               proj_out="attention.projection_layer.", q_norm="attention.q_norm.", k_norm="attention.k_norm.",
               ls1="lambda_1", ls2="lambda_2", norm1="layernorm_before.", norm2="layernorm_after.",
               fc1="mlp.fc1.", fc2="mlp.fc2.", mlp_norm="layer_norm.", mlp_fc1="linear_1.", mlp_fc2="linear_2."),
}
LLM_ARCH = {"qwen2": "Qwen2ForCausalLM", "qwen3": "Qwen3ForCausalLM", "internlm2": "InternLM2ForCausalLM",
            "llama": "LlamaForCausalLM"}


class Qwen:
    """The decoder interface Model and prefill use, over qwen3_model / qwen3_ckpt (internlm2_model has the same)."""
    EMBED, HEAD = "model.embed_tokens.weight", "lm_head.weight"
    Config, weight_specs, text_forward = q3.Config, staticmethod(q3ck.weight_specs), staticmethod(q3.text_forward)

    @staticmethod
    def decode_step(cfg, W, token, cache, past, delta):
        return q3.decode_step(cfg, W, token, cache, past, delta)


def decoder_module(model_type):
    return lm2 if model_type == "internlm2" else Qwen
# InternVL3-1B-Pretrained's config.json (as transformers prints it), for the bf16 benchmark checkpoint
REAL_1B_CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs", "internvl3-1b-pretrained.json")
# InternVL3's tokenizer ids of the tokens mitten looks up (its added_tokens); the benchmark tokenizer keeps them
REAL_1B_ADDED = {151643: "<|endoftext|>", 151644: "<|im_start|>", 151645: "<|im_end|>", 151665: "<img>",
                 151666: "</img>", 151667: "<IMG_CONTEXT>"}


# ---------------------------------------------------------------------------------------------------------------
# configs


class Config:
    """The fields both layouts' code reads, from either config.json."""

    def __init__(self, raw):
        self.raw = raw
        arch = raw["architectures"][0]
        if arch not in ("InternVLChatModel", "InternVLForConditionalGeneration"):
            raise ValueError(f"architecture {arch!r} is not InternVL's")
        self.layout = "original" if arch == "InternVLChatModel" else "hf"
        self.names = NAMES[self.layout]
        vc = raw["vision_config"]
        orig = self.layout == "original"
        text = dict(raw["llm_config" if orig else "text_config"])
        if orig:  # orig: InternVLChatConfig builds the LLM config from architectures[0] and unties it
            text["model_type"] = {v: k for k, v in LLM_ARCH.items()}[text["architectures"][0]]
            text["tie_word_embeddings"] = False
        self.lm = decoder_module(text.get("model_type", "qwen2"))
        self.text = self.lm.Config(text)  # the decoder reference reads model.* and its head's names
        self.depth = vc["num_hidden_layers"]
        self.width = vc["hidden_size"]
        self.heads = vc["num_attention_heads"]
        self.act = vc.get("hidden_act", "gelu")
        side = lambda v: v[0] if isinstance(v, list) else v  # noqa: E731  hf: [448, 448]
        self.patch = side(vc.get("patch_size", 14))
        self.image_size = side(vc.get("image_size", 448 if not orig else 224))
        # orig-vit: InternVisionConfig defaults (the 6B's); hf: InternVLVisionConfig defaults (the 300M's)
        self.qkv_bias = vc.get("qkv_bias", False) if orig else vc.get("attention_bias", False)
        self.qk_norm = vc.get("qk_normalization", True) if orig else vc.get("use_qk_norm", False)
        self.rms = vc.get("norm_type", "rms_norm" if orig else "layer_norm") == "rms_norm"
        self.eps = vc.get("layer_norm_eps", 1e-6)
        # orig-vit: InternRMSNorm(embed_dim, eps=layer_norm_eps); hf: InternVLVisionRMSNorm(embed_dim) (eps 1e-6)
        self.qk_eps = self.eps if orig else 1e-6
        self.ratio = raw.get("downsample_ratio", 0.5)
        self.select = raw.get("select_layer", -1) if orig else raw.get("vision_feature_layer", -1)
        self.ps_version = raw.get("ps_version", "v1") if orig else "v2"  # hf: pixel_shuffle swaps back (v2)
        self.proj_act = "gelu" if orig else raw.get("projector_hidden_act", "gelu")
        self.image_token_id = raw.get("image_token_id", IMG_CONTEXT)  # orig: the tokenizer's <IMG_CONTEXT>


def vision_config(kind, layout):
    """Tiny InternViT: 300m (LayerNorm, qkv bias, no q/k norm) or 6b (RMSNorm, q/k norm, no qkv bias); E 32, 2
    heads, 3 layers, patch 4, trained at 32 px (an 8 x 8 position grid). Keys as each layout's config.json has them
    (orig: InternVL3-1B's vision_config; hf: as convert_internvl_weights_to_hf.py renames them)."""
    six = kind == "6b"
    c = {"hidden_act": "gelu", "hidden_size": 32, "image_size": 32, "intermediate_size": 48,
         "layer_norm_eps": 1e-06, "norm_type": "rms_norm" if six else "layer_norm", "num_attention_heads": 2,
         "num_channels": 3, "num_hidden_layers": 3, "patch_size": 4}
    if layout == "original":
        c.update({"architectures": ["InternVisionModel"], "initializer_factor": 0.1, "model_type": "intern_vit_6b",
                  "qk_normalization": six, "qkv_bias": not six, "use_flash_attn": False})
    else:
        c.update({"attention_bias": not six, "image_size": [32, 32], "layer_scale_init_value": 0.1,
                  "model_type": "internvl_vision", "patch_size": [4, 4], "use_qk_norm": six})
    return dict(sorted(c.items()))


def tiny_config(layout, llm, vision, select_layer, ps_version):
    text = lm2.tiny_fields() if llm == "internlm2" else q3ck._text_fields(llm, "float32")
    text["tie_word_embeddings"] = False
    if layout == "original":
        cfg = {"architectures": ["InternVLChatModel"], "downsample_ratio": 0.5, "dynamic_image_size": True,
               "force_image_size": 32, "llm_config": text, "max_dynamic_patch": 12, "min_dynamic_patch": 1,
               "model_type": "internvl_chat", "ps_version": ps_version, "select_layer": select_layer,
               "template": "internvl2_5", "tie_word_embeddings": False, "torch_dtype": "float32",
               "use_thumbnail": True, "vision_config": vision_config(vision, layout)}
    else:
        if ps_version != "v2":
            raise SystemExit("the transformers layout has no ps_version: its pixel shuffle is v2")
        text.pop("architectures")
        cfg = {"architectures": ["InternVLForConditionalGeneration"], "downsample_ratio": 0.5,
               "image_seq_length": 16, "image_token_id": IMG_CONTEXT, "model_type": "internvl",
               "projector_hidden_act": "gelu", "text_config": text, "torch_dtype": "float32",
               "vision_config": vision_config(vision, layout), "vision_feature_layer": select_layer,
               "vision_feature_select_strategy": "default"}
    return cfg


def tokenizer_json(added=None):
    """A byte-level BPE without merges: byte b is id b (its GPT-2 character), added (ADDED) the special tokens."""
    def byte_char(b):
        if 0x21 <= b <= 0x7E or 0xA1 <= b <= 0xAC or b >= 0xAE:
            return chr(b)
        return chr(256 + b) if b <= 0x20 else chr(256 + 33 + b - 0x7F) if b <= 0xA0 else chr(256 + 67)

    vocab = {byte_char(b): b for b in range(256)}
    tiny = added is None
    added = [{"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False,
              "special": True} for i, t in sorted((added or ADDED).items())]
    if tiny:
        # every other id of the tiny vocabulary gets a token too, so what a random model generates always decodes
        added_ids = set(ADDED)
        added += [{"id": i, "content": f"<|reserved_{i}|>", "single_word": False, "lstrip": False, "rstrip": False,
                   "normalized": False, "special": False} for i in range(256, VOCAB) if i not in added_ids]
        added.sort(key=lambda t: t["id"])
    return {"version": "1.0", "added_tokens": added, "normalizer": None,
            "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
                              "use_regex": True},
            "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
            "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
                      "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False, "vocab": vocab,
                      "merges": []}}


# ---------------------------------------------------------------------------------------------------------------
# checkpoints


def weight_specs(cfg):
    """(name, shape, kind, fan_in) of every tensor, with the layout's names (kinds as qwen3_ckpt.init_scale)."""
    n, E, orig = cfg.names, cfg.width, cfg.layout == "original"
    V, specs = n["vision"], []
    p = cfg.patch
    specs.append((V + n["patch"] + "weight", [E, 3, p, p], "conv", 3 * p * p))
    specs.append((V + n["patch"] + "bias", [E], "bias", 3 * p * p))
    specs.append((V + n["cls"], [1, 1, E], "bias", E))
    G = cfg.image_size // p
    specs.append((V + n["pos"], [1, G * G + 1, E], "pos", E))

    def linear(name, o, i, bias):
        specs.append((name + "weight", [o, i], "linear", i))
        if bias:
            specs.append((name + "bias", [o], "bias", i))

    def norm(name, dim, bias):
        specs.append((name + "weight", [dim], "norm", dim))
        if bias:
            specs.append((name + "bias", [dim], "norm_bias", dim))

    I = cfg.raw["vision_config"]["intermediate_size"]
    for i in range(cfg.depth):
        b = f"{V}{n['layers']}{i}."
        if orig:
            linear(b + "attn.qkv.", 3 * E, E, cfg.qkv_bias)
        else:
            for x in "qkv":
                linear(f"{b}attention.{x}_proj.", E, E, cfg.qkv_bias)
        linear(b + n["proj_out"], E, E, True)
        if cfg.qk_norm:
            norm(b + n["q_norm"], E, False)
            norm(b + n["k_norm"], E, False)
        specs.append((b + n["ls1"], [E], "norm", E))
        specs.append((b + n["ls2"], [E], "norm", E))
        norm(b + n["norm1"], E, not cfg.rms)
        norm(b + n["norm2"], E, not cfg.rms)
        linear(b + n["fc1"], I, E, True)
        linear(b + n["fc2"], E, I, True)
    s = shuffle(cfg)
    P, H = n["proj"], cfg.text.hidden
    norm(P + n["mlp_norm"], E * s * s, True)
    linear(P + n["mlp_fc1"], H, E * s * s, True)
    linear(P + n["mlp_fc2"], H, H, True)
    for name, shape, kind, fan_in in cfg.lm.weight_specs(cfg.text):
        specs.append((text_name(cfg, name), shape, kind, fan_in))
    return specs


def head_name(names, lm):
    """The LM head as a layout stores it: InternLM2's "output" takes lm_head's place under the same prefix."""
    return names["head"][:-len("lm_head.weight")] + lm.HEAD


def text_name(cfg, name):
    """A decoder reference name (model.*, its head) as this layout stores it."""
    if name == cfg.lm.HEAD:
        return head_name(cfg.names, cfg.lm)
    return cfg.names["text"] + name[len("model."):]


def make_weights(cfg, seed):
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for name, shape, kind, fan_in in weight_specs(cfg):
        offset, std = (0.0, 0.5) if kind == "pos" else q3ck.init_scale(kind, fan_in)
        out[name] = torch.randn(shape, generator=gen) * std + offset
    return out


# The tiny checkpoints' chat templates, one per layout, as the published repos ship them:
#   - transformers' -hf repos: ChatML over content parts, one <IMG_CONTEXT> per image part, which InternVLProcessor
#     expands to <img> + <IMG_CONTEXT> x N + </img> (CHAT_TEMPLATE);
#   - the original repos (InternVL3's tokenizer_config.json): ChatML over text only, message['content'] concatenated;
#     their chat() writes "<image>\n" before the question and swaps each "<image>" of the rendered prompt for
#     <img> + <IMG_CONTEXT> x N + </img> (ORIGINAL_CHAT_TEMPLATE). Neither has the default system message.
CHAT_TEMPLATE = """{%- for message in messages -%}
<|im_start|>{{ message['role'] }}
{% if message['content'] is string -%}
{{ message['content'] }}
{%- else -%}
{%- for part in message['content'] -%}
{%- if part['type'] == 'image' or 'image' in part or 'image_url' in part -%}
<IMG_CONTEXT>
{% elif part['type'] == 'video' or 'video' in part -%}
<video>
{% elif 'text' in part -%}
{{ part['text'] }}
{%- endif -%}
{%- endfor -%}
{%- endif -%}
<|im_end|>
{% endfor -%}
{%- if add_generation_prompt -%}
<|im_start|>assistant
{% endif -%}
"""


ORIGINAL_CHAT_TEMPLATE = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
                          "'<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}"
                          "{% endif %}")
IMAGE_TEXT = "<image>"


def tokenizer_config(layout):
    return {"chat_template": ORIGINAL_CHAT_TEMPLATE if layout == "original" else CHAT_TEMPLATE, "bos_token": None, "eos_token": "<|im_end|>",
            "pad_token": "<|endoftext|>", "model_max_length": 4096}


def write_folder(out_dir, cfg_raw, weights):
    os.makedirs(out_dir, exist_ok=True)
    files = {"config.json": cfg_raw, "tokenizer.json": tokenizer_json(),
             "tokenizer_config.json": tokenizer_config(Config(cfg_raw).layout),
             "generation_config.json": {"bos_token_id": 300, "eos_token_id": [301, 300]}}
    for fname, obj in files.items():
        with open(os.path.join(out_dir, fname), "w") as f:
            json.dump(obj, f, indent=2, ensure_ascii=False)
            f.write("\n")
    st.write_file(os.path.join(out_dir, "model.safetensors"), weights)


def convert(cfg, W):
    """The checkpoint in the other layout: (config dict, weights). convert: original -> transformers renames (and
    splits attn.qkv into q/k/v by rows); the way back is its inverse. ps_version v1 has no transformers form. Every
    tensor must be mapped."""
    raw, vc = cfg.raw, cfg.raw["vision_config"]
    src, dst = cfg.names, NAMES["hf" if cfg.layout == "original" else "original"]
    out, used = {}, set()

    def move(a, b):
        if a in W:
            out[b] = W[a]
            used.add(a)

    sv, dv = src["vision"], dst["vision"]
    for role in ("cls", "pos"):
        move(sv + src[role], dv + dst[role])
    for role, prefix in (("patch", "vision"), ("mlp_norm", "proj"), ("mlp_fc1", "proj"), ("mlp_fc2", "proj")):
        for x in ("weight", "bias"):
            move(src[prefix] + src[role] + x, dst[prefix] + dst[role] + x)
    for i in range(cfg.depth):
        sb, db = f"{sv}{src['layers']}{i}.", f"{dv}{dst['layers']}{i}."
        for role in ("ls1", "ls2"):
            move(sb + src[role], db + dst[role])
        for role in ("proj_out", "q_norm", "k_norm", "norm1", "norm2", "fc1", "fc2"):
            for x in ("weight", "bias"):
                move(sb + src[role] + x, db + dst[role] + x)
        for x in ("weight", "bias"):
            if cfg.layout == "original" and sb + "attn.qkv." + x in W:
                for c, piece in zip("qkv", W[sb + "attn.qkv." + x].chunk(3, dim=0)):
                    out[f"{db}attention.{c}_proj.{x}"] = piece.clone()
                used.add(sb + "attn.qkv." + x)
            elif cfg.layout == "hf" and f"{sb}attention.q_proj.{x}" in W:
                names = [f"{sb}attention.{c}_proj.{x}" for c in "qkv"]
                out[f"{db}attn.qkv.{x}"] = torch.cat([W[k] for k in names])
                used.update(names)
    for name in W:
        if name.startswith(src["text"]):
            move(name, dst["text"] + name[len(src["text"]):])
    move(head_name(src, cfg.lm), head_name(dst, cfg.lm))
    left = sorted(set(W) - used)
    if left:
        raise ValueError(f"tensors the converter does not know: {left[:5]}")
    text = dict(raw["llm_config" if cfg.layout == "original" else "text_config"])
    v = dict(vc)
    if cfg.layout == "original":
        if cfg.ps_version != "v2":
            raise SystemExit("ps_version v1 (a transposed pixel shuffle) has no transformers layout")
        for a, b in (("qkv_bias", "attention_bias"), ("qk_normalization", "use_qk_norm")):
            v[b] = v.pop(a, a == "qk_normalization")
        for k in ("architectures", "initializer_factor", "use_flash_attn"):
            v.pop(k, None)
        v.update({"image_size": [cfg.image_size] * 2, "patch_size": [cfg.patch] * 2, "layer_scale_init_value": 0.1,
                  "model_type": "internvl_vision", "norm_type": "rms_norm" if cfg.rms else "layer_norm"})
        text.pop("architectures", None)
        tile = raw.get("force_image_size") or cfg.image_size
        new = {"architectures": ["InternVLForConditionalGeneration"], "downsample_ratio": cfg.ratio,
               "image_seq_length": int((tile // cfg.patch) ** 2 * cfg.ratio ** 2), "image_token_id": IMG_CONTEXT,
               "model_type": "internvl", "projector_hidden_act": "gelu", "text_config": text,
               "torch_dtype": raw.get("torch_dtype", "float32"), "vision_config": dict(sorted(v.items())),
               "vision_feature_layer": cfg.select, "vision_feature_select_strategy": "default"}
    else:
        for a, b in (("attention_bias", "qkv_bias"), ("use_qk_norm", "qk_normalization")):
            v[b] = v.pop(a, False)
        for k in ("layer_scale_init_value", "use_absolute_position_embeddings", "use_mean_pooling",
                  "use_mask_token"):
            v.pop(k, None)
        v.update({"architectures": ["InternVisionModel"], "image_size": cfg.image_size, "patch_size": cfg.patch,
                  "model_type": "intern_vit_6b", "norm_type": "rms_norm" if cfg.rms else "layer_norm"})
        text["architectures"] = [LLM_ARCH[cfg.text.model_type]]
        if cfg.text.tie:  # orig: never tied, so the head is saved
            out[head_name(dst, cfg.lm)] = W[text_name(cfg, cfg.lm.EMBED)].clone()
        text["tie_word_embeddings"] = False
        new = {"architectures": ["InternVLChatModel"], "downsample_ratio": cfg.ratio,
               "force_image_size": cfg.image_size, "llm_config": text, "model_type": "internvl_chat",
               "ps_version": "v2", "select_layer": cfg.select, "template": "internvl2_5",
               "tie_word_embeddings": False, "torch_dtype": raw.get("torch_dtype", "float32"),
               "vision_config": dict(sorted(v.items()))}
    return new, out


def extract_llm(cfg, W):
    """The language model as a text-only checkpoint of its own architecture (what save_pretrained of the LLM writes):
    the text section as config.json, the text tensors under model.*, the head under its own name. Returns (config
    dict, weights)."""
    raw = dict(cfg.raw["llm_config" if cfg.layout == "original" else "text_config"])
    raw["architectures"] = [LLM_ARCH[cfg.text.model_type]]
    raw["model_type"] = cfg.text.model_type
    raw["tie_word_embeddings"] = cfg.text.tie
    out = {name: W[text_name(cfg, name)] for name, *_ in cfg.lm.weight_specs(cfg.text)}
    return dict(sorted(raw.items())), out


def shuffle(cfg):
    return int(1 / cfg.ratio)


# ---------------------------------------------------------------------------------------------------------------
# forward


def norm(cfg, W, name, x):
    """orig-vit NORM2FN / hf NORM2FN: LayerNorm (weight, bias) or RMSNorm (float32 statistics), eps
    layer_norm_eps."""
    if cfg.rms:
        return qm.rms_norm(x, W[name + "weight"], cfg.eps)
    return F.layer_norm(x, (x.shape[-1],), W[name + "weight"], W[name + "bias"], cfg.eps)


def pos_embedding(cfg, W, gh, gw):
    """The position embedding of a gh x gw tile [1, 1 + gh gw, E]. orig-vit InternVisionEmbeddings._get_pos_embed:
    always interpolated (bicubic, align_corners False, float32) from the trained grid; hf interpolate_pos_encoding:
    only when the patch count or the aspect differs (the same values: bicubic at scale 1 is the identity)."""
    pos = W[cfg.names["vision"] + cfg.names["pos"]]
    G, E = int(math.isqrt(pos.shape[1] - 1)), pos.shape[2]
    if cfg.layout == "hf" and gh * gw == G * G and gh == gw:
        return pos
    grid = pos[:, 1:].float().reshape(1, G, G, E).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, size=(gh, gw), mode="bicubic", align_corners=False)
    return torch.cat([pos[:, :1], grid.reshape(1, E, gh * gw).permute(0, 2, 1).to(pos.dtype)], dim=1)


def attention(cfg, W, b, x):
    """orig-vit InternAttention._naive_attn / hf InternVLVisionAttention: q, k, v (fused qkv split as
    reshape(B, N, 3, heads, D)), the 6B's RMSNorm of q and k over the whole width, softmax(q k^T / sqrt(D)) v,
    proj."""
    n = cfg.names
    T, N, E = x.shape
    D = E // cfg.heads
    if cfg.layout == "original":
        bias = W.get(b + "attn.qkv.bias")
        q, k, v = F.linear(x, W[b + "attn.qkv.weight"], bias).reshape(T, N, 3, E).unbind(2)
    else:
        q, k, v = (F.linear(x, W[f"{b}attention.{c}_proj.weight"], W.get(f"{b}attention.{c}_proj.bias"))
                   for c in "qkv")
    if cfg.qk_norm:
        q = qm.rms_norm(q, W[b + n["q_norm"] + "weight"], cfg.qk_eps)
        k = qm.rms_norm(k, W[b + n["k_norm"] + "weight"], cfg.qk_eps)
    q, k, v = (a.reshape(T, N, cfg.heads, D).transpose(1, 2) for a in (q, k, v))
    o = qm.eager_attention(q, k, v, D ** -0.5).transpose(1, 2).reshape(T, N, E)
    return F.linear(o, W[b + n["proj_out"] + "weight"], W[b + n["proj_out"] + "bias"])


def block(cfg, W, i, x):
    """orig-vit InternVisionEncoderLayer / hf InternVLVisionLayer: x + ls1 * attn(norm1 x), then
    x + ls2 * fc2(act(fc1(norm2 x)))."""
    n = cfg.names
    b = f"{n['vision']}{n['layers']}{i}."
    x = x + attention(cfg, W, b, norm(cfg, W, b + n["norm1"], x)) * W[b + n["ls1"]]
    h = F.linear(norm(cfg, W, b + n["norm2"], x), W[b + n["fc1"] + "weight"], W[b + n["fc1"] + "bias"])
    h = F.linear(qm.act(cfg.act, h), W[b + n["fc2"] + "weight"], W[b + n["fc2"] + "bias"])
    return x + h * W[b + n["ls2"]]


def pixel_shuffle(x, scale, version):
    """orig InternVLChatModel.pixel_shuffle (hf InternVLModel.pixel_shuffle is its v2), literally: x [n, w, h, c]."""
    n, w, h, c = x.size()
    x = x.view(n, w, int(h * scale), int(c / scale)).permute(0, 2, 1, 3).contiguous()
    x = x.view(n, int(h * scale), int(w * scale), int(c / (scale * scale)))
    return x if version == "v1" else x.permute(0, 2, 1, 3).contiguous()


def vision_forward(cfg, W, pixel_values, dumps=None):
    """orig extract_feature / hf get_image_features over tiles [T, 3, S, S]: patch Conv2d, [CLS, patches] plus the
    position embedding, the blocks up to select_layer (hidden_states[k] of (embeddings, block 1, ...)), CLS
    dropped, pixel shuffle, mlp1 (LayerNorm eps 1e-5, Linear, GELU, Linear). Returns [T g / s^2, H]."""
    n, V = cfg.names, cfg.names["vision"]
    emb = F.conv2d(pixel_values, W[V + n["patch"] + "weight"], W[V + n["patch"] + "bias"], stride=cfg.patch)
    T, E, gh, gw = emb.shape
    patches = emb.flatten(2).transpose(1, 2)
    x = torch.cat([W[V + n["cls"]].expand(T, 1, E), patches], dim=1) + pos_embedding(cfg, W, gh, gw)
    if dumps is not None:
        dumps["patch_embed"] = patches.reshape(-1, E)
        dumps["vision_embeddings"] = x.reshape(-1, E)
    run = cfg.select if cfg.select >= 0 else cfg.depth + 1 + cfg.select
    for i in range(run):
        x = block(cfg, W, i, x)
        if dumps is not None:
            dumps[f"vision_block_{i}"] = x.reshape(-1, E)
    x = x[:, 1:, :]
    side = int(x.shape[1] ** 0.5)
    x = pixel_shuffle(x.reshape(T, side, side, -1), cfg.ratio, cfg.ps_version)
    x = x.reshape(T, -1, x.shape[-1])
    P = n["proj"]
    y = F.layer_norm(x, (x.shape[-1],), W[P + n["mlp_norm"] + "weight"], W[P + n["mlp_norm"] + "bias"], 1e-5)
    y = F.linear(y, W[P + n["mlp_fc1"] + "weight"], W[P + n["mlp_fc1"] + "bias"])
    y = F.linear(q3.act(cfg.proj_act, y), W[P + n["mlp_fc2"] + "weight"], W[P + n["mlp_fc2"] + "bias"])
    if dumps is not None:
        dumps["pixel_shuffle"] = x.reshape(-1, x.shape[-1])
        dumps["merger"] = y.reshape(-1, y.shape[-1])
    return y.reshape(-1, y.shape[-1])


class Model:
    """cfg + weights, with the decoder's weights also under qwen3_model's names."""

    def __init__(self, cfg, W):
        self.cfg, self.W = cfg, W
        self.text_W = {name: W[text_name(cfg, name)] for name, *_ in cfg.lm.weight_specs(cfg.text)}


def prefill(model, _W, input_ids, images, dumps=None):
    """orig forward / hf InternVLModel.forward: token embeddings, the images' features (all tiles of all images in
    order) written into the rows holding image_token_id, then the decoder at positions 0..L-1."""
    cfg, tcfg = model.cfg, model.cfg.text
    x = model.text_W[cfg.lm.EMBED][input_ids]
    rows = (input_ids == cfg.image_token_id).nonzero().flatten()
    if images:
        feats = torch.cat([vision_forward(cfg, model.W, pv, dumps) for pv in images]) if dumps is None else \
            _batched_vision(cfg, model.W, images, dumps)
        if feats.shape[0] != rows.numel():
            raise ValueError(f"{rows.numel()} image tokens for {feats.shape[0]} features")
        x = x.clone()
        x[rows] = feats
    elif rows.numel():
        raise ValueError("image tokens without images")
    L = input_ids.shape[0]
    pos = torch.arange(L, dtype=torch.int64).repeat(3, 1)
    if dumps is not None:
        dumps["position_ids"] = pos[:1]
        dumps["inputs_embeds"] = x
    cache = [None] * tcfg.layers
    logits = cfg.lm.text_forward(tcfg, model.text_W, x, pos[0] if cfg.lm is lm2 else pos, cache, 0, dumps)
    if dumps is not None:
        dumps["logits"] = logits
    return logits, cache, 0


def _batched_vision(cfg, W, images, dumps):
    """Each image through the tower, its dumps appended row-wise in image order (as mitten writes them)."""
    feats = []
    for pv in images:
        d = {}
        feats.append(vision_forward(cfg, W, pv, d))
        for k, v in d.items():
            dumps[k] = torch.cat([dumps[k], v]) if k in dumps else v
    return torch.cat(feats)


def decode_step(model, _W, token, cache, past, delta):
    return model.cfg.lm.decode_step(model.cfg.text, model.text_W, token, cache, past, delta)


# ---------------------------------------------------------------------------------------------------------------
# commands


def load(model_dir):
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = Config(json.load(f))
    return Model(cfg, {k: v.float() for k, v in st.read_folder(model_dir).items()})


def make_real_1b(a):
    """Random bf16 weights of InternVL3-1B's shape, streamed into shards (timing only: PoolSampler's draws)."""
    import qwen2_vl_ref as qref
    if a.layout != "original" or a.via:
        raise SystemExit("--shape internvl3-1b is written in the original layout only")
    with open(REAL_1B_CONFIG) as f:
        raw = json.load(f)
    # The tensor shapes do not depend on RoPE; the reference decoder knows only default RoPE (the config's dynamic
    # NTK scaling changes nothing below its 32768 positions).
    shapes_raw = json.loads(json.dumps(raw))
    shapes_raw["llm_config"].pop("rope_scaling")
    cfg = Config(shapes_raw)
    os.makedirs(a.out, exist_ok=True)
    files = {"config.json": raw, "tokenizer.json": tokenizer_json(REAL_1B_ADDED),
             "generation_config.json": {"bos_token_id": 151643, "eos_token_id": [151645, 151643]}}
    for fname, obj in files.items():
        with open(os.path.join(a.out, fname), "w") as f:
            json.dump(obj, f, indent=2, ensure_ascii=False)
            f.write("\n")
    sample = qref.PoolSampler(a.seed)
    kinds = {name: (kind, fan_in) for name, _, kind, fan_in in weight_specs(cfg)}

    def make(name, dtype, shape):
        offset, std = q3ck.init_scale(*kinds[name])
        return sample(math.prod(shape), offset, std).reshape(shape)

    specs = [(name, torch.bfloat16, shape) for name, shape, _, _ in weight_specs(cfg)]
    paths = st.write_sharded(a.out, specs, make, 2 * 1000 ** 3)
    print(f"wrote {len(paths)} shards to {a.out}")


def cmd_make_checkpoint(a):
    if a.shape == "internvl3-1b":
        return make_real_1b(a)
    first = a.via or a.layout
    cfg = Config(tiny_config(first, a.llm, a.vision, a.select_layer, a.ps_version))
    W = make_weights(cfg, a.seed)
    if first != a.layout:
        raw, W = convert(cfg, W)
    else:
        raw = cfg.raw
    write_folder(a.out, raw, W)
    print(f"wrote {a.out} ({a.layout} layout{', via ' + a.via if a.via else ''})")


def cmd_convert(a):
    m = load(a.model)
    raw, W = convert(m.cfg, m.W)
    os.makedirs(a.out, exist_ok=True)
    for f in ("tokenizer.json", "generation_config.json"):
        if not os.path.exists(os.path.join(a.model, f)):
            continue
        shutil.copyfile(os.path.join(a.model, f), os.path.join(a.out, f))
    for name, obj in (("config.json", raw), ("tokenizer_config.json", tokenizer_config(Config(raw).layout))):
        with open(os.path.join(a.out, name), "w") as f:
            json.dump(obj, f, indent=2, ensure_ascii=False)
            f.write("\n")
    st.write_file(os.path.join(a.out, "model.safetensors"), W)
    print(f"wrote {a.out} ({Config(raw).layout} layout)")


def cmd_extract_llm(a):
    m = load(a.model)
    raw, W = extract_llm(m.cfg, m.W)
    os.makedirs(a.out, exist_ok=True)
    for f in ("tokenizer.json", "generation_config.json"):
        shutil.copyfile(os.path.join(a.model, f), os.path.join(a.out, f))
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(raw, f, indent=2)
        f.write("\n")
    st.write_file(os.path.join(a.out, "model.safetensors"), W)
    print(f"wrote {a.out} ({raw['architectures'][0]})")


def video_ids(cfg, frames, rows):
    """A video's tokens as the references write them, frame i from 1: hf InternVLProcessor._insert_media_placeholders
    "\n".join(f"Frame{i}: <img>" + <IMG_CONTEXT> x rows + "</img>"); orig (model card) video_prefix
    "".join(f"Frame{i}: <image>\n") with each <image> so expanded, whose last "\n" is the one a chat template writes
    after the placeholder (make-inputs puts it in the text after). The tiny tokenizer's text ids are the bytes."""
    ids = []
    for f in range(frames):
        ids += list((("\n" if f else "") + f"Frame{f + 1}: ").encode()) + [IMG_START] + [cfg.image_token_id] * rows
        ids.append(IMG_END)
    return ids


def build_inputs(cfg, case, seed):
    """ids int64 [L] (each image <img>, <IMG_CONTEXT> x its feature rows, </img>; each video video_ids), the same
    prompt with one placeholder per input (an image's <IMG_CONTEXT>; a video's <video> in the hf layout, whose
    tokenizer has it, else <IMG_CONTEXT> too, as the original's text-only template marks both alike), pixel values
    per input [T, 3, S, S] (a video's T its frames), standard normal (already "normalised"), and which are videos."""
    gen = torch.Generator().manual_seed(seed)
    ids, prompt, images, videos = [], [], [], []
    s = shuffle(cfg)
    for part in CASES[case]:
        if isinstance(part, int):
            text = torch.randint(0, TEXT_ID_LIMIT, (part,), generator=gen).tolist()
            if prompt and prompt[-1] in (IMG_CONTEXT, VIDEO) and videos and videos[-1]:
                text[0] = ord("\n")  # the newline a chat template writes after a video's placeholder
            ids += text
            prompt += text
            continue
        if part[0] == "video":
            _, frames, side = part
            ids += video_ids(cfg, frames, (side // cfg.patch // s) ** 2)
            prompt.append(VIDEO if cfg.layout == "hf" else cfg.image_token_id)
            images.append(torch.randn(frames, 3, side, side, generator=gen))
            videos.append(True)
            continue
        tiles, side = part
        rows = tiles * (side // cfg.patch // s) ** 2
        ids += [IMG_START] + [cfg.image_token_id] * rows + [IMG_END]
        prompt.append(cfg.image_token_id)
        images.append(torch.randn(tiles, 3, side, side, generator=gen))
        videos.append(False)
    return torch.tensor(ids, dtype=torch.int64), images, torch.tensor(prompt, dtype=torch.int64), videos


def cmd_make_inputs(a):
    m = load(a.model)
    ids, images, prompt, videos = build_inputs(m.cfg, a.case, a.seed)
    os.makedirs(a.out, exist_ok=True)
    np.save(os.path.join(a.out, "ids.npy"), ids.numpy())
    np.save(os.path.join(a.out, "prompt_ids.npy"), prompt.numpy())
    if any(videos):
        with open(os.path.join(a.out, "videos.txt"), "w") as f:
            f.write("".join(f"{k}\n" for k, v in enumerate(videos) if v))
    for k, pv in enumerate(images):
        np.save(os.path.join(a.out, f"pv{k}.npy"), pv.numpy().astype(np.float32))
    print(f"wrote {a.out}: {ids.numel()} tokens, {len(images)} images")


def load_inputs(in_dir):
    ids = torch.from_numpy(np.load(os.path.join(in_dir, "ids.npy")).astype(np.int64))
    images, k = [], 0
    while os.path.exists(os.path.join(in_dir, f"pv{k}.npy")):
        images.append(torch.from_numpy(np.load(os.path.join(in_dir, f"pv{k}.npy"))))
        k += 1
    return ids, images


def run_dump(model, ids, images, n_greedy):
    dumps = {}
    prefill(model, None, ids, images, dumps)
    if n_greedy > 0:
        tokens, step_logits = qm.greedy(model, None, ids, images, n_greedy, [301, 300], prefill_fn=prefill,
                                        decode_fn=decode_step)
        dumps["greedy"] = torch.tensor(tokens, dtype=torch.int64)
        dumps["greedy_logits"] = step_logits
        top2 = step_logits.topk(2, dim=-1).values
        print(f"greedy: {tokens}; smallest top-1/top-2 logit gap {float((top2[:, 0] - top2[:, 1]).min()):.4f}")
    return dumps


def cmd_dump(a):
    model = load(a.model)
    ids, images = load_inputs(a.inputs)
    dumps = run_dump(model, ids, images, a.greedy)
    os.makedirs(a.out, exist_ok=True)
    for k, v in dumps.items():
        v = v.detach()
        np.save(os.path.join(a.out, k + ".npy"), v.numpy() if v.dtype == torch.int64 else v.float().numpy())
    print(f"wrote {len(dumps)} arrays to {a.out}")


def cmd_self_check(_a):
    import internvl_selfcheck  # noqa: E402  (test code, kept apart from the reference)

    with tempfile.TemporaryDirectory() as tmp:
        ok = internvl_selfcheck.run(tmp)
    sys.exit(0 if ok else 1)


def main(argv=None):
    torch.set_default_dtype(torch.float32)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("make-checkpoint")
    p.add_argument("--layout", choices=["hf", "original"], required=True)
    p.add_argument("--via", choices=["hf", "original"])
    p.add_argument("--llm", choices=sorted(LLM_ARCH), default="qwen2")
    p.add_argument("--vision", choices=["300m", "6b"], default="300m")
    p.add_argument("--select-layer", type=int, default=-1)
    p.add_argument("--ps-version", choices=["v1", "v2"], default="v2")
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--shape", choices=["tiny", "internvl3-1b"], default="tiny",
                   help="internvl3-1b: the real config, random bf16 weights (mitten bench --shape)")
    p.set_defaults(fn=cmd_make_checkpoint)
    p = sub.add_parser("convert")
    p.add_argument("--model", required=True)
    p.add_argument("--out", required=True)
    p.set_defaults(fn=cmd_convert)
    p = sub.add_parser("extract-llm")
    p.add_argument("--model", required=True)
    p.add_argument("--out", required=True)
    p.set_defaults(fn=cmd_extract_llm)
    p = sub.add_parser("make-inputs")
    p.add_argument("--case", choices=sorted(CASES), required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=1234)
    p.set_defaults(fn=cmd_make_inputs)
    p = sub.add_parser("dump")
    p.add_argument("--model", required=True)
    p.add_argument("--inputs", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--greedy", type=int, default=16)
    p.set_defaults(fn=cmd_dump)
    p = sub.add_parser("self-check")
    p.set_defaults(fn=cmd_self_check)
    a = ap.parse_args(argv)
    with torch.no_grad():
        a.fn(a)


if __name__ == "__main__":
    main()
