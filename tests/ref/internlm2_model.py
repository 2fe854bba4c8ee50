"""Plain-torch reference of InternLM2ForCausalLM, the language model of InternVL 2.5, with a KV cache.

Written from (read for facts, nothing copied) OpenGVLab/InternVL
internvl_chat/internvl/model/internlm2/modeling_internlm2.py and configuration_internlm2.py ("lm2:"), the remote code
InternVL 2.5 checkpoints ship. Attention follows the eager path (softmax in float32).

Names: model.tok_embeddings, model.layers.N.{attention_norm, attention.wqkv, attention.wo, ffn_norm,
feed_forward.w1, feed_forward.w3, feed_forward.w2}, model.norm, output. Shapes: L positions, H hidden, Hd head dim
(always H / heads), KV kv heads, g = heads / KV, V vocab.
"""

import torch
import torch.nn.functional as F

import qwen2_vl_model as qm

PREFIX = "model."
EMBED = "model.tok_embeddings.weight"
HEAD = "output.weight"


class Config:
    """lm2: InternLM2Config's fields and defaults (bias True, rms_norm_eps 1e-6, rope_theta 10000, rope_scaling None
    or {type: linear | dynamic, factor}, num_key_value_heads = heads when absent, untied)."""

    def __init__(self, raw):
        self.raw = raw
        self.model_type = raw.get("model_type", "internlm2")
        self.hidden = raw["hidden_size"]
        self.heads = raw["num_attention_heads"]
        self.kv_heads = raw.get("num_key_value_heads") or self.heads
        self.layers = raw["num_hidden_layers"]
        self.intermediate = raw["intermediate_size"]
        self.vocab = raw["vocab_size"]
        self.eps = raw.get("rms_norm_eps", 1e-6)
        self.act = raw.get("hidden_act", "silu")
        self.bias = bool(raw.get("bias", True))
        self.max_positions = raw.get("max_position_embeddings", 2048)
        self.rope_theta = float(raw.get("rope_theta", 10000))
        scaling = raw.get("rope_scaling")
        self.rope_type = scaling["type"] if scaling else "default"
        self.rope_factor = float(scaling["factor"]) if scaling else 1.0
        if self.rope_type not in ("default", "linear", "dynamic"):
            raise ValueError(f"rope_scaling type {self.rope_type!r}: lm2 knows linear and dynamic")
        if raw.get("rope_pos_id_version", "default") != "default":
            raise ValueError("rope_pos_id_version other than default (V2PE) is not implemented")
        if self.hidden % self.heads:
            raise ValueError(f"hidden_size {self.hidden} is not a multiple of {self.heads} heads")
        self.head_dim = self.hidden // self.heads  # lm2: InternLM2Attention never reads a head_dim field
        self.groups = self.heads // self.kv_heads
        self.tie = bool(raw.get("tie_word_embeddings", False))


def tiny_fields(dtype="float32"):
    """A tiny llm_config as InternVL 2.5 ships it (InternVL2_5-8B's keys and rope_scaling), 8 query heads over 2 KV
    heads (4 per group: the grouped wqkv order differs from a [q | k | v] split) and biases on (the remote code's
    default; the published configs turn them off) so the bias rows are regrouped too."""
    c = {"architectures": ["InternLM2ForCausalLM"], "attn_implementation": "eager", "bias": True,
         "bos_token_id": 300, "eos_token_id": 301, "hidden_act": "silu", "hidden_size": 64,
         "initializer_range": 0.02, "intermediate_size": 96, "max_position_embeddings": 32768,
         "model_type": "internlm2", "num_attention_heads": 8, "num_hidden_layers": 3, "num_key_value_heads": 2,
         "pad_token_id": 2, "rms_norm_eps": 1e-05, "rope_scaling": {"factor": 2.0, "type": "dynamic"},
         "rope_theta": 1000000, "tie_word_embeddings": False, "torch_dtype": dtype, "use_cache": True,
         "vocab_size": 320}
    return dict(sorted(c.items()))


def weight_specs(cfg):
    """(name, shape, kind, fan_in) as qwen3_ckpt.weight_specs, InternLM2's names; wqkv rows in the grouped order."""
    specs, H, D = [], cfg.hidden, cfg.head_dim

    def linear(name, o, i, bias):
        specs.append((name + ".weight", [o, i], "linear", i))
        if bias:
            specs.append((name + ".bias", [o], "bias", i))

    specs.append((EMBED, [cfg.vocab, H], "embed", H))
    for i in range(cfg.layers):
        p = f"{PREFIX}layers.{i}."
        specs.append((p + "attention_norm.weight", [H], "norm", H))
        linear(p + "attention.wqkv", (cfg.heads + 2 * cfg.kv_heads) * D, H, cfg.bias)
        linear(p + "attention.wo", H, cfg.heads * D, cfg.bias)
        specs.append((p + "ffn_norm.weight", [H], "norm", H))
        linear(p + "feed_forward.w1", cfg.intermediate, H, False)
        linear(p + "feed_forward.w3", cfg.intermediate, H, False)
        linear(p + "feed_forward.w2", H, cfg.intermediate, False)
    specs.append((PREFIX + "norm.weight", [H], "norm", H))
    if not cfg.tie:
        specs.append((HEAD, [cfg.vocab, H], "linear", H))
    return specs


def inv_freq(cfg, seq_len):
    """lm2: InternLM2RotaryEmbedding (1 / theta^(arange(0, Hd, 2) / Hd)); the dynamic NTK variant raises theta to
    theta (factor seq_len / M - (factor - 1))^(Hd / (Hd - 2)) once the cached length seq_len passes M =
    max_position_embeddings. The remote code keeps the grown table for later, shorter calls; this reference (and
    mitten) recompute it per call, which differs only after a call past M."""
    hd, base = cfg.head_dim, cfg.rope_theta
    if cfg.rope_type == "dynamic" and seq_len > cfg.max_positions:
        base = base * (cfg.rope_factor * seq_len / cfg.max_positions - (cfg.rope_factor - 1)) ** (hd / (hd - 2))
    return 1.0 / (base ** (torch.arange(0, hd, 2).float() / hd))


def rope_cos_sin(cfg, positions, seq_len):
    """lm2: _set_cos_sin_cache then apply_rotary_pos_emb's cos[position_ids]: angles t * inv_freq in float32 (linear
    divides t by factor first), duplicated to Hd."""
    t = positions.float()
    if cfg.rope_type == "linear":
        t = t / cfg.rope_factor
    freqs = t.unsqueeze(-1) * inv_freq(cfg, seq_len)
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos(), emb.sin()


def split_wqkv(cfg, qkv):
    """lm2: InternLM2Attention.forward's rearrange 'b q (h gs d) -> b q h gs d' with gs = g + 2: per KV head, g
    query heads, then its key, then its value. qkv [L, (heads + 2 KV) Hd] -> q [L, heads, Hd], k / v [L, KV, Hd]."""
    n = qkv.shape[0]
    x = qkv.view(n, cfg.kv_heads, cfg.groups + 2, cfg.head_dim)
    q = x[:, :, :cfg.groups, :].reshape(n, cfg.heads, cfg.head_dim)
    return q, x[:, :, -2, :], x[:, :, -1, :]


def attention(cfg, W, p, h, cos, sin, cache, i, past):
    """lm2: InternLM2Attention.forward (eager). h [L, H] already normed; wqkv, grouped split, rotate_half RoPE,
    cache append, repeat_kv, causal softmax(q k^T / sqrt(Hd)) v, wo."""
    n = h.shape[0]
    q, k, v = split_wqkv(cfg, F.linear(h, W[p + "wqkv.weight"], W.get(p + "wqkv.bias")))
    q, k, v = (a.transpose(0, 1) for a in (q, k, v))  # [heads, L, Hd]
    q = q * cos + qm.rotate_half(q) * sin
    k = k * cos + qm.rotate_half(k) * sin
    if cache[i] is not None:
        k = torch.cat([cache[i][0], k], dim=1)
        v = torch.cat([cache[i][1], v], dim=1)
    cache[i] = [k, v]
    k, v = k.repeat_interleave(cfg.groups, dim=0), v.repeat_interleave(cfg.groups, dim=0)
    mask = torch.arange(past + n).view(1, -1) <= (past + torch.arange(n)).view(-1, 1)
    o = qm.eager_attention(q, k, v, cfg.head_dim ** -0.5, mask).transpose(0, 1).reshape(n, -1)
    return F.linear(o, W[p + "wo.weight"], W.get(p + "wo.bias"))


def text_forward(cfg, W, embeds, positions, cache, past, dumps=None):
    """lm2: InternLM2Model.forward + output. embeds [L, H], positions int64 [L]. Each InternLM2DecoderLayer:
    x + attention(attention_norm x), then x + w2(silu(w1 h) * w3 h) with h = ffn_norm x. dumps receives
    decoder_layer_{i} and final_norm [L, H]. Returns logits [L, V]."""
    cos, sin = rope_cos_sin(cfg, positions, past + embeds.shape[0])
    x = embeds
    for i in range(cfg.layers):
        p = f"{PREFIX}layers.{i}."
        x = x + attention(cfg, W, p + "attention.", qm.rms_norm(x, W[p + "attention_norm.weight"], cfg.eps), cos,
                          sin, cache, i, past)
        h = qm.rms_norm(x, W[p + "ffn_norm.weight"], cfg.eps)
        f = p + "feed_forward."
        h = F.linear(qm.act(cfg.act, F.linear(h, W[f + "w1.weight"])) * F.linear(h, W[f + "w3.weight"]),
                     W[f + "w2.weight"])
        x = x + h
        if dumps is not None:
            dumps[f"decoder_layer_{i}"] = x
    x = qm.rms_norm(x, W[PREFIX + "norm.weight"], cfg.eps)
    if dumps is not None:
        dumps["final_norm"] = x
    return F.linear(x, W[EMBED] if cfg.tie else W[HEAD])


def decode_step(cfg, W, token, cache, past, _delta):
    """One cached step: the token at position `past`. Returns logits [V]."""
    embeds = W[EMBED][torch.tensor([token])]
    return text_forward(cfg, W, embeds, torch.tensor([past]), cache, past)[0]
