"""Plain-torch reference of the Qwen3-VL / Qwen3-VL-MoE vision tower (identical in both): Conv3d patch embedding
with bias, learned position embedding bilinearly interpolated to each image's grid, 2-D rotary attention per frame,
LayerNorm blocks with a gelu_pytorch_tanh MLP, the patch merger and the DeepStack mergers.

Follows transformers 5.0.0.dev0 (git ccc7d90bcb) models/qwen3_vl/modeling_qwen3_vl.py ("vl:"); written from its
behaviour, not copied. Rows are patches in the image processor's order (per image, per frame, 2x2 merge blocks
row-major, the 4 patches of a block row-major); Qwen3-VL has no window reordering, so the tower keeps that order.

Shape legend: N patches, M = N / 4 merged tokens, D vision hidden, Hd vision head dim (D / heads), G position-embedding
grid side (sqrt(num_position_embeddings)), O out_hidden_size (= text hidden).
"""

import torch
import torch.nn.functional as F

import qwen2_vl_model as qm
import qwen3_model as q3

VP = "model.visual."


def patch_embed(cfg, W, pixel_values):
    """vl: Qwen3VLVisionPatchEmbed.forward: Conv3d(C -> D, kernel = stride = (Tp, P, P), bias=True) on each row
    viewed as (C, Tp, P, P); a matmul with the flattened kernel (the same maths; see qwen2_vl_model.patch_embed for
    why not conv3d). [N, C*Tp*P*P] -> [N, D]."""
    w = W[VP + "patch_embed.proj.weight"]
    return F.linear(pixel_values.to(w.dtype), w.reshape(w.shape[0], -1), W[VP + "patch_embed.proj.bias"])


def block_order(a, t, h, w, m):
    """[t, h, w, ...] in row-major patch order -> [t*h*w, ...] in merge-block order (frame, block row, block col,
    row in block, col in block)."""
    rest = a.shape[3:]
    a = a.reshape(t, h // m, m, w // m, m, *rest).permute(0, 1, 3, 2, 4, *range(5, 5 + len(rest)))
    return a.reshape(t * h * w, *rest)


def pos_embed_interpolate(cfg, W, grid_thw):
    """vl: Qwen3VLVisionModel.fast_pos_embed_interpolate. The G x G table pos_embed.weight is sampled bilinearly at
    y_r = linspace(0, G-1, h)[r], x_c = linspace(0, G-1, w)[c] (float32 linspace, align-corners style): with
    y0 = int(y), y1 = min(y0 + 1, G-1), dy = y - y0 (same for x), the embedding is
    (1-dy)(1-dx) T[y0,x0] + (1-dy)dx T[y0,x1] + dy(1-dx) T[y1,x0] + dy dx T[y1,x1], summed in that order, the four
    weights computed in float32 and cast to the table's dtype. Repeated for each frame, then put in merge-block
    order. Returns [N, D] matching the pixel rows."""
    table = W[VP + "pos_embed.weight"]
    side = cfg.pos_side
    out = []
    for t, h, w in grid_thw:
        ys = torch.linspace(0, side - 1, h)
        xs = torch.linspace(0, side - 1, w)
        y0, x0 = ys.int(), xs.int()
        y1, x1 = (y0 + 1).clamp(max=side - 1), (x0 + 1).clamp(max=side - 1)
        dy, dx = ys - y0, xs - x0
        corners = [(y0, x0, (1 - dy)[:, None] * (1 - dx)[None]), (y0, x1, (1 - dy)[:, None] * dx[None]),
                   (y1, x0, dy[:, None] * (1 - dx)[None]), (y1, x1, dy[:, None] * dx[None])]
        acc = None
        for yi, xi, wt in corners:
            idx = (yi.long()[:, None] * side + xi.long()[None]).flatten()
            term = table[idx] * wt.flatten().to(table.dtype)[:, None]
            acc = term if acc is None else acc + term
        grid = acc.reshape(1, h, w, -1).expand(t, h, w, acc.shape[-1])
        out.append(block_order(grid, t, h, w, cfg.merge))
    return torch.cat(out)


def layer_norm(W, name, x):
    """vl: nn.LayerNorm(eps=1e-6) with weight and bias (norm1, norm2, merger norms)."""
    return F.layer_norm(x, (x.shape[-1],), W[name + ".weight"], W[name + ".bias"], 1e-6)


def vision_block(cfg, W, i, x, cu_seqlens, cos, sin):
    """vl: Qwen3VLVisionBlock.forward: x + attn(norm1(x)); x + linear_fc2(gelu_tanh(linear_fc1(norm2(x)))).
    The attention (fused qkv with bias, 2-D RoPE in float32 with rotate_half, attention inside each frame, proj with
    bias) is Qwen2-VL's VisionAttention, reused from qwen2_vl_model."""
    p = f"{VP}blocks.{i}."
    x = x + qm.vision_attention(cfg, W, p + "attn.", layer_norm(W, p + "norm1", x), cu_seqlens, cos, sin)
    h = F.linear(layer_norm(W, p + "norm2", x), W[p + "mlp.linear_fc1.weight"], W[p + "mlp.linear_fc1.bias"])
    return x + F.linear(q3.act(cfg.vact, h), W[p + "mlp.linear_fc2.weight"], W[p + "mlp.linear_fc2.bias"])


def patch_merger(cfg, W, p, x, postshuffle):
    """vl: Qwen3VLVisionPatchMerger.forward. The merger (postshuffle False): LayerNorm(D) on each patch, then the 4
    rows of a merge block concatenated -> [M, 4D]. DeepStack mergers (use_postshuffle_norm True): concatenate first,
    LayerNorm(4D) on the 4D vector. Then linear_fc1 (4D -> 4D), exact GELU (nn.GELU()), linear_fc2 (4D -> O)."""
    unit = cfg.vdim * cfg.merge * cfg.merge
    x = layer_norm(W, p + "norm", x.reshape(-1, unit)) if postshuffle else layer_norm(W, p + "norm", x).reshape(-1, unit)
    x = F.gelu(F.linear(x, W[p + "linear_fc1.weight"], W[p + "linear_fc1.bias"]))
    return F.linear(x, W[p + "linear_fc2.weight"], W[p + "linear_fc2.bias"])


def vision_forward(cfg, W, pixel_values, grid_thw, dumps=None):
    """vl: Qwen3VLVisionModel.forward. pixel_values [N, C*Tp*P*P], grid_thw list of (t, h, w) in patches.
    Returns (merger output [M, O], DeepStack features: list of [M, O], one per deepstack_visual_indexes entry, in
    that order: entry j comes from the output of block deepstack_visual_indexes[j] through deepstack_merger_list.j).
    dumps receives patch_embed, pos_embed (patch_embed + interpolated position embedding), vision_block_{i},
    merger, deepstack_{j}; all rows in the processor's (= the tower's) order."""
    x = patch_embed(cfg, W, pixel_values)
    if dumps is not None:
        dumps["patch_embed"] = x
    x = x + pos_embed_interpolate(cfg, W, grid_thw)
    if dumps is not None:
        dumps["pos_embed"] = x
    rope = qm.vision_rope(cfg, grid_thw)  # (row, col) angles in merge-block order, theta 10000, float32
    emb = torch.cat((rope, rope), dim=-1)
    cos, sin = emb.cos(), emb.sin()
    cu = qm.frame_cu_seqlens(grid_thw)  # one full-attention segment per frame
    deep = []
    for i in range(cfg.vdepth):
        x = vision_block(cfg, W, i, x, cu, cos, sin)
        if dumps is not None:
            dumps[f"vision_block_{i}"] = x
        if i in cfg.deepstack:
            j = cfg.deepstack.index(i)
            deep.append(patch_merger(cfg, W, f"{VP}deepstack_merger_list.{j}.", x, postshuffle=True))
    merged = patch_merger(cfg, W, VP + "merger.", x, postshuffle=False)
    if dumps is not None:
        dumps["merger"] = merged
        for j, d in enumerate(deep):
            dumps[f"deepstack_{j}"] = d
    return merged, deep
