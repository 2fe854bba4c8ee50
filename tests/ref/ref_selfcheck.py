"""Self-checks of the Qwen2-VL / Qwen2.5-VL reference (run by `qwen2_vl_ref.py self-check`, ctest ref_qwen2_vl_selfcheck).

Each check recomputes something a second, independent way, so a slip in qwen2_vl_model.py shows up:

    | check                | first way (reference)                  | second way                                  |
    |----------------------|----------------------------------------|---------------------------------------------|
    | safetensors          | ShardWriter / write_sharded            | read back; header bytes parsed by hand      |
    | window index         | get_window_index port (pad, permute)   | sort merged tokens by (frame, window, r, c) |
    | segmented attention  | per-segment attention over cu_seqlens  | dense attention with a block-diagonal mask  |
    | patch embed          | flattened matmul                       | Conv3d (float32)                            |
    | rope index           | get_rope_index port                    | hand-written positions                      |
    | KV-cache decoding    | greedy() logits, one token at a time   | one full forward over prompt + tokens       |
    | bf16 compute         | bf16 weights and activations           | float32 run, loose bound                    |
    | magnitudes           | every dump                             | must be O(1): errors are then meaningful    |
"""

import json
import os
import struct
import time

import torch
import torch.nn.functional as F

import qwen2_vl_model as qm
import qwen2_vl_ref as ref
import safetensors_io as st

FAILS = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        FAILS.append(what)


def rel_err(a, b):
    return float((a.float() - b.float()).abs().max() / b.float().abs().max().clamp_min(1e-30))


def check_safetensors(tmp, weights):
    path = os.path.join(tmp, "w.safetensors")
    st.write_file(path, weights)
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    check((8 + n) % 8 == 0 and blob[8 + n - 1:8 + n] in (b"}", b" "), "safetensors header padded to 8 bytes")
    name = "model.norm.weight"
    begin, end = header[name]["data_offsets"]
    raw = blob[8 + n + begin:8 + n + end]
    want = st.tensor_bytes(weights[name])
    check(raw == want, "safetensors data at the header's offsets")
    back = st.read_file(path)
    check(list(back) == list(weights) and all(torch.equal(back[k], weights[k]) for k in weights),
          f"safetensors round trip ({len(weights)} tensors, {next(iter(weights.values())).dtype})")
    shard_dir = os.path.join(tmp, "sharded")
    os.makedirs(shard_dir)
    specs = [(k, v.dtype, list(v.shape)) for k, v in weights.items()]
    paths = st.write_sharded(shard_dir, specs, lambda k, d, s: weights[k], 40000)
    back = st.read_folder(shard_dir)
    check(len(paths) > 1 and all(torch.equal(back[k], weights[k]) for k in weights),
          f"sharded write ({len(paths)} shards) + index read back")


def brute_window_order(cfg, grids):
    """Window order by sorting: merged token (frame, r, c) goes to window (r // ws, c // ws)."""
    ws = cfg.window_size // cfg.merge // cfg.patch
    keys, base, cu = [], 0, [0]
    for t, h, w in grids:
        gh, gw = h // cfg.merge, w // cfg.merge
        for f in range(t):
            sizes = {}
            for r in range(gh):
                for c in range(gw):
                    win = (r // ws, c // ws)
                    keys.append(((base, f) + win + (r, c), base + f * gh * gw + r * gw + c))
                    sizes[win] = sizes.get(win, 0) + 1
            for win in sorted(sizes):
                cu.append(cu[-1] + sizes[win] * cfg.merge * cfg.merge)
        base += t * gh * gw
    order = [idx for _, idx in sorted(keys)]
    return torch.tensor(order), cu


def check_window_index(cfg):
    for grids in ([(1, 8, 12)], [(1, 20, 28)], [(1, 4, 6), (1, 10, 8)], [(2, 6, 18), (1, 16, 16)]):
        order, cu = qm.window_index(cfg, grids)
        cu = torch.unique_consecutive(torch.tensor(cu)).tolist()
        want_order, want_cu = brute_window_order(cfg, grids)
        check(torch.equal(order, want_order) and cu == want_cu, f"window index and cu_window_seqlens {grids}")


def dense_vision_attention(cfg, W, p, x, cu_seqlens, cos, sin):
    """Same attention as qm.vision_attention, written as one masked dense attention over all patches."""
    n = x.shape[0]
    qkv = F.linear(x, W[p + "qkv.weight"], W[p + "qkv.bias"]).view(n, 3, cfg.vheads, cfg.vhead_dim)
    q, k, v = (qkv[:, i].transpose(0, 1).float() for i in range(3))
    half = cfg.vhead_dim // 2

    def rope(a):
        a1, a2 = a[..., :half], a[..., half:]
        return a * cos + torch.cat([-a2, a1], -1) * sin

    q, k = rope(q), rope(k)
    seg = torch.zeros(n, dtype=torch.int64)
    for i, (a, b) in enumerate(zip(cu_seqlens[:-1], cu_seqlens[1:])):
        seg[a:b] = i
    scores = q @ k.transpose(1, 2) / cfg.vhead_dim ** 0.5
    scores = scores.masked_fill(seg.view(-1, 1) != seg.view(1, -1), float("-inf"))
    out = (torch.softmax(scores, -1) @ v).transpose(0, 1).reshape(n, -1)
    return F.linear(out, W[p + "proj.weight"], W[p + "proj.bias"])


def check_vision(cfg, W, images, label):
    pv = torch.cat([p for p, _ in images])
    grids = [g for _, g in images]
    w = W["visual.patch_embed.proj.weight"]
    x = pv.reshape(-1, cfg.in_chans, cfg.temporal_patch, cfg.patch, cfg.patch)
    conv = F.conv3d(x, w, stride=(cfg.temporal_patch, cfg.patch, cfg.patch)).reshape(-1, cfg.vdim)
    check(rel_err(qm.patch_embed(cfg, W, pv), conv) < 1e-5, f"{label}: patch embed matmul == Conv3d")
    got = qm.vision_forward(cfg, W, pv, grids)
    saved = qm.vision_attention
    qm.vision_attention = dense_vision_attention
    try:
        want = qm.vision_forward(cfg, W, pv, grids)
    finally:
        qm.vision_attention = saved
    check(rel_err(got, want) < 1e-5, f"{label}: segmented vision attention == dense block-diagonal mask")


def check_rope_index(cfg):
    s, i, e = cfg.vision_start_token_id, cfg.image_token_id, cfg.vision_end_token_id
    ids = torch.tensor([7, 8, s] + [i] * 6 + [e, 9])
    pos, delta = qm.rope_index(cfg, ids, [(1, 4, 6)])
    want = torch.tensor([[0, 1, 2, 3, 3, 3, 3, 3, 3, 6, 7],
                         [0, 1, 2, 3, 3, 3, 4, 4, 4, 6, 7],
                         [0, 1, 2, 3, 4, 5, 3, 4, 5, 6, 7]])
    check(torch.equal(pos, want) and delta == -3, "rope index of text + (1,4,6) image + text")
    pos, delta = qm.rope_index(cfg, torch.arange(5), [])
    check(torch.equal(pos, torch.arange(5).expand(3, -1)) and delta == 0, "rope index of text only")


def check_decode(cfg, W, ids, images, label, tol):
    tokens, step_logits = qm.greedy(cfg, W, ids, images, 16, [])
    full_ids = torch.cat([ids, torch.tensor(tokens[:-1])])
    logits, _, _ = qm.prefill(cfg, W, full_ids, images)
    want = logits[ids.numel() - 1:].float()
    check(len(tokens) == 16 and rel_err(step_logits, want) < tol,
          f"{label}: KV-cache decoding logits == full forward (rel err {rel_err(step_logits, want):.1e})")
    return tokens


def check_magnitudes(cfg, W, ids, images, label):
    dumps = {}
    qm.prefill(cfg, W, ids, images, dumps)
    bad = []
    for name, t in dumps.items():
        if not t.is_floating_point():
            continue
        rms = float(t.float().pow(2).mean().sqrt())
        if not 0.1 < rms < 20:
            bad.append(f"{name}={rms:.3g}")
    check(not bad, f"{label}: every dumped activation has RMS in (0.1, 20) {' '.join(bad)}")


def run(variants, tmp):
    start = time.time()
    for variant in variants:
        cfg_raw = ref.tiny_config(variant, "float32")
        cfg = qm.Config(cfg_raw)
        W = ref.make_tiny_weights(cfg, 7, torch.float32)
        for dtype in (torch.float32, torch.bfloat16):
            sub = os.path.join(tmp, variant, str(dtype))
            os.makedirs(sub)
            check_safetensors(sub, {k: v.to(dtype) for k, v in W.items()})
        if cfg.is_25:
            check_window_index(cfg)
        check_rope_index(cfg)
        for case in ("text", "one_image", "two_images", "multi_window"):
            t0 = time.time()
            ids, images = ref.build_inputs(cfg, case, 1234)
            label = f"{variant}/{case}"
            if images:
                check_vision(cfg, W, images, label)
            check_magnitudes(cfg, W, ids, images, label)
            check_decode(cfg, W, ids, images, label, 1e-5)
            print(f"     {label}: {time.time() - t0:.2f} s")
        # same bf16-rounded weights and pixels both times, so only the compute precision differs
        Wb = {k: v.to(torch.bfloat16) for k, v in W.items()}
        Wf = {k: v.float() for k, v in Wb.items()}
        ids, images = ref.build_inputs(cfg, "two_images", 1234)
        images = [(p.to(torch.bfloat16).float(), g) for p, g in images]
        lf, _, _ = qm.prefill(cfg, Wf, ids, images)
        lb, _, _ = qm.prefill(cfg, Wb, ids, images)
        err = float((lb.float() - lf).norm() / lf.norm())
        check(err < 0.04, f"{variant}: bf16 compute logits near float32 (relative L2 error {err:.3f})")
    print(f"{len(FAILS)} failures, {time.time() - start:.1f} s")
    return not FAILS
