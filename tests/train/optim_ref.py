#!/usr/bin/env python3
"""train: mitten's AdamW, gradient clipping, LR schedules and loss plot against PyTorch and Python's XML parser.

Usage: optim_ref.py PATH/TO/test_train_optim

The C program (`--ref DIR`) trains 5 parameters of assorted shapes in 2 groups (different lr and weight decay,
some without decay) for 10 steps: random gradients, clip_grad_norm_(max_norm=1), AdamW (betas 0.9/0.95), lr from
a warmup + cosine schedule. Here the same is run with torch.optim.AdamW (foreach=False: the single-tensor path),
torch.nn.utils.clip_grad_norm_ and torch.optim.lr_scheduler.LambdaLR driven by the lr lambdas of transformers'
optimization.py (get_cosine_schedule_with_warmup, get_linear_schedule_with_warmup,
get_constant_schedule_with_warmup, get_cosine_with_min_lr_schedule_with_warmup; transformers itself is not
installed, the lambdas follow its source).

Tolerances (float32 throughout on both sides):
  lr per step and group:   exact (both evaluate the same double expression)
  grad norm per step:      1e-6 relative (mitten sums in double, torch in float per tensor)
  params, exp_avg, exp_avg_sq after 10 steps, per tensor:
    - |c - t| <= 1e-5 * (|t| + 0.05 * max|t|) per element against torch float32 (the floor keeps first moments
      that cancel to near zero, where both sides are off by the same float32 roundings, from dominating);
    - mitten's largest distance to a float64 torch run <= 1.5x torch float32's own + 1e-7 of the tensor's max,
      i.e. mitten is as exact as torch is. Measured: about 1e-7 relative for params (see the printed figures).
SVG: parsed by xml.etree; the train polyline and eval circles are mapped back through the axis tick labels and
must land within 0.02 px of where the data says.
"""
import json
import math
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

import numpy as np
import torch

failures = 0


def fail(msg):
    global failures
    failures += 1
    print("FAIL:", msg)


def lr_lambda(kind, w, t, min_rate=0.0, num_cycles=0.5):
    """transformers/optimization.py's lambdas, one per SchedulerType."""
    def f(k):
        if kind == "constant":
            return 1.0
        if k < w:
            return float(k) / float(max(1, w))
        if kind == "constant_with_warmup":
            return 1.0
        if kind == "linear":
            return max(0.0, float(t - k) / float(max(1, t - w)))
        progress = float(k - w) / float(max(1, t - w))
        factor = 0.5 * (1.0 + math.cos(math.pi * float(num_cycles) * 2.0 * progress))
        if min_rate:
            factor = factor * (1 - min_rate) + min_rate
        return max(0.0, factor)
    return f


def check_schedules(man):
    for case in man["schedules"]:
        p = torch.nn.Parameter(torch.zeros(1))
        opt = torch.optim.SGD([p], lr=case["base_lr"])
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lr_lambda(case["kind"], int(case["warmup"]), int(case["total"]), case["min_lr_rate"]))
        for k, want in enumerate(case["lr"]):
            got = opt.param_groups[0]["lr"]
            if got != want:
                fail(f"schedule {case['kind']} W={case['warmup']} T={case['total']} step {k}: torch {got!r}, mitten {want!r}")
                break
            opt.step()
            sched.step()
    print(f"schedules: {len(man['schedules'])} cases, every lr identical")


def run_torch(man, d, dtype):
    params = []
    for i, _ in enumerate(man["params"]):
        params.append(torch.nn.Parameter(torch.from_numpy(np.load(f"{d}/init_{i}.npy")).to(dtype)))
    groups = []
    for g, gc in enumerate(man["groups"]):
        for decay in (True, False):
            ps = [params[i] for i, pc in enumerate(man["params"]) if pc["group"] == g and pc["decay"] == decay]
            if ps:
                groups.append({"params": ps, "lr": gc["lr"], "weight_decay": gc["weight_decay"] if decay else 0.0,
                               "mt_group": g})
    b1, b2 = man["betas"]
    opt = torch.optim.AdamW(groups, betas=(b1, b2), eps=man["eps"], foreach=False)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda("cosine", int(man["warmup"]), int(man["steps"])))
    norms, lrs = [], []
    for s in range(int(man["steps"])):
        for i, p in enumerate(params):
            p.grad = torch.from_numpy(np.load(f"{d}/grad_{s}_{i}.npy")).to(dtype)
        norms.append(float(torch.nn.utils.clip_grad_norm_(params, man["max_norm"])))
        lrs.append({pg["mt_group"]: pg["lr"] for pg in opt.param_groups})
        opt.step()
        sched.step()
    state = [(p.detach().double().numpy(), opt.state[p]["exp_avg"].double().numpy(),
              opt.state[p]["exp_avg_sq"].double().numpy()) for p in params]
    return norms, lrs, state


def check_adamw(man, d):
    norms, lrs, state = run_torch(man, d, torch.float32)
    _, _, exact = run_torch(man, d, torch.float64)
    for s, (t, c) in enumerate(zip(norms, man["norms"])):
        if abs(t - c) > 1e-6 * abs(t):
            fail(f"grad norm step {s}: torch {t}, mitten {c}")
        for g in (0, 1):
            if lrs[s][g] != man[f"lr{g}"][s]:
                fail(f"lr step {s} group {g}: torch {lrs[s][g]!r}, mitten {man[f'lr{g}'][s]!r}")
    clipped = sum(1 for n in norms if n > man["max_norm"])
    if not 0 < clipped < len(norms):
        fail(f"the test should clip on some steps, not all: {clipped} of {len(norms)}")
    worst = {"param": 0.0, "exp_avg": 0.0, "exp_avg_sq": 0.0}
    torch_worst, mine_exact, torch_exact = dict(worst), dict(worst), dict(worst)
    for i, pc in enumerate(man["params"]):
        mine = [np.load(f"{d}/{k}_{i}.npy").astype(np.float64) for k in ("final", "m", "v")]
        for k, key in enumerate(worst):
            ref, ex = state[i][k], exact[i][k]
            scale = np.abs(ref) + 0.05 * np.max(np.abs(ref))
            err = np.max(np.abs(mine[k] - ref) / scale)
            worst[key] = max(worst[key], err)
            torch_worst[key] = max(torch_worst[key], np.max(np.abs(ref - ex) / scale))
            if err > 1e-5:
                fail(f"{pc['name']} {key}: error {err:.3g} > 1e-5 (relative to |torch| + 5% of the tensor's max)")
            mine_ex, torch_ex = np.max(np.abs(mine[k] - ex)), np.max(np.abs(ref - ex))
            mine_exact[key] = max(mine_exact[key], mine_ex / np.max(np.abs(ex)))
            torch_exact[key] = max(torch_exact[key], torch_ex / np.max(np.abs(ex)))
            if mine_ex > 1.5 * torch_ex + 1e-7 * np.max(np.abs(ex)):
                fail(f"{pc['name']} {key}: mitten is {mine_ex:.3g} from float64, torch float32 only {torch_ex:.3g}")
    print("adamw, 10 steps, worst relative error vs torch float32: " +
          ", ".join(f"{k} {v:.2e}" for k, v in worst.items()))
    print("  (torch float32 vs float64 for scale: " + ", ".join(f"{k} {v:.2e}" for k, v in torch_worst.items()) + ")")
    print("max error / max magnitude vs float64, mitten: " + ", ".join(f"{k} {v:.2e}" for k, v in mine_exact.items()) +
          "; torch float32: " + ", ".join(f"{k} {v:.2e}" for k, v in torch_exact.items()))
    print(f"grad norms within 1e-6, {clipped} of {len(norms)} steps clipped, lrs identical")


SVG = "{http://www.w3.org/2000/svg}"


def axis_map(root, cls, coord):
    """(value -> pixel) fitted through the first and last tick label of an axis."""
    ticks = [(float(t.text), float(t.get(coord))) for t in root.iter(SVG + "text") if t.get("class") == cls]
    if len(ticks) < 2:
        fail(f"{cls}: fewer than 2 ticks")
        return lambda v: v
    (v0, p0), (v1, p1) = ticks[0], ticks[-1]
    return lambda v: p0 + (v - v0) * (p1 - p0) / (v1 - v0)


def check_svg(man, d):
    root = ET.parse(f"{d}/loss.svg").getroot()
    if root.tag != SVG + "svg":
        fail(f"root element {root.tag}")
    texts = [t.text for t in root.iter(SVG + "text")]
    for want in ("tiny run", "step", "loss", "train loss", "eval loss"):
        if want not in texts:
            fail(f"svg: no text {want!r}")
    fx, fy = axis_map(root, "xtick", "x"), axis_map(root, "ytick", "y")
    line = [e for e in root.iter(SVG + "polyline") if e.get("id") == "train"]
    pts = [tuple(map(float, p.split(","))) for p in line[0].get("points").split()] if line else []
    plot = man["plot"]
    data = [(s, l) for s, l in zip(plot["train_step"], plot["train_loss"]) if math.isfinite(l)]
    if len(pts) != len(data):
        fail(f"svg: {len(pts)} vertices for {len(data)} finite train points")
    worst = 0.0
    for (x, y), (s, l) in zip(pts, data):
        worst = max(worst, abs(x - fx(s)), abs(y - fy(l)))
    circles = [(float(c.get("cx")), float(c.get("cy"))) for c in root.iter(SVG + "circle") if c.get("class") == "eval"]
    if len(circles) != len(plot["eval_step"]):
        fail(f"svg: {len(circles)} eval circles for {len(plot['eval_step'])} points")
    for (x, y), s, l in zip(circles, plot["eval_step"], plot["eval_loss"]):
        worst = max(worst, abs(x - fx(s)), abs(y - fy(l)))
    if worst > 0.02:
        fail(f"svg: a point is {worst:.3f} px from where its data puts it")

    big = ET.parse(f"{d}/loss_big.svg").getroot()
    line = [e for e in big.iter(SVG + "polyline") if e.get("id") == "train"][0]
    ys = [float(p.split(",")[1]) for p in line.get("points").split()]
    if not 100 < len(ys) <= 2 * 800:
        fail(f"big svg: {len(ys)} vertices")
    print(f"svg: well-formed, {len(pts)} train vertices and {len(circles)} eval points within {worst:.3f} px; "
          f"10000-point series drawn with {len(ys)} vertices")


def numbers(obj):
    """The manifest writes doubles as "%.17g" strings so that they survive JSON exactly."""
    for k, v in obj.items():
        if isinstance(v, list) and v and all(isinstance(x, str) for x in v):
            obj[k] = [float(x) for x in v]
    return obj


def main():
    exe = sys.argv[1]
    with tempfile.TemporaryDirectory() as d:
        subprocess.run([exe, "--ref", d], check=True)
        with open(f"{d}/manifest.json") as f:
            man = json.load(f, object_hook=numbers)
        check_schedules(man)
        check_adamw(man, d)
        check_svg(man, d)
    print("FAILED" if failures else "OK")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
