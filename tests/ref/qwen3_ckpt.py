"""Configs, checkpoint tensor lists, random weights and sparse real-shape checkpoints for the Qwen3 family reference.

Tensor names are those of the published checkpoints (transformers 5.0.0.dev0 git ccc7d90bcb module trees;
Qwen3-VL's _checkpoint_conversion_mapping is empty, so the module names are the file names):
    qwen2 / qwen3 / qwen3_moe / qwen2_moe   model.embed_tokens, model.layers.N.*, model.norm, lm_head (unless tied)
    qwen3_vl / qwen3_vl_moe     model.visual.*, model.language_model.{embed_tokens,layers.N.*,norm}, lm_head
"""

import copy
import json
import math
import os

import torch

import qwen3_model as q3
import safetensors_io as st

TINY_IDS = {"bos_token_id": 300, "eos_token_id": 301, "vision_start_token_id": 302, "vision_end_token_id": 303,
            "vision_token_id": 304, "image_token_id": 305, "video_token_id": 306}
VARIANTS = ("qwen2", "qwen3", "qwen3_moe", "qwen3_vl", "qwen3_vl_moe", "qwen2_moe", "llama")
ARCH = {"qwen2": "Qwen2ForCausalLM", "qwen3": "Qwen3ForCausalLM", "qwen3_moe": "Qwen3MoeForCausalLM",
        "qwen2_moe": "Qwen2MoeForCausalLM", "llama": "LlamaForCausalLM",
        "qwen3_vl": "Qwen3VLForConditionalGeneration", "qwen3_vl_moe": "Qwen3VLMoeForConditionalGeneration"}

# Values of Qwen3-VL-4B-Instruct/preprocessor_config.json (../shared/configs/Qwen3-VL-4B-Instruct/).
PREPROCESSOR = {
    "size": {"longest_edge": 16777216, "shortest_edge": 65536},
    "patch_size": 16,
    "temporal_patch_size": 2,
    "merge_size": 2,
    "image_mean": [0.5, 0.5, 0.5],
    "image_std": [0.5, 0.5, 0.5],
    "processor_class": "Qwen3VLProcessor",
    "image_processor_type": "Qwen2VLImageProcessorFast",
}


# ---------------------------------------------------------------------------------------------------------------
# configs


def _text_fields(variant, dtype, sliding=None):
    """Tiny text model, keys in the order and layout of the published 4.x config.json of each family (Qwen2.5-0.5B,
    Qwen3-0.6B, Qwen3-30B-A3B, Qwen3-VL-4B / -30B-A3B text_config, Qwen1.5-MoE-A2.7B). sliding = (sliding_window,
    max_window_layers) turns use_sliding_window on (text-only variants; qwen3_moe slides every layer whatever
    max_window_layers says). qwen2_moe leaves out norm_topk_prob and qkv_bias (as published: Qwen2MoeConfig's
    defaults, False and True, apply) and adds mlp_only_layers [1] (not published) for a dense layer; top 4 of 8
    experts and a shared expert of 72."""
    c = {"attention_dropout": 0.0, "bos_token_id": 300, "eos_token_id": 301, "hidden_act": "silu",
         "hidden_size": 64, "initializer_range": 0.02, "intermediate_size": 96, "num_attention_heads": 4,
         "num_hidden_layers": 3, "num_key_value_heads": 2, "rms_norm_eps": 1e-06, "use_cache": True,
         "vocab_size": 320}
    if variant not in ("qwen2", "qwen2_moe"):
        c.update({"attention_bias": False, "head_dim": 24})
    if variant in ("qwen3_moe", "qwen3_vl_moe"):
        c.update({"decoder_sparse_step": 1, "mlp_only_layers": [1], "moe_intermediate_size": 40,
                  "norm_topk_prob": True, "num_experts": 8, "num_experts_per_tok": 2})
    if variant == "qwen2_moe":
        c.update({"decoder_sparse_step": 1, "mlp_only_layers": [1], "moe_intermediate_size": 40, "num_experts": 8,
                  "num_experts_per_tok": 4, "shared_expert_intermediate_size": 72})
    if variant in ("qwen3_vl", "qwen3_vl_moe"):
        c.update({"dtype": dtype, "max_position_embeddings": 262144, "model_type": variant + "_text",
                  "rope_scaling": {"mrope_interleaved": True, "mrope_section": [6, 3, 3], "rope_type": "default"},
                  "rope_theta": 5000000, "tie_word_embeddings": variant == "qwen3_vl"})
        return dict(sorted(c.items()))
    c.update({"architectures": [ARCH[variant]], "model_type": variant, "max_position_embeddings": 40960,
              "max_window_layers": 3, "rope_scaling": None, "rope_theta": 1000000.0, "sliding_window": None,
              "tie_word_embeddings": variant == "qwen3", "torch_dtype": dtype, "transformers_version": "4.51.0",
              "use_sliding_window": False})
    if variant in ("qwen2", "qwen2_moe"):
        c["sliding_window"] = 32768
    if variant in ("qwen3_moe", "qwen2_moe"):
        c.update({"output_router_logits": False, "router_aux_loss_coef": 0.001})
    if variant == "llama":  # Llama-3.1-8B's keys: llama3 rope scaling, no sliding window, head_dim 24 != H / heads
        for k in ("max_window_layers", "sliding_window", "use_sliding_window"):
            c.pop(k)
        c.update({"mlp_bias": False, "pretraining_tp": 1, "rope_theta": 500000.0,
                  "rope_scaling": {"factor": 8.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                                   "original_max_position_embeddings": 8192, "rope_type": "llama3"}})
    if sliding:
        c.update({"use_sliding_window": True, "sliding_window": sliding[0], "max_window_layers": sliding[1]})
    return dict(sorted(c.items()))


def tiny_config(variant, dtype="float32", form=5, sliding=None):
    """The tiny model's config.json: transformers 4.x layout (form 4, as published) or 5.x (form 5). sliding: see
    _text_fields."""
    if sliding and variant in ("qwen3_vl", "qwen3_vl_moe"):
        raise ValueError(f"{variant} has no sliding window")
    if variant not in ("qwen3_vl", "qwen3_vl_moe"):
        cfg = _text_fields(variant, dtype, sliding)
    else:
        cfg = {"architectures": [ARCH[variant]], "image_token_id": 305, "model_type": variant,
               "text_config": _text_fields(variant, dtype), "tie_word_embeddings": variant == "qwen3_vl",
               "transformers_version": "4.57.0.dev0", "video_token_id": 306,
               "vision_config": {"deepstack_visual_indexes": [0, 2], "depth": 4, "hidden_act": "gelu_pytorch_tanh",
                                 "hidden_size": 32, "in_channels": 3, "initializer_range": 0.02,
                                 "intermediate_size": 64, "model_type": variant, "num_heads": 2,
                                 "num_position_embeddings": 25, "out_hidden_size": 64, "patch_size": 16,
                                 "spatial_merge_size": 2, "temporal_patch_size": 2},
               "vision_end_token_id": 303, "vision_start_token_id": 302}
    return to_form5(cfg) if form == 5 else cfg


def to_form5(cfg):
    """4.x -> 5.x config layout as transformers 5 saves it: rope_scaling + rope_theta become rope_parameters (with
    rope_theta and rope_type inside), torch_dtype becomes dtype, qwen2/qwen3 get layer_types (as Qwen3Config.__init__
    derives them: "sliding_attention" from max_window_layers on when use_sliding_window and sliding_window are set)."""
    cfg = copy.deepcopy(cfg)

    def text(c, top):
        rope = dict(c.pop("rope_scaling", None) or {})
        rope.pop("type", None)
        rope.setdefault("rope_type", "default")
        rope["rope_theta"] = c.pop("rope_theta")
        c["rope_parameters"] = dict(sorted(rope.items()))
        if "torch_dtype" in c:
            c["dtype"] = c.pop("torch_dtype")
        if c.get("model_type") in ("qwen2", "qwen3", "qwen2_moe"):
            slide = c.get("use_sliding_window") and c.get("sliding_window") is not None
            c["layer_types"] = ["sliding_attention" if slide and i >= c["max_window_layers"] else "full_attention"
                                for i in range(c["num_hidden_layers"])]
        if top:
            c["transformers_version"] = "5.0.0.dev0"
        return dict(sorted(c.items()))

    if "text_config" in cfg:
        cfg["text_config"] = text(cfg["text_config"], False)
        cfg["dtype"] = cfg["text_config"]["dtype"]
        cfg["transformers_version"] = "5.0.0.dev0"
        return dict(sorted(cfg.items()))
    return text(cfg, True)


def generation_config(cfg):
    """Tiny: ids only (eos [eos, bos] like Qwen3-VL-4B-Instruct's [151645, 151643]), so generate() is plain greedy."""
    bos, eos = cfg.bos_token_id, cfg.eos_token_id
    return {"bos_token_id": bos, "pad_token_id": bos, "eos_token_id": [eos, bos],
            "transformers_version": "4.57.0.dev0"}


def write_folder(out_dir, cfg_raw, vl):
    os.makedirs(out_dir, exist_ok=True)
    files = [("config.json", cfg_raw), ("generation_config.json", generation_config(q3.Config(cfg_raw)))]
    if vl:
        files.append(("preprocessor_config.json", PREPROCESSOR))
    for fname, obj in files:
        with open(os.path.join(out_dir, fname), "w") as f:
            json.dump(obj, f, indent=2)
            f.write("\n")


# ---------------------------------------------------------------------------------------------------------------
# tensor lists


def weight_specs(cfg):
    """Checkpoint tensors of a config, in model order: list of (name, shape, kind, fan_in).
    kind: linear | conv | bias | norm | norm_bias | embed | pos."""
    specs = []

    def linear(name, out_f, in_f, bias):
        specs.append((name + ".weight", [out_f, in_f], "linear", in_f))
        if bias:
            specs.append((name + ".bias", [out_f], "bias", in_f))

    def norm(name, dim, bias=False):
        specs.append((name + ".weight", [dim], "norm", dim))
        if bias:
            specs.append((name + ".bias", [dim], "norm_bias", dim))

    if cfg.is_vl:
        V, D, patch_in = "model.visual.", cfg.vdim, cfg.in_chans * cfg.temporal_patch * cfg.patch * cfg.patch
        specs.append((V + "patch_embed.proj.weight", [D, cfg.in_chans, cfg.temporal_patch, cfg.patch, cfg.patch],
                      "conv", patch_in))
        specs.append((V + "patch_embed.proj.bias", [D], "bias", patch_in))
        specs.append((V + "pos_embed.weight", [cfg.num_pos, D], "pos", D))
        for i in range(cfg.vdepth):
            p = f"{V}blocks.{i}."
            norm(p + "norm1", D, True)
            norm(p + "norm2", D, True)
            linear(p + "attn.qkv", 3 * D, D, True)
            linear(p + "attn.proj", D, D, True)
            linear(p + "mlp.linear_fc1", cfg.vintermediate, D, True)
            linear(p + "mlp.linear_fc2", D, cfg.vintermediate, True)
        U = D * cfg.merge * cfg.merge
        for p, n in [(V + "merger.", D)] + [(f"{V}deepstack_merger_list.{j}.", U) for j in range(len(cfg.deepstack))]:
            norm(p + "norm", n, True)
            linear(p + "linear_fc1", U, U, True)
            linear(p + "linear_fc2", cfg.out_hidden, U, True)

    P, H, hd = cfg.prefix, cfg.hidden, cfg.head_dim
    specs.append((P + "embed_tokens.weight", [cfg.vocab, H], "embed", H))
    for i in range(cfg.layers):
        p = f"{P}layers.{i}."
        norm(p + "input_layernorm", H)
        linear(p + "self_attn.q_proj", cfg.heads * hd, H, cfg.qkv_bias)
        linear(p + "self_attn.k_proj", cfg.kv_heads * hd, H, cfg.qkv_bias)
        linear(p + "self_attn.v_proj", cfg.kv_heads * hd, H, cfg.qkv_bias)
        linear(p + "self_attn.o_proj", H, cfg.heads * hd, cfg.o_bias)
        if cfg.qk_norm:
            norm(p + "self_attn.q_norm", hd)
            norm(p + "self_attn.k_norm", hd)
        norm(p + "post_attention_layernorm", H)
        m = p + "mlp."
        if cfg.layer_is_moe(i):
            E, I = cfg.num_experts, cfg.moe_intermediate
            linear(m + "gate", E, H, False)
            if cfg.fused_experts:
                specs.append((m + "experts.gate_up_proj", [E, H, 2 * I], "linear", H))
                specs.append((m + "experts.down_proj", [E, I, H], "linear", I))
            else:
                for e in range(E):
                    linear(f"{m}experts.{e}.gate_proj", I, H, False)
                    linear(f"{m}experts.{e}.up_proj", I, H, False)
                    linear(f"{m}experts.{e}.down_proj", H, I, False)
            if cfg.shared_intermediate:
                S = cfg.shared_intermediate
                linear(m + "shared_expert.gate_proj", S, H, False)
                linear(m + "shared_expert.up_proj", S, H, False)
                linear(m + "shared_expert.down_proj", H, S, False)
                linear(m + "shared_expert_gate", 1, H, False)
        else:
            linear(m + "gate_proj", cfg.intermediate, H, False)
            linear(m + "up_proj", cfg.intermediate, H, False)
            linear(m + "down_proj", H, cfg.intermediate, False)
    norm(P + "norm", H)
    if not cfg.tie:
        specs.append(("lm_head.weight", [cfg.vocab, H], "linear", H))
    return specs


def init_scale(kind, fan_in):
    """(offset, std), as the Qwen2-VL reference: Linear/Conv 1/sqrt(fan_in) (O(1) activations at any width),
    embeddings 4/sqrt(H), norm weights 1 +- 0.1, biases 0.1; the vision position table 0.5."""
    if kind in ("linear", "conv"):
        return 0.0, 1.0 / math.sqrt(fan_in)
    if kind == "embed":
        return 0.0, 4.0 / math.sqrt(fan_in)
    if kind == "norm":
        return 1.0, 0.1
    if kind == "pos":
        return 0.0, 0.5
    return 0.0, 0.1


def make_tiny_weights(cfg, seed, dtype):
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for name, shape, kind, fan_in in weight_specs(cfg):
        offset, std = init_scale(kind, fan_in)
        out[name] = (torch.randn(shape, generator=gen) * std + offset).to(dtype)
    return out


# ---------------------------------------------------------------------------------------------------------------
# parameter counts and sparse real-shape checkpoints


def part_of(name):
    """vision | projector (merger + DeepStack mergers) | language."""
    if name.startswith("model.visual.merger.") or name.startswith("model.visual.deepstack_merger_list."):
        return "projector"
    if name.startswith("model.visual."):
        return "vision"
    return "language"


def param_counts(cfg):
    counts = {"vision": 0, "projector": 0, "language": 0}
    for name, shape, _, _ in weight_specs(cfg):
        counts[part_of(name)] += math.prod(shape)
    counts["total"] = sum(counts.values())
    return counts


def write_sparse(out_dir, cfg, max_shard_bytes):
    """bf16 shards model-0000K-of-0000M.safetensors + model.safetensors.index.json with every tensor a real config
    implies; each shard is its header followed by a hole (truncate to full size), so no data blocks are written.
    For loading and counting parameters only (the data reads back as zeros)."""
    groups, cur, cur_bytes = [], [], 0
    for name, shape, _, _ in weight_specs(cfg):
        size = math.prod(shape) * 2
        if cur and cur_bytes + size > max_shard_bytes:
            groups.append(cur)
            cur, cur_bytes = [], 0
        cur.append((name, "BF16", shape))
        cur_bytes += size
    groups.append(cur)
    weight_map, total, paths = {}, 0, []
    for k, group in enumerate(groups):
        fname = f"model-{k + 1:05d}-of-{len(groups):05d}.safetensors"
        head, data_size = st._header_bytes(group)
        path = os.path.join(out_dir, fname)
        with open(path, "wb") as f:
            f.write(head)
            f.truncate(len(head) + data_size)
        weight_map.update({name: fname for name, _, _ in group})
        total += data_size
        paths.append(path)
    with open(os.path.join(out_dir, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
    return paths
