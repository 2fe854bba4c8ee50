#!/usr/bin/env python3
"""Reference rotary tables for rope_check.c: every rope variant of transformers, from config.json fragments.

usage: rope_ref.py OUT_DIR

Follows transformers 5.0.0.dev0 (mirror feisenyu/transformers_4573, commit e9d73c31189a), read for its formulas:
  modeling_rope_utils.py   _compute_{linear_scaling,dynamic_ntk,yarn,llama3}_parameters, dynamic_rope_update,
                           RotaryEmbeddingConfigMixin (convert_rope_params_to_dict, standardize_rope_params,
                           validate_rope and the _validate_<type>_rope_parameters required keys)
  models/qwen2_vl          Qwen2VLRotaryEmbedding.compute_default_rope_parameters, apply_multimodal_rotary_pos_emb
                           (contiguous mrope_section), Qwen2VLTextConfig ("mrope" is read as "default")
  models/qwen3_vl          Qwen3VLTextRotaryEmbedding.apply_interleaved_mrope
  models/qwen2_vl, qwen3_vl  VisionRotaryEmbedding(head_dim // 2) and rot_pos_emb: the 2-D vision rope, patch row
                           then column, each on head_dim / 4 frequencies
Each step is the same torch operation on the same dtype as there (float32 tensors, Python floats as scalars), so the
arrays differ from transformers' own only by the platform's float32 pow / cos / sin.

Run time: dynamic NTK grows the base once max(position) + 1 exceeds max_position_embeddings, from that length as an
int64 tensor (the float32 path of _compute_dynamic_ntk_parameters); at or below it the table is the one built at
init (seq_len None, Python floats). transformers keeps a grown table until a shorter call resets it; mitten builds
each call's table from that call's positions, which is the same for a sequence that only grows.

OUT_DIR/cases.json is a list of
  {"name", "config": fragment, "pos": npy int64 [axes, T], "inv": npy f32 [D/2], "scale": attention factor,
   "cos", "sin": npy f32 [T, D/2] (the first half of transformers' [T, D] tables; the second half is checked equal)}
or, for a config that must be refused, {"name", "config", "refuse": text the error must contain, "why"},
or, for the 2-D vision rope, {"name", "vision": {"head_dim", "theta"}, "rows", "cols": npy int64 [N], "cos", "sin"}.
"""
import json
import math
import os
import sys

import numpy as np
import torch

F32 = torch.float32
MAX_POS_DEFAULT = 32768  # what mitten's decoder config assumes without max_position_embeddings


class Refused(Exception):
    def __init__(self, field, why):
        super().__init__(why)
        self.field, self.why = field, why


# ---- config.json -> rope parameters, as PreTrainedConfig reads them ----

REQUIRED = {  # _validate_<type>_rope_parameters: KeyError when one is missing (after standardisation)
    "default": [],
    "linear": ["factor"],
    "dynamic": ["factor"],
    "yarn": ["factor", "original_max_position_embeddings"],
    "llama3": ["factor", "original_max_position_embeddings", "low_freq_factor", "high_freq_factor"],
}


def rope_params(cfg):
    """The standardised rope parameters of a text config, or Refused. transformers' own refusals are a missing
    required key and a type without an init function; the others are mitten's (transformers only warns)."""
    params = dict(cfg.get("rope_scaling") or cfg.get("rope_parameters") or {})  # rope_scaling wins when both
    params.setdefault("rope_theta", cfg.get("rope_theta", 10000.0))
    if "partial_rotary_factor" in cfg:
        params.setdefault("partial_rotary_factor", cfg["partial_rotary_factor"])
    kind = params.get("rope_type", params.get("type", "default"))
    if kind == "mrope":  # Qwen2VLTextConfig.convert_rope_params_to_dict
        kind = "default"
    params["rope_type"] = kind
    if kind in ("llama3", "yarn"):
        # standardize_rope_params runs again inside each init function, when config attributes are set: a
        # top-level original_max_position_embeddings then replaces the one in the rope dict.
        if "original_max_position_embeddings" in cfg:
            params["original_max_position_embeddings"] = cfg["original_max_position_embeddings"]
        params.setdefault("original_max_position_embeddings", cfg.get("max_position_embeddings", MAX_POS_DEFAULT))
    if kind not in REQUIRED:
        raise Refused("rope type", f"rope type {kind!r} has no init function mitten implements")
    for key in REQUIRED[kind]:
        if key not in params:
            raise Refused(key, f"transformers raises KeyError: {key} is required for {kind}")
        if params[key] is None:  # yarn would derive factor = max_position_embeddings / original; mitten asks
            raise Refused(key, f"{key} is null")
    if not params["rope_theta"] > 0:
        raise Refused("rope_theta", "inverse frequencies need a positive base")
    # mitten's refusals of configs transformers warns about or would run wrongly
    if params.get("partial_rotary_factor", 1.0) != 1.0:
        raise Refused("partial_rotary_factor", "mitten rotates whole heads")
    if kind != "default" and params["factor"] < 1:
        raise Refused("factor", "transformers warns: factor must be >= 1")
    if kind == "llama3" and params["high_freq_factor"] <= params["low_freq_factor"]:
        raise Refused("high_freq_factor", "transformers warns: high_freq_factor must exceed low_freq_factor")
    if kind == "yarn" and (params.get("beta_fast") or 32) < (params.get("beta_slow") or 1):
        raise Refused("beta_fast", "transformers warns: beta_fast must not be below beta_slow")
    if kind == "yarn" and params.get("attention_factor") is not None and not params["attention_factor"] > 0:
        raise Refused("attention_factor", "transformers warns: attention_factor must be positive")
    sec = params.get("mrope_section")
    if sec is not None and (len(sec) != 3 or sum(sec) != head_dim(cfg) // 2):
        raise Refused("mrope_section", "torch.split fails (contiguous) / frequencies left unassigned")
    return params


def head_dim(cfg):
    return cfg["head_dim"]


def max_pos(cfg):
    return cfg.get("max_position_embeddings", MAX_POS_DEFAULT)


# ---- inverse frequencies and attention factor per type ----

def exponents(dim):
    return torch.arange(0, dim, 2, dtype=torch.int64).to(dtype=F32) / dim


def inv_default(p, cfg, seq_len):
    return 1.0 / (p["rope_theta"] ** exponents(head_dim(cfg))), 1.0


def inv_linear(p, cfg, seq_len):
    inv, _ = inv_default(p, cfg, seq_len)
    inv /= p["factor"]
    return inv, 1.0


def inv_dynamic(p, cfg, seq_len):
    dim, mpe, factor = head_dim(cfg), max_pos(cfg), p["factor"]
    if seq_len is None:  # init: Python floats
        n = mpe
    else:  # forward: an int64 tensor, so the new base is a float32 tensor
        n = torch.maximum(seq_len, torch.tensor(mpe, dtype=seq_len.dtype))
    base = p["rope_theta"] * ((factor * n / mpe) - (factor - 1)) ** (dim / (dim - 2))
    return 1.0 / (base ** exponents(dim)), 1.0


def mscale_of(scale, m=1):
    return 1.0 if scale <= 1 else 0.1 * m * math.log(scale) + 1.0


def inv_yarn(p, cfg, seq_len):
    dim, base, factor = head_dim(cfg), p["rope_theta"], p["factor"]
    orig = p["original_max_position_embeddings"]
    attn = p.get("attention_factor")
    if attn is None:
        ms, ms_all = p.get("mscale"), p.get("mscale_all_dim")
        attn = float(mscale_of(factor, ms) / mscale_of(factor, ms_all)) if ms and ms_all else mscale_of(factor)
    fast, slow = p.get("beta_fast") or 32, p.get("beta_slow") or 1

    def dim_of(rotations):  # the dimension that turns `rotations` times over the original context
        return dim * math.log(orig / (rotations * 2 * math.pi)) / (2 * math.log(base))

    lo, hi = dim_of(fast), dim_of(slow)
    if p.get("truncate", True):
        lo, hi = math.floor(lo), math.ceil(hi)
    lo, hi = max(lo, 0), min(hi, dim - 1)
    if lo == hi:
        hi += 0.001
    ramp = torch.clamp((torch.arange(dim // 2, dtype=F32) - lo) / (hi - lo), 0, 1)
    extra = 1 - ramp  # weight of the unscaled frequency
    pf = base ** exponents(dim)
    inv = (1.0 / (factor * pf)) * (1 - extra) + (1.0 / pf) * extra
    return inv, attn


def inv_llama3(p, cfg, seq_len):
    inv, _ = inv_default(p, cfg, seq_len)
    factor, low, high = p["factor"], p["low_freq_factor"], p["high_freq_factor"]
    old = p["original_max_position_embeddings"]
    wl = 2 * math.pi / inv
    out = torch.where(wl > old / low, inv / factor, inv)
    smooth = (old / wl - low) / (high - low)
    blended = (1 - smooth) * out / factor + smooth * out
    mid = ~(wl < old / high) * ~(wl > old / low)
    return torch.where(mid, blended, out), 1.0


INIT = {"default": inv_default, "linear": inv_linear, "dynamic": inv_dynamic, "yarn": inv_yarn,
        "llama3": inv_llama3}


def inv_freq_at(p, cfg, pos):
    """inv_freq and attention factor for a forward over positions pos (the dynamic update of dynamic_rope_update)."""
    seq_len = torch.max(pos) + 1
    if p["rope_type"] == "dynamic" and seq_len > max_pos(cfg):
        return INIT["dynamic"](p, cfg, seq_len)
    return INIT[p["rope_type"]](p, cfg, None)


# ---- tables ----

def tables(p, cfg, pos):
    """cos, sin [T, D] as the rotary embedding returns them (after the M-RoPE selection), inv_freq, factor."""
    inv, attn = inv_freq_at(p, cfg, pos)
    axes, T = pos.shape
    inv_e = inv[None, :, None].float().expand(axes, -1, 1)
    freqs = (inv_e @ pos[:, None, :].float()).transpose(1, 2)  # [axes, T, D/2]
    sec = p.get("mrope_section")
    if sec is not None and p.get("mrope_interleaved", False):  # Qwen3-VL: h, w every third frequency
        f = freqs[0].clone()
        for axis, offset in ((1, 1), (2, 2)):
            idx = slice(offset, sec[axis] * 3, 3)
            f[..., idx] = freqs[axis, ..., idx]
        emb = torch.cat((f, f), dim=-1)
        cos, sin = emb.cos() * attn, emb.sin() * attn
    else:
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos() * attn, emb.sin() * attn
        if sec is not None:  # Qwen2-VL: chunk i of sections * 2 from axis i % 3
            cos = torch.cat([m[i % 3] for i, m in enumerate(cos.split(sec * 2, dim=-1))], dim=-1)
            sin = torch.cat([m[i % 3] for i, m in enumerate(sin.split(sec * 2, dim=-1))], dim=-1)
        else:
            cos, sin = cos[0], sin[0]
    return cos, sin, inv, attn


def vision_tables(hd, theta, rows, cols):
    """cos, sin [N, head_dim] of the vision tower: freq_table[pos_ids].flatten(1), doubled"""
    dim = hd // 2
    inv = 1.0 / (theta ** (torch.arange(0, dim, 2, dtype=F32) / dim))
    table = torch.outer(torch.arange(int(max(rows.max(), cols.max())) + 1, dtype=inv.dtype), inv)
    emb = table[torch.stack((rows, cols), dim=-1)].flatten(1)
    emb = torch.cat((emb, emb), dim=-1)
    return emb.cos(), emb.sin()


def self_check():
    """The float32 arrays against the formulas in float64, loosely: catches a slip in the transcription."""
    def close(a, b, what, rtol=2e-6):
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        if not np.allclose(a, b, rtol=rtol, atol=0):
            raise SystemExit(f"self-check {what}: max rel {np.max(np.abs(a - b) / np.abs(b))}")

    d, th = 64, 10000.0
    base = th ** (-np.arange(0, d, 2) / d)
    cfg = {"head_dim": d, "max_position_embeddings": 4096, "rope_theta": th}
    one = torch.tensor([[0]])
    close(inv_freq_at(rope_params(cfg), cfg, one)[0], base, "default")
    close(inv_freq_at(rope_params(dict(cfg, rope_scaling={"type": "linear", "factor": 4})), cfg, one)[0], base / 4,
          "linear")
    dyn = dict(cfg, rope_scaling={"type": "dynamic", "factor": 2.0})
    close(inv_freq_at(rope_params(dyn), dyn, torch.tensor([[4095]]))[0], base, "dynamic at max")
    th2 = th * (2.0 * 10000 / 4096 - 1) ** (d / (d - 2))
    close(inv_freq_at(rope_params(dyn), dyn, torch.tensor([[9999]]))[0], th2 ** (-np.arange(0, d, 2) / d),
          "dynamic grown")
    # llama3: wavelengths under 8192/4 unchanged, over 8192 divided by 8, between a blend
    l3 = dict(cfg, head_dim=128, rope_theta=500000.0, rope_scaling=dict(LLAMA31))
    b3 = 500000.0 ** (-np.arange(0, 128, 2) / 128)
    wl = 2 * np.pi / b3
    sm = np.clip((8192 / wl - 1) / 3, 0, 1)
    close(inv_freq_at(rope_params(l3), l3, one)[0], np.where(wl > 8192, b3 / 8, (1 - sm) * b3 / 8 + sm * b3),
          "llama3")
    # yarn: the fast end keeps the base, the slow end takes base / factor
    y = dict(cfg, rope_scaling={"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 1024})
    inv, attn = inv_freq_at(rope_params(y), y, one)
    close(inv[:2], base[:2], "yarn fast end")
    close(inv[-2:], base[-2:] / 4, "yarn slow end")
    close(attn, 0.1 * math.log(4) + 1, "yarn attention factor")
    # M-RoPE: each frequency's angle comes from the axis its layout gives it
    for inter, sec in ((False, [2, 3, 3]), (True, [2, 3, 3])):
        m = {"head_dim": 16, "rope_scaling": {"type": "default", "mrope_section": sec, "mrope_interleaved": inter}}
        pos = torch.tensor([[5], [70], [900]])
        cos = tables(rope_params(m), m, pos)[0][0, :8].numpy()
        b16 = 10000.0 ** (-np.arange(0, 16, 2) / 16)
        ax = [(1 if i % 3 == 1 and i < 9 else 2 if i % 3 == 2 and i < 9 else 0) if inter else
              (0 if i < 2 else 1 if i < 5 else 2) for i in range(8)]
        close(cos, np.cos(np.array([5, 70, 900])[ax] * b16), f"mrope interleaved={inter}", rtol=1e-4)


# ---- cases ----

def text_pos(*values):
    return np.array([values], dtype=np.int64)


def spread(n, top):
    """0..n-1 then a few positions up to top"""
    extra = [top // 7, top // 3, top // 2, top - 1, top]
    return text_pos(*range(n), *extra)


def mrope_pos():
    """text, a 2 x 3 x 4 video grid (t, h, w differ), text; then a long way on"""
    t, h, w = [], [], []
    for i in range(5):
        t.append(i), h.append(i), w.append(i)
    for ti in range(2):
        for hi in range(3):
            for wi in range(4):
                t.append(5 + ti), h.append(5 + hi), w.append(5 + wi)
    nxt = max(t + h + w) + 1
    for i in range(4):
        t.append(nxt + i), h.append(nxt + i), w.append(nxt + i)
    for v in (3000, 20000):
        t.append(v), h.append(v + 7), w.append(v + 13)
    return np.array([t, h, w], dtype=np.int64)


QWEN25_TEXT = {"hidden_size": 2048, "num_attention_heads": 16, "head_dim": 128, "max_position_embeddings": 128000}
LLAMA31 = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
           "original_max_position_embeddings": 8192}


def cases():
    """(name, config fragment, positions) or (name, config fragment, expected error text)"""
    out = []

    def ok(name, cfg, pos):
        out.append((name, cfg, pos))

    def bad(name, cfg, text):
        out.append((name, cfg, text))

    # default: 4.x (top-level rope_theta) and 5.x (rope_parameters), several theta and head dims
    ok("default_10k_d64", {"rope_theta": 10000.0, "head_dim": 64, "max_position_embeddings": 4096}, spread(16, 4096))
    ok("default_1m_d128_v5", {"head_dim": 128, "max_position_embeddings": 32768,
                              "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0}}, spread(8, 30000))
    ok("default_500k_d80", {"rope_theta": 500000, "head_dim": 80, "rope_scaling": None}, spread(8, 9000))
    ok("default_theta_absent_d16", {"head_dim": 16, "max_position_embeddings": 2048}, spread(4, 2048))
    ok("default_odd_theta_d96", {"rope_theta": 123456.789, "head_dim": 96}, spread(4, 5000))
    ok("default_theta_in_rope_wins", {"rope_theta": 10000.0, "head_dim": 32,
                                      "rope_parameters": {"rope_type": "default", "rope_theta": 75000.0}}, spread(4, 500))
    ok("default_factor_ignored", {"rope_theta": 10000.0, "head_dim": 32,
                                  "rope_parameters": {"rope_type": "default", "factor": 0.5}}, spread(4, 500))
    # linear
    ok("linear_v4", {"rope_theta": 10000.0, "head_dim": 64, "max_position_embeddings": 8192,
                     "rope_scaling": {"type": "linear", "factor": 4.0}}, spread(8, 8192))
    ok("linear_v5", {"head_dim": 128, "max_position_embeddings": 8192,
                     "rope_parameters": {"rope_type": "linear", "factor": 2.5, "rope_theta": 1000000.0}},
       spread(8, 8192))
    # dynamic: below max_position_embeddings (the init table), then above (the grown base)
    dyn4 = {"rope_theta": 10000.0, "head_dim": 64, "max_position_embeddings": 512,
            "rope_scaling": {"type": "dynamic", "factor": 2.0}}
    ok("dynamic_below", dyn4, spread(8, 511))
    ok("dynamic_just_above", dyn4, spread(8, 512))
    ok("dynamic_above", dyn4, spread(8, 1500))
    ok("dynamic_v5_above", {"head_dim": 128, "max_position_embeddings": 256,
                            "rope_parameters": {"rope_type": "dynamic", "factor": 3.0, "rope_theta": 500000.0}},
       spread(4, 1000))
    ok("dynamic_odd_factor_above", {"rope_theta": 10000.0, "head_dim": 32, "max_position_embeddings": 300,
                                    "rope_scaling": {"type": "dynamic", "factor": 1.3}}, spread(4, 777))
    # transformers' dynamic reads max_position_embeddings, never an original_max_position_embeddings
    ok("dynamic_original_ignored", {"rope_theta": 10000.0, "head_dim": 64, "max_position_embeddings": 512,
                                    "rope_scaling": {"type": "dynamic", "factor": 2.0,
                                                     "original_max_position_embeddings": 128}}, spread(8, 400))
    ok("dynamic_original_ignored_above", {"rope_theta": 10000.0, "head_dim": 64, "max_position_embeddings": 512,
                                          "rope_scaling": {"type": "dynamic", "factor": 2.0,
                                                           "original_max_position_embeddings": 128}},
       spread(8, 900))
    # yarn
    ok("yarn_qwen3", {"head_dim": 128, "max_position_embeddings": 131072,
                      "rope_parameters": {"rope_type": "yarn", "factor": 4.0, "rope_theta": 1000000.0,
                                          "original_max_position_embeddings": 32768}}, spread(8, 131072))
    ok("yarn_v4_attention_factor", {"rope_theta": 10000.0, "head_dim": 64, "max_position_embeddings": 16384,
                                    "rope_scaling": {"type": "yarn", "factor": 4, "attention_factor": 1.25,
                                                     "original_max_position_embeddings": 4096}}, spread(8, 16384))
    ok("yarn_gptoss_no_truncate", {"head_dim": 64, "max_position_embeddings": 131072,
                                   "rope_parameters": {"rope_type": "yarn", "factor": 32.0, "beta_fast": 32.0,
                                                       "beta_slow": 1.0, "truncate": False, "rope_theta": 150000.0,
                                                       "original_max_position_embeddings": 4096}}, spread(8, 131072))
    ok("yarn_deepseek_mscale", {"rope_theta": 10000.0, "head_dim": 64, "max_position_embeddings": 163840,
                                "rope_scaling": {"type": "yarn", "factor": 40, "mscale": 1.0, "mscale_all_dim": 1.0,
                                                 "beta_fast": 32, "beta_slow": 1,
                                                 "original_max_position_embeddings": 4096}}, spread(8, 163840))
    ok("yarn_mscale_ratio", {"rope_theta": 10000.0, "head_dim": 64, "max_position_embeddings": 65536,
                             "rope_scaling": {"type": "yarn", "factor": 16.0, "mscale": 1.0, "mscale_all_dim": 0.707,
                                              "original_max_position_embeddings": 4096}}, spread(8, 65536))
    ok("yarn_mscale_alone_ignored", {"rope_theta": 10000.0, "head_dim": 64, "max_position_embeddings": 65536,
                                     "rope_scaling": {"type": "yarn", "factor": 16.0, "mscale": 0.5,
                                                      "original_max_position_embeddings": 4096}}, spread(8, 65536))
    ok("yarn_betas", {"rope_theta": 500000.0, "head_dim": 128, "max_position_embeddings": 32768,
                      "rope_parameters": {"rope_type": "yarn", "factor": 2.0, "beta_fast": 16.0, "beta_slow": 2.0,
                                          "original_max_position_embeddings": 8192}}, spread(8, 32768))
    ok("yarn_original_from_max", {"rope_theta": 10000.0, "head_dim": 64, "max_position_embeddings": 4096,
                                  "rope_scaling": {"type": "yarn", "factor": 4.0}}, spread(8, 16384))
    ok("yarn_original_top_level_wins", {"rope_theta": 10000.0, "head_dim": 64, "max_position_embeddings": 16384,
                                        "original_max_position_embeddings": 2048,
                                        "rope_scaling": {"type": "yarn", "factor": 8.0,
                                                         "original_max_position_embeddings": 4096}},
       spread(8, 16384))
    ok("yarn_factor_1", {"rope_theta": 10000.0, "head_dim": 64, "max_position_embeddings": 4096,
                         "rope_scaling": {"type": "yarn", "factor": 1.0,
                                          "original_max_position_embeddings": 4096}}, spread(8, 4096))
    # llama3: Llama 3.1 (factor 8, low 1, high 4, original 8192) in both forms, Llama 3.2 (factor 32)
    ok("llama3_1_v4", {"rope_theta": 500000.0, "head_dim": 128, "max_position_embeddings": 131072,
                       "rope_scaling": dict(LLAMA31)}, spread(8, 131072))
    ok("llama3_1_v5", {"head_dim": 128, "max_position_embeddings": 131072,
                       "rope_parameters": dict(LLAMA31, rope_theta=500000.0)}, spread(8, 20000))
    ok("llama3_2", {"rope_theta": 500000.0, "head_dim": 64, "max_position_embeddings": 131072,
                    "rope_scaling": dict(LLAMA31, factor=32.0)}, spread(8, 131072))
    # M-RoPE: Qwen2.5-VL contiguous [16, 24, 24] (4.x "mrope" and 5.x "default"), Qwen3-VL interleaved [24, 20, 20]
    ok("mrope_qwen25vl_v4", dict(QWEN25_TEXT, rope_theta=1000000.0,
                                 rope_scaling={"type": "mrope", "mrope_section": [16, 24, 24]}), mrope_pos())
    ok("mrope_qwen25vl_v5", dict(QWEN25_TEXT, rope_parameters={"rope_type": "default", "rope_theta": 1000000.0,
                                                               "mrope_section": [16, 24, 24]}), mrope_pos())
    ok("mrope_rope_type_mrope", dict(QWEN25_TEXT, rope_theta=1000000.0,
                                     rope_scaling={"rope_type": "mrope", "type": "mrope",
                                                   "mrope_section": [16, 24, 24]}), mrope_pos())
    ok("mrope_qwen3vl_interleaved", {"head_dim": 128, "max_position_embeddings": 262144,
                                     "rope_parameters": {"rope_type": "default", "rope_theta": 5000000,
                                                         "mrope_section": [24, 20, 20], "mrope_interleaved": True}},
       mrope_pos())
    ok("mrope_qwen3vl_interleaved_v4", {"head_dim": 128, "rope_theta": 5000000,
                                        "rope_scaling": {"rope_type": "default", "mrope_section": [24, 20, 20],
                                                         "mrope_interleaved": True}}, mrope_pos())
    ok("mrope_small_interleaved", {"head_dim": 16, "rope_theta": 10000.0,
                                   "rope_scaling": {"type": "default", "mrope_section": [2, 3, 3],
                                                    "mrope_interleaved": True}}, mrope_pos())
    ok("mrope_yarn_contiguous", dict(QWEN25_TEXT, rope_theta=1000000.0,
                                     rope_scaling={"type": "yarn", "factor": 4.0, "mrope_section": [16, 24, 24],
                                                   "original_max_position_embeddings": 32768}), mrope_pos())
    ok("rope_scaling_wins_over_parameters", {"rope_theta": 10000.0, "head_dim": 64, "max_position_embeddings": 8192,
                                             "rope_scaling": {"type": "linear", "factor": 2.0},
                                             "rope_parameters": {"rope_type": "linear", "factor": 8.0}},
       spread(4, 8192))

    # refused, each naming the field
    base = {"rope_theta": 10000.0, "head_dim": 64, "max_position_embeddings": 4096}
    bad("bad_unknown_type", dict(base, rope_scaling={"type": "su", "factor": 2.0}), "\"su\"")
    bad("bad_longrope", dict(base, rope_scaling={"type": "longrope", "short_factor": [1.0] * 32,
                                                 "long_factor": [2.0] * 32}), "longrope")
    bad("bad_sections_sum", dict(QWEN25_TEXT, rope_scaling={"type": "mrope", "mrope_section": [16, 24, 20]}),
        "mrope_section")
    bad("bad_sections_count", dict(QWEN25_TEXT, rope_scaling={"type": "mrope", "mrope_section": [32, 32]}),
        "mrope_section")
    bad("bad_sections_interleaved_sum", {"head_dim": 128, "rope_parameters": {
        "rope_type": "default", "rope_theta": 5e6, "mrope_section": [24, 20, 16], "mrope_interleaved": True}},
        "mrope_section")
    bad("bad_linear_factor_below_1", dict(base, rope_scaling={"type": "linear", "factor": 0.5}), "factor")
    bad("bad_linear_no_factor", dict(base, rope_scaling={"type": "linear"}), "factor")
    bad("bad_dynamic_no_factor", dict(base, rope_parameters={"rope_type": "dynamic", "rope_theta": 1e4}), "factor")
    bad("bad_yarn_no_factor", dict(base, rope_scaling={"type": "yarn", "original_max_position_embeddings": 2048}),
        "factor")
    bad("bad_yarn_factor_below_1", dict(base, rope_scaling={"type": "yarn", "factor": 0.25}), "factor")
    bad("bad_yarn_factor_null", dict(base, rope_scaling={"type": "yarn", "factor": None}), "factor")
    bad("bad_yarn_betas_reversed", dict(base, rope_scaling={"type": "yarn", "factor": 4.0, "beta_fast": 1.0,
                                                            "beta_slow": 32.0}), "beta_fast")
    bad("bad_yarn_attention_factor_negative", dict(base, rope_scaling={"type": "yarn", "factor": 4.0,
                                                                       "attention_factor": -1.0}),
        "attention_factor")
    bad("bad_llama3_no_low", dict(base, rope_scaling={"type": "llama3", "factor": 8.0, "high_freq_factor": 4.0,
                                                      "original_max_position_embeddings": 1024}), "low_freq_factor")
    bad("bad_llama3_no_high", dict(base, rope_scaling={"type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                                       "original_max_position_embeddings": 1024}),
        "high_freq_factor")
    bad("bad_llama3_high_not_above_low", dict(base, rope_scaling=dict(LLAMA31, high_freq_factor=1.0)),
        "high_freq_factor")
    bad("bad_llama3_factor_below_1", dict(base, rope_scaling=dict(LLAMA31, factor=0.5)), "factor")
    bad("bad_partial_rotary_top_level", dict(base, partial_rotary_factor=0.5), "partial_rotary_factor")
    bad("bad_partial_rotary_in_rope", dict(base, rope_parameters={"rope_type": "default", "rope_theta": 1e4,
                                                                  "partial_rotary_factor": 0.25}),
        "partial_rotary_factor")
    bad("bad_theta_zero", dict(base, rope_theta=0), "rope_theta")
    bad("bad_theta_negative_in_rope", dict(base, rope_parameters={"rope_type": "default", "rope_theta": -5.0}),
        "rope_theta")
    bad("bad_type_not_string", dict(base, rope_scaling={"type": 3, "factor": 2.0}), "type")
    bad("bad_factor_not_number", dict(base, rope_scaling={"type": "linear", "factor": "2"}), "factor")
    return out


def vision_cases():
    """(name, head_dim, theta, rows, cols): Qwen2-VL / Qwen2.5-VL (head_dim 80) and Qwen3-VL (72) vision towers over
    a 2 x 2 merged 6 x 8 grid, plus a far patch"""
    rows, cols = [], []
    for br in range(3):
        for bc in range(4):
            for r in range(2):
                for c in range(2):
                    rows.append(br * 2 + r), cols.append(bc * 2 + c)
    rows.append(250), cols.append(3)
    r, c = np.array(rows, dtype=np.int64), np.array(cols, dtype=np.int64)
    return [("vision_qwen2vl_d80", 80, 10000.0, r, c), ("vision_qwen3vl_d72", 72, 10000.0, r, c)]


def main():
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    out_dir = sys.argv[1]
    self_check()
    os.makedirs(out_dir, exist_ok=True)
    listing, n_ok, n_bad = [], 0, 0
    for name, cfg, what in cases():
        entry = {"name": name, "config": cfg}
        if isinstance(what, str):  # must be refused
            try:
                rope_params(cfg)
            except (Refused, TypeError) as e:
                entry.update(refuse=what, why=str(e))
            else:
                raise SystemExit(f"{name}: the reference accepts this config")
            listing.append(entry)
            n_bad += 1
            continue
        p = rope_params(cfg)
        pos = torch.from_numpy(what)
        cos, sin, inv, attn = tables(p, cfg, pos)
        half = head_dim(cfg) // 2
        assert torch.equal(cos[:, :half], cos[:, half:]) and torch.equal(sin[:, :half], sin[:, half:]), name
        for key, arr in (("pos", what), ("inv", inv.numpy()), ("cos", cos[:, :half].contiguous().numpy()),
                         ("sin", sin[:, :half].contiguous().numpy())):
            np.save(os.path.join(out_dir, f"{name}.{key}.npy"), arr)
            entry[key] = f"{name}.{key}.npy"
        entry["scale"] = float(attn)
        listing.append(entry)
        n_ok += 1
    for name, hd, theta, rows, cols in vision_cases():
        cos, sin = vision_tables(hd, theta, torch.from_numpy(rows), torch.from_numpy(cols))
        entry = {"name": name, "vision": {"head_dim": hd, "theta": theta}}
        for key, arr in (("rows", rows), ("cols", cols), ("cos", cos[:, :hd // 2].contiguous().numpy()),
                         ("sin", sin[:, :hd // 2].contiguous().numpy())):
            np.save(os.path.join(out_dir, f"{name}.{key}.npy"), arr)
            entry[key] = f"{name}.{key}.npy"
        listing.append(entry)
        n_ok += 1
    with open(os.path.join(out_dir, "cases.json"), "w") as f:
        json.dump(listing, f, indent=1)
    print(f"rope_ref: {n_ok} tables, {n_bad} refusals -> {out_dir}/cases.json")


if __name__ == "__main__":
    main()
