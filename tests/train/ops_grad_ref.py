"""Reference gradients of mitten's ops from PyTorch autograd in float64, for tests/train/ops_grad_check.c.

usage: ops_grad_ref.py PATH/TO/ops_grad_check WORKDIR

Each case draws f32 inputs, builds the graph in torch (float64, written from the op definitions in
src/tensor/tensor.h and transformers' Qwen2 modules, not from mitten's code) and writes, into WORKDIR/<case>/:

    | file            | content                                                                      |
    |-----------------|------------------------------------------------------------------------------|
    | <name>.npy      | an input: <f4 values (bf16 weights hold bf16-exact values), <i4 ids/targets, |
    |                 | <i8 row indices                                                              |
    | r.npy           | the projection R when the case's output y is not a loss: L = sum(y * R)     |
    | grad_<name>.npy | dL/d<name> for each trained input, computed in float64, stored as <f4        |

Then it runs ops_grad_check WORKDIR, which builds the same graph with mitten's ops and compares (the tolerance is
stated there). The constants of each case (eps, heads, scale, seeds) are written in both files.
"""
import os
import subprocess
import sys

import numpy as np
import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)
CASES = {}


def case(loss=False):
    def reg(fn):
        CASES[fn.__name__] = (fn, loss)
        return fn
    return reg


def u(rng, *shape):
    return rng.uniform(-1, 1, shape).astype(np.float32)


def bf16(a):
    return torch.from_numpy(a).to(torch.bfloat16).to(torch.float32).numpy()


def rms_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


ACTS = {
    "silu": F.silu,
    "gelu": F.gelu,
    "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "quick_gelu": lambda x: x * torch.sigmoid(1.702 * x),
    "sigmoid": torch.sigmoid,
}


def rope(x, heads, cos, sin):
    """transformers' apply_rotary_pos_emb (rotate_half) with cos/sin [T, D/2] repeated to [T, D]."""
    T, D = x.shape[0], x.shape[1] // heads
    xh = x.reshape(T, heads, D)
    c, s = torch.cat([cos, cos], -1)[:, None, :], torch.cat([sin, sin], -1)[:, None, :]
    rot = torch.cat([-xh[..., D // 2:], xh[..., :D // 2]], -1)
    return (xh * c + rot * s).reshape(T, heads * D)


def attention(q, k, v, H, Hk, scale, causal=False, q_pos0=0, cu=None):
    Tq, Tk, D = q.shape[0], k.shape[0], q.shape[1] // H
    qh = q.reshape(Tq, H, D).transpose(0, 1)
    kh = k.reshape(Tk, Hk, D).transpose(0, 1).repeat_interleave(H // Hk, 0)
    vh = v.reshape(Tk, Hk, D).transpose(0, 1).repeat_interleave(H // Hk, 0)
    allowed = torch.ones(Tq, Tk, dtype=torch.bool)
    if causal:
        allowed &= torch.arange(Tk)[None, :] <= q_pos0 + torch.arange(Tq)[:, None]
    if cu is not None:
        seg = torch.from_numpy(np.repeat(np.arange(len(cu) - 1), np.diff(cu)))
        allowed &= seg[:, None] == seg[None, :]
    s = (qh @ kh.transpose(1, 2) * scale).masked_fill(~allowed, float("-inf"))
    return (torch.softmax(s, -1) @ vh).transpose(0, 1).reshape(Tq, H * D)


def dropout_keep(seed, n, p):
    """The mask of mt_op_dropout: splitmix64 of (seed, i) (src/tensor/ops_train.c); the mask is mitten's choice,
    what is checked is the op and its gradient given the mask."""
    with np.errstate(over="ignore"):
        z = np.uint64(seed) + np.uint64(0x9E3779B97F4A7C15) * (np.arange(n, dtype=np.uint64) + np.uint64(1))
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z ^= z >> np.uint64(31)
    return torch.from_numpy((z >> np.uint64(40)).astype(np.float64) / 16777216.0 >= np.float32(p))


def cross_entropy(logits, targets, inv_norm):
    t = targets.clone()
    t[t < 0] = -100
    return F.cross_entropy(logits, t, ignore_index=-100, reduction="sum") * inv_norm


def rope_tables(T, half, theta=10000.0):
    inv = (1.0 / theta ** (np.arange(half, dtype=np.float32) / np.float32(half))).astype(np.float32)
    ang = np.arange(T, dtype=np.float32)[:, None] * inv[None, :]
    return np.cos(ang).astype(np.float32), np.sin(ang).astype(np.float32)


# ---- cases: each returns (inputs, trained names, forward over a dict of float64 tensors) ----

@case()
def linear(rng):
    return {"x": u(rng, 4, 7), "w": u(rng, 5, 7), "b": u(rng, 5)}, ["x", "w", "b"], \
        lambda t: t["x"] @ t["w"].T + t["b"]


@case()
def linear_bf16(rng):
    """300 output rows: the input gradient widens a bf16 weight 256 rows at a time"""
    return {"x": u(rng, 3, 16), "w": bf16(u(rng, 300, 16))}, ["x"], lambda t: t["x"] @ t["w"].T


@case()
def embedding(rng):
    return {"table": u(rng, 9, 6), "ids": np.array([3, 0, 3, 8, 1, 3], np.int32)}, ["table"], \
        lambda t: t["table"][t["ids"]]


@case()
def rms_norm_op(rng):
    return {"x": u(rng, 4, 12) * 3, "w": u(rng, 12)}, ["x", "w"], lambda t: rms_norm(t["x"], t["w"], 1e-6)


@case()
def layer_norm(rng):
    return {"x": u(rng, 4, 12) * 3, "w": u(rng, 12), "b": u(rng, 12)}, ["x", "w", "b"], \
        lambda t: F.layer_norm(t["x"], (12,), t["w"], t["b"], 1e-6)


def act_case(name):
    def fn(rng):
        return {"x": u(rng, 3, 16) * 4}, ["x"], lambda t: ACTS[name](t["x"])
    fn.__name__ = "act_" + name
    case()(fn)

    def gated(rng):
        return {"gate": u(rng, 3, 16) * 4, "up": u(rng, 3, 16)}, ["gate", "up"], \
            lambda t: ACTS[name](t["gate"]) * t["up"]
    gated.__name__ = "gated_" + name
    case()(gated)


for _a in ACTS:
    act_case(_a)


@case()
def add_mul_scale(rng):
    return {"a": u(rng, 3, 8), "b": u(rng, 3, 8)}, ["a", "b"], \
        lambda t: (t["a"] + t["b"]) * t["a"] * -0.75


@case()
def rows_big(rng):
    """1100 rows: enough for the row-wise ops and the norms' weight gradients to split over threads"""
    def fwd(t):
        g = rms_norm(t["x"], t["w1"], 1e-6)
        up = F.layer_norm(t["x"], (32,), t["w2"], t["b2"], 1e-6)
        return torch.softmax(F.gelu(g, approximate="tanh") * up, -1)
    return {"x": u(rng, 1100, 32) * 2, "w1": u(rng, 32), "w2": u(rng, 32), "b2": u(rng, 32)}, \
        ["x", "w1", "w2", "b2"], fwd


@case(loss=True)
def cross_entropy_big(rng):
    tg = rng.integers(0, 20, 1100).astype(np.int32)
    tg[::7] = -100
    return {"logits": u(rng, 1100, 20) * 4, "targets": tg}, ["logits"], \
        lambda t: cross_entropy(t["logits"], t["targets"], np.float32(1 / 943))


@case()
def softmax(rng):
    return {"x": u(rng, 4, 10) * 3}, ["x"], lambda t: torch.softmax(t["x"], -1)


@case()
def rope_op(rng):
    c, s = rope_tables(5, 4)
    return {"x": u(rng, 5, 24), "cos": c, "sin": s}, ["x"], lambda t: rope(t["x"], 3, t["cos"], t["sin"])


def attn_case(name, Tq, Tk, H, Hk, D, **kw):
    def fn(rng):
        return {"q": u(rng, Tq, H * D) * 2, "k": u(rng, Tk, Hk * D) * 2, "v": u(rng, Tk, Hk * D)}, ["q", "k", "v"], \
            lambda t: attention(t["q"], t["k"], t["v"], H, Hk, D ** -0.5, **kw)
    fn.__name__ = name
    case()(fn)


attn_case("attention_causal", 6, 6, 2, 2, 8, causal=True)
attn_case("attention_gqa", 7, 7, 6, 2, 4, causal=True)
attn_case("attention_q_pos0", 3, 8, 4, 2, 4, causal=True, q_pos0=5)
attn_case("attention_full", 5, 7, 2, 1, 8)
attn_case("attention_segments", 9, 9, 4, 2, 4, cu=[0, 3, 4, 9])


@case()
def rows_ops(rng):
    """gather (with a repeat), scatter, concat and a row view"""
    idx, sidx = np.array([4, 0, 4, 2], np.int64), np.array([5, 1], np.int64)

    def fwd(t):
        g = t["x"][t["idx"]]
        s = t["base"].clone()
        s[t["sidx"]] = t["src"]
        return torch.cat([torch.softmax(g, -1), s * s, t["x"][2:5]], 0)
    return {"x": u(rng, 6, 5), "base": u(rng, 6, 5), "src": u(rng, 2, 5), "idx": idx, "sidx": sidx}, \
        ["x", "base", "src"], fwd


@case()
def views(rng):
    """reshape, transpose + contiguous, and the [T, H, D] -> [H, T, D] head split"""
    def fwd(t):
        x = t["x"]
        a = torch.softmax(x.reshape(4, 9), -1)
        b = torch.softmax(x.T.contiguous(), -1)
        c = torch.softmax(x.reshape(6, 3, 2).transpose(0, 1).reshape(18, 2), -1)
        return torch.cat([a.reshape(-1), b.reshape(-1), c.reshape(-1)]).reshape(-1, 6)
    return {"x": u(rng, 6, 6) * 2}, ["x"], fwd


@case()
def dropout(rng):
    keep = dropout_keep(1234, 5 * 8, 0.4).reshape(5, 8)
    return {"x": u(rng, 5, 8)}, ["x"], lambda t: t["x"] * keep / (1 - np.float32(0.4))


@case(loss=True)
def cross_entropy_op(rng):
    tg = np.array([3, -100, 10, 0, -1, 7], np.int32)
    return {"logits": u(rng, 6, 11) * 4, "targets": tg}, ["logits"], \
        lambda t: cross_entropy(t["logits"], t["targets"], np.float32(1 / 3))


@case()
def lora_dropout(rng):
    """mt_nn_linear with an adapter: y = x W^T + b + scale B (A dropout(x)), W frozen bf16"""
    keep = dropout_keep(77, 4 * 12, 0.2).reshape(4, 12)
    inp = {"x": u(rng, 4, 12), "w": bf16(u(rng, 8, 12)), "b": u(rng, 8), "la": u(rng, 3, 12), "lb": u(rng, 8, 3)}

    def fwd(t):
        xd = t["x"] * keep / (1 - np.float32(0.2))
        return t["x"] @ t["w"].T + t["b"] + 2.5 * (xd @ t["la"].T) @ t["lb"].T
    return inp, ["x", "la", "lb"], fwd


# ---- mixture-of-experts routing ops and a whole MoE FFN ----

@case()
def gather_cols(rng):
    """k = 3 columns per row; row 1 picks column 4 twice, so its gradient adds up"""
    idx = np.array([5, 0, 2, 4, 1, 4, 3, 3, 0, 2, 5, 1, 0, 1, 2], np.int64)
    return {"x": u(rng, 5, 6), "idx": idx}, ["x"], \
        lambda t: torch.gather(t["x"], 1, t["idx"].reshape(5, 3))


@case()
def row_normalize(rng):
    return {"x": rng.uniform(0.05, 1, (4, 3)).astype(np.float32)}, ["x"], \
        lambda t: t["x"] / t["x"].sum(-1, keepdim=True)


@case()
def pick(rng):
    flat = np.array([7, 0, 11, 7, 3], np.int64)
    return {"x": u(rng, 4, 3), "flat": flat}, ["x"], lambda t: t["x"].reshape(-1)[t["flat"]].reshape(-1, 1)


@case()
def scale_rows(rng):
    """weights as [n] and as [n, 1]"""
    return {"x": u(rng, 5, 7), "w": u(rng, 5), "w2": u(rng, 5, 1)}, ["x", "w", "w2"], \
        lambda t: torch.cat([t["x"] * t["w"][:, None], t["x"] * t["w2"]], 0)


@case()
def scale_cols(rng):
    """layer scale: x [T, C] times g [C]"""
    return {"x": u(rng, 5, 7), "g": u(rng, 7)}, ["x", "g"], lambda t: t["x"] * t["g"][None, :]


@case()
def index_add_rows(rng):
    """repeated indices add up; the second sum has a constant base"""
    idx = np.array([4, 0, 4, 2, 4], np.int64)
    return {"base": u(rng, 6, 4), "src": u(rng, 5, 4), "cbase": u(rng, 6, 4), "idx": idx}, ["base", "src"], \
        lambda t: torch.cat([t["base"].index_add(0, t["idx"], t["src"]),
                             t["cbase"].index_add(0, t["idx"], t["src"] * t["src"])], 0)


MT, MC, ME, MK, MF = 7, 8, 6, 2, 5  # tokens, channels, experts, experts per token, expert hidden


def moe_dense(t, topk):
    """Qwen3-MoE's block computed densely: every expert runs on every token and its output is weighted by a [T, E]
    mask that is the renormalised probability where the expert is among the token's top k and 0 elsewhere."""
    probs = torch.softmax(t["x"] @ t["router"].T, -1)
    chosen = torch.zeros(MT, ME, dtype=torch.bool)
    chosen[torch.arange(MT)[:, None], topk] = True
    wts = probs * chosen
    wts = wts / wts.sum(-1, keepdim=True)
    out = 0
    for e in range(ME):
        p = f"e{e}."
        h = F.silu(t["x"] @ t[p + "g"].T) * (t["x"] @ t[p + "u"].T)
        out = out + wts[:, e:e + 1] * (h @ t[p + "d"].T)
    return out


@case()
def moe_ffn(rng):
    """router linear, softmax, top-2 of 6 experts (chosen from the float64 probabilities with a margin that f32
    cannot flip, and every expert used), renormalised weights, gated SiLU experts"""
    while True:
        inp = {"x": u(rng, MT, MC), "router": u(rng, ME, MC) * 2}
        with torch.no_grad():
            probs = torch.softmax(torch.from_numpy(inp["x"]).double() @ torch.from_numpy(inp["router"]).double().T, -1)
        srt = probs.sort(-1, descending=True)
        margin = (srt.values[:, MK - 1] - srt.values[:, MK]).min().item()
        topk = srt.indices[:, :MK]
        if margin > 1e-3 and len(set(topk.reshape(-1).tolist())) == ME:
            break
    inp["topk"] = topk.reshape(-1).numpy().astype(np.int64)
    for e in range(ME):
        inp[f"e{e}.g"], inp[f"e{e}.u"] = u(rng, MF, MC), u(rng, MF, MC)
        inp[f"e{e}.d"] = u(rng, MC, MF)
    trained = [n for n in inp if n != "topk"]
    return inp, trained, lambda t: moe_dense(t, t["topk"].reshape(MT, MK))


SK, SF = 3, 9  # the shared-expert case: experts per token, shared expert hidden


@case()
def moe_shared(rng):
    """nn/moe as Qwen2-MoE configures it: top-3 of 6 experts, weights NOT renormalised, plus a shared expert over every
    token scaled by sigmoid(x . g) (Qwen2MoeSparseMoeBlock), computed densely; the choice keeps a 1e-3 margin"""
    while True:
        inp = {"x": u(rng, MT, MC), "router": u(rng, ME, MC) * 2}
        with torch.no_grad():
            probs = torch.softmax(torch.from_numpy(inp["x"]).double() @ torch.from_numpy(inp["router"]).double().T, -1)
        srt = probs.sort(-1, descending=True)
        if (srt.values[:, SK - 1] - srt.values[:, SK]).min().item() > 1e-3 and \
                len(set(srt.indices[:, :SK].reshape(-1).tolist())) == ME:
            break
    inp["topk"] = srt.indices[:, :SK].reshape(-1).numpy().astype(np.int64)
    for e in range(ME):
        inp[f"e{e}.g"], inp[f"e{e}.u"], inp[f"e{e}.d"] = u(rng, MF, MC), u(rng, MF, MC), u(rng, MC, MF)
    inp["s.g"], inp["s.u"], inp["s.d"], inp["sgate"] = u(rng, SF, MC), u(rng, SF, MC), u(rng, MC, SF), u(rng, 1, MC)

    def fwd(t):
        probs = torch.softmax(t["x"] @ t["router"].T, -1)
        chosen = torch.zeros(MT, ME, dtype=torch.bool)
        chosen[torch.arange(MT)[:, None], t["topk"].reshape(MT, SK)] = True
        wts = probs * chosen
        out = 0
        for e in range(ME):
            p = f"e{e}."
            out = out + wts[:, e:e + 1] * ((F.silu(t["x"] @ t[p + "g"].T) * (t["x"] @ t[p + "u"].T)) @ t[p + "d"].T)
        shared = (F.silu(t["x"] @ t["s.g"].T) * (t["x"] @ t["s.u"].T)) @ t["s.d"].T
        return out + torch.sigmoid(t["x"] @ t["sgate"].T) * shared
    return inp, [n for n in inp if n != "topk"], fwd


# ---- two decoder blocks (Qwen2 layout) with full fine-tuning and with LoRA ----

T, C, H, HK, D, FF, V, LAYERS, R, ALPHA = 9, 16, 4, 2, 4, 32, 23, 2, 4, 8
LINEARS = {"q": (H * D, C, True), "k": (HK * D, C, True), "v": (HK * D, C, True), "o": (C, H * D, False),
           "g": (FF, C, False), "u": (FF, C, False), "d": (C, FF, False)}


def chain_inputs(rng, lora):
    cos, sin = rope_tables(T, D // 2)
    tg = rng.integers(0, V, T).astype(np.int32)
    tg[[1, 4, 5]] = -100
    inp = {"ids": rng.integers(0, V, T).astype(np.int32), "targets": tg, "cos": cos, "sin": sin,
           "emb": u(rng, V, C), "norm": 1 + 0.2 * u(rng, C), "head": u(rng, V, C) * 0.5}
    for i in range(LAYERS):
        inp[f"l{i}.n1"], inp[f"l{i}.n2"] = 1 + 0.2 * u(rng, C), 1 + 0.2 * u(rng, C)
        for n, (o, k, bias) in LINEARS.items():
            inp[f"l{i}.{n}.w"] = u(rng, o, k) * k ** -0.5
            if bias:
                inp[f"l{i}.{n}.b"] = u(rng, o) * 0.1
            if lora:
                inp[f"l{i}.{n}.la"] = u(rng, R, k) * k ** -0.5
                inp[f"l{i}.{n}.lb"] = u(rng, o, R) * 0.5
    if lora:
        for name in list(inp):
            if name.endswith(".w") or name == "head":
                inp[name] = bf16(inp[name])
    return inp


def chain_forward(t, lora):
    def lin(x, p):
        y = x @ t[p + ".w"].T
        if p + ".b" in t:
            y = y + t[p + ".b"]
        if lora:
            y = y + (ALPHA / R) * (x @ t[p + ".la"].T) @ t[p + ".lb"].T
        return y
    x = t["emb"][t["ids"]]
    for i in range(LAYERS):
        p = f"l{i}."
        h = rms_norm(x, t[p + "n1"], 1e-6)
        q = rope(lin(h, p + "q"), H, t["cos"], t["sin"])
        k = rope(lin(h, p + "k"), HK, t["cos"], t["sin"])
        x = x + lin(attention(q, k, lin(h, p + "v"), H, HK, D ** -0.5, causal=True), p + "o")
        h = rms_norm(x, t[p + "n2"], 1e-6)
        x = x + lin(F.silu(lin(h, p + "g")) * lin(h, p + "u"), p + "d")
    logits = rms_norm(x, t["norm"], 1e-6) @ t["head"].T
    return cross_entropy(logits, t["targets"], np.float32(1 / 6))


@case(loss=True)
def chain_full(rng):
    inp = chain_inputs(rng, False)
    return inp, [n for n, a in inp.items() if a.dtype == np.float32 and n not in ("cos", "sin")], \
        lambda t: chain_forward(t, False)


@case(loss=True)
def chain_lora(rng):
    inp = chain_inputs(rng, True)
    return inp, [n for n in inp if n.endswith(".la") or n.endswith(".lb")], lambda t: chain_forward(t, True)


def write_case(root, name, fn, is_loss, seed):
    rng = np.random.default_rng(seed)
    inputs, trained, fwd = fn(rng)
    d = os.path.join(root, name)
    os.makedirs(d, exist_ok=True)
    t = {}
    for n, a in inputs.items():
        np.save(os.path.join(d, n + ".npy"), a)
        t[n] = torch.from_numpy(a).to(torch.float64 if a.dtype == np.float32 else torch.int64)
        if n in trained:
            t[n].requires_grad_(True)
    y = fwd(t)
    if not is_loss:
        r = u(rng, *y.shape)
        np.save(os.path.join(d, "r.npy"), r)
        y = (y * torch.from_numpy(r).double()).sum()
    y.backward()
    for n in trained:
        np.save(os.path.join(d, "grad_" + n + ".npy"), t[n].grad.numpy().astype(np.float32))
    np.save(os.path.join(d, "loss.npy"), np.array([y.item()], np.float32))


def main():
    tool, root = sys.argv[1], sys.argv[2]
    for i, (name, (fn, is_loss)) in enumerate(sorted(CASES.items())):
        write_case(root, name, fn, is_loss, 1000 + i)
    sys.exit(subprocess.run([tool, root]).returncode)


if __name__ == "__main__":
    main()
