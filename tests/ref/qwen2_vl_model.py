"""Plain-torch reference forward of Qwen2.5-VL and Qwen2-VL (vision tower, merger, M-RoPE decoder, KV cache).

Follows Hugging Face transformers 4.55 (git c3401d6fad, "dev version 4.55"):
    src/transformers/models/qwen2_5_vl/modeling_qwen2_5_vl.py   (cited below as "2.5:")
    src/transformers/models/qwen2_vl/modeling_qwen2_vl.py       (cited below as "2:")
and, for videos (pixel_values_videos, video_grid_thw, second_per_grid_ts), transformers 4.57.3's get_rope_index,
whose time index casts second_per_grid_t to int64 before it multiplies.
It is written from those files' behaviour, not copied; every function names the class/function it mirrors.
Attention follows the "eager" path (matmul, softmax in float32, cast back), which is what the other backends
approximate.

Shape legend:
    N   patches of all images (rows of pixel_values), in the image processor's order: for each image, for each
        frame t, merge blocks row-major, and inside a block the 2x2 patches row-major
    M   merged tokens, N / merge^2
    D   vision hidden (2.5: vision_config.hidden_size; 2: vision_config.embed_dim)
    Hd  head dim (vision: D / num_heads; text: H / num_attention_heads)
    L   text positions, H text hidden, V vocab, KV num_key_value_heads

Weights are a dict name -> tensor with transformers' checkpoint names ("model.layers.0.self_attn.q_proj.weight",
"visual.blocks.0.attn.qkv.weight", ...), already cast to the compute dtype.
"""

from collections import namedtuple

import torch
import torch.nn.functional as F

# One video of a prompt: pixel_values_videos rows [t*h*w, C*Tp*P*P], its video_grid_thw (t, h, w) and its
# second_per_grid_ts entry. Images are plain (pixel_values, (t, h, w)) pairs; a prompt's list holds both, in the
# order of their placeholders.
Video = namedtuple("Video", "pixels grid seconds")


class Config:
    """The fields of config.json that the forward needs; reads transformers 4.x and 5.x layouts."""

    def __init__(self, raw):
        self.raw = raw
        text = dict(raw.get("text_config") or {})
        for k, v in raw.items():  # 4.x keeps text fields at the top level
            text.setdefault(k, v)
        vis = raw["vision_config"]
        self.model_type = raw.get("model_type", "qwen2_5_vl")
        self.is_25 = self.model_type == "qwen2_5_vl"
        self.hidden = text["hidden_size"]
        self.heads = text["num_attention_heads"]
        self.kv_heads = text["num_key_value_heads"]
        self.layers = text["num_hidden_layers"]
        self.intermediate = text["intermediate_size"]
        self.vocab = text["vocab_size"]
        self.eps = text["rms_norm_eps"]
        rope = text.get("rope_scaling") or text.get("rope_parameters") or {}
        self.rope_theta = text.get("rope_theta", rope.get("rope_theta", 10000.0))
        self.mrope_section = list(rope["mrope_section"])
        self.tie = bool(raw.get("tie_word_embeddings", text.get("tie_word_embeddings", False)))
        self.head_dim = self.hidden // self.heads
        self.image_token_id = raw["image_token_id"]
        self.video_token_id = raw["video_token_id"]
        self.vision_start_token_id = raw["vision_start_token_id"]
        self.vision_end_token_id = raw["vision_end_token_id"]
        self.eos_token_id = raw.get("eos_token_id")

        self.in_chans = vis.get("in_chans", vis.get("in_channels", 3))
        self.patch = vis["patch_size"]
        self.temporal_patch = vis["temporal_patch_size"]
        self.merge = vis["spatial_merge_size"]
        self.vdepth = vis["depth"]
        self.vheads = vis["num_heads"]
        if self.is_25:
            self.vdim = vis["hidden_size"]
            self.vintermediate = vis["intermediate_size"]
            self.vact = vis.get("hidden_act", "silu")
            self.out_hidden = vis["out_hidden_size"]
            self.window_size = vis["window_size"]
            self.fullatt = list(vis["fullatt_block_indexes"])
            self.tokens_per_second = vis.get("tokens_per_second", 4)  # Qwen2_5_VLVisionConfig's default
        else:
            self.vdim = vis["embed_dim"]
            self.vintermediate = int(vis["embed_dim"] * vis["mlp_ratio"])
            self.vact = vis.get("hidden_act", "quick_gelu")
            self.out_hidden = vis["hidden_size"]
        self.vhead_dim = self.vdim // self.vheads


# ---------------------------------------------------------------------------------------------------------------
# small pieces


def rms_norm(x, w, eps):
    """2.5: Qwen2RMSNorm.forward: statistics in float32, cast back to the input dtype, then scale."""
    xf = x.float()
    xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)
    return w * xf.to(x.dtype)


def act(name, x):
    """transformers/activations.py ACT2FN: silu, gelu (exact erf), quick_gelu = x * sigmoid(1.702 x)."""
    if name == "silu":
        return F.silu(x)
    if name == "gelu":
        return F.gelu(x)
    if name == "quick_gelu":
        return x * torch.sigmoid(1.702 * x)
    raise ValueError(f"unknown activation {name}")


def rotate_half(x):
    """2.5: rotate_half: (x1, x2) -> (-x2, x1) over the two halves of the last dim."""
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def eager_attention(q, k, v, scale, mask=None):
    """2.5: eager_attention_forward. q [h, Lq, Hd], k/v [h, Lk, Hd] (already repeated for GQA);
    mask: bool [Lq, Lk], True = may attend. Softmax in float32, cast back to q's dtype."""
    scores = torch.matmul(q, k.transpose(-1, -2)) * scale
    if mask is not None:
        scores = scores + torch.where(mask, 0.0, torch.finfo(scores.dtype).min).to(scores.dtype)
    probs = torch.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype)
    return torch.matmul(probs, v)


# ---------------------------------------------------------------------------------------------------------------
# vision tower


def patch_embed(cfg, W, pixel_values):
    """2.5: Qwen2_5_VisionPatchEmbed.forward (2: PatchEmbed): each row is one (C, Tp, P, P) patch, a Conv3d with
    stride == kernel and no bias maps it to D. pixel_values [N, C*Tp*P*P] -> [N, D].
    A Conv3d whose stride equals its kernel is exactly a matmul with the flattened kernel; the matmul is used
    because torch 1.13's CPU bf16 conv3d accumulates in bf16 (4% error), unlike the fp32-accumulating kernels
    transformers runs on. The self-check compares it with F.conv3d in float32."""
    w = W["visual.patch_embed.proj.weight"]
    return F.linear(pixel_values.to(w.dtype), w.reshape(w.shape[0], -1))


def vision_rope(cfg, grid_thw):
    """2.5: Qwen2_5_VisionTransformerPretrainedModel.rot_pos_emb + Qwen2_5_VisionRotaryEmbedding (2: same).
    Each patch gets (row, col) inside its frame, listed in merge-block order; angles are
    row * inv_freq ++ col * inv_freq with inv_freq over dim = Hd/2, theta 10000. Returns float32 [N, Hd/2]."""
    m = cfg.merge
    pos = []
    for t, h, w in grid_thw:
        rows = torch.arange(h).unsqueeze(1).expand(h, w)
        cols = torch.arange(w).unsqueeze(0).expand(h, w)

        def block_order(a):
            return a.reshape(h // m, m, w // m, m).permute(0, 2, 1, 3).flatten()

        pos.append(torch.stack([block_order(rows), block_order(cols)], dim=-1).repeat(t, 1))
    pos = torch.cat(pos, dim=0)
    dim = cfg.vhead_dim // 2
    inv_freq = 1.0 / (10000.0 ** (torch.arange(0, dim, 2, dtype=torch.float) / dim))
    max_side = int(max(max(h, w) for _, h, w in grid_thw))
    table = torch.outer(torch.arange(max_side, dtype=torch.float), inv_freq)  # [max_side, dim/2]
    return table[pos].flatten(1)


def window_index(cfg, grid_thw):
    """2.5: Qwen2_5_VisionTransformerPretrainedModel.get_window_index.
    Merged tokens of each frame are tiled into windows of ws x ws merged tokens (ws = window_size // merge // patch);
    the frame is padded at bottom/right to whole windows (pad = ws - n % ws, i.e. a full extra window when n is a
    multiple of ws: those empty windows give repeated cu_seqlens entries that the caller removes).
    Returns (index [M]: merged-token order used inside the tower, cu_window_seqlens list in patches)."""
    ws = cfg.window_size // cfg.merge // cfg.patch
    unit = cfg.merge * cfg.merge
    index, cu, base = [], [0], 0
    for t, h, w in grid_thw:
        gh, gw = h // cfg.merge, w // cfg.merge
        ids = torch.arange(t * gh * gw).reshape(t, gh, gw)
        pad_h, pad_w = ws - gh % ws, ws - gw % ws
        nh, nw = (gh + pad_h) // ws, (gw + pad_w) // ws
        ids = F.pad(ids, (0, pad_w, 0, pad_h), "constant", -100)
        ids = ids.reshape(t, nh, ws, nw, ws).permute(0, 1, 3, 2, 4).reshape(t, nh * nw, ws, ws)
        counts = (ids != -100).sum([2, 3]).reshape(-1)
        ids = ids.reshape(-1)
        index.append(ids[ids != -100] + base)
        cu.extend((counts.cumsum(0) * unit + cu[-1]).tolist())
        base += t * gh * gw
    return torch.cat(index), cu


def frame_cu_seqlens(grid_thw):
    """2.5/2: cu_seqlens in the tower's forward: one full-attention segment per frame of each image."""
    lens = [h * w for t, h, w in grid_thw for _ in range(t)]
    return [0] + torch.tensor(lens).cumsum(0).tolist()


def vision_attention(cfg, W, p, x, cu_seqlens, cos, sin):
    """2.5: Qwen2_5_VLVisionAttention.forward (2: VisionAttention), non-flash path: fused qkv, 2D rope applied in
    float32 (apply_rotary_pos_emb_vision), attention separately inside each [cu[i], cu[i+1]) segment."""
    n = x.shape[0]
    qkv = F.linear(x, W[p + "qkv.weight"], W[p + "qkv.bias"]).reshape(n, 3, cfg.vheads, cfg.vhead_dim)
    q, k, v = qkv.permute(1, 0, 2, 3).unbind(0)  # each [n, heads, Hd]
    c, s = cos.unsqueeze(-2), sin.unsqueeze(-2)
    q = (q.float() * c + rotate_half(q.float()) * s).to(x.dtype)
    k = (k.float() * c + rotate_half(k.float()) * s).to(x.dtype)
    q, k, v = (a.transpose(0, 1) for a in (q, k, v))  # [heads, n, Hd]
    outs = []
    for a, b in zip(cu_seqlens[:-1], cu_seqlens[1:]):
        if b > a:
            outs.append(eager_attention(q[:, a:b], k[:, a:b], v[:, a:b], cfg.vhead_dim ** -0.5))
    out = torch.cat(outs, dim=1).transpose(0, 1).reshape(n, -1)
    return F.linear(out, W[p + "proj.weight"], W[p + "proj.bias"])


def vision_norm(cfg, W, name, x):
    """2.5: Qwen2RMSNorm(eps 1e-6) on norm1/norm2/ln_q; 2: torch LayerNorm(eps 1e-6) with bias."""
    if cfg.is_25:
        return rms_norm(x, W[name + ".weight"], 1e-6)
    return F.layer_norm(x, (x.shape[-1],), W[name + ".weight"], W[name + ".bias"], 1e-6)


def vision_mlp(cfg, W, p, x):
    """2.5: Qwen2_5_VLMLP(bias=True): down(act(gate(x)) * up(x)); 2: VisionMlp: fc2(quick_gelu(fc1(x)))."""
    if cfg.is_25:
        g = F.linear(x, W[p + "gate_proj.weight"], W[p + "gate_proj.bias"])
        u = F.linear(x, W[p + "up_proj.weight"], W[p + "up_proj.bias"])
        return F.linear(act(cfg.vact, g) * u, W[p + "down_proj.weight"], W[p + "down_proj.bias"])
    h = F.linear(x, W[p + "fc1.weight"], W[p + "fc1.bias"])
    return F.linear(act(cfg.vact, h), W[p + "fc2.weight"], W[p + "fc2.bias"])


def vision_block(cfg, W, i, x, cu_seqlens, cos, sin):
    """2.5: Qwen2_5_VLVisionBlock.forward (2: Qwen2VLVisionBlock): pre-norm attention and MLP with residuals."""
    p = f"visual.blocks.{i}."
    x = x + vision_attention(cfg, W, p + "attn.", vision_norm(cfg, W, p + "norm1", x), cu_seqlens, cos, sin)
    return x + vision_mlp(cfg, W, p + "mlp.", vision_norm(cfg, W, p + "norm2", x))


def merger(cfg, W, x):
    """2.5: Qwen2_5_VLPatchMerger (2: PatchMerger): norm ln_q, concatenate each merge block's 4 rows -> 4D,
    Linear(4D, 4D) -> GELU (exact) -> Linear(4D, out_hidden). [N, D] -> [M, out_hidden]."""
    x = vision_norm(cfg, W, "visual.merger.ln_q", x).reshape(-1, cfg.vdim * cfg.merge * cfg.merge)
    x = F.gelu(F.linear(x, W["visual.merger.mlp.0.weight"], W["visual.merger.mlp.0.bias"]))
    return F.linear(x, W["visual.merger.mlp.2.weight"], W["visual.merger.mlp.2.bias"])


def vision_forward(cfg, W, pixel_values, grid_thw, dumps=None):
    """2.5: Qwen2_5_VisionTransformerPretrainedModel.forward (2: Qwen2VisionTransformerPretrainedModel.forward).
    pixel_values [N, C*Tp*P*P], grid_thw list of (t, h, w) in patches. Returns [M, out_hidden] in the original
    merged-token order. dumps (dict) receives: patch_embed [N, D] (original order); vision_block_{i} [N, D] in the
    tower's internal order (window-permuted for 2.5); vision_block_{i}_orig [N, D] back in the original order."""
    unit = cfg.merge * cfg.merge
    x = patch_embed(cfg, W, pixel_values)
    n = x.shape[0]
    if dumps is not None:
        dumps["patch_embed"] = x
    rope = vision_rope(cfg, grid_thw)
    full_cu = frame_cu_seqlens(grid_thw)
    if cfg.is_25:
        order, win_cu = window_index(cfg, grid_thw)
        win_cu = torch.unique_consecutive(torch.tensor(win_cu)).tolist()
        x = x.reshape(n // unit, unit, -1)[order].reshape(n, -1)
        rope = rope.reshape(n // unit, unit, -1)[order].reshape(n, -1)
    else:
        order = torch.arange(n // unit)
    emb = torch.cat((rope, rope), dim=-1)
    cos, sin = emb.cos(), emb.sin()
    back = torch.argsort(order)
    for i in range(cfg.vdepth):
        cu = full_cu if (not cfg.is_25 or i in cfg.fullatt) else win_cu
        x = vision_block(cfg, W, i, x, cu, cos, sin)
        if dumps is not None:
            dumps[f"vision_block_{i}"] = x
            dumps[f"vision_block_{i}_orig"] = x.reshape(n // unit, unit, -1)[back].reshape(n, -1)
    out = merger(cfg, W, x)
    return out[back]


# ---------------------------------------------------------------------------------------------------------------
# M-RoPE position ids


def rope_index(cfg, input_ids, grid_thw, video_grid_thw=(), second_per_grid_ts=None):
    """2.5: Qwen2_5_VLModel.get_rope_index (2: Qwen2VLModel.get_rope_index) of 4.57.3, batch 1, no padding.
    Text runs get t = h = w = running position; an image or video of llm grid (t, gh, gw) placed after text ending
    at position s-1 gets (s + t_idx, s + row, s + col); the next text continues at max(previous) + 1. The next
    placeholder is whichever of the image token and the video token comes first; each kind takes its own grids in
    order. t_idx: 2: the frame index f (0 for images); 2.5: f * int64(second_per_grid_t) * tokens_per_second, with
    second_per_grid_t 0 for images and 1.0 for videos when second_per_grid_ts is None.
    Returns (position_ids [3, L] int64, delta int)."""
    ids = input_ids.tolist()
    n_tok = len(ids)
    if not grid_thw and not video_grid_thw:
        # transformers' generate passes an all-ones attention mask: cumsum - 1 == arange, delta == 0
        return torch.arange(n_tok).view(1, -1).expand(3, -1).clone(), 0
    starts = [i for i, t in enumerate(ids) if t == cfg.vision_start_token_id]
    after = [ids[i + 1] for i in starts if i + 1 < n_tok]
    remain_images = sum(1 for t in after if t == cfg.image_token_id)
    remain_videos = sum(1 for t in after if t == cfg.video_token_id)
    pieces, st, image_index, video_index = [], 0, 0, 0
    for _ in range(remain_images + remain_videos):
        ed_image = ids.index(cfg.image_token_id, st) if remain_images > 0 and cfg.image_token_id in ids else n_tok + 1
        ed_video = ids.index(cfg.video_token_id, st) if remain_videos > 0 and cfg.video_token_id in ids else n_tok + 1
        if ed_image < ed_video:
            t, h, w = grid_thw[image_index]
            seconds = 0
            image_index += 1
            remain_images -= 1
            ed = ed_image
        else:
            t, h, w = video_grid_thw[video_index]
            seconds = second_per_grid_ts[video_index] if second_per_grid_ts is not None else 1.0
            video_index += 1
            remain_videos -= 1
            ed = ed_video
        gt, gh, gw = t, h // cfg.merge, w // cfg.merge
        st_idx = int(pieces[-1].max()) + 1 if pieces else 0
        pieces.append(torch.arange(ed - st).view(1, -1).expand(3, -1) + st_idx)
        frames = torch.arange(gt).view(-1, 1).expand(-1, gh * gw)
        if cfg.is_25:
            # torch.as_tensor(second_per_grid_t, dtype=range_tensor.dtype): int64, truncating toward zero
            t_idx = (frames * torch.as_tensor(seconds, dtype=frames.dtype) * cfg.tokens_per_second).long().flatten()
        else:
            t_idx = frames.flatten()
        h_idx = torch.arange(gh).view(1, -1, 1).expand(gt, -1, gw).flatten()
        w_idx = torch.arange(gw).view(1, 1, -1).expand(gt, gh, -1).flatten()
        pieces.append(torch.stack([t_idx, h_idx, w_idx]) + (ed - st) + st_idx)
        st = ed + gt * gh * gw
    if st < n_tok:
        st_idx = int(pieces[-1].max()) + 1 if pieces else 0
        pieces.append(torch.arange(n_tok - st).view(1, -1).expand(3, -1) + st_idx)
    pos = torch.cat(pieces, dim=1).to(torch.int64)
    return pos, int(pos.max()) + 1 - n_tok


# ---------------------------------------------------------------------------------------------------------------
# language model


def mrope_cos_sin(cfg, position_ids, dtype):
    """2.5: Qwen2_5_VLRotaryEmbedding.forward + the section pick in apply_multimodal_rotary_pos_emb.
    Angles per axis a in (t, h, w): pos[a] * inv_freq (float32) over Hd/2 frequencies, duplicated to Hd;
    then the Hd channels are cut into chunks mrope_section * 2 and chunk i takes axis i % 3.
    position_ids [3, L] -> cos, sin [L, Hd] cast to the compute dtype."""
    hd = cfg.head_dim
    inv_freq = 1.0 / (cfg.rope_theta ** (torch.arange(0, hd, 2, dtype=torch.int64).float() / hd))
    freqs = position_ids.float().unsqueeze(-1) * inv_freq  # [3, L, Hd/2]
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos().to(dtype), emb.sin().to(dtype)
    chunks = cfg.mrope_section * 2

    def pick(t):
        return torch.cat([c[i % 3] for i, c in enumerate(t.split(chunks, dim=-1))], dim=-1)

    return pick(cos), pick(sin)


def decoder_layer(cfg, W, i, x, cos, sin, cache, past):
    """2.5: Qwen2_5_VLDecoderLayer + Qwen2_5_VLAttention + Qwen2MLP. x [L, H] are the new tokens at cache
    positions past..past+L-1; cache is [k, v] of [KV, past, Hd] (or None) and is replaced by the extended one."""
    p = f"model.layers.{i}."
    n = x.shape[0]
    h = rms_norm(x, W[p + "input_layernorm.weight"], cfg.eps)
    a = p + "self_attn."
    q = F.linear(h, W[a + "q_proj.weight"], W[a + "q_proj.bias"]).view(n, cfg.heads, cfg.head_dim).transpose(0, 1)
    k = F.linear(h, W[a + "k_proj.weight"], W[a + "k_proj.bias"]).view(n, cfg.kv_heads, cfg.head_dim).transpose(0, 1)
    v = F.linear(h, W[a + "v_proj.weight"], W[a + "v_proj.bias"]).view(n, cfg.kv_heads, cfg.head_dim).transpose(0, 1)
    q = q * cos + rotate_half(q) * sin
    k = k * cos + rotate_half(k) * sin
    if cache[i] is not None:
        k = torch.cat([cache[i][0], k], dim=1)
        v = torch.cat([cache[i][1], v], dim=1)
    cache[i] = [k, v]
    rep = cfg.heads // cfg.kv_heads  # repeat_kv: kv head j serves query heads j*rep .. j*rep+rep-1
    k = k.repeat_interleave(rep, dim=0)
    v = v.repeat_interleave(rep, dim=0)
    total = past + n
    mask = torch.arange(total).view(1, -1) <= (past + torch.arange(n)).view(-1, 1)
    o = eager_attention(q, k, v, cfg.head_dim ** -0.5, mask).transpose(0, 1).reshape(n, -1)
    x = x + F.linear(o, W[a + "o_proj.weight"])
    h = rms_norm(x, W[p + "post_attention_layernorm.weight"], cfg.eps)
    m = p + "mlp."
    g = F.silu(F.linear(h, W[m + "gate_proj.weight"])) * F.linear(h, W[m + "up_proj.weight"])
    return x + F.linear(g, W[m + "down_proj.weight"])


def text_forward(cfg, W, embeds, position_ids, cache, past, dumps=None):
    """2.5: Qwen2_5_VLTextModel.forward + lm_head. embeds [L, H], position_ids [3, L].
    Returns logits [L, V]; dumps receives decoder_layer_{i} [L, H], final_norm [L, H]."""
    cos, sin = mrope_cos_sin(cfg, position_ids, embeds.dtype)
    x = embeds
    for i in range(cfg.layers):
        x = decoder_layer(cfg, W, i, x, cos, sin, cache, past)
        if dumps is not None:
            dumps[f"decoder_layer_{i}"] = x
    x = rms_norm(x, W["model.norm.weight"], cfg.eps)
    if dumps is not None:
        dumps["final_norm"] = x
    head = W["model.embed_tokens.weight"] if cfg.tie else W["lm_head.weight"]
    return F.linear(x, head)


def embed_inputs(cfg, W, input_ids, image_embeds, video_embeds=None):
    """2.5: Qwen2_5_VLModel.forward: token embeddings, then masked_scatter of the image features, in order, into
    the rows whose id is image_token_id, and of the video features into the rows of video_token_id."""
    x = W["model.embed_tokens.weight"][input_ids].clone()
    for kind, token, feats in (("Image", cfg.image_token_id, image_embeds), ("Video", cfg.video_token_id, video_embeds)):
        rows = (input_ids == token).nonzero().flatten()
        n_feat = 0 if feats is None else feats.shape[0]
        if rows.numel() != n_feat:
            raise ValueError(f"{kind} features and {kind.lower()} tokens do not match: tokens: {rows.numel()}, "
                             f"features {n_feat}")
        if n_feat:
            x[rows] = feats.to(x.dtype)
    return x


def _prompt_order(cfg, items, kind_dumps):
    """The vision dumps of the image batch and the video batch (kind_dumps: {False: dict, True: dict}) as one dict
    with each input's rows in prompt order, as a tower run once per input writes them. Every dumped tensor holds
    each input's rows contiguously (patch rows, or merged rows for "merger")."""
    unit = cfg.merge * cfg.merge
    names = set(kind_dumps[False]) | set(kind_dumps[True])
    out = {}
    for name in names:
        at = {False: 0, True: 0}
        parts = []
        for it in items:
            video = isinstance(it, Video)
            t, h, w = it.grid if video else it[1]
            n = t * h * w // (unit if name == "merger" else 1)
            parts.append(kind_dumps[video][name][at[video]:at[video] + n])
            at[video] += n
        out[name] = torch.cat(parts, dim=0)
    return out


def prefill(cfg, W, input_ids, images, dumps=None):
    """Whole multimodal prefill. images: list of (pixel_values [n_i, C*Tp*P*P], (t, h, w)) and Video items, in the
    order of their placeholders; they are split into transformers' pixel_values / image_grid_thw and
    pixel_values_videos / video_grid_thw / second_per_grid_ts, each kind through the tower in one batch
    (get_image_features, get_video_features). Returns (logits [L, V], cache, delta)."""
    stills = [it for it in images if not isinstance(it, Video)]
    videos = [it for it in images if isinstance(it, Video)]
    grids = [g for _, g in stills]
    video_grids = [v.grid for v in videos]
    embeds_of, kind_dumps = {}, {False: {}, True: {}}
    for video, batch, batch_grids in ((False, [p for p, _ in stills], grids), (True, [v.pixels for v in videos],
                                                                              video_grids)):
        if batch:
            d = kind_dumps[video] if dumps is not None else None
            embeds_of[video] = vision_forward(cfg, W, torch.cat(batch, dim=0), batch_grids, d)
            if d is not None:
                d["merger"] = embeds_of[video]
    if dumps is not None and images:
        dumps.update(_prompt_order(cfg, images, kind_dumps))
    embeds = embed_inputs(cfg, W, input_ids, embeds_of.get(False), embeds_of.get(True))
    pos, delta = rope_index(cfg, input_ids, grids, video_grids, [v.seconds for v in videos] if videos else None)
    if dumps is not None:
        dumps["position_ids"] = pos
        dumps["rope_delta"] = torch.tensor([delta], dtype=torch.int64)
        dumps["inputs_embeds"] = embeds
    cache = [None] * cfg.layers
    logits = text_forward(cfg, W, embeds, pos, cache, 0, dumps)
    if dumps is not None:
        dumps["logits"] = logits
    return logits, cache, delta


def decode_step(cfg, W, token, cache, past, delta):
    """One cached step as transformers' generate does it: the new token sits at cache position `past`, and all three
    M-RoPE axes use past + rope delta (Qwen2_5_VLModel.forward, the rope_deltas branch). Returns logits [V]."""
    embeds = W["model.embed_tokens.weight"][torch.tensor([token])]
    pos = torch.full((3, 1), past + delta, dtype=torch.int64)
    return text_forward(cfg, W, embeds, pos, cache, past)[0]


def greedy(cfg, W, input_ids, images, max_new, eos_ids, prefill_fn=None, decode_fn=None):
    """Greedy decoding with the KV cache (do_sample False, no logits processors). Stops after an eos id (kept in the
    output, as generate does) or max_new tokens. Returns (tokens list, per-step float32 logits [n, V]).
    prefill_fn / decode_fn (same signatures as prefill / decode_step) let another model family reuse this loop."""
    prefill_fn = prefill_fn or prefill
    decode_step_fn = decode_fn or decode_step
    logits, cache, delta = prefill_fn(cfg, W, input_ids, images)
    step_logits = [logits[-1].float()]
    tokens = [int(torch.argmax(step_logits[-1]))]
    past = input_ids.shape[0]
    while len(tokens) < max_new and tokens[-1] not in eos_ids:
        step_logits.append(decode_step_fn(cfg, W, tokens[-1], cache, past, delta).float())
        tokens.append(int(torch.argmax(step_logits[-1])))
        past += 1
    return tokens, torch.stack(step_logits)
