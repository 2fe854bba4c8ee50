#!/usr/bin/python3
"""PyTorch peer of bench_train.c: the same model, data and batch, one training step at a time, timed by phase.

    bench_train_ref.py make --out DIR            # DIR/model-f32, DIR/model-bf16 (same values), DIR/image.png
    bench_train_ref.py run --model DIR [--image PNG] --mode full|lora --threads T [--batch B] [--steps S]
                           [--warmup W] [--user U] [--assistant A] [--json OUT]

The model is the plain-torch Qwen2.5-VL of tests/ref/qwen2_vl_model.py (transformers 4.55's modeling_qwen2_5_vl.py,
eager attention: torch 1.13 has no scaled_dot_product_attention), the LoRA layers those of tests/train/train_ref.py
(PEFT's Linear.forward), the optimizer torch.optim.AdamW after clip_grad_norm_(1.0), as train_ref.py runs them.
torch computes in float32: the bf16 checkpoint is widened once at load (torch 1.13's CPU bf16 matmul is not a usable
peer on a CPU without AVX-512-BF16), and nothing else differs from what mitten runs.

A step, as mitten's trainer runs it (one forward and backward per sample, gradients accumulating):

  | phase     | timed                                                                                         |
  |-----------|-----------------------------------------------------------------------------------------------|
  | data      | PIL decode of the image file + Qwen2VLImageProcessor's rescale, normalise, patchify (per sample) |
  | vision    | token embeddings + the vision tower and merger + the image rows scattered in                  |
  | lm        | the language model to the logits of every row                                                 |
  | loss      | cross-entropy (sum over supervised tokens) x 1 / (supervised tokens of the batch)             |
  | backward  | loss.backward()                                                                               |
  | optimizer | zero_grad, clip_grad_norm_(1.0), AdamW step (lr 1e-5, weight decay 0.01 on tensors of 2+ dims) |

Figures are those of the fastest timed step. Sample k of the batch (both sides build it from the same formula): U user text ids (masked), <|vision_start|>,
the image's merged tokens, <|vision_end|>, A assistant text ids (supervised); text id i of sample k is
(1000003 (k + 1) + 7919 i) mod min(150000, V - 128) (every id below the special ones). Each sample carries the same image.

Shape legend: N tokens of a sample, V vocabulary, H text hidden, P patches of the image (t h w).
"""

import argparse
import contextlib
import json
import math
import os
import resource
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "ref"))
sys.path.insert(0, os.path.join(ROOT, "tests", "train"))
import qwen2_vl_model as qm  # noqa: E402
import qwen2_vl_ref as qref  # noqa: E402
import safetensors_io as st  # noqa: E402
import train_ref  # noqa: E402

IGNORE = -100
LR, WEIGHT_DECAY, MAX_NORM = 1e-5, 0.01, 1.0
LORA_RANK, LORA_ALPHA = 16, 32.0
IMAGE_SIDE = 448
EMBED_SHRINK = 4.0  # as train_ref.py: the loss starts near ln V, like a model about to be fine-tuned


def bench_config(dtype):
    """A small Qwen2.5-VL: the real vocabulary and special ids, Qwen2.5-VL's head sizes (text 64, vision 80), the
    real window and merge sizes, fewer and narrower layers."""
    cfg = {"architectures": ["Qwen2_5_VLForConditionalGeneration"], "model_type": "qwen2_5_vl", **qref.QWEN_IDS}
    cfg.update(qref._text_fields(512, 8, 2, 4, 2048, qref.QWEN_IDS["vocab_size"], True, dtype, [8, 12, 12]))
    cfg["vision_config"] = {
        "depth": 4, "hidden_act": "silu", "hidden_size": 320, "intermediate_size": 864, "num_heads": 4,
        "in_chans": 3, "out_hidden_size": 512, "patch_size": 14, "spatial_merge_size": 2, "spatial_patch_size": 14,
        "window_size": 112, "fullatt_block_indexes": [3], "tokens_per_second": 2, "temporal_patch_size": 2,
    }
    return cfg


def cmd_make(args):
    cfg_f32 = bench_config("float32")
    W = qref.make_tiny_weights(qm.Config(cfg_f32), 0, torch.float32)
    W["model.embed_tokens.weight"] /= EMBED_SHRINK
    for dtype, name in ((torch.float32, "model-f32"), (torch.bfloat16, "model-bf16")):
        d = os.path.join(args.out, name)
        raw = bench_config("float32" if dtype == torch.float32 else "bfloat16")
        qref.write_folder(d, raw, real=False)
        st.write_file(os.path.join(d, "model.safetensors"), {k: v.to(dtype) for k, v in W.items()})
    picture().save(os.path.join(args.out, "image.png"))
    n = sum(v.numel() for v in W.values())
    print(f"wrote {args.out}: {n / 1e6:.1f} M parameters (f32 and bf16), image.png {IMAGE_SIDE}x{IMAGE_SIDE}")


# ---------------------------------------------------------------------------------------------------------------
# data, as transformers' Qwen2VLImageProcessor does it (PIL resize, rescale, normalise, patchify)


def smart_resize(h, w, factor, min_pixels, max_pixels):
    hb, wb = round(h / factor) * factor, round(w / factor) * factor
    if hb * wb > max_pixels:
        beta = math.sqrt(h * w / max_pixels)
        hb, wb = math.floor(h / beta / factor) * factor, math.floor(w / beta / factor) * factor
    elif hb * wb < min_pixels:
        beta = math.sqrt(min_pixels / (h * w))
        hb, wb = math.ceil(h * beta / factor) * factor, math.ceil(w * beta / factor) * factor
    return hb, wb


def picture():
    """Smooth colour fields plus noise: a photo-like 448 x 448 picture."""
    gen = np.random.default_rng(0)
    y, x = np.mgrid[0:IMAGE_SIDE, 0:IMAGE_SIDE].astype(np.float32) / IMAGE_SIDE
    rgb = np.stack([128 + 100 * np.sin(6 * x + 2 * y), 128 + 100 * np.cos(5 * y - 3 * x), 255 * x * y], -1)
    rgb = np.clip(rgb + gen.normal(0, 12, rgb.shape), 0, 255).astype(np.uint8)
    return Image.fromarray(rgb, "RGB")


def preprocess(path, cfg, model):
    """path None: picture() in memory (mitten bench --train, which makes its picture in memory too). The pixel
    bounds are the checkpoint's preprocessor_config.json, as mitten's processor reads them."""
    pre = dict(qref.PREPROCESSOR)
    own = os.path.join(model, "preprocessor_config.json")
    if os.path.exists(own):
        pre.update(json.load(open(own)))
    img = Image.open(path).convert("RGB") if path else picture()
    p, m, tp = cfg.patch, cfg.merge, cfg.temporal_patch
    h, w = smart_resize(img.height, img.width, p * m, pre["min_pixels"], pre["max_pixels"])
    img = img.resize((w, h), Image.BICUBIC)
    a = np.asarray(img, dtype=np.float32) / 255.0
    a = (a - np.array(pre["image_mean"], np.float32)) / np.array(pre["image_std"], np.float32)
    a = np.repeat(a.transpose(2, 0, 1)[None], tp, axis=0)  # [tp, C, h, w]
    gh, gw = h // p, w // p
    a = a.reshape(1, tp, 3, gh // m, m, p, gw // m, m, p).transpose(0, 3, 6, 4, 7, 2, 1, 5, 8)
    return torch.from_numpy(np.ascontiguousarray(a).reshape(gh * gw, 3 * tp * p * p)), (1, gh, gw)


def sample_tokens(cfg, k, n_image, user, assistant):
    def text(i):
        return (1000003 * (k + 1) + 7919 * i) % min(150000, cfg.vocab - 128)
    ids = [text(i) for i in range(user)] + [cfg.vision_start_token_id] + [cfg.image_token_id] * n_image
    ids += [cfg.vision_end_token_id] + [text(user + i) for i in range(assistant)]
    masked = user + 2 + n_image
    labels = [IGNORE] * masked + ids[masked:]
    return torch.tensor(ids), torch.tensor(labels)


# ---------------------------------------------------------------------------------------------------------------
# the step


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def lora_modules(W):
    """The language model's linears mitten's --lora adapts by default (PEFT's q/k/v/o/gate/up/down), in order."""
    targets = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
    return [k[:-len(".weight")] for k, v in W.items()
            if k.endswith(".weight") and v.dim() == 2 and not k.startswith("visual.")
            and k[:-len(".weight")].rsplit(".", 1)[-1] in targets]


def load_params(args, cfg):
    """Weights (f32 leaves) and the trained tensors by name, and the LoraFunctional for LoRA (else None)."""
    W = {k: v.float() for k, v in st.read_folder(args.model).items()}
    if args.mode == "full":
        for v in W.values():
            v.requires_grad_(True)
        return W, dict(W), None
    gen = torch.Generator().manual_seed(1)
    P, adapters = {}, {}
    for mod in lora_modules(W):
        out_f, in_f = W[mod + ".weight"].shape
        a = ((torch.rand(LORA_RANK, in_f, generator=gen) * 2 - 1) / math.sqrt(in_f)).requires_grad_()
        b = torch.zeros(out_f, LORA_RANK).requires_grad_()  # PEFT's init
        P[train_ref.peft_name(mod, "lora_A")], P[train_ref.peft_name(mod, "lora_B")] = a, b
        adapters[id(W[mod + ".weight"])] = (a, b, LORA_ALPHA / LORA_RANK)
    return W, P, train_ref.LoraFunctional(adapters)


def run_step(args, cfg, W, params, opt, batch_meta):
    t = dict.fromkeys(("data", "vision", "lm", "loss", "backward", "optimizer"), 0.0)
    c0 = time.perf_counter()
    images = [preprocess(args.image, cfg, args.model) for _ in range(args.batch)]
    t["data"] = time.perf_counter() - c0
    c0 = time.perf_counter()
    opt.zero_grad(set_to_none=True)
    t["optimizer"] += time.perf_counter() - c0
    ids_labels, inv_norm = batch_meta
    total = 0.0
    for (ids, labels), (pv, grid) in zip(ids_labels, images):
        c0 = time.perf_counter()
        feats = qm.vision_forward(cfg, W, pv, [grid])
        embeds = qm.embed_inputs(cfg, W, ids, feats)
        c1 = time.perf_counter()
        pos, _ = qm.rope_index(cfg, ids, [grid])
        logits = qm.text_forward(cfg, W, embeds, pos, [None] * cfg.layers, 0)
        c2 = time.perf_counter()
        loss = F.cross_entropy(logits[:-1], labels[1:], ignore_index=IGNORE, reduction="sum") * inv_norm
        c3 = time.perf_counter()
        loss.backward()
        c4 = time.perf_counter()
        total += float(loss)
        del feats, embeds, logits, loss
        t["vision"] += c1 - c0
        t["lm"] += c2 - c1
        t["loss"] += c3 - c2
        t["backward"] += c4 - c3
    c0 = time.perf_counter()
    torch.nn.utils.clip_grad_norm_(list(params.values()), MAX_NORM)
    opt.step()
    t["optimizer"] += time.perf_counter() - c0
    t["total"] = sum(t.values())
    return total, t


def cmd_run(args):
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rss0 = peak_rss_mib()
    cfg = qm.Config(json.load(open(os.path.join(args.model, "config.json"))))
    W, params, lora_f = load_params(args, cfg)
    decay = [p for p in params.values() if p.dim() >= 2]
    no_decay = [p for p in params.values() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": WEIGHT_DECAY},
                             {"params": no_decay, "weight_decay": 0.0}], lr=LR)
    _, grid = preprocess(args.image, cfg, args.model)
    n_image = grid[0] * grid[1] * grid[2] // cfg.merge ** 2
    ids_labels = [sample_tokens(cfg, k, n_image, args.user, args.assistant) for k in range(args.batch)]
    sup = sum(int((lab[1:] != IGNORE).sum()) for _, lab in ids_labels)
    tokens = sum(int(ids.numel()) for ids, _ in ids_labels)
    rss_loaded = peak_rss_mib()
    ctx = train_ref.patched([(qm, "F", lora_f)]) if lora_f is not None else contextlib.nullcontext()
    steps, losses = [], []
    with ctx:
        for i in range(args.warmup + args.steps):
            loss, t = run_step(args, cfg, W, params, opt, (ids_labels, 1.0 / sup))
            losses.append(loss)
            if i >= args.warmup:
                steps.append(t)
            print(f"torch step {i + 1}: loss {loss:.6f}  {t['total']:.2f} s", file=sys.stderr, flush=True)
    best = min(steps, key=lambda s: s["total"])  # other processes only ever slow a step down
    out = {
        "side": "torch", "torch": torch.__version__, "mode": args.mode, "threads": args.threads,
        "batch": args.batch, "tokens": tokens, "image_tokens": n_image * args.batch, "supervised": sup,
        "trained_params": sum(p.numel() for p in params.values()), "steps": args.steps, "losses": losses,
        "time": best, "tokens_per_s": tokens / best["total"], "samples_per_s": args.batch / best["total"],
        "rss_start_mib": rss0, "rss_loaded_mib": rss_loaded, "peak_rss_mib": peak_rss_mib(),
        "blas": os.environ.get("MT_BENCH_BLAS", "as installed"),
    }
    text = json.dumps(out, indent=1)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")
    print(text)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    mk = sub.add_parser("make")
    mk.add_argument("--out", required=True)
    rn = sub.add_parser("run")
    rn.add_argument("--model", required=True)
    rn.add_argument("--image", help="a picture file; without it, the 448 x 448 picture make writes, in memory")
    rn.add_argument("--mode", choices=("full", "lora"), default="full")
    rn.add_argument("--threads", type=int, default=2)
    rn.add_argument("--batch", type=int, default=2)
    rn.add_argument("--steps", type=int, default=2)
    rn.add_argument("--warmup", type=int, default=1)
    rn.add_argument("--user", type=int, default=30)
    rn.add_argument("--assistant", type=int, default=224)
    rn.add_argument("--json")
    args = ap.parse_args()
    cmd_make(args) if args.cmd == "make" else cmd_run(args)


if __name__ == "__main__":
    main()
