"""mitten-tiny's architecture and random initial weights: a Qwen2.5-VL config.json (same keys as the published
Qwen2.5-VL-3B-Instruct one) at toy width, generation_config.json, preprocessor_config.json, model.safetensors.

    | part      | shape                                                                                        |
    |-----------|----------------------------------------------------------------------------------------------|
    | vision    | patch 14, temporal patch 2, VISION["depth"] blocks of width VISION["hidden_size"],           |
    |           | window 112 px, last block full attention, 2x2 merge -> projector -> LM width                 |
    | language  | TEXT["hidden_size"] wide, TEXT["layers"] layers, grouped-query attention, SwiGLU, tied head |
    | images    | min 56x56, max 84x84 pixels: an 84x84 image is 6x6 patches -> 9 image tokens                 |

Initialisation, for training from scratch: linear and conv weights N(0, 1/fan_in), the residual outputs
(attn.proj, o_proj, down_proj, the projector's last layer) further divided by sqrt(2 * depth), embeddings
N(0, INIT_EMBED^2), biases 0, norm weights 1. With GPT-2's 0.02 embeddings the model learned the answers' prior and
never the image (a small shape is one token in nine; its signal drowned); 0.5 lets attention single it out.
The tensor list is tests/ref/qwen2_vl_ref.py's weight_specs, transformers' names.
"""

import json
import math
import os
import sys

import torch

REF = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "ref")
sys.path.insert(0, REF)
import qwen2_vl_model as qm  # noqa: E402
import qwen2_vl_ref as qr  # noqa: E402
import safetensors_io as st  # noqa: E402

VISION = {"depth": 3, "hidden_size": 128, "intermediate_size": 256, "num_heads": 4}
TEXT = {"hidden_size": 128, "heads": 4, "kv_heads": 2, "layers": 2, "intermediate_size": 256}
PREPROCESSOR = dict(qr.PREPROCESSOR, min_pixels=56 * 56, max_pixels=84 * 84)
# Qwen's 1e6 leaves the height and width sections of a 32-wide head only frequencies below 0.03 rad per step, so
# "where" stays near chance; 10 (0.1-0.6 rad per cell) lifted "where" to 58% in one run but cost shape its
# generalisation, and 100 did no better than 1e6, so the shipped model keeps Qwen's value (docs/TINY.md).
ROPE_THETA = 1000000.0
INIT_EMBED = 0.5  # std of the token embeddings; see the note above
RESIDUAL_OUT = ("attn.proj.weight", "o_proj.weight", "down_proj.weight", "merger.mlp.2.weight")


def config(ids, vocab_size, text=TEXT, rope_theta=ROPE_THETA):
    """ids: special token -> id (tiny_tokenizer.special_ids); text, rope_theta: the language model's shape."""
    head_dim = text["hidden_size"] // text["heads"]
    section = [head_dim // 8, 3 * head_dim // 16, 3 * head_dim // 16]  # Qwen's 16/24/24 of 64 rotary pairs
    cfg = {"architectures": ["Qwen2_5_VLForConditionalGeneration"], "model_type": "qwen2_5_vl",
           "bos_token_id": ids["<|endoftext|>"], "eos_token_id": ids["<|im_end|>"],
           "vision_start_token_id": ids["<|vision_start|>"], "vision_end_token_id": ids["<|vision_end|>"],
           "vision_token_id": ids["<|vision_pad|>"], "image_token_id": ids["<|image_pad|>"],
           "video_token_id": ids["<|video_pad|>"]}
    cfg.update(qr._text_fields(text["hidden_size"], text["heads"], text["kv_heads"], text["layers"],
                               text["intermediate_size"], vocab_size, True, "float32", section))
    cfg["rope_theta"] = rope_theta
    cfg["vision_config"] = dict(VISION, hidden_act="silu", in_chans=3, out_hidden_size=text["hidden_size"],
                                patch_size=14, spatial_merge_size=2, spatial_patch_size=14, window_size=112,
                                fullatt_block_indexes=[VISION["depth"] - 1], tokens_per_second=2,
                                temporal_patch_size=2)
    return cfg


def init_weights(cfg_raw, seed):
    cfg = qm.Config(cfg_raw)
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for name, shape, kind, fan_in in qr.weight_specs(cfg):
        if kind in ("norm",):
            out[name] = torch.ones(shape)
        elif kind in ("bias", "norm_bias"):
            out[name] = torch.zeros(shape)
        else:
            depth = cfg.vdepth if name.startswith("visual.") else cfg.layers
            std = 1.0 / math.sqrt(fan_in) if kind != "embed" else INIT_EMBED
            if name.endswith(RESIDUAL_OUT):
                std /= math.sqrt(2 * depth)
            out[name] = torch.randn(shape, generator=gen) * std
    return out


def write_initial(out_dir, ids, vocab_size, seed, text=TEXT, rope_theta=ROPE_THETA):
    """Writes the untrained folder (no tokenizer files); returns config.json's dict."""
    cfg = config(ids, vocab_size, text, rope_theta)
    gen = {"bos_token_id": ids["<|endoftext|>"], "pad_token_id": ids["<|endoftext|>"],
           "eos_token_id": [ids["<|im_end|>"], ids["<|endoftext|>"]], "do_sample": False,
           "transformers_version": "4.49.0"}
    os.makedirs(out_dir, exist_ok=True)
    for fname, obj in (("config.json", cfg), ("generation_config.json", gen),
                       ("preprocessor_config.json", PREPROCESSOR)):
        with open(os.path.join(out_dir, fname), "w") as f:
            json.dump(obj, f, indent=2)
            f.write("\n")
    st.write_file(os.path.join(out_dir, "model.safetensors"), init_weights(cfg, seed))
    return cfg
