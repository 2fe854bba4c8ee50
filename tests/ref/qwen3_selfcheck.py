"""Self-checks of the Qwen3-family reference (run by `qwen3_ref.py self-check`, ctest ref_qwen3_selfcheck).

Each check recomputes a piece a second, independent way, so a slip in qwen3_model.py / qwen3_vision.py shows up:

    | check                   | first way (reference)                        | second way                                   |
    |-------------------------|----------------------------------------------|----------------------------------------------|
    | config forms            | 5.x config.json (rope_parameters, dtype)     | 4.x config.json (rope_scaling + rope_theta)  |
    | MoE                     | routed experts only (index_add / batched)    | dense loop over all E experts, masked weight |
    | shared expert (q2moe)   | sigmoid(gate) * shared MLP added to routed   | one more dense expert, weight 1/(1+e^-(h.g)) |
    |                         |                                              | by hand; it and its gate are not negligible  |
    | Qwen2-MoE defaults      | norm_topk_prob, qkv_bias absent              | weights sum below 1; q/k/v biases loaded     |
    | fused expert stacks     | gate_up_proj [E,H,2I] / down_proj [E,I,H]    | the same split into per-expert Linear weights|
    | routing coverage        | router_topk of text_long / two_images        | most experts must be used in every MoE layer |
    | interleaved M-RoPE      | apply_interleaved_mrope port (strided slices)| per-frequency axis table, explicit cos/sin   |
    | position interpolation  | fast_pos_embed_interpolate port              | bilinear formula in float64, per patch       |
    | q/k norm + attention    | vectorised attention                         | per-head loops, hand RMSNorm and rotation    |
    | Qwen2 decoder           | qwen3_model                                  | qwen2_vl_model's decoder (equal M-RoPE rows) |
    | DeepStack               | additions inside text_forward                | layer 0 rerun without them: difference       |
    | vision                  | matmul patch embed, per-frame attention      | Conv3d with bias, block-diagonal dense mask  |
    | rope index              | qwen2_vl_model.rope_index (t step 1)         | hand-written positions                       |
    | KV-cache decoding       | greedy() one token at a time                 | one full forward over prompt + tokens        |
    | sliding window          | masked attention, layer windows from config  | per-head loops keeping the last w positions; |
    |                         |                                              | 4.x == 5.x (layer_types); decoding; w >= L   |
    | sparse checkpoint       | header + hole                                | sizes, shapes, parameter counts, disk blocks |
    | bf16 compute            | bf16 weights and activations                 | float32 run, loose bound                     |
    | magnitudes              | every dump                                   | RMS in (0.1, 20): errors are meaningful      |
"""

import copy
import json
import math
import os
import time
import types

import torch
import torch.nn.functional as F

import qwen2_vl_model as qm
import qwen3_ckpt as ck
import qwen3_model as q3
import qwen3_ref as ref
import qwen3_vision as qv
import ref_selfcheck as rs
import safetensors_io as st

FAILS = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        FAILS.append(what)


def rel_err(a, b):
    return float((a.float() - b.float()).abs().max() / b.float().abs().max().clamp_min(1e-30))


def check_config_forms(variant, W, ids, images):
    c4, c5 = q3.Config(ck.tiny_config(variant, "float32", 4)), q3.Config(ck.tiny_config(variant, "float32", 5))
    skip = ("raw", "text")
    same = {k: v for k, v in vars(c4).items() if k not in skip} == {k: v for k, v in vars(c5).items() if k not in skip}
    l4, _, _ = q3.prefill(c4, W, ids, images)
    l5, _, _ = q3.prefill(c5, W, ids, images)
    check(same and torch.equal(l4, l5), f"{variant}: 4.x and 5.x config.json give the same model and logits")


def dense_moe(cfg, W, p, h):
    """Every expert on every token, weighted by its top-k weight or 0; a shared expert as one more expert whose
    weight is 1 / (1 + e^-(h . g)) for every token."""
    top_w, top_i, _ = q3.route(cfg, W, p, h)
    mask = torch.zeros(h.shape[0], cfg.num_experts, dtype=top_w.dtype).scatter_(1, top_i, top_w)
    experts = [q3.expert_weights(cfg, W, p, e) for e in range(cfg.num_experts)]
    if cfg.shared_intermediate:
        experts.append(tuple(W[f"{p}shared_expert.{n}_proj.weight"] for n in ("gate", "up", "down")))
        z = (h * W[p + "shared_expert_gate.weight"][0]).sum(-1, keepdim=True)
        mask = torch.cat([mask, 1 / (1 + torch.exp(-z))], dim=1)
    out = torch.zeros_like(h)
    for e, (g, u, d) in enumerate(experts):
        out = out + F.linear(F.silu(F.linear(h, g)) * F.linear(h, u), d) * mask[:, e:e + 1]
    return out


def check_shared_expert(cfg, W, h, p, label):
    """The shared expert and its gate carry weight (so a comparison that lost either would show): the shared part's
    RMS is a fair share of the routed part's, the gate is far from 0 and 1 and varies over the tokens, and the
    routed weights are not renormalised (Qwen2MoeConfig's norm_topk_prob default is False)."""
    shared = q3.shared_expert(cfg, W, p, h)
    cfg2 = copy.copy(cfg)
    cfg2.shared_intermediate = 0
    routed, _ = q3.moe_mlp(cfg2, W, p, h)
    ratio = float(shared.pow(2).mean().sqrt() / routed.pow(2).mean().sqrt())
    gate = torch.sigmoid(F.linear(h, W[p + "shared_expert_gate.weight"]))
    top_w, _, _ = q3.route(cfg, W, p, h)
    sums = top_w.sum(-1)
    check(0.3 < ratio < 3 and 0.02 < float(gate.min()) and float(gate.max()) < 0.98 and float(gate.std()) > 0.05
          and not cfg.norm_topk and float(sums.max()) < 0.999 and float(sums.mean()) < 0.9,
          f"{label}: shared expert RMS {ratio:.2f} x routed, gate in [{float(gate.min()):.2f}, "
          f"{float(gate.max()):.2f}] (std {float(gate.std()):.2f}), top-k weights sum to {float(sums.mean()):.2f} "
          f"on average, at most {float(sums.max()):.3f} (not renormalised)")


def unfuse(cfg, W):
    """Fused expert stacks -> per-expert Linear weights (Qwen3-MoE checkpoint names)."""
    out = {k: v for k, v in W.items() if ".mlp.experts." not in k}
    for i in range(cfg.layers):
        p = f"{cfg.prefix}layers.{i}.mlp.experts."
        if p + "gate_up_proj" not in W:
            continue
        gu, down = W[p + "gate_up_proj"], W[p + "down_proj"]
        inter = gu.shape[2] // 2
        for e in range(cfg.num_experts):
            out[f"{p}{e}.gate_proj.weight"] = gu[e, :, :inter].t().contiguous()
            out[f"{p}{e}.up_proj.weight"] = gu[e, :, inter:].t().contiguous()
            out[f"{p}{e}.down_proj.weight"] = down[e].t().contiguous()
    return out


def check_moe(cfg, W, ids, images, label):
    dumps = {}
    q3.prefill(cfg, W, ids, images, dumps)
    worst = 0.0
    for i in range(cfg.layers):
        if not cfg.layer_is_moe(i):
            continue
        p = f"{cfg.prefix}layers.{i}."
        h = qm.rms_norm(dumps[f"decoder_layer_{i - 1}"] if i else dumps["inputs_embeds"],
                        W[p + "input_layernorm.weight"], cfg.eps)  # any O(1) activations will do
        got, top_i = q3.moe_mlp(cfg, W, p + "mlp.", h)
        worst = max(worst, rel_err(got, dense_moe(cfg, W, p + "mlp.", h)))
        if cfg.shared_intermediate:
            check_shared_expert(cfg, W, h, p + "mlp.", f"{label} layer {i}")
        used = sorted(set(dumps[f"router_topk_{i}"].flatten().tolist()))
        check(len(used) >= cfg.num_experts - 2, f"{label}: layer {i} routes to {len(used)} of {cfg.num_experts} "
                                                f"experts {used}")
    check(worst < 1e-5, f"{label}: routed MoE{' + shared expert' if cfg.shared_intermediate else ''} == dense loop "
                        f"over all experts with masked weights ({worst:.1e})")
    kinds = ["moe" if cfg.layer_is_moe(i) else "dense" for i in range(cfg.layers)]
    check(kinds == ["moe", "dense", "moe"] and all((f"router_topk_{i}" in dumps) == (k == "moe")
                                                   for i, k in enumerate(kinds)),
          f"{label}: layer kinds {kinds} (mlp_only_layers [1]); router_topk dumped for MoE layers only")
    if cfg.fused_experts:
        cfg2 = copy.copy(cfg)
        cfg2.fused_experts = False
        W2 = unfuse(cfg, W)
        l1, _, _ = q3.prefill(cfg, W, ids, images)
        l2, _, _ = q3.prefill(cfg2, W2, ids, images)
        check(rel_err(l1, l2) < 1e-5, f"{label}: fused gate_up_proj/down_proj == per-expert weights "
                                      f"(gate = first I columns) ({rel_err(l1, l2):.1e})")


def check_mrope():
    for hd, section in ((24, [6, 3, 3]), (128, [24, 20, 20])):
        cfg = types.SimpleNamespace(head_dim=hd, rope_theta=5e6, mrope_section=section)
        pos = torch.stack([torch.arange(30) * 3, torch.arange(30) % 7, torch.arange(30) // 5 + 100])
        cos, sin = q3.rope_cos_sin(cfg, pos, torch.float32)
        axis = []
        for j in range(hd // 2):
            a = 1 if (j % 3 == 1 and j < 3 * section[1]) else 2 if (j % 3 == 2 and j < 3 * section[2]) else 0
            axis.append(a)
        counts = [axis.count(a) for a in range(3)]
        want_c = torch.zeros(30, hd, dtype=torch.float64)
        want_s = torch.zeros(30, hd, dtype=torch.float64)
        for j in range(hd // 2):
            f = 1.0 / (5e6 ** (2 * j / hd))
            ang = pos[axis[j]].double() * f
            for col in (j, j + hd // 2):
                want_c[:, col], want_s[:, col] = ang.cos(), ang.sin()
        err = max(float((cos.double() - want_c).abs().max()), float((sin.double() - want_s).abs().max()))
        check(counts == section and err < 5e-5,
              f"interleaved M-RoPE {section} over Hd {hd}: axis counts {counts}, per-frequency table ({err:.1e})")


def check_pos_interp(cfg, W):
    table = W["model.visual.pos_embed.weight"].double()
    G = cfg.pos_side
    grids = [(1, 2, 2), (1, 4, 6), (1, 10, 8), (2, 6, 18), (1, 12, 4)]
    got = qv.pos_embed_interpolate(cfg, W, grids)
    rows = []
    for t, h, w in grids:
        for _ in range(t):
            for br in range(h // 2):
                for bc in range(w // 2):
                    for r in range(2 * br, 2 * br + 2):
                        for c in range(2 * bc, 2 * bc + 2):
                            y = r * (G - 1) / (h - 1) if h > 1 else 0.0
                            x = c * (G - 1) / (w - 1) if w > 1 else 0.0
                            y0, x0 = int(y), int(x)
                            y1, x1 = min(y0 + 1, G - 1), min(x0 + 1, G - 1)
                            dy, dx = y - y0, x - x0
                            rows.append((1 - dy) * (1 - dx) * table[y0 * G + x0] + (1 - dy) * dx * table[y0 * G + x1]
                                        + dy * (1 - dx) * table[y1 * G + x0] + dy * dx * table[y1 * G + x1])
    err = rel_err(got, torch.stack(rows))
    check(err < 1e-5, f"position-embedding interpolation == bilinear formula, merge-block order {grids} ({err:.1e})")


def manual_attention(cfg, W, p, h, pos, window=None):
    """Attention for one layer by per-head loops: hand q/k RMSNorm, explicit pairwise rotation, causal softmax
    (query i keeps keys i - window < j <= i when window is set)."""
    n, hd, half = h.shape[0], cfg.head_dim, cfg.head_dim // 2
    Wq, Wk, Wv = (W[p + f"{x}_proj.weight"].double() for x in "qkv")
    hh = h.double()
    freqs = q3.interleave_mrope(pos.double().unsqueeze(-1) * q3.inv_freq(cfg).double(), cfg.mrope_section) \
        if cfg.mrope_section else pos[0].double().unsqueeze(-1) * q3.inv_freq(cfg).double()
    outs = []
    for j in range(cfg.heads):
        kv = j // (cfg.heads // cfg.kv_heads)
        q = hh @ Wq[j * hd:(j + 1) * hd].t()
        k = hh @ Wk[kv * hd:(kv + 1) * hd].t()
        v = hh @ Wv[kv * hd:(kv + 1) * hd].t()
        if cfg.qkv_bias:
            q = q + W[p + "q_proj.bias"][j * hd:(j + 1) * hd].double()
            k = k + W[p + "k_proj.bias"][kv * hd:(kv + 1) * hd].double()
            v = v + W[p + "v_proj.bias"][kv * hd:(kv + 1) * hd].double()
        if cfg.qk_norm:
            q = q / (q.pow(2).mean(-1, keepdim=True) + cfg.eps).sqrt() * W[p + "q_norm.weight"].double()
            k = k / (k.pow(2).mean(-1, keepdim=True) + cfg.eps).sqrt() * W[p + "k_norm.weight"].double()

        def rot(a):
            out = a.clone()
            for i in range(half):  # channel i pairs with i + Hd/2 and turns by angle freqs[:, i]
                c, s = freqs[:, i].cos(), freqs[:, i].sin()
                out[:, i] = a[:, i] * c - a[:, i + half] * s
                out[:, i + half] = a[:, i + half] * c + a[:, i] * s
            return out

        q, k = rot(q), rot(k)
        scores = (q @ k.t()) / math.sqrt(hd)
        scores = scores.masked_fill(torch.ones(n, n, dtype=torch.bool).triu(1), float("-inf"))
        if window is not None:
            scores = scores.masked_fill(torch.ones(n, n, dtype=torch.bool).tril(-window), float("-inf"))
        outs.append(torch.softmax(scores, -1) @ v)
    o = torch.cat(outs, dim=1) @ W[p + "o_proj.weight"].double().t()
    return o + W[p + "o_proj.bias"].double() if cfg.o_bias else o


def check_attention(cfg, W, ids, images, label):
    dumps = {}
    q3.prefill(cfg, W, ids, images, dumps)
    p = f"{cfg.prefix}layers.1."
    h = qm.rms_norm(dumps["decoder_layer_0"], W[p + "input_layernorm.weight"], cfg.eps)
    cos, sin = q3.rope_cos_sin(cfg, dumps["position_ids"], h.dtype)
    got = q3.attention(cfg, W, p + "self_attn.", h, cos, sin, [None] * cfg.layers, 1, 0)
    err = rel_err(got, manual_attention(cfg, W, p + "self_attn.", h, dumps["position_ids"]))
    check(err < 1e-5, f"{label}: attention (q/k norm {cfg.qk_norm}, head_dim {cfg.head_dim}) == per-head manual ({err:.1e})")


def check_sliding(variant):
    """use_sliding_window with sliding_window 6 and max_window_layers 1 over 40 tokens: which layers slide (qwen2 /
    qwen3 from layer 1 on, qwen3_moe all), the sliding layer against per-head loops, 4.x (max_window_layers) against
    5.x (layer_types) configs, KV-cache decoding past the window, a window of L equal to none, and a change."""
    c4, c5 = (q3.Config(ck.tiny_config(variant, "float32", f, (6, 1))) for f in (4, 5))
    plain = q3.Config(ck.tiny_config(variant))
    want = [6, 6, 6] if variant == "qwen3_moe" else [None, 6, 6]
    check(c4.layer_window == want and c5.layer_window == want,
          f"{variant} sliding: layer windows {c5.layer_window} (4.x {c4.layer_window})")
    W = ck.make_tiny_weights(c5, 7, torch.float32)
    ids, images = ref.build_inputs(c5, "text_long", 1234)
    dumps = {}
    l5, _, _ = q3.prefill(c5, W, ids, images, dumps)
    p = f"{c5.prefix}layers.1."
    h = qm.rms_norm(dumps["decoder_layer_0"], W[p + "input_layernorm.weight"], c5.eps)
    cos, sin = q3.rope_cos_sin(c5, dumps["position_ids"], h.dtype)
    got = q3.attention(c5, W, p + "self_attn.", h, cos, sin, [None] * c5.layers, 1, 0)
    err = rel_err(got, manual_attention(c5, W, p + "self_attn.", h, dumps["position_ids"], 6))
    check(err < 1e-5, f"{variant} sliding: window-6 attention == per-head manual ({err:.1e})")
    l4, _, _ = q3.prefill(c4, W, ids, images)
    check(torch.equal(l4, l5), f"{variant} sliding: 4.x config (max_window_layers) == 5.x config (layer_types)")
    check_decode(c5, W, ids, images, f"{variant} sliding")
    wide = q3.Config(ck.tiny_config(variant, "float32", 5, (ids.numel() + 16, 1)))
    lw, _, _ = q3.prefill(wide, W, ids, images)
    lp, _, _ = q3.prefill(plain, W, ids, images)
    change = rel_err(l5, lp)
    check(torch.equal(lw, lp) and change > 1e-2,
          f"{variant} sliding: a window of L + 16 == no window; window 6 changes the logits by {change:.2f}")


def check_qwen2_vs_qm(cfg, W, ids):
    ns = types.SimpleNamespace(hidden=cfg.hidden, heads=cfg.heads, kv_heads=cfg.kv_heads, head_dim=cfg.head_dim,
                               layers=cfg.layers, eps=cfg.eps, rope_theta=cfg.rope_theta, mrope_section=[2, 3, 3],
                               tie=cfg.tie, intermediate=cfg.intermediate)
    pos = torch.arange(ids.numel()).expand(3, -1)
    want = qm.text_forward(ns, W, W["model.embed_tokens.weight"][ids], pos, [None] * cfg.layers, 0)
    got, _, _ = q3.prefill(cfg, W, ids, [])
    check(rel_err(got, want) < 1e-6, f"qwen2: logits == qwen2_vl_model's decoder on equal position rows "
                                     f"({rel_err(got, want):.1e})")


def check_deepstack(cfg, W, ids, images, label):
    dumps = {}
    q3.prefill(cfg, W, ids, images, dumps)
    cos, sin = q3.rope_cos_sin(cfg, dumps["position_ids"], torch.float32)
    plain, _ = q3.decoder_layer(cfg, W, 0, dumps["inputs_embeds"], cos, sin, [None] * cfg.layers, 0)
    diff = dumps["decoder_layer_0"] - plain
    rows = ids == cfg.image_token_id
    ok = torch.equal(diff[~rows], torch.zeros_like(diff[~rows])) and rel_err(diff[rows], dumps["deepstack_0"]) < 1e-6
    check(ok and len(cfg.deepstack) == 2 and "deepstack_1" in dumps,
          f"{label}: decoder_layer_0 - layer 0 without DeepStack == deepstack_0 at image rows, 0 elsewhere")


def check_vision(cfg, W, images, label):
    pv = torch.cat([p for p, _ in images])
    grids = [g for _, g in images]
    x = pv.reshape(-1, cfg.in_chans, cfg.temporal_patch, cfg.patch, cfg.patch)
    conv = F.conv3d(x, W["model.visual.patch_embed.proj.weight"], W["model.visual.patch_embed.proj.bias"],
                    stride=(cfg.temporal_patch, cfg.patch, cfg.patch)).reshape(-1, cfg.vdim)
    check(rel_err(qv.patch_embed(cfg, W, pv), conv) < 1e-5, f"{label}: patch embed matmul == Conv3d with bias")
    got, _ = qv.vision_forward(cfg, W, pv, grids)
    saved = qm.vision_attention
    qm.vision_attention = rs.dense_vision_attention
    try:
        want, _ = qv.vision_forward(cfg, W, pv, grids)
    finally:
        qm.vision_attention = saved
    check(rel_err(got, want) < 1e-5, f"{label}: per-frame vision attention == dense block-diagonal mask")


def check_rope_index(cfg):
    s, i, e = cfg.vision_start_token_id, cfg.image_token_id, cfg.vision_end_token_id
    ids = torch.tensor([7, s] + [i] * 6 + [e, 9, s] + [i] * 2 + [e])
    pos, delta = qm.rope_index(cfg, ids, [(1, 4, 6), (1, 2, 4)])
    want = torch.tensor([[0, 1, 2, 2, 2, 2, 2, 2, 5, 6, 7, 8, 8, 10],
                         [0, 1, 2, 2, 2, 3, 3, 3, 5, 6, 7, 8, 8, 10],
                         [0, 1, 2, 3, 4, 2, 3, 4, 5, 6, 7, 8, 9, 10]])
    check(torch.equal(pos, want) and delta == -3, "qwen3_vl rope index of text + 2 images + text")


def check_decode(cfg, W, ids, images, label):
    tokens, step_logits = q3.greedy(cfg, W, ids, images, 16, [])
    logits, _, _ = q3.prefill(cfg, W, torch.cat([ids, torch.tensor(tokens[:-1])]), images)
    err = rel_err(step_logits, logits[ids.numel() - 1:])
    check(len(tokens) == 16 and err < 1e-5, f"{label}: KV-cache decoding logits == full forward ({err:.1e})")


def check_magnitudes(cfg, W, ids, images, label):
    dumps = {}
    q3.prefill(cfg, W, ids, images, dumps)
    bad = [f"{k}={float(t.float().pow(2).mean().sqrt()):.3g}" for k, t in dumps.items()
           if t.is_floating_point() and not 0.1 < float(t.float().pow(2).mean().sqrt()) < 20]
    check(not bad, f"{label}: every dumped activation has RMS in (0.1, 20) {' '.join(bad)}")


def check_sparse(tmp, variant):
    cfg = q3.Config(ck.tiny_config(variant))
    out = os.path.join(tmp, "sparse-" + variant)
    os.makedirs(out)
    paths = ck.write_sparse(out, cfg, 40000)
    header = {}
    for path in paths:
        with open(path, "rb") as f:
            n = int.from_bytes(f.read(8), "little")
            h = json.loads(f.read(n))
        h.pop("__metadata__")
        end = max(v["data_offsets"][1] for v in h.values())
        ok_size = os.path.getsize(path) == 8 + n + end
        header.update(h)
    specs = {name: shape for name, shape, _, _ in ck.weight_specs(cfg)}
    shapes_ok = {k: v["shape"] for k, v in header.items()} == specs and all(v["dtype"] == "BF16" for v in header.values())
    counts = ck.param_counts(cfg)
    tiny = sum(t.numel() for t in ck.make_tiny_weights(cfg, 0, torch.float32).values())
    zeros = all(float(t.float().abs().max()) == 0 for t in st.read_folder(out).values())
    check(ok_size and shapes_ok and counts["total"] == tiny and zeros and len(paths) > 1,
          f"{variant}: sparse checkpoint ({len(paths)} shards): sizes, names, shapes, {tiny} parameters, data zeros")


def run(tmp):
    start = time.time()
    for variant in ck.VARIANTS:
        t0 = time.time()
        cfg = q3.Config(ck.tiny_config(variant))
        W = ck.make_tiny_weights(cfg, 7, torch.float32)
        cases = ["text", "one_image", "two_images"] if cfg.is_vl else ["text", "text_long"]
        inputs = {c: ref.build_inputs(cfg, c, 1234) for c in cases}
        check_config_forms(variant, W, *inputs[cases[-1]])
        check_attention(cfg, W, *inputs[cases[-1]], variant)
        if variant == "qwen2":
            check_qwen2_vs_qm(cfg, W, inputs["text"][0])
        if cfg.is_moe:
            check_moe(cfg, W, *inputs["two_images" if cfg.is_vl else "text_long"], variant)
        if cfg.is_vl:
            check_rope_index(cfg)
            check_pos_interp(cfg, W)
            check_deepstack(cfg, W, *inputs["two_images"], variant)
            check_vision(cfg, W, inputs["two_images"][1], variant)
        for case, (ids, images) in inputs.items():
            check_magnitudes(cfg, W, ids, images, f"{variant}/{case}")
            check_decode(cfg, W, ids, images, f"{variant}/{case}")
        Wb = {k: v.to(torch.bfloat16) for k, v in W.items()}
        ids, images = inputs[cases[-1]]
        images = [(p.to(torch.bfloat16).float(), g) for p, g in images]
        lf, _, _ = q3.prefill(cfg, {k: v.float() for k, v in Wb.items()}, ids, images)
        lb, _, _ = q3.prefill(cfg, Wb, ids, images)
        err = float((lb.float() - lf).norm() / lf.norm())
        bound = 0.1 if cfg.is_moe else 0.05  # bf16 may flip a near-tie expert choice: a larger, local change
        check(err < bound, f"{variant}: bf16 compute logits near float32 (relative L2 error {err:.3f})")
        check_sparse(tmp, variant)
        print(f"     {variant}: {time.time() - t0:.2f} s")
    for variant in ("qwen2", "qwen3", "qwen3_moe"):
        check_sliding(variant)
    check_mrope()
    print(f"{len(FAILS)} failures, {time.time() - start:.1f} s")
    return not FAILS
