#!/usr/bin/python3
"""PyTorch side of the training parity test (train_parity.c), in the style of llm.c's test_gpt2: a tiny random model
from tests/ref, one batch of two samples (multi-turn with masked spans; for vision models one sample has two images
of different sizes and the other is text only), and for each run of the variant: the loss, the gradient of every
trained tensor, and the losses of 10 AdamW steps.

    train_ref.py --out DIR [--variant qwen2_5_vl|qwen2_5_vl_video|qwen3|qwen3_moe|qwen3_vl|qwen3_vl_video|qwen3_vl_moe|
                              qwen2_moe] [--seed 0]

The forward is the tests/ref reference of the family run in float64 on the checkpoint's float32 values:
qwen2_5_vl: qwen2_vl_model.py (transformers 4.55 modeling_qwen2_5_vl.py); the Qwen3 family: qwen3_model.py and
qwen3_vision.py (transformers 5.0.0.dev0 modeling_qwen3*.py). Four of their functions cast to float32 on purpose
(RMSNorm statistics, softmax, vision RoPE application, the MoE router's softmax: what transformers does under
bf16); in float64 runs this file swaps in versions that keep float64 and otherwise do the same (`float64_patches`).
RoPE angles stay float32 products, as in transformers; so do the position-embedding interpolation weights of
Qwen3-VL.

Training, as transformers + PEFT + torch would run it:
  loss     = sum over supervised tokens i >= 1 (labels[i] != -100) of CE(logits[i-1], labels[i]), times
             inv_norm = 1 / (supervised tokens of the whole batch); samples' gradients accumulate (one backward each)
  step     = clip_grad_norm_(trained, 1.0), then torch.optim.AdamW(lr 1e-3, betas (0.9, 0.999), eps 1e-8) with
             weight_decay 0.01 on tensors of 2 or more dims and 0 on 1-dim ones (biases and norm weights)
  full     = every checkpoint tensor of the run's parts trained, except those training never changes: fused expert
             stacks (Qwen3-VL-MoE's mlp.experts.gate_up_proj / down_proj: frozen) and MoE routers (mlp.gate: frozen
             unless the run trains routers, mitten's --train-router); a tied LM head is the embedding, one tensor
  LoRA     = rank 4, alpha 8 (scale 2), no dropout, on the run's target modules of the language model (PEFT's
             suffix match: "gate_proj" also names every expert's mlp.experts.N.gate_proj), the rest frozen:
             y = x W^T + b + scale * (x A^T) B^T (PEFT's Linear.forward). For the gradients B is random (with B = 0,
             as PEFT initialises it, A's gradient is zero); the 10 steps start from PEFT's init: the same A, B = 0.

| variant      | runs                                                                                            |
|--------------|-------------------------------------------------------------------------------------------------|
| qwen2_5_vl   | full (vision tower, merger, LM); lora (q/k/v/o/gate/up/down)                                    |
| qwen3        | full (LM, q/k norms); lora (q/k/v/o/gate/up/down)                                               |
| qwen3_moe    | full (router frozen); full_router (routers trained); lora (attention, dense MLP, every expert)  |
| qwen3_vl     | full (vision tower, merger, DeepStack mergers, LM); lora (q/k/v/o/gate/up/down)                 |
| qwen3_vl_video | as qwen3_vl, on the video samples with Qwen3-VL's timestamped frames                          |
| qwen3_vl_moe | full (all but the fused expert stacks and routers); lora (q/k/v/o only)                         |
| qwen2_moe    | full (router frozen; shared experts and their sigmoid gates trained); lora (attention, dense    |
|              | MLP, every expert, the shared expert and its gate: what all-linear gives)                      |

MoE routing is a discrete choice: mitten routes from its f32 probabilities, the reference from float64 ones. Every
forward of every run is watched (`route64`), and the text of the MoE variants is drawn so that every top-k choice
keeps a margin of at least 2e-5 between the k-th and (k+1)-th probability (the f32 runs stay within ~1e-6 relative
of the reference over the 10 steps), every expert is chosen at the start and no gradient is zero: run_all tries data seeds in turn, as
tests/train/ops_grad_ref.py draws its MoE inputs, and DATA_SEEDS records the first that passes.

Files written (safetensors; F32 unless noted; the C side reads them with src/io/safetensors.h):

| file                          | tensor                  | shape            | what                                      |
|-------------------------------|-------------------------|------------------|-------------------------------------------|
| model/                        |                         |                  | make-checkpoint's tiny weights, embed / 4 |
| inputs.safetensors            | s{k}.ids (I32)          | [N_k]            | token ids, image spans expanded           |
|                               | s{k}.labels (I32)       | [N_k]            | unshifted labels, -100 ignored            |
|                               | s{k}.pixels{j}          | [t*h*w, P]       | image j of sample k (normalised pixels)   |
|                               | s{k}.grid{j} (I64)      | [3]              | its (t, h, w) in patches                  |
|                               | s{k}.seconds{j}         | [1]              | a video's second_per_grid_ts (videos only)|
| lora_init.safetensors         | <PEFT name of A or B>   | [r, in], [out, r]| adapters for the gradient check           |
| expected.safetensors          | {run}.loss              | [1]              | batch loss at the start                   |
|                               | {run}.grad.<name>       | checkpoint shape | d loss / d tensor (PEFT names for LoRA)   |
|                               | {run}.losses            | [10]             | batch loss before each AdamW step         |
|                               | {run}.norms             | [10]             | gradient norm before clipping, per step   |
| plan.json                     |                         |                  | the runs as mitten's mt_train_spec, below |

plan.json: {"variant", "runs": [{"name", "vision", "projector", "language", "lora_rank", "lora_alpha",
"lora_targets", "train_router", "all_linear_same"}], "frozen": [checkpoint names that no run may change]}.
all_linear_same: mitten's default targets ("all-linear") must give exactly this run's adapters.

PEFT names: "base_model.model.<module>.lora_A.weight" with <module> the checkpoint weight name less ".weight".

Before writing, the reference checks itself (exit 1 on failure): the float64 forward equals the unpatched float32
one, the loss at init is near ln(V), every gradient is finite and none is identically zero, the first full run's
gradient matches a central finite difference along a random direction, LoRA's gradients equal the chain rule
applied to the full gradient at the merged weights (dA = s B^T G, dB = s G A^T), every adapter is used, and the MoE
routing margins hold.

Shape legend: N tokens of a sample, V vocab (320), r LoRA rank, in/out a linear layer's widths, P values per patch.
"""

import argparse
import contextlib
import json
import math
import os
import sys

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "ref"))
import qwen2_vl_model as qm  # noqa: E402
import qwen2_vl_ref as qref  # noqa: E402
import qwen3_ckpt as ck  # noqa: E402
import qwen3_model as q3  # noqa: E402
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
ROUTE_KEEP_MARGIN = 2e-5
MAX_DATA_SEEDS = 100
# the first data seeds run_all accepts with --seed 0
DATA_SEEDS = {"qwen3_moe": 1001, "qwen3_vl_moe": 1, "qwen2_moe": 1001}
ORIGINAL = [(qm, k, getattr(qm, k)) for k in ("rms_norm", "eager_attention", "vision_attention")] + \
           [(q3, "route", q3.route)]

# Each sample: a list of turns (role, parts); a part is a text length or an image grid (t, h, w) in patches.
# Assistant turns end with eos (301, the tiny model's end of turn) and are supervised; the rest is masked, except
# the text-only sample's first label, which must be ignored anyway.
SAMPLES = [
    [("user", [5, (1, 4, 6), 3]), ("assistant", [6]), ("user", [2, (1, 8, 12), 4]), ("assistant", [5])],
    [("user", [7]), ("assistant", [4]), ("user", [3]), ("assistant", [6])],
]
# qwen2_5_vl_video: a part ("video", (t, h, w), seconds) is a video of t temporal groups (placeholder video_token_id,
# its M-RoPE time axis scaled by seconds per group), trained through the tower in one pass with the image beside it.
VIDEO_SAMPLES = [
    [("user", [3, ("video", (2, 4, 6), 2.0), 4]), ("assistant", [6]), ("user", [2, (1, 4, 6), 3]),
     ("assistant", [5])],
    [("user", [2, ("video", (3, 4, 4), 1.0)]), ("assistant", [4]), ("user", [3]), ("assistant", [6])],
]
# qwen3_vl_video: the same samples as Qwen3VLProcessor expands them: per temporal group its time "<T seconds>" (byte
# ids, as under qwen3_ref.py's byte tokenizer) and the group's frame between its own vision_start / vision_end, every
# frame positioned as an image (Qwen3VLModel.get_rope_index).
TEXT_SAMPLES = [
    [("user", [9]), ("assistant", [6]), ("user", [8]), ("assistant", [5])],
    [("user", [7]), ("assistant", [4]), ("user", [3]), ("assistant", [6])],
]


# ---------------------------------------------------------------------------------------------------------------
# variants and their runs


def _run(name, parts=("language",), lora=None, train_router=False, all_linear_same=False):
    return {"name": name, "vision": "vision" in parts, "projector": "projector" in parts,
            "language": "language" in parts, "lora_rank": LORA_RANK if lora else 0,
            "lora_alpha": LORA_ALPHA if lora else 0.0, "lora_targets": ",".join(lora) if lora else "",
            "train_router": train_router, "all_linear_same": all_linear_same}


ALL_PARTS = ("vision", "projector", "language")
VARIANTS = {
    "qwen2_5_vl": [_run("full", ALL_PARTS), _run("lora", lora=LORA_TARGETS, all_linear_same=True)],
    "qwen2_5_vl_video": [_run("full", ALL_PARTS), _run("lora", lora=LORA_TARGETS, all_linear_same=True)],
    "qwen3": [_run("full"), _run("lora", lora=LORA_TARGETS, all_linear_same=True)],
    "qwen3_moe": [_run("full"), _run("full_router", train_router=True),
                  _run("lora", lora=LORA_TARGETS, all_linear_same=True)],
    "qwen3_vl": [_run("full", ALL_PARTS), _run("lora", lora=LORA_TARGETS, all_linear_same=True)],
    "qwen3_vl_video": [_run("full", ALL_PARTS), _run("lora", lora=LORA_TARGETS, all_linear_same=True)],
    "qwen3_vl_moe": [_run("full", ALL_PARTS), _run("lora", lora=LORA_TARGETS[:4])],
    "qwen2_moe": [_run("full"), _run("lora", lora=LORA_TARGETS + ("shared_expert_gate",), all_linear_same=True)],
}


class Family:
    """What differs between the Qwen2.5-VL reference (qwen2_vl_model) and the Qwen3 family's (qwen3_model)."""

    def __init__(self, variant):
        self.variant = variant
        self.qwen3 = variant not in ("qwen2_5_vl", "qwen2_5_vl_video")
        self.video = variant.endswith("_video")
        if self.qwen3:
            self.raw = ck.tiny_config(variant.removesuffix("_video"), "float32")
            self.cfg = q3.Config(self.raw)
            self.prefill = q3.prefill
            self.embed_name = self.cfg.prefix + "embed_tokens.weight"
        else:
            self.raw = qref.tiny_config("qwen2_5_vl", "float32")
            self.cfg = qm.Config(self.raw)
            self.prefill = qm.prefill
            self.embed_name = "model.embed_tokens.weight"
        self.is_vl = not self.qwen3 or self.cfg.is_vl
        self.is_moe = self.qwen3 and self.cfg.is_moe
        self.samples = VIDEO_SAMPLES if self.video else SAMPLES if self.is_vl else TEXT_SAMPLES

    def weights(self, seed):
        make = ck.make_tiny_weights if self.qwen3 else qref.make_tiny_weights
        W = make(self.cfg, seed, torch.float32)
        W[self.embed_name] /= EMBED_SHRINK
        return W

    def write_folder(self, model_dir):
        if self.qwen3:
            ck.write_folder(model_dir, self.raw, self.cfg.is_vl)
        else:
            qref.write_folder(model_dir, self.raw, real=False)

    def part_of(self, name):
        if self.qwen3:
            return ck.part_of(name)
        return "projector" if name.startswith("visual.merger.") else "vision" if name.startswith("visual.") \
            else "language"


def is_fused_stack(name):
    return name.endswith("mlp.experts.gate_up_proj") or name.endswith("mlp.experts.down_proj")


def is_router(fam, name):
    return fam.is_moe and name.endswith(".mlp.gate.weight")


def trained_names(fam, run, W):
    """Checkpoint tensors a full run trains, in checkpoint order."""
    return [k for k in W if run[fam.part_of(k)] and not is_fused_stack(k)
            and (run["train_router"] or not is_router(fam, k))]


def lora_modules(fam, run, W):
    """The language model's linear modules a LoRA run adapts, in checkpoint order: an entry of the targets equals
    the module's last name (PEFT's suffix match)."""
    targets = run["lora_targets"].split(",")
    out = []
    for k, v in W.items():
        if not k.endswith(".weight") or v.dim() != 2 or fam.part_of(k) != "language":
            continue
        mod = k[:-len(".weight")]
        if mod.rsplit(".", 1)[-1] in targets:
            out.append(mod)
    return out


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


ROUTE_GAPS = []  # smallest k-th minus (k+1)-th router probability of every routed forward since the last clear
ROUTE_USED = {}  # MoE layer prefix -> the experts chosen since the last clear


def route64(cfg, W, p, h):
    """qwen3_model.route with the softmax in the logits' dtype (float64 here); records the routing margin."""
    logits = q3.F.linear(h, W[p + "gate.weight"])
    probs = torch.softmax(logits, dim=-1, dtype=_up(logits).dtype)
    top_w, top_i = torch.topk(probs, cfg.top_k, dim=-1)
    with torch.no_grad():
        top = probs.topk(cfg.top_k + 1, dim=-1).values
        ROUTE_GAPS.append(float((top[:, -2] - top[:, -1]).min()))
        ROUTE_USED.setdefault(p, set()).update(top_i.flatten().tolist())
    if cfg.norm_topk:
        top_w = top_w / top_w.sum(dim=-1, keepdim=True)
    if cfg.fused_experts:
        top_w = top_w.to(logits.dtype)
    return top_w, top_i, probs


@contextlib.contextmanager
def patched(changes):
    """Replaces module attributes, [(module, name, value)], for the duration (the reference's functions look them
    up at call time)."""
    old = [(mod, k, getattr(mod, k)) for mod, k, _ in changes]
    for mod, k, v in changes:
        setattr(mod, k, v)
    try:
        yield
    finally:
        for mod, k, v in old:
            setattr(mod, k, v)


def float64_patches():
    return patched([(qm, "rms_norm", rms_norm64), (qm, "eager_attention", eager_attention64),
                    (qm, "vision_attention", vision_attention64), (q3, "route", route64)])


class LoraFunctional:
    """Stands in for torch.nn.functional inside the reference: linear() adds an adapter's path to the layers whose
    weight tensor (by identity) has one, as PEFT's lora.Linear.forward does; everything else is torch's."""

    def __init__(self, adapters):
        self.adapters = adapters  # id(base weight) -> (A, B, scale)
        self.hits = 0
        self.used = set()

    def __getattr__(self, name):
        return getattr(F, name)

    def linear(self, x, w, b=None):
        y = F.linear(x, w, b)
        ad = self.adapters.get(id(w))
        if ad is not None:
            a, bm, scale = ad
            y = y + scale * F.linear(F.linear(x, a), bm)
            self.hits += 1
            self.used.add(id(w))
        return y


def lora_patch(lf):
    return patched([(qm, "F", lf), (q3, "F", lf)]) if lf is not None else contextlib.nullcontext()


# ---------------------------------------------------------------------------------------------------------------
# data


def group_times(t, seconds, cfg):
    """The time of each of a video's t temporal groups as Qwen3VLProcessor writes it (_calculate_timestamps over
    frames seconds / temporal_patch apart: the mean of each group's first and last frame)."""
    frame = seconds / cfg.temporal_patch
    return [frame * (f * cfg.merge + f * cfg.merge + cfg.merge - 1) / 2 for f in range(t)]


def build_samples(cfg, turns_list, seed, stamped=False):
    """Returns a list of dicts: ids, labels (int64 [N]), images [(pixel_values float32, (t, h, w))]. stamped: videos
    expanded as Qwen3-VL's (see qwen3_vl_video above)."""
    gen = torch.Generator().manual_seed(seed)
    eos = cfg.eos_token_id if isinstance(cfg.eos_token_id, int) else cfg.eos_token_id[0]
    out = []
    for turns in turns_list:
        ids, labels, images = [], [], []
        for role, parts in turns:
            span = []
            for part in parts:
                if isinstance(part, int):
                    span += torch.randint(0, TEXT_ID_LIMIT, (part,), generator=gen).tolist()
                    continue
                video = part[0] == "video"
                t, h, w = part[1] if video else part
                row = cfg.in_chans * cfg.temporal_patch * cfg.patch * cfg.patch
                token = cfg.video_token_id if video else cfg.image_token_id
                if video and stamped:
                    for time in group_times(t, part[2], cfg):
                        span += list(f"<{time:.1f} seconds>".encode()) + [cfg.vision_start_token_id]
                        span += [token] * (h * w // cfg.merge ** 2) + [cfg.vision_end_token_id]
                else:
                    span += [cfg.vision_start_token_id] + [token] * (t * h * w // cfg.merge ** 2)
                    span += [cfg.vision_end_token_id]
                pv = torch.randn(t * h * w, row, generator=gen)
                images.append(qm.Video(pv, (t, h, w), part[2]) if video else (pv, (t, h, w)))
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


def sample_loss(fam, W, s, inv_norm, dtype):
    images = [it._replace(pixels=it.pixels.to(dtype)) if isinstance(it, qm.Video) else (it[0].to(dtype), it[1])
              for it in s["images"]]
    logits = fam.prefill(fam.cfg, W, s["ids"], images)[0]
    ce = F.cross_entropy(logits[:-1], s["labels"][1:], ignore_index=IGNORE, reduction="sum")
    return ce * inv_norm


def batch_backward(fam, W, samples, dtype=torch.float64, grad=True):
    """Sum of the samples' losses; with grad, each sample's backward accumulates into .grad."""
    inv_norm = 1.0 / sum(supervised(s["labels"]) for s in samples)
    total = 0.0
    for s in samples:
        with torch.set_grad_enabled(grad):
            loss = sample_loss(fam, W, s, inv_norm, dtype)
        if grad:
            loss.backward()
        total += float(loss)
    return total


def peft_name(module, which):
    return f"base_model.model.{module}.{which}.weight"


def make_lora_init(modules, W, seed):
    """A ~ U(-1/sqrt(in), 1/sqrt(in)) as PEFT's kaiming_uniform_(a=sqrt(5)); B ~ N(0, 0.05) for the gradient check."""
    gen = torch.Generator().manual_seed(seed + 7)
    init = {}
    for mod in modules:
        out_f, in_f = W[mod + ".weight"].shape
        bound = 1.0 / math.sqrt(in_f)
        init[peft_name(mod, "lora_A")] = (torch.rand(LORA_RANK, in_f, generator=gen) * 2 - 1) * bound
        init[peft_name(mod, "lora_B")] = torch.randn(out_f, LORA_RANK, generator=gen) * 0.05
    return init


def lora_params(modules, W, init, zero_b):
    """Trainable adapter tensors (float64 leaves) by PEFT name, and the LoraFunctional that applies them."""
    P, adapters = {}, {}
    for mod in modules:
        na, nb = peft_name(mod, "lora_A"), peft_name(mod, "lora_B")
        P[na] = init[na].to(torch.float64).requires_grad_()
        b = torch.zeros_like(init[nb]) if zero_b else init[nb]
        P[nb] = b.to(torch.float64).requires_grad_()
        adapters[id(W[mod + ".weight"])] = (P[na], P[nb], LORA_ALPHA / LORA_RANK)
    return P, LoraFunctional(adapters)


def train(fam, W, samples, params, lora_f=None):
    """10 steps of clip + AdamW over params (dict name -> leaf). Returns (losses, norms)."""
    decay = [p for p in params.values() if p.dim() >= 2]
    no_decay = [p for p in params.values() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": WEIGHT_DECAY},
                             {"params": no_decay, "weight_decay": 0.0}], lr=LR)
    losses, norms = [], []
    with lora_patch(lora_f):
        for _ in range(STEPS):
            opt.zero_grad()
            losses.append(batch_backward(fam, W, samples))
            norms.append(float(torch.nn.utils.clip_grad_norm_(list(params.values()), MAX_NORM)))
            opt.step()
    return losses, norms


def leaves(W32, trained=True):
    """float64 leaves; trained: True (all), False (none) or a collection of names."""
    sel = (lambda k: trained) if isinstance(trained, bool) else (lambda k: k in trained)
    return {k: v.to(torch.float64).requires_grad_(sel(k)) for k, v in W32.items()}


def run_full(fam, run, W32, samples):
    names = trained_names(fam, run, W32)
    W = leaves(W32, set(names))
    loss = batch_backward(fam, W, samples)
    grads = {k: W[k].grad.clone() if W[k].grad is not None else torch.zeros_like(W[k]) for k in names}
    W = leaves(W32, set(names))
    losses, norms = train(fam, W, samples, {k: W[k] for k in names})
    return {"loss": loss, "grads": grads, "losses": losses, "norms": norms}


def run_lora(fam, run, W32, samples, init):
    modules = lora_modules(fam, run, W32)
    base = leaves(W32, trained=False)
    P, lf = lora_params(modules, base, init, zero_b=False)
    with lora_patch(lf):
        loss = batch_backward(fam, base, samples)
    used, hits = len(lf.used), lf.hits
    grads = {k: v.grad.clone() if v.grad is not None else torch.zeros_like(v) for k, v in P.items()}
    P, lf = lora_params(modules, base, init, zero_b=True)
    losses, norms = train(fam, base, samples, P, lf)
    return {"loss": loss, "grads": grads, "losses": losses, "norms": norms, "modules": modules, "used": used,
            "hits": hits}


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


def self_checks(check, fam, W32, samples, full, lora, lora_init):
    full_loss, full_grads = full["loss"], full["grads"]
    # the float64 patches change precision only
    with patched(ORIGINAL):
        loss32 = batch_backward(fam, W32, samples, torch.float32, grad=False)
    check(abs(loss32 - full_loss) <= 1e-5 * full_loss,
          f"float64 forward = unpatched float32 reference: loss {full_loss:.9f} vs {loss32:.9f}")
    vocab = fam.cfg.vocab
    check(abs(full_loss - math.log(vocab)) < 2.0, f"loss at init {full_loss:.4f} near ln(V) = {math.log(vocab):.4f}")

    # central finite difference along a random direction, float64, over the first full run's tensors
    gen = torch.Generator().manual_seed(99)
    dirs = {k: torch.randn(v.shape, generator=gen, dtype=torch.float64) for k, v in full_grads.items()}
    eps = 1e-7  # truncation error ~eps^2 (measured: 8e-6 relative at 1e-5, 2e-9 at 1e-7)

    def moved(sign):
        return {k: v.double() + sign * eps * dirs[k] if k in dirs else v.double() for k, v in W32.items()}

    fd = (batch_backward(fam, moved(1), samples, grad=False) -
          batch_backward(fam, moved(-1), samples, grad=False)) / (2 * eps)
    an = sum(float((full_grads[k] * dirs[k]).sum()) for k in full_grads)
    check(abs(fd - an) <= 3e-8 * abs(an), f"full gradient . d = {an:.10f}, finite difference {fd:.10f}")

    # LoRA gradients = chain rule through W_eff = W + s B A on the full gradient at W_eff
    s = LORA_ALPHA / LORA_RANK
    merged = leaves(W32)
    with torch.no_grad():
        for mod in lora["modules"]:
            a = lora_init[peft_name(mod, "lora_A")].double()
            b = lora_init[peft_name(mod, "lora_B")].double()
            merged[mod + ".weight"] += s * b @ a
    batch_backward(fam, merged, samples)
    worst = 0.0
    for mod in lora["modules"]:
        na, nb = peft_name(mod, "lora_A"), peft_name(mod, "lora_B")
        G = merged[mod + ".weight"].grad
        worst = max(worst, rel_err(s * lora_init[nb].double().T @ G, lora["grads"][na]),
                    rel_err(s * G @ lora_init[na].double().T, lora["grads"][nb]))
    check(worst < 1e-9, f"LoRA gradients = chain rule on the merged full gradient (max rel err {worst:.2e})")


def route_margin(fam, W32, samples):
    """Smallest routing margin of one no-grad forward of the batch, and whether every expert of every MoE layer
    was chosen (else its gradient is zero and says nothing)."""
    ROUTE_GAPS.clear()
    ROUTE_USED.clear()
    batch_backward(fam, leaves(W32, trained=False), samples, grad=False)
    return min(ROUTE_GAPS), all(len(u) == fam.cfg.num_experts for u in ROUTE_USED.values())


def every_grad_nonzero(results):
    return all(float(g.abs().max()) > 0 for r in results.values() for g in r["grads"].values())


def run_all(fam, runs, W32, first_seed, lora_init, check):
    """Builds the samples and runs every run. MoE variants try data seeds first_seed, first_seed + 1000, ... until
    every expert is chosen at the start, every top-k choice of every forward of every run has a margin of at least
    ROUTE_KEEP_MARGIN, and no gradient is zero (an expert no token chose); DATA_SEEDS holds the first seed that
    passes, so the search costs nothing. Returns (samples, results)."""
    for attempt in range(MAX_DATA_SEEDS if fam.is_moe else 1):
        data_seed = first_seed + 1000 * attempt
        samples = build_samples(fam.cfg, fam.samples, data_seed, stamped=fam.video and fam.qwen3)
        if fam.is_moe and not route_margin(fam, W32, samples)[1]:
            print(f"data seed {data_seed}: an expert no token chooses; next seed")
            continue
        ROUTE_GAPS.clear()
        results = {run["name"]: run_lora(fam, run, W32, samples, lora_init) if run["lora_rank"]
                   else run_full(fam, run, W32, samples) for run in runs}
        if not fam.is_moe:
            return samples, results
        if min(ROUTE_GAPS) >= ROUTE_KEEP_MARGIN and every_grad_nonzero(results):
            check(True, f"data seed {data_seed}: routing margin of every forward of every run "
                  f"{min(ROUTE_GAPS):.2e} >= {ROUTE_KEEP_MARGIN:.0e}")
            return samples, results
        print(f"data seed {data_seed}: routing margin {min(ROUTE_GAPS):.2e}, every gradient nonzero "
              f"{every_grad_nonzero(results)}; next seed")
    raise SystemExit(f"no data seed from {first_seed} routes with safe margins (try another --data-seed)")


# ---------------------------------------------------------------------------------------------------------------


def write_tiny_model(variant, out, seed):
    """The tiny random model of variant written to out/model (the folder mitten trains), with the LoRA run of its
    plan and that run's adapter initialisation: (family, runs, model folder, float32 weights, LoRA init)."""
    fam = Family(variant)
    runs = VARIANTS[variant]
    model_dir = os.path.join(out, "model")
    os.makedirs(model_dir, exist_ok=True)
    W32 = fam.weights(seed)
    fam.write_folder(model_dir)
    st.write_file(os.path.join(model_dir, "model.safetensors"), W32)
    lora_run = next(r for r in runs if r["lora_rank"])
    return fam, runs, model_dir, W32, make_lora_init(lora_modules(fam, lora_run, W32), W32, seed)


def write_pair_case(out, samples, lora_init, expected, plan):
    """What train_parity reads for a DPO or GRPO case (samples of ids, labels and images): inputs.safetensors,
    lora_init.safetensors, expected.safetensors and plan.json."""
    inputs = {}
    for k, s in enumerate(samples):
        inputs[f"s{k}.ids"] = s["ids"].to(torch.int32)
        inputs[f"s{k}.labels"] = s["labels"].to(torch.int32)
        for j, (pv, g) in enumerate(s["images"]):
            inputs[f"s{k}.pixels{j}"] = pv
            inputs[f"s{k}.grid{j}"] = torch.tensor(g, dtype=torch.int64)
    st.write_file(os.path.join(out, "inputs.safetensors"), inputs)
    st.write_file(os.path.join(out, "lora_init.safetensors"), lora_init)
    st.write_file(os.path.join(out, "expected.safetensors"), expected)
    with open(os.path.join(out, "plan.json"), "w") as f:
        json.dump(plan, f, indent=1)
        f.write("\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--variant", choices=sorted(VARIANTS), default="qwen2_5_vl")
    ap.add_argument("--seed", type=int, default=0, help="weights and adapters")
    ap.add_argument("--data-seed", type=int, help="the samples' (default: DATA_SEEDS, else seed + 1)")
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(min(2, torch.get_num_threads()))

    fam, runs, model_dir, W32, lora_init = write_tiny_model(args.variant, args.out, args.seed)
    lora_run = next(r for r in runs if r["lora_rank"])
    expected, check = {}, Checks()
    first_seed = args.data_seed if args.data_seed is not None else DATA_SEEDS.get(args.variant, args.seed + 1)
    with float64_patches():
        samples, results = run_all(fam, runs, W32, first_seed, lora_init, check)
        inputs = {}
        for k, s in enumerate(samples):
            inputs[f"s{k}.ids"] = s["ids"].to(torch.int32)
            inputs[f"s{k}.labels"] = s["labels"].to(torch.int32)
            for j, it in enumerate(s["images"]):
                pv, g = (it.pixels, it.grid) if isinstance(it, qm.Video) else it
                inputs[f"s{k}.pixels{j}"] = pv
                inputs[f"s{k}.grid{j}"] = torch.tensor(g, dtype=torch.int64)
                if isinstance(it, qm.Video):
                    inputs[f"s{k}.seconds{j}"] = torch.tensor([it.seconds], dtype=torch.float32)
        st.write_file(os.path.join(args.out, "inputs.safetensors"), inputs)
        st.write_file(os.path.join(args.out, "lora_init.safetensors"), lora_init)
        full = results[runs[0]["name"]]
        lora = results[lora_run["name"]]
        check(lora["used"] == len(lora["modules"]), f"{lora_run['name']}: {lora['used']} of {len(lora['modules'])} "
              f"adapters used (applied {lora['hits']} times)")
        self_checks(check, fam, W32, samples, full, lora, lora_init)
    grads = [g for r in results.values() for g in r["grads"].values()]
    check(all(bool(torch.isfinite(g).all()) for g in grads), "every gradient finite")
    check(all(float(g.abs().max()) > 0 for g in grads), "no gradient identically zero")
    check(abs(lora["losses"][0] - full["loss"]) < 1e-12, "LoRA with B = 0 starts at the full model's loss")
    check(all(r["losses"][-1] < r["losses"][0] for r in results.values()), "every run lowers the loss")

    for run in runs:
        mode, r = run["name"], results[run["name"]]
        expected[f"{mode}.loss"] = torch.tensor([r["loss"]], dtype=torch.float32)
        expected[f"{mode}.losses"] = torch.tensor(r["losses"], dtype=torch.float32)
        expected[f"{mode}.norms"] = torch.tensor(r["norms"], dtype=torch.float32)
        for k, g in r["grads"].items():
            expected[f"{mode}.grad.{k}"] = g.to(torch.float32)
        print(f"{mode}: {len(r['grads'])} trained tensors; loss {r['loss']:.6f}; losses " +
              " ".join(f"{v:.6f}" for v in r["losses"]) + "; norms " + " ".join(f"{v:.4f}" for v in r["norms"]))
    st.write_file(os.path.join(args.out, "expected.safetensors"), expected)
    plan = {"variant": args.variant, "runs": runs, "frozen": [k for k in W32 if is_fused_stack(k)]}
    with open(os.path.join(args.out, "plan.json"), "w") as f:
        json.dump(plan, f, indent=1)
        f.write("\n")
    print("samples: %s tokens, %s supervised" % ([int(s["ids"].numel()) for s in samples],
                                                   [supervised(s["labels"]) for s in samples]))
    if check.failed:
        sys.exit(f"{check.failed} self-check(s) failed")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
