#!/usr/bin/python3
"""PyTorch side of the training parity test (train_parity.c), in the style of llm.c's test_gpt2: a tiny random
Qwen2.5-VL from tests/ref, one batch of two samples (one with two images of different sizes, one text only, both
multi-turn with masked spans), and for full fine-tuning and for LoRA: the loss, the gradient of every trained
tensor, and the losses of 10 AdamW steps.

    train_ref.py --out DIR [--seed 0]

The forward is tests/ref/qwen2_vl_model.py (transformers 4.55 modeling_qwen2_5_vl.py) run in float64 on the
checkpoint's float32 values. Three of its functions cast to float32 on purpose (RMSNorm statistics, softmax, vision
RoPE application: what transformers does under bf16); in float64 runs this file swaps in versions that keep
float64 and otherwise do the same (`float64_patches`). RoPE angles stay float32 products, as in transformers.

Training, as transformers + PEFT + torch would run it:
  loss     = sum over supervised tokens i >= 1 (labels[i] != -100) of CE(logits[i-1], labels[i]), times
             inv_norm = 1 / (supervised tokens of the whole batch); samples' gradients accumulate (one backward each)
  step     = clip_grad_norm_(trained, 1.0), then torch.optim.AdamW(lr 1e-3, betas (0.9, 0.999), eps 1e-8) with
             weight_decay 0.01 on tensors of 2 or more dims and 0 on 1-dim ones (biases and norm weights)
  full     = every checkpoint tensor trained (vision tower, merger, language model; the LM head is tied to
             model.embed_tokens.weight, one tensor)
  LoRA     = rank 4, alpha 8 (scale 2), no dropout, on q/k/v/o/gate/up/down_proj of every decoder layer, the rest
             frozen: y = x W^T + b + scale * (x A^T) B^T (PEFT's Linear.forward). For the gradients B is random
             (with B = 0, as PEFT initialises it, A's gradient is zero); the 10 steps start from PEFT's init: the
             same A, B = 0.

Files written (safetensors; F32 unless noted; the C side reads them with src/io/safetensors.h):

| file                          | tensor                  | shape            | what                                      |
|-------------------------------|-------------------------|------------------|-------------------------------------------|
| model/                        |                         |                  | make-checkpoint's tiny weights, embed / 4 |
| inputs.safetensors            | s{k}.ids (I32)          | [N_k]            | token ids, image spans expanded           |
|                               | s{k}.labels (I32)       | [N_k]            | unshifted labels, -100 ignored            |
|                               | s{k}.pixels{j}          | [t*h*w, 1176]    | image j of sample k (normalised pixels)   |
|                               | s{k}.grid{j} (I64)      | [3]              | its (t, h, w) in patches                  |
| lora_init.safetensors         | <PEFT name of A or B>   | [r, in], [out, r]| adapters for the gradient check           |
| expected.safetensors          | {full,lora}.loss        | [1]              | batch loss at the start                   |
|                               | {full,lora}.grad.<name> | checkpoint shape | d loss / d tensor (PEFT names for LoRA)   |
|                               | {full,lora}.losses      | [10]             | batch loss before each AdamW step         |
|                               | {full,lora}.norms       | [10]             | gradient norm before clipping, per step   |

PEFT names: "base_model.model.<module>.lora_A.weight" with <module> the checkpoint weight name less ".weight".

Before writing, the reference checks itself (exit 1 on failure): the float64 forward equals the unpatched float32
one, the loss at init is near ln(V), every gradient is finite, the full gradient matches a central finite
difference along a random direction, and LoRA's gradients equal the chain rule applied to the full gradient at the
merged weights (dA = s B^T G, dB = s G A^T).

Shape legend: N tokens of a sample, V vocab (320), r LoRA rank, in/out a linear layer's widths.
"""

import argparse
import contextlib
import math
import os
import sys

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "ref"))
import qwen2_vl_model as qm  # noqa: E402
import qwen2_vl_ref as qref  # noqa: E402
import safetensors_io as st  # noqa: E402

IGNORE = -100
STEPS = 10
LR, WEIGHT_DECAY, MAX_NORM = 1e-3, 0.01, 1.0
LORA_RANK, LORA_ALPHA = 4, 8.0
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
TEXT_ID_LIMIT = qref.TEXT_ID_LIMIT
# make-checkpoint's embeddings (std 4/sqrt(H), tied to the LM head) give logits of std ~4 and a loss near 13;
# std 1/sqrt(H) starts near ln(V), like a model about to be fine-tuned, so the 10 steps are not mostly memorising.
EMBED_SHRINK = 4.0
ORIGINAL = {k: getattr(qm, k) for k in ("rms_norm", "eager_attention", "vision_attention")}

# Each sample: a list of turns (role, parts); a part is a text length or an image grid (t, h, w) in patches.
# Assistant turns end with eos (301, the tiny model's end of turn) and are supervised; the rest is masked, except
# the text-only sample's first label, which must be ignored anyway.
SAMPLES = [
    [("user", [5, (1, 4, 6), 3]), ("assistant", [6]), ("user", [2, (1, 8, 12), 4]), ("assistant", [5])],
    [("user", [7]), ("assistant", [4]), ("user", [3]), ("assistant", [6])],
]


# ---------------------------------------------------------------------------------------------------------------
# float64 variants of the reference's float32-cast pieces


def _up(x):
    return x if x.dtype == torch.float64 else x.float()


def rms_norm64(x, w, eps):
    xf = _up(x)
    xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)
    return w * xf.to(x.dtype)


def eager_attention64(q, k, v, scale, mask=None):
    scores = torch.matmul(q, k.transpose(-1, -2)) * scale
    if mask is not None:
        scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    probs = torch.softmax(scores, dim=-1, dtype=_up(scores).dtype).to(q.dtype)
    return torch.matmul(probs, v)


def vision_attention64(cfg, W, p, x, cu_seqlens, cos, sin):
    n = x.shape[0]
    qkv = F.linear(x, W[p + "qkv.weight"], W[p + "qkv.bias"]).reshape(n, 3, cfg.vheads, cfg.vhead_dim)
    q, k, v = qkv.permute(1, 0, 2, 3).unbind(0)
    c, s = cos.unsqueeze(-2), sin.unsqueeze(-2)
    q = (_up(q) * c + qm.rotate_half(_up(q)) * s).to(x.dtype)
    k = (_up(k) * c + qm.rotate_half(_up(k)) * s).to(x.dtype)
    q, k, v = (a.transpose(0, 1) for a in (q, k, v))
    outs = []
    for a, b in zip(cu_seqlens[:-1], cu_seqlens[1:]):
        if b > a:
            outs.append(qm.eager_attention(q[:, a:b], k[:, a:b], v[:, a:b], cfg.vhead_dim ** -0.5))
    out = torch.cat(outs, dim=1).transpose(0, 1).reshape(n, -1)
    return F.linear(out, W[p + "proj.weight"], W[p + "proj.bias"])


@contextlib.contextmanager
def patched(**fns):
    """Replaces attributes of qwen2_vl_model for the duration (its functions look them up at call time)."""
    old = {k: getattr(qm, k) for k in fns}
    for k, v in fns.items():
        setattr(qm, k, v)
    try:
        yield
    finally:
        for k, v in old.items():
            setattr(qm, k, v)


def float64_patches():
    return patched(rms_norm=rms_norm64, eager_attention=eager_attention64, vision_attention=vision_attention64)


class LoraFunctional:
    """Stands in for torch.nn.functional inside qwen2_vl_model: linear() adds an adapter's path to the layers whose
    weight tensor (by identity) has one, as PEFT's lora.Linear.forward does; everything else is torch's."""

    def __init__(self, adapters):
        self.adapters = adapters  # id(base weight) -> (A, B, scale)
        self.hits = 0

    def __getattr__(self, name):
        return getattr(F, name)

    def linear(self, x, w, b=None):
        y = F.linear(x, w, b)
        ad = self.adapters.get(id(w))
        if ad is not None:
            a, bm, scale = ad
            y = y + scale * F.linear(F.linear(x, a), bm)
            self.hits += 1
        return y


# ---------------------------------------------------------------------------------------------------------------
# data


def build_samples(cfg, seed):
    """Returns a list of dicts: ids, labels (int64 [N]), images [(pixel_values float32, (t, h, w))]."""
    gen = torch.Generator().manual_seed(seed)
    row = cfg.in_chans * cfg.temporal_patch * cfg.patch * cfg.patch
    eos = cfg.eos_token_id if isinstance(cfg.eos_token_id, int) else cfg.eos_token_id[0]
    out = []
    for turns in SAMPLES:
        ids, labels, images = [], [], []
        for role, parts in turns:
            span = []
            for part in parts:
                if isinstance(part, int):
                    span += torch.randint(0, TEXT_ID_LIMIT, (part,), generator=gen).tolist()
                    continue
                t, h, w = part
                span += [cfg.vision_start_token_id] + [cfg.image_token_id] * (t * h * w // cfg.merge ** 2)
                span += [cfg.vision_end_token_id]
                images.append((torch.randn(t * h * w, row, generator=gen), (t, h, w)))
            if role == "assistant":
                span.append(eos)
                labels += span
            else:
                labels += [IGNORE] * len(span)
            ids += span
        if not images:
            labels[0] = ids[0]  # no logits precede token 0: its label must count nowhere, not even in inv_norm
        out.append({"ids": torch.tensor(ids), "labels": torch.tensor(labels), "images": images})
    return out


def supervised(labels):
    return int((labels[1:] != IGNORE).sum())


# ---------------------------------------------------------------------------------------------------------------
# loss and gradients


def sample_loss(cfg, W, s, inv_norm, dtype):
    images = [(pv.to(dtype), g) for pv, g in s["images"]]
    logits = qm.prefill(cfg, W, s["ids"], images)[0]
    ce = F.cross_entropy(logits[:-1], s["labels"][1:], ignore_index=IGNORE, reduction="sum")
    return ce * inv_norm


def batch_backward(cfg, W, samples, dtype=torch.float64, grad=True):
    """Sum of the samples' losses; with grad, each sample's backward accumulates into .grad."""
    inv_norm = 1.0 / sum(supervised(s["labels"]) for s in samples)
    total = 0.0
    for s in samples:
        with torch.set_grad_enabled(grad):
            loss = sample_loss(cfg, W, s, inv_norm, dtype)
        if grad:
            loss.backward()
        total += float(loss)
    return total


def lora_modules(cfg):
    return [f"model.layers.{i}.{blk}.{name}" for i in range(cfg.layers)
            for blk, names in (("self_attn", LORA_TARGETS[:4]), ("mlp", LORA_TARGETS[4:])) for name in names]


def peft_name(module, which):
    return f"base_model.model.{module}.{which}.weight"


def make_lora_init(cfg, W, seed):
    """A ~ U(-1/sqrt(in), 1/sqrt(in)) as PEFT's kaiming_uniform_(a=sqrt(5)); B ~ N(0, 0.05) for the gradient check."""
    gen = torch.Generator().manual_seed(seed + 7)
    init = {}
    for mod in lora_modules(cfg):
        out_f, in_f = W[mod + ".weight"].shape
        bound = 1.0 / math.sqrt(in_f)
        init[peft_name(mod, "lora_A")] = (torch.rand(LORA_RANK, in_f, generator=gen) * 2 - 1) * bound
        init[peft_name(mod, "lora_B")] = torch.randn(out_f, LORA_RANK, generator=gen) * 0.05
    return init


def lora_params(cfg, W, init, zero_b):
    """Trainable adapter tensors (float64 leaves) by PEFT name, and the LoraFunctional that applies them."""
    P, adapters = {}, {}
    for mod in lora_modules(cfg):
        na, nb = peft_name(mod, "lora_A"), peft_name(mod, "lora_B")
        P[na] = init[na].to(torch.float64).requires_grad_()
        b = torch.zeros_like(init[nb]) if zero_b else init[nb]
        P[nb] = b.to(torch.float64).requires_grad_()
        adapters[id(W[mod + ".weight"])] = (P[na], P[nb], LORA_ALPHA / LORA_RANK)
    return P, LoraFunctional(adapters)


def train(cfg, W, samples, params, lora_f=None):
    """10 steps of clip + AdamW over params (dict name -> leaf). Returns (losses, norms)."""
    decay = [p for p in params.values() if p.dim() >= 2]
    no_decay = [p for p in params.values() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": WEIGHT_DECAY},
                             {"params": no_decay, "weight_decay": 0.0}], lr=LR)
    losses, norms = [], []
    ctx = patched(F=lora_f) if lora_f is not None else contextlib.nullcontext()
    with ctx:
        for _ in range(STEPS):
            opt.zero_grad()
            losses.append(batch_backward(cfg, W, samples))
            norms.append(float(torch.nn.utils.clip_grad_norm_(list(params.values()), MAX_NORM)))
            opt.step()
    return losses, norms


def leaves(W32, trained=True):
    return {k: v.to(torch.float64).requires_grad_(trained) for k, v in W32.items()}


# ---------------------------------------------------------------------------------------------------------------
# self-checks


class Checks:
    def __init__(self):
        self.failed = 0

    def __call__(self, ok, what):
        print(("ok    " if ok else "FAIL  ") + what)
        self.failed += not ok


def rel_err(a, b):
    return float((a - b).abs().max()) / max(float(b.abs().max()), 1e-30)


def self_checks(check, cfg, W32, samples, full_loss, full_grads, lora_init, lora_grads):
    # the float64 patches change precision only
    with patched(**ORIGINAL):
        loss32 = batch_backward(cfg, W32, samples, torch.float32, grad=False)
    check(abs(loss32 - full_loss) <= 1e-5 * full_loss,
          f"float64 forward = unpatched float32 reference: loss {full_loss:.9f} vs {loss32:.9f}")
    check(abs(full_loss - math.log(cfg.vocab)) < 2.0, f"loss at init {full_loss:.4f} near ln(V) = "
          f"{math.log(cfg.vocab):.4f}")
    grads = list(full_grads.values()) + list(lora_grads.values())
    check(all(bool(torch.isfinite(g).all()) for g in grads), "every gradient finite")
    check(all(float(g.abs().max()) > 0 for g in grads), "no gradient identically zero")

    # central finite difference along a random direction, float64
    gen = torch.Generator().manual_seed(99)
    dirs = {k: torch.randn(v.shape, generator=gen, dtype=torch.float64) for k, v in full_grads.items()}
    eps = 1e-7  # truncation error ~eps^2 (measured: 8e-6 relative at 1e-5, 2e-9 at 1e-7)
    lp = batch_backward(cfg, {k: v.double() + eps * dirs[k] for k, v in W32.items()}, samples, grad=False)
    lm = batch_backward(cfg, {k: v.double() - eps * dirs[k] for k, v in W32.items()}, samples, grad=False)
    fd = (lp - lm) / (2 * eps)
    an = sum(float((full_grads[k] * dirs[k]).sum()) for k in full_grads)
    check(abs(fd - an) <= 3e-8 * abs(an), f"full gradient . d = {an:.10f}, finite difference {fd:.10f}")

    # LoRA gradients = chain rule through W_eff = W + s B A on the full gradient at W_eff
    s = LORA_ALPHA / LORA_RANK
    merged = leaves(W32)
    with torch.no_grad():
        for mod in lora_modules(cfg):
            a = lora_init[peft_name(mod, "lora_A")].double()
            b = lora_init[peft_name(mod, "lora_B")].double()
            merged[mod + ".weight"] += s * b @ a
    batch_backward(cfg, merged, samples)
    worst = 0.0
    for mod in lora_modules(cfg):
        na, nb = peft_name(mod, "lora_A"), peft_name(mod, "lora_B")
        G = merged[mod + ".weight"].grad
        worst = max(worst, rel_err(s * lora_init[nb].double().T @ G, lora_grads[na]),
                    rel_err(s * G @ lora_init[na].double().T, lora_grads[nb]))
    check(worst < 1e-9, f"LoRA gradients = chain rule on the merged full gradient (max rel err {worst:.2e})")


# ---------------------------------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(min(2, torch.get_num_threads()))

    model_dir = os.path.join(args.out, "model")
    os.makedirs(model_dir, exist_ok=True)
    cfg_raw = qref.tiny_config("qwen2_5_vl", "float32")
    cfg = qm.Config(cfg_raw)
    W32 = qref.make_tiny_weights(cfg, args.seed, torch.float32)
    W32["model.embed_tokens.weight"] /= EMBED_SHRINK
    qref.write_folder(model_dir, cfg_raw, real=False)
    st.write_file(os.path.join(model_dir, "model.safetensors"), W32)

    samples = build_samples(cfg, args.seed + 1)
    inputs = {}
    for k, s in enumerate(samples):
        inputs[f"s{k}.ids"] = s["ids"].to(torch.int32)
        inputs[f"s{k}.labels"] = s["labels"].to(torch.int32)
        for j, (pv, g) in enumerate(s["images"]):
            inputs[f"s{k}.pixels{j}"] = pv
            inputs[f"s{k}.grid{j}"] = torch.tensor(g, dtype=torch.int64)
    st.write_file(os.path.join(args.out, "inputs.safetensors"), inputs)
    lora_init = make_lora_init(cfg, W32, args.seed)
    st.write_file(os.path.join(args.out, "lora_init.safetensors"), lora_init)

    expected, check = {}, Checks()
    with float64_patches():
        # full fine-tuning
        W = leaves(W32)
        full_loss = batch_backward(cfg, W, samples)
        full_grads = {k: v.grad.clone() for k, v in W.items()}
        W = leaves(W32)
        full_losses, full_norms = train(cfg, W, samples, W)

        # LoRA: gradients with random B, then 10 steps from B = 0
        base = leaves(W32, trained=False)
        P, lf = lora_params(cfg, base, lora_init, zero_b=False)
        with patched(F=lf):
            lora_loss = batch_backward(cfg, base, samples)
        check(lf.hits == len(samples) * len(lora_modules(cfg)), f"adapters applied {lf.hits} times")
        lora_grads = {k: v.grad.clone() for k, v in P.items()}
        P, lf = lora_params(cfg, base, lora_init, zero_b=True)
        lora_losses, lora_norms = train(cfg, base, samples, P, lf)

        self_checks(check, cfg, W32, samples, full_loss, full_grads, lora_init, lora_grads)
    check(abs(lora_losses[0] - full_loss) < 1e-12, "LoRA with B = 0 starts at the full model's loss")
    check(full_losses[-1] < full_losses[0] and lora_losses[-1] < lora_losses[0], "both runs lower the loss")

    for mode, loss, grads, losses, norms in (("full", full_loss, full_grads, full_losses, full_norms),
                                             ("lora", lora_loss, lora_grads, lora_losses, lora_norms)):
        expected[f"{mode}.loss"] = torch.tensor([loss], dtype=torch.float32)
        expected[f"{mode}.losses"] = torch.tensor(losses, dtype=torch.float32)
        expected[f"{mode}.norms"] = torch.tensor(norms, dtype=torch.float32)
        for k, g in grads.items():
            expected[f"{mode}.grad.{k}"] = g.to(torch.float32)
        print(f"{mode}: loss {loss:.6f}; losses " + " ".join(f"{v:.6f}" for v in losses) +
              "; norms " + " ".join(f"{v:.4f}" for v in norms))
    st.write_file(os.path.join(args.out, "expected.safetensors"), expected)
    print("samples: %s tokens, %s supervised" % ([int(s["ids"].numel()) for s in samples],
                                                   [supervised(s["labels"]) for s in samples]))
    if check.failed:
        sys.exit(f"{check.failed} self-check(s) failed")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
