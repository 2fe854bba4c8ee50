"""Plain-torch reference forward of the Qwen3 family's language side: Qwen2 / Qwen3 / Qwen3-MoE / Qwen2-MoE decoders
and the text model of Qwen3-VL / Qwen3-VL-MoE (interleaved M-RoPE, DeepStack additions), with a KV cache.

Follows Hugging Face transformers 5.0.0.dev0, git ccc7d90bcb (2025-12-23), read from these files (written from their
behaviour, not copied; each function names what it mirrors):
    models/qwen2/modeling_qwen2.py            "qwen2:"
    models/qwen3/modeling_qwen3.py            "qwen3:"
    models/qwen3_moe/modeling_qwen3_moe.py    "moe:"
    models/qwen2_moe/modeling_qwen2_moe.py    "q2moe:" (Qwen3-MoE's routing plus a gated shared expert)
    models/qwen3_vl/modeling_qwen3_vl.py      "vl:"
    models/qwen3_vl_moe/modeling_qwen3_vl_moe.py  "vlmoe:"
    models/llama/modeling_llama.py            "llama:" (Qwen2's layout; biases from attention_bias, no q/k norm)
    modeling_rope_utils.py                    "rope:" (_compute_llama3_parameters)
The vision tower is in qwen3_vision.py. Attention follows the "eager" path (softmax in float32, cast back).

Shape legend: L text positions, H text hidden, Hd head dim (config head_dim, not necessarily H / heads), KV kv heads,
E experts, k experts per token, I (moe_)intermediate size, S shared-expert intermediate size, V vocab, M merged
image tokens.

Weights are a dict name -> tensor with the published checkpoint names, already in the compute dtype. For
qwen3_vl_moe the experts are the published fused stacks (mlp.experts.gate_up_proj [E, H, 2I], down_proj [E, I, H]);
for qwen3_moe they are per-expert Linear weights (mlp.experts.N.{gate,up,down}_proj.weight).
"""

import math

import torch
import torch.nn.functional as F

import qwen2_vl_model as qm

TEXT_TYPES = ("qwen2", "qwen3", "qwen3_moe", "qwen2_moe", "llama")
VL_TYPES = ("qwen3_vl", "qwen3_vl_moe")


class Config:
    """The fields of config.json the forward needs; reads the transformers 4.x and 5.x layouts of all five types."""

    def __init__(self, raw):
        self.raw = raw
        self.model_type = raw["model_type"]
        if self.model_type not in TEXT_TYPES + VL_TYPES:
            raise ValueError(f"model_type {self.model_type!r} is not one of {TEXT_TYPES + VL_TYPES}")
        self.is_vl = self.model_type in VL_TYPES
        self.is_moe = self.model_type in ("qwen3_moe", "qwen3_vl_moe", "qwen2_moe")
        qwen2_like = self.model_type in ("qwen2", "qwen2_moe")
        text = dict(raw.get("text_config") or {})
        for k, v in raw.items():  # text-only configs keep everything at the top level
            text.setdefault(k, v)
        self.text = text
        self.hidden = text["hidden_size"]
        self.heads = text["num_attention_heads"]
        self.kv_heads = text.get("num_key_value_heads") or self.heads
        self.layers = text["num_hidden_layers"]
        self.intermediate = text["intermediate_size"]
        self.vocab = text["vocab_size"]
        self.eps = text.get("rms_norm_eps", 1e-6)
        self.act = text.get("hidden_act", "silu")
        # qwen3*, q2moe: head_dim from the config (getattr(config, "head_dim", H / heads)); qwen2: always H / heads
        self.head_dim = (text.get("head_dim") if self.model_type != "qwen2" else None) or self.hidden // self.heads
        # qwen2: q/k/v biased, o_proj not; q2moe: q/k/v biased as Qwen2MoeConfig.qkv_bias says (default True), o_proj
        # not; qwen3*: attention_bias on all four projections (False in every release)
        if qwen2_like:
            self.qkv_bias = bool(text.get("qkv_bias", True)) if self.model_type == "qwen2_moe" else True
            self.o_bias = False
        else:
            self.qkv_bias = self.o_bias = bool(text.get("attention_bias", False))
        # llama: LlamaAttention has no q/k norm; q/k/v/o biased as attention_bias says (the else branch above)
        self.qk_norm = not qwen2_like and self.model_type != "llama"
        rope = text.get("rope_parameters") or text.get("rope_scaling") or {}
        self.rope_theta = float(rope.get("rope_theta", text.get("rope_theta", 10000.0)))
        self.rope_type = rope.get("rope_type", rope.get("type", "default"))
        # rope: llama3's (factor, low_freq_factor, high_freq_factor, original_max_position_embeddings)
        self.llama3 = (rope["factor"], rope["low_freq_factor"], rope["high_freq_factor"],
                       rope.get("original_max_position_embeddings", text.get("original_max_position_embeddings"))
                       ) if self.rope_type == "llama3" else None
        if self.rope_type not in ("default", "mrope") and not (self.rope_type == "llama3" and
                                                               self.model_type == "llama"):
            raise ValueError(f"rope type {self.rope_type!r}: only default RoPE (and Llama's llama3) is implemented")
        # vl: Qwen3VLTextRotaryEmbedding always interleaves (the mrope_interleaved flag is not read), default section
        # [24, 20, 20]; text-only models use 1-D RoPE (position_ids rows all equal)
        self.mrope_section = list(rope.get("mrope_section", [24, 20, 20])) if self.is_vl else None
        self.layer_window = self._layer_windows(text)
        self.tie = bool(raw.get("tie_word_embeddings", text.get("tie_word_embeddings", False)))
        self.prefix = "model.language_model." if self.is_vl else "model."
        self.eos_token_id = text.get("eos_token_id")
        self.bos_token_id = text.get("bos_token_id")
        if self.is_moe:
            self.num_experts = text["num_experts"]
            self.top_k = text["num_experts_per_tok"]
            self.moe_intermediate = text["moe_intermediate_size"]
            self.sparse_step = text.get("decoder_sparse_step", 1)
            self.mlp_only = list(text.get("mlp_only_layers") or [])
            # vlmoe: Qwen3VLMoeTextSparseMoeBlock always renormalises the top-k (norm_topk_prob is not read)
            self.norm_topk = True if self.model_type == "qwen3_vl_moe" else bool(text.get("norm_topk_prob", False))
            self.fused_experts = self.model_type == "qwen3_vl_moe"
            # q2moe: Qwen2MoeSparseMoeBlock's shared expert, a Qwen2MoeMLP of shared_expert_intermediate_size
            # (Qwen2MoeConfig default 5632) gated by sigmoid(shared_expert_gate(h)), shared_expert_gate [1, H]
            self.shared_intermediate = (text.get("shared_expert_intermediate_size", 5632)
                                        if self.model_type == "qwen2_moe" else 0)
        if self.is_vl:
            vis = raw["vision_config"]
            self.image_token_id = raw["image_token_id"]
            self.video_token_id = raw["video_token_id"]
            self.vision_start_token_id = raw["vision_start_token_id"]
            self.vision_end_token_id = raw["vision_end_token_id"]
            self.in_chans = vis.get("in_channels", vis.get("in_chans", 3))
            self.patch = vis["patch_size"]
            self.temporal_patch = vis["temporal_patch_size"]
            self.merge = vis["spatial_merge_size"]
            self.vdepth = vis["depth"]
            self.vheads = vis["num_heads"]
            self.vdim = vis["hidden_size"]
            self.vintermediate = vis["intermediate_size"]
            self.vact = vis.get("hidden_act", "gelu_pytorch_tanh")
            self.out_hidden = vis["out_hidden_size"]
            self.num_pos = vis["num_position_embeddings"]
            self.pos_side = int(self.num_pos ** 0.5)
            self.deepstack = list(vis.get("deepstack_visual_indexes") or [])
            self.vhead_dim = self.vdim // self.vheads
            self.is_25 = False  # for qwen2_vl_model.rope_index: images advance t by 1 per frame (Qwen3-VL: t = 0..T-1)
        else:
            self.image_token_id = None

    def _layer_windows(self, text):
        """Sliding window of each layer (None: full causal attention). qwen2:/qwen3: Qwen{2,3}Config.__init__:
        sliding_window = sliding_window (default 4096) if use_sliding_window else None; layer_types, else
        "sliding_attention" for i >= max_window_layers (default 28) when sliding_window is not None; the attention
        of a "sliding_attention" layer uses config.sliding_window (create_sliding_window_causal_mask raises when it
        is None). moe: Qwen3MoeAttention / Qwen3MoeModel slide every layer when config.sliding_window is set (no
        layer_types, no max_window_layers). vl:/vlmoe: no sliding window."""
        if self.is_vl:
            return [None] * self.layers
        sw = text.get("sliding_window", 4096) if text.get("use_sliding_window", False) else None
        if self.model_type == "qwen3_moe":
            return [sw] * self.layers
        types = text.get("layer_types") or [
            "sliding_attention" if sw is not None and i >= text.get("max_window_layers", 28) else "full_attention"
            for i in range(self.layers)]
        if len(types) != self.layers:
            raise ValueError(f"layer_types has {len(types)} entries for {self.layers} layers")
        if "sliding_attention" in types and sw is None:
            raise ValueError("layer_types has sliding_attention but sliding_window is not set")
        return [sw if t == "sliding_attention" else None for t in types]

    def layer_is_moe(self, i):
        """moe:/vlmoe: Qwen3MoeDecoderLayer.__init__: sparse unless listed in mlp_only_layers, and only every
        decoder_sparse_step-th layer ((i + 1) % step == 0)."""
        return (self.is_moe and i not in self.mlp_only and self.num_experts > 0
                and (i + 1) % self.sparse_step == 0)


def act(name, x):
    """ACT2FN: gelu_pytorch_tanh = GELU with the tanh approximation; the rest as in qwen2_vl_model."""
    if name == "gelu_pytorch_tanh":
        return F.gelu(x, approximate="tanh")
    return qm.act(name, x)


# ---------------------------------------------------------------------------------------------------------------
# rotary embedding


def inv_freq(cfg):
    """qwen3:/vl: compute_default_rope_parameters: 1 / theta^(arange(0, Hd, 2) / Hd), float32, Hd/2 entries.
    rope: llama3 divides by factor the frequencies whose wavelength 2 pi / f exceeds O / low_freq_factor (O =
    original_max_position_embeddings), keeps those under O / high_freq_factor, and between them blends f / factor and
    f with weight s = (O / wavelength - low) / (high - low) on f."""
    hd = cfg.head_dim
    inv = 1.0 / (cfg.rope_theta ** (torch.arange(0, hd, 2, dtype=torch.int64).float() / hd))
    if getattr(cfg, "llama3", None) is None:  # self-checks pass bare namespaces
        return inv
    factor, low, high, old = cfg.llama3
    wavelength = 2 * math.pi / inv
    scaled = torch.where(wavelength > old / low, inv / factor, inv)
    s = (old / wavelength - low) / (high - low)
    between = (wavelength >= old / high) & (wavelength <= old / low)
    return torch.where(between, (1 - s) * scaled / factor + s * scaled, scaled)


def interleave_mrope(freqs, section):
    """vl: Qwen3VLTextRotaryEmbedding.apply_interleaved_mrope. freqs [3, L, Hd/2] (axis t, h, w). Frequency j takes
    axis h if j % 3 == 1 and j < 3 * section[1], axis w if j % 3 == 2 and j < 3 * section[2], else axis t; e.g.
    [24, 20, 20] over 64: t h w t h w ... (20 triples) then t t t t. Returns [L, Hd/2]."""
    out = freqs[0].clone()
    for axis, offset in ((1, 1), (2, 2)):
        idx = slice(offset, section[axis] * 3, 3)
        out[..., idx] = freqs[axis, ..., idx]
    return out


def rope_cos_sin(cfg, position_ids, dtype):
    """qwen3: Qwen3RotaryEmbedding.forward / vl: Qwen3VLTextRotaryEmbedding.forward. position_ids [3, L] (text-only
    models: equal rows, row 0 used). Angles in float32, duplicated to Hd (cat(f, f)), cos/sin cast to dtype."""
    freqs = position_ids.float().unsqueeze(-1) * inv_freq(cfg)  # [3, L, Hd/2]
    freqs = interleave_mrope(freqs, cfg.mrope_section) if cfg.mrope_section is not None else freqs[0]
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos().to(dtype), emb.sin().to(dtype)


# ---------------------------------------------------------------------------------------------------------------
# decoder


def attention(cfg, W, p, h, cos, sin, cache, i, past):
    """qwen3: Qwen3Attention.forward (qwen2: Qwen2Attention, without q/k norm). h [L, H] (already input-normed).
    q/k/v projections -> [L, heads, Hd]; qwen3*: q_norm / k_norm (RMSNorm over Hd, per head, eps rms_norm_eps)
    BEFORE RoPE; rotate_half RoPE; cache append; GQA; causal eager attention, scale Hd^-0.5; o_proj. A sliding
    layer (cfg.layer_window[i] = w) keeps only keys j > q - w (masking_utils.sliding_window_overlay, kv_idx > q_idx -
    sliding_window: w keys counting the query's own), q and j cache positions."""
    n = h.shape[0]

    def proj(name, heads):
        b = W[p + name + ".bias"] if cfg.qkv_bias else None
        return F.linear(h, W[p + name + ".weight"], b).view(n, heads, cfg.head_dim)

    q, k, v = proj("q_proj", cfg.heads), proj("k_proj", cfg.kv_heads), proj("v_proj", cfg.kv_heads)
    if cfg.qk_norm:
        q = qm.rms_norm(q, W[p + "q_norm.weight"], cfg.eps)
        k = qm.rms_norm(k, W[p + "k_norm.weight"], cfg.eps)
    q, k, v = (a.transpose(0, 1) for a in (q, k, v))  # [heads, L, Hd]
    q = q * cos + qm.rotate_half(q) * sin
    k = k * cos + qm.rotate_half(k) * sin
    if cache[i] is not None:
        k = torch.cat([cache[i][0], k], dim=1)
        v = torch.cat([cache[i][1], v], dim=1)
    cache[i] = [k, v]
    rep = cfg.heads // cfg.kv_heads  # repeat_kv: kv head j serves query heads j*rep .. j*rep+rep-1
    k, v = k.repeat_interleave(rep, dim=0), v.repeat_interleave(rep, dim=0)
    mask = torch.arange(past + n).view(1, -1) <= (past + torch.arange(n)).view(-1, 1)
    if cfg.layer_window[i] is not None:
        mask &= torch.arange(past + n).view(1, -1) > (past + torch.arange(n)).view(-1, 1) - cfg.layer_window[i]
    o = qm.eager_attention(q, k, v, cfg.head_dim ** -0.5, mask).transpose(0, 1).reshape(n, -1)
    return F.linear(o, W[p + "o_proj.weight"], W[p + "o_proj.bias"] if cfg.o_bias else None)


def dense_mlp(cfg, W, p, h):
    """qwen3: Qwen3MLP: down(act(gate(h)) * up(h)), no biases (q2moe: Qwen2MoeMLP, also the shared expert)."""
    g = act(cfg.act, F.linear(h, W[p + "gate_proj.weight"])) * F.linear(h, W[p + "up_proj.weight"])
    return F.linear(g, W[p + "down_proj.weight"])


def expert_weights(cfg, W, p, e):
    """Expert e's (gate [I, H], up [I, H], down [H, I]) as Linear weights.
    moe: per-expert checkpoint tensors mlp.experts.e.{gate,up,down}_proj.weight.
    vlmoe: Qwen3VLMoeTextExperts: gate_up_proj[e] is [H, 2I] and multiplies from the right (x @ gate_up_proj[e]);
    its first I columns are gate, the last I up (chunk(2, -1)); down_proj[e] is [I, H] (x @ down_proj[e])."""
    if cfg.fused_experts:
        gu = W[p + "experts.gate_up_proj"][e]
        inter = gu.shape[1] // 2
        return gu[:, :inter].t(), gu[:, inter:].t(), W[p + "experts.down_proj"][e].t()
    q = f"{p}experts.{e}."
    return W[q + "gate_proj.weight"], W[q + "up_proj.weight"], W[q + "down_proj.weight"]


def route(cfg, W, p, h):
    """moe: Qwen3MoeTopKRouter.forward / vlmoe: Qwen3VLMoeTextSparseMoeBlock.forward. Router logits = h @ gate^T
    (compute dtype), softmax over E in float32, top-k (sorted, largest first), renormalised to sum 1 when
    norm_topk_prob. Returns (weights [L, k], indices int64 [L, k], float32 probabilities [L, E]).
    The weights' dtype: moe keeps float32 (they are cast to the softmax's dtype); vlmoe casts to the logits' dtype."""
    logits = F.linear(h, W[p + "gate.weight"])
    probs = torch.softmax(logits, dim=-1, dtype=torch.float32)
    top_w, top_i = torch.topk(probs, cfg.top_k, dim=-1)
    if cfg.norm_topk:
        top_w = top_w / top_w.sum(dim=-1, keepdim=True)
    if cfg.fused_experts:
        top_w = top_w.to(logits.dtype)
    return top_w, top_i, probs


def shared_expert(cfg, W, p, h):
    """q2moe: Qwen2MoeSparseMoeBlock.forward's shared part: F.sigmoid(shared_expert_gate(h)) * shared_expert(h), the
    gate a [1, H] Linear without bias, the expert a gated MLP of width S over every row. Returns [L, H]."""
    return torch.sigmoid(F.linear(h, W[p + "shared_expert_gate.weight"])) * dense_mlp(cfg, W, p + "shared_expert.", h)


def moe_mlp(cfg, W, p, h):
    """MoE MLP: each token's output is the sum over its k chosen experts of weight * down(silu(gate(h)) * up(h)).
    Returns (out [L, H], indices int64 [L, k]).
    q2moe: the routed sum as moe (Qwen2MoeExperts is Qwen3MoeExperts), then the gated shared expert added to it
    (expert_output += shared_expert_output, in the compute dtype).
    moe (per-expert weights): Qwen3MoeExperts.forward: experts in increasing index, each on its routed rows,
    accumulated with index_add_ in the compute dtype.
    vlmoe (fused stacks): Qwen3VLMoeTextExperts.forward, inference branch: every expert runs on every row as one
    batched matmul (h repeated to [E, L, H] @ gate_up_proj [E, H, 2I], chunk -> gate, up; (up * silu(gate)) @
    down_proj [E, I, H]), each scaled by its routing weight (0 for unchosen experts; weights scattered into [L, E])
    and the [E, L, H] stack summed over E in one reduction. Same values; kept literally so bf16 compute matches
    transformers bit for bit (CPU bf16 matmuls round differently per shape)."""
    top_w, top_i, _ = route(cfg, W, p, h)
    if cfg.fused_experts:
        E, n = cfg.num_experts, h.shape[0]
        gate, up = torch.bmm(h.repeat(E, 1).view(E, n, -1), W[p + "experts.gate_up_proj"]).chunk(2, dim=-1)
        y = torch.bmm(up * act(cfg.act, gate), W[p + "experts.down_proj"])  # [E, L, H]
        weights = torch.zeros(n, E, dtype=top_w.dtype).scatter_(1, top_i, top_w)  # [L, E]
        return (y * weights.t()[..., None]).sum(dim=0), top_i
    out = torch.zeros_like(h)
    for e in range(cfg.num_experts):
        rows, slot = torch.where(top_i == e)
        if rows.numel() == 0:
            continue
        g, u, d = expert_weights(cfg, W, p, e)
        x = h[rows]
        y = F.linear(act(cfg.act, F.linear(x, g)) * F.linear(x, u), d)
        out.index_add_(0, rows, (y * top_w[rows, slot, None]).to(out.dtype))
    if cfg.shared_intermediate:
        out = out + shared_expert(cfg, W, p, h)
    return out, top_i


def decoder_layer(cfg, W, i, x, cos, sin, cache, past):
    """qwen3: Qwen3DecoderLayer.forward (pre-norm attention, pre-norm MLP, residuals). Returns (x, router indices
    [L, k] or None for a dense layer)."""
    p = f"{cfg.prefix}layers.{i}."
    h = qm.rms_norm(x, W[p + "input_layernorm.weight"], cfg.eps)
    x = x + attention(cfg, W, p + "self_attn.", h, cos, sin, cache, i, past)
    h = qm.rms_norm(x, W[p + "post_attention_layernorm.weight"], cfg.eps)
    if cfg.layer_is_moe(i):
        y, top_i = moe_mlp(cfg, W, p + "mlp.", h)
        return x + y, top_i
    return x + dense_mlp(cfg, W, p + "mlp.", h), None


def text_forward(cfg, W, embeds, position_ids, cache, past, dumps=None, visual_rows=None, deepstack=None):
    """qwen3: Qwen3Model.forward + lm_head / vl: Qwen3VLTextModel.forward. embeds [L, H], position_ids [3, L].
    vl DeepStack (_deepstack_process): after decoder layer j < len(deepstack), deepstack[j] [M, H] is ADDED to the
    rows visual_rows (the image-token positions, in order). dumps receives decoder_layer_{i} [L, H] (after any
    addition), router_topk_{i} int64 [L, k] for MoE layers, final_norm [L, H]. Returns logits [L, V]."""
    cos, sin = rope_cos_sin(cfg, position_ids, embeds.dtype)
    x = embeds
    for i in range(cfg.layers):
        x, top_i = decoder_layer(cfg, W, i, x, cos, sin, cache, past)
        if deepstack is not None and i < len(deepstack):
            x = x.clone()
            x[visual_rows] = x[visual_rows] + deepstack[i].to(x.dtype)
        if dumps is not None:
            dumps[f"decoder_layer_{i}"] = x
            if top_i is not None:
                dumps[f"router_topk_{i}"] = top_i
    x = qm.rms_norm(x, W[cfg.prefix + "norm.weight"], cfg.eps)
    if dumps is not None:
        dumps["final_norm"] = x
    head = W[cfg.prefix + "embed_tokens.weight"] if cfg.tie else W["lm_head.weight"]
    return F.linear(x, head)


def embed_inputs(cfg, W, input_ids, image_embeds, video_embeds=None, deep_images=None, deep_videos=None):
    """vl: Qwen3VLModel.forward: token embeddings, then masked_scatter of the image features, in order, into the
    rows whose id is image_token_id, and of the video features into the rows of video_token_id. The DeepStack
    features of both kinds are joined in row order (embed_joint over visual_pos_masks = image | video rows).
    Returns (embeds [L, H], visual rows int64 [M], DeepStack list of [M, H] or None)."""
    x = W[cfg.prefix + "embed_tokens.weight"][input_ids]
    if not cfg.is_vl:
        return x, None, None
    image_mask, video_mask = input_ids == cfg.image_token_id, input_ids == cfg.video_token_id
    for mask, feats, what in ((image_mask, image_embeds, "Image"), (video_mask, video_embeds, "Video")):
        n_feat = 0 if feats is None else feats.shape[0]
        if int(mask.sum()) != n_feat:
            raise ValueError(f"{what} features and {what.lower()} tokens do not match: tokens: {int(mask.sum())}, "
                             f"features {n_feat}")
        if n_feat:
            x = x.clone()
            x[mask] = feats.to(x.dtype)
    visual = image_mask | video_mask
    rows = visual.nonzero().flatten()
    deep = None
    if deep_images is not None and deep_videos is not None:
        deep = []
        for img, vid in zip(deep_images, deep_videos):
            joint = img.new_zeros(rows.numel(), img.shape[-1])
            joint[image_mask[visual]] = img
            joint[video_mask[visual]] = vid
            deep.append(joint)
    else:
        deep = deep_images if deep_images is not None else deep_videos
    return x, rows, deep


def rope_index(cfg, input_ids, image_grids, video_grids):
    """vl: Qwen3VLModel.get_rope_index: each video grid (t, h, w) is split into t grids (1, h, w) (each frame sits
    after its own "<T seconds>" text and <|vision_start|>), then qwen2_vl_model.rope_index with t advancing 1 per
    frame, which for t = 1 is a time index of 0."""
    frames = [(1, h, w) for t, h, w in video_grids for _ in range(t)]
    return qm.rope_index(cfg, input_ids, image_grids, frames)


def prefill(cfg, W, input_ids, images, dumps=None):
    """Whole prefill. images: list of (pixel_values [n_i, C*Tp*P*P], (t, h, w)) and qwen2_vl_model.Video (videos,
    vl only), in the order of their placeholders (empty for text-only models). The tower runs once per input in that
    order (its dumps are the rows of each run, appended); transformers runs all images in one call and all videos in
    another, which gives the same rows: attention, position embedding and rotary stay within a frame.
    Returns (logits [L, V], cache, rope delta)."""
    image_grids = [it[1] for it in images if not isinstance(it, qm.Video)]
    video_grids = [it.grid for it in images if isinstance(it, qm.Video)]
    feats = {False: [], True: []}
    deeps = {False: [], True: []}
    if images:
        if not cfg.is_vl:
            raise ValueError(f"{cfg.model_type} takes no images")
        import qwen3_vision as qv
        for it in images:
            video = isinstance(it, qm.Video)
            part = {} if dumps is not None else None
            merged, deep = qv.vision_forward(cfg, W, it[0], [it[1]], part)
            feats[video].append(merged)
            deeps[video].append(deep)
            for k, v in (part or {}).items():
                dumps[k] = torch.cat([dumps[k], v]) if k in dumps else v

    def joined(kind):
        if not feats[kind]:
            return None, None
        return torch.cat(feats[kind]), [torch.cat(level) for level in zip(*deeps[kind])]

    image_embeds, deep_images = joined(False)
    video_embeds, deep_videos = joined(True)
    embeds, rows, deepstack = embed_inputs(cfg, W, input_ids, image_embeds, video_embeds, deep_images, deep_videos)
    if cfg.is_vl:
        pos, delta = rope_index(cfg, input_ids, image_grids, video_grids)
    else:
        pos, delta = qm.rope_index(cfg, input_ids, image_grids)
    if dumps is not None:
        dumps["position_ids"] = pos
        dumps["rope_delta"] = torch.tensor([delta], dtype=torch.int64)
        dumps["inputs_embeds"] = embeds
    cache = [None] * cfg.layers
    logits = text_forward(cfg, W, embeds, pos, cache, 0, dumps, rows, deepstack)
    if dumps is not None:
        dumps["logits"] = logits
    return logits, cache, delta


def decode_step(cfg, W, token, cache, past, delta):
    """One cached step as generate does it: the token sits at cache position `past`; all three M-RoPE axes use
    past + rope delta (vl: prepare_inputs_for_generation); no images and no DeepStack. Returns logits [V]."""
    embeds = W[cfg.prefix + "embed_tokens.weight"][torch.tensor([token])]
    pos = torch.full((3, 1), past + delta, dtype=torch.int64)
    return text_forward(cfg, W, embeds, pos, cache, past)[0]


def greedy(cfg, W, input_ids, images, max_new, eos_ids):
    """Greedy decoding with the KV cache (qwen2_vl_model.greedy's loop). Returns (tokens, float32 logits [n, V])."""
    return qm.greedy(cfg, W, input_ids, images, max_new, eos_ids, prefill_fn=prefill, decode_fn=decode_step)
