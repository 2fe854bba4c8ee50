#!/usr/bin/python3
"""PyTorch side of the GRPO parity test (train_parity.c with a plan that has "grpo"): TRL's GRPOTrainer loss over a
tiny random Qwen2.5-VL or Qwen3-VL (train_ref.py's model, forward and LoRA, float64) on fixed rollouts.

    grpo_ref.py --out DIR [--seed 0] [--variant qwen2_5_vl|qwen3_vl]

Rollouts: two prompts (prompt 0 with an image, prompt 1 text only), two completions each (a group of G = 2), so
inputs.safetensors holds s0, s1 (prompt 0's answers) and s2, s3, each of train_ref.py's form (prompt masked, the
completion supervised). Rewards are given: [1, 0] for group 0, [0.5, 0.5] for group 1 (all equal: zero advantage,
only the KL term's gradient). The sampling policy's ("old") and the reference's log-probabilities are given per
token: the policy's at init plus fixed offsets of up to 0.45, so that ratios fall outside [1 - eps_low, 1 + eps_high]
on both sides and the k3 KL is not 0.

Per token t of completion i (TRL's _compute_loss, advantages as in _generate_and_score_completions):
    A_i = (r_i - mean_group(r)) / (std_group(r) + 1e-4)      (std with Bessel's correction)
    logp: of the logits divided by the sampling temperature (TRL's _get_per_token_logps; 1 but in one setting)
    ratio = exp(logp - old), l_t = -min(ratio A, clamp(ratio, 1 - eps_low, 1 + eps_high) A) + beta k3(ref, logp)
    grpo: mean_i (sum_t l_t / len_i); bnpo: sum_i,t l_t / sum_i len_i; dr_grpo: sum_i,t l_t / (n * max_tokens)

Files: model/, inputs.safetensors, lora_init.safetensors as train_ref.py writes them; expected.safetensors with
"{run}.{name}.loss" [1], "{run}.{name}.grad.<name>", "rewards" [4], "old" [T], "ref" [T] (T: every completion token,
in sample order) and "{run}.base_logp" [T] (the log-probabilities under the checkpoint's own weights, which the
reference pass must give with LoRA's adapters on); plan.json: train_ref.py's runs for the variant and "grpo":
[{"name", "loss_type", "beta", "eps_low", "eps_high", "max_completion_tokens"}].
"""

import argparse
import math
import os
import sys

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import train_ref as tr  # noqa: E402

VARIANTS = ("qwen2_5_vl", "qwen3_vl")  # train_ref.py variants the batch is drawn for
GROUP = 2
REWARDS = [1.0, 0.0, 0.5, 0.5]
MAX_TOKENS = 8
SPECS = [
    {"name": "grpo", "loss_type": "grpo", "beta": 0.04, "eps_low": 0.2, "eps_high": 0.28},
    {"name": "grpo_beta0", "loss_type": "grpo", "beta": 0.0, "eps_low": 0.2, "eps_high": 0.2},
    {"name": "bnpo", "loss_type": "bnpo", "beta": 0.04, "eps_low": 0.2, "eps_high": 0.2},
    {"name": "dr_grpo", "loss_type": "dr_grpo", "beta": 0.1, "eps_low": 0.2, "eps_high": 0.2},
    {"name": "grpo_t07", "loss_type": "grpo", "beta": 0.04, "eps_low": 0.2, "eps_high": 0.2, "temperature": 0.7},
]
for s in SPECS:
    s["max_completion_tokens"] = MAX_TOKENS
# (prompt, completion lengths) per group
GROUPS = [([("user", [5, (1, 4, 6), 3])], (6, 4)), ([("user", [7])], (5, 3))]


def completion_samples(cfg, seed):
    out = []
    for k, (prompt, lens) in enumerate(GROUPS):
        for n in lens:
            out += tr.build_samples(cfg, [prompt + [("assistant", [n])]], seed + k)
    return out


def token_logps(fam, W, s, temperature=1.0):
    images = [it._replace(pixels=it.pixels.to(torch.float64)) if isinstance(it, tr.qm.Video)
              else (it[0].to(torch.float64), it[1]) for it in s["images"]]
    logits = fam.prefill(fam.cfg, W, s["ids"], images)[0] / temperature
    labels = s["labels"][1:]
    nll = F.cross_entropy(logits[:-1], labels, ignore_index=tr.IGNORE, reduction="none")
    return -nll[labels != tr.IGNORE]


def advantages(rewards):
    r = torch.tensor(rewards, dtype=torch.float64).view(-1, GROUP)
    return ((r - r.mean(1, keepdim=True)) / (r.std(1, keepdim=True) + 1e-4)).view(-1)


def grpo_batch(fam, W, samples, old, ref, spec, lora_f=None):
    with tr.lora_patch(lora_f):
        lps = [token_logps(fam, W, s, spec.get("temperature", 1.0)) for s in samples]
    adv = advantages(REWARDS)
    lens = [len(lp) for lp in lps]
    n, total, off, loss = len(samples), sum(lens), 0, 0.0
    for i, lp in enumerate(lps):
        o, rf = old[off:off + lens[i]], ref[off:off + lens[i]]
        off += lens[i]
        ratio = torch.exp(lp - o)
        clip = torch.clamp(ratio, 1 - spec["eps_low"], 1 + spec["eps_high"])
        per = -torch.min(ratio * adv[i], clip * adv[i])
        if spec["beta"]:
            d = rf - lp
            per = per + spec["beta"] * (torch.exp(d) - d - 1)
        if spec["loss_type"] == "grpo":
            loss = loss + per.sum() / max(lens[i], 1) / n
        elif spec["loss_type"] == "bnpo":
            loss = loss + per.sum() / max(total, 1)
        else:
            loss = loss + per.sum() / (n * spec["max_completion_tokens"])
    loss.backward()
    return float(loss)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--variant", choices=VARIANTS, default=VARIANTS[0])
    args = ap.parse_args()
    torch.set_num_threads(min(2, torch.get_num_threads()))
    fam, runs, model_dir, W32, lora_init = tr.write_tiny_model(args.variant, args.out, args.seed)
    expected, check = {}, tr.Checks()
    with tr.float64_patches():
        samples = completion_samples(fam.cfg, args.seed + 1)
        base = tr.leaves(W32, trained=False)
        with torch.no_grad():
            logp = torch.cat([token_logps(fam, base, s) for s in samples])
        T = len(logp)
        # float32 values, so that mitten reads the very numbers used here
        old = (logp + torch.tensor([0.45 * math.sin(1.7 * t) for t in range(T)], dtype=torch.float64)).float()
        ref = (logp + torch.tensor([0.3 * math.cos(0.9 * t) for t in range(T)], dtype=torch.float64)).float()
        old64, ref64 = old.double(), ref.double()
        for run in runs:
            for spec in SPECS:
                if run["lora_rank"]:
                    modules = tr.lora_modules(fam, run, W32)
                    P, lf = tr.lora_params(modules, base, lora_init, zero_b=False)
                    loss = grpo_batch(fam, base, samples, old64, ref64, spec, lf)
                    grads = {k: v.grad.clone() for k, v in P.items()}
                else:
                    names = tr.trained_names(fam, run, W32)
                    W = tr.leaves(W32, set(names))
                    loss = grpo_batch(fam, W, samples, old64, ref64, spec)
                    grads = {k: W[k].grad.clone() if W[k].grad is not None else torch.zeros_like(W[k]) for k in names}
                key = f"{run['name']}.{spec['name']}"
                check(all(bool(torch.isfinite(g).all()) for g in grads.values()), f"{key}: every gradient finite")
                check(any(float(g.abs().max()) > 0 for g in grads.values()), f"{key}: a gradient is not zero")
                expected[f"{key}.loss"] = torch.tensor([loss], dtype=torch.float32)
                for k, g in grads.items():
                    expected[f"{key}.grad.{k}"] = g.to(torch.float32)
                print(f"{key}: loss {loss:.8f}")
            expected[f"{run['name']}.base_logp"] = logp.float()
    ratio = torch.exp(logp - old64)
    check(bool((ratio < 0.8).any()) and bool((ratio > 1.28).any()), "ratios clipped on both sides")
    expected["rewards"] = torch.tensor(REWARDS, dtype=torch.float32)
    expected["old"] = old
    expected["ref"] = ref
    tr.write_pair_case(args.out, samples, lora_init, expected,
                       {"variant": args.variant, "runs": runs, "frozen": [], "grpo": SPECS})
    if check.failed:
        sys.exit(f"{check.failed} self-check(s) failed")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
