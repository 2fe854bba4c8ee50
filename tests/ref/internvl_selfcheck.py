"""Internal consistency checks of the InternVL reference (internvl_ref.py self-check; ctest ref_internvl_selfcheck).

Each piece is recomputed another way: the pixel shuffle against its closed form, bicubic interpolation at the
trained size against the identity (why the original's always-interpolate equals transformers' skip), the layout
converter by a round trip and by equal logits in both layouts, the 6B's whole-width q/k norm against per-head
loops, and InternLM2's grouped wqkv against one packed from separate per-head q, k and v weights.
"""
import torch
import torch.nn.functional as F

import internlm2_model as lm2
import internvl_ref as ref


def check(results, name, ok, detail=""):
    results.append(ok)
    print("%s  %s %s" % ("ok  " if ok else "FAIL", name, detail))


def shuffle_closed_form(x, s, v1):
    """Output row (a, b) (v1: rows listed b-major) is the concatenation over (di, dj) of x[a s + di, b s + dj]."""
    n, h, w, c = x.shape
    rows = []
    for t in range(n):
        order = [(a, b) for b in range(w // s) for a in range(h // s)] if v1 else \
            [(a, b) for a in range(h // s) for b in range(w // s)]
        for a, b in order:
            rows.append(torch.cat([x[t, a * s + di, b * s + dj] for di in range(s) for dj in range(s)]))
    return torch.stack(rows).reshape(n, h // s, w // s, c * s * s)


def run(_tmp):
    results = []
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 8, 8, 5, generator=gen)
    for version in ("v1", "v2"):
        got = ref.pixel_shuffle(x, 0.5, version)
        want = shuffle_closed_form(x, 2, version == "v1")
        check(results, f"pixel shuffle {version} = closed form", torch.equal(got, want))
    grid = torch.randn(1, 5, 8, 8, generator=gen)
    same = F.interpolate(grid, size=(8, 8), mode="bicubic", align_corners=False)
    check(results, "bicubic at the trained size is the identity", torch.equal(same, grid))

    for vision, llm in (("300m", "qwen2"), ("6b", "qwen3"), ("300m", "internlm2")):
        cfg = ref.Config(ref.tiny_config("original", llm, vision, -1, "v2"))
        W = ref.make_weights(cfg, 5)
        raw_hf, W_hf = ref.convert(cfg, W)
        raw_back, W_back = ref.convert(ref.Config(raw_hf), W_hf)
        back = ref.Config(raw_back)
        fields = ("depth", "width", "heads", "act", "patch", "image_size", "qkv_bias", "qk_norm", "rms", "eps", "ratio",
                  "select", "ps_version", "image_token_id")
        same = all(getattr(back, f) == getattr(cfg, f) for f in fields)
        same = same and raw_back["llm_config"] == cfg.raw["llm_config"]
        same = same and set(W_back) == set(W) and all(torch.equal(W[k], W_back[k]) for k in W)
        check(results, f"{vision} + {llm}: original -> transformers -> original keeps the weights and the model's fields", same)
        orig, hf = ref.Model(cfg, W), ref.Model(ref.Config(raw_hf), W_hf)
        for case in ("two_images", "interp"):
            ids, images, _, _ = ref.build_inputs(cfg, case, 3)
            a = ref.prefill(orig, None, ids, images)[0]
            b = ref.prefill(hf, None, ids, images)[0]
            err = float((a - b).abs().max())
            check(results, f"{vision} + {llm} {case}: the same logits in both layouts", err < 1e-5, "(%.2g)" % err)

    cfg = ref.Config(ref.tiny_config("hf", "qwen2", "6b", -1, "v2"))
    W = ref.make_weights(cfg, 2)
    b = f"{cfg.names['vision']}{cfg.names['layers']}0."
    xin = torch.randn(2, 5, cfg.width, generator=gen)
    got = ref.attention(cfg, W, b, xin)
    D = cfg.width // cfg.heads
    outs = []
    for t in range(2):
        q, k, v = (F.linear(xin[t], W[f"{b}attention.{c}_proj.weight"]) for c in "qkv")
        q = q / torch.sqrt((q * q).mean(-1, keepdim=True) + 1e-6) * W[b + "attention.q_norm.weight"]
        k = k / torch.sqrt((k * k).mean(-1, keepdim=True) + 1e-6) * W[b + "attention.k_norm.weight"]
        heads = []
        for h in range(cfg.heads):
            sl = slice(h * D, h * D + D)
            p = torch.softmax(q[:, sl] @ k[:, sl].t() / D ** 0.5, -1)
            heads.append(p @ v[:, sl])
        o = torch.cat(heads, -1)
        outs.append(F.linear(o, W[b + "attention.projection_layer.weight"], W[b + "attention.projection_layer.bias"]))
    err = float((torch.stack(outs) - got).abs().max())
    check(results, "6B attention = per-head loops with whole-width q/k RMSNorm", err < 1e-5, "(%.2g)" % err)
    grouped_wqkv(results, gen)
    return all(results)


def grouped_wqkv(results, gen):
    """wqkv packed by hand from per-head weights in the order the remote code's rearrange reads (for KV head j: its
    query heads j g .. j g + g - 1, then key j, then value j); split_wqkv must give back each head's projection."""
    cfg = lm2.Config(lm2.tiny_fields())
    D, H, g = cfg.head_dim, cfg.hidden, cfg.groups
    wq = torch.randn(cfg.heads, D, H, generator=gen)
    wk, wv = (torch.randn(cfg.kv_heads, D, H, generator=gen) for _ in range(2))
    rows = []
    for j in range(cfg.kv_heads):
        rows += [wq[j * g + i] for i in range(g)] + [wk[j], wv[j]]
    x = torch.randn(5, H, generator=gen)
    q, k, v = lm2.split_wqkv(cfg, F.linear(x, torch.cat(rows)))
    same = all(torch.allclose(q[:, h], x @ wq[h].t(), atol=1e-5) for h in range(cfg.heads))
    same = same and all(torch.allclose(k[:, j], x @ wk[j].t(), atol=1e-5) and
                        torch.allclose(v[:, j], x @ wv[j].t(), atol=1e-5) for j in range(cfg.kv_heads))
    check(results, f"InternLM2 wqkv: {g} query heads, then key and value, per KV head", same)
