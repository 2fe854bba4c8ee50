#!/usr/bin/python3
"""PyTorch side of the DPO parity test (train_parity.c with a plan that has "dpo"): TRL's DPOTrainer losses over a
tiny random Qwen2.5-VL or Qwen3-VL (train_ref.py's model, forward and LoRA, float64) on a batch of two preference pairs.

    dpo_ref.py --out DIR [--seed 0] [--variant qwen2_5_vl|qwen3_vl]

Pairs: pair 0 shares a prompt with an image between its two answers, pair 1 is text only. Each side is one sample
of train_ref.py's form (prompt masked, answer + eos supervised), so inputs.safetensors holds s0 (pair 0 chosen),
s1 (pair 0 rejected), s2, s3. The reference log-probabilities are given (F32 "ref" [4]: chosen, rejected per pair),
set off from the policy's at init so that h != 0, and the hinge is active for pair 0 and inactive for pair 1.

Per pair, as trl/trainer/dpo_trainer.py computes it (logps: sums over the answer tokens; for ipo divided by the
answer's token count, as concatenated_forward does; h = (pc - rc) - (pr - rr)):
  sigmoid  -(1 - ls) * logsigmoid(beta h) - ls * logsigmoid(-beta h)
  ipo      (h - 1 / (2 beta))^2
  hinge    relu(1 - beta h)
The batch loss is the mean over the pairs, plus rpo_alpha (mitten's --sft-weight) times the chosen answers' token
NLL averaged over all chosen answer tokens of the batch. Rewards: beta * (policy - reference), in the loss's units.

Files: model/, inputs.safetensors, lora_init.safetensors as train_ref.py writes them; expected.safetensors with
"{run}.{loss}.loss" [1], "{run}.{loss}.grad.<name>" and "{run}.{loss}.rewards" [4] (chosen, rejected per pair);
"ref" [4]; plan.json: train_ref.py's runs for the variant and "dpo": [{"name", "loss", "beta", "label_smoothing",
"sft_weight"}].
"""

import argparse
import os
import sys

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import train_ref as tr  # noqa: E402

VARIANTS = ("qwen2_5_vl", "qwen3_vl")  # train_ref.py variants the batch is drawn for
BETA = 0.5
LOSSES = [
    {"name": "sigmoid", "loss": "sigmoid", "beta": BETA, "label_smoothing": 0.1, "sft_weight": 0.0},
    {"name": "ipo", "loss": "ipo", "beta": BETA, "label_smoothing": 0.0, "sft_weight": 0.0},
    {"name": "hinge", "loss": "hinge", "beta": BETA, "label_smoothing": 0.0, "sft_weight": 0.0},
    {"name": "rpo", "loss": "sigmoid", "beta": BETA, "label_smoothing": 0.0, "sft_weight": 0.3},
]
# (prompt, chosen answer length, rejected answer length) per pair
PAIRS = [([("user", [5, (1, 4, 6), 3])], 6, 4), ([("user", [7])], 5, 3)]
# reference = policy at init + these (chosen, rejected) offsets: pair 0 h = -1.1 (hinge active), pair 1 h = 4
REF_OFFSETS = [(0.7, -0.4), (-3.0, 1.0)]


def pair_samples(cfg, seed):
    """s0, s1 (pair 0 chosen, rejected), s2, s3: each side built from the same seed, so the prompt is the same."""
    out = []
    for k, (prompt, n_chosen, n_rejected) in enumerate(PAIRS):
        for n in (n_chosen, n_rejected):
            out += tr.build_samples(cfg, [prompt + [("assistant", [n])]], seed + k)
    for k in range(len(PAIRS)):
        c, r = out[2 * k], out[2 * k + 1]
        assert not torch.equal(c["ids"], r["ids"])
    return out


def n_answer(s):
    return tr.supervised(s["labels"])


def dpo_batch(fam, W, samples, ref, spec, lora_f=None):
    """Batch loss (float) and rewards; gradients accumulate into the leaves."""
    beta, ls, loss_type, w = spec["beta"], spec["label_smoothing"], spec["loss"], spec["sft_weight"]
    with tr.lora_patch(lora_f):
        nll = [tr.sample_loss(fam, W, s, 1.0, torch.float64) for s in samples]
    chosen_tokens = sum(n_answer(samples[2 * k]) for k in range(len(PAIRS)))
    total, rewards = 0.0, []
    for k in range(len(PAIRS)):
        lp = [-nll[2 * k], -nll[2 * k + 1]]
        rf = [ref[2 * k], ref[2 * k + 1]]
        if loss_type == "ipo":
            lp = [lp[j] / n_answer(samples[2 * k + j]) for j in range(2)]
            rf = [rf[j] / n_answer(samples[2 * k + j]) for j in range(2)]
        h = (lp[0] - rf[0]) - (lp[1] - rf[1])
        if loss_type == "sigmoid":
            loss = -(1 - ls) * F.logsigmoid(beta * h) - ls * F.logsigmoid(-beta * h)
        elif loss_type == "ipo":
            loss = (h - 1 / (2 * beta)) ** 2
        else:
            loss = torch.relu(1 - beta * h)
        total = total + loss / len(PAIRS)
        rewards += [beta * float(lp[0] - rf[0]), beta * float(lp[1] - rf[1])]
    if w:
        total = total + w * sum(nll[2 * k] for k in range(len(PAIRS))) / chosen_tokens
    total.backward()
    return float(total), rewards


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
        samples = pair_samples(fam.cfg, args.seed + 1)
        base = tr.leaves(W32, trained=False)
        with torch.no_grad():
            logp = [-float(tr.sample_loss(fam, base, s, 1.0, torch.float64)) for s in samples]
        # float32 values, so that mitten reads the very numbers used here
        ref = [float(torch.tensor(logp[i] + REF_OFFSETS[i // 2][i % 2], dtype=torch.float32)) for i in range(4)]
        for run in runs:
            for spec in LOSSES:
                if run["lora_rank"]:
                    modules = tr.lora_modules(fam, run, W32)
                    P, lf = tr.lora_params(modules, base, lora_init, zero_b=False)
                    loss, rewards = dpo_batch(fam, base, samples, ref, spec, lf)
                    grads = {k: v.grad.clone() for k, v in P.items()}
                else:
                    names = tr.trained_names(fam, run, W32)
                    W = tr.leaves(W32, set(names))
                    loss, rewards = dpo_batch(fam, W, samples, ref, spec)
                    grads = {k: W[k].grad.clone() if W[k].grad is not None else torch.zeros_like(W[k]) for k in names}
                key = f"{run['name']}.{spec['name']}"
                check(all(bool(torch.isfinite(g).all()) for g in grads.values()), f"{key}: every gradient finite")
                check(any(float(g.abs().max()) > 0 for g in grads.values()), f"{key}: a gradient is not zero")
                expected[f"{key}.loss"] = torch.tensor([loss], dtype=torch.float32)
                expected[f"{key}.rewards"] = torch.tensor(rewards, dtype=torch.float32)
                for k, g in grads.items():
                    expected[f"{key}.grad.{k}"] = g.to(torch.float32)
                print(f"{key}: loss {loss:.8f}, rewards " + " ".join(f"{v:.5f}" for v in rewards))
    expected["ref"] = torch.tensor(ref, dtype=torch.float32)
    tr.write_pair_case(args.out, samples, lora_init, expected,
                       {"variant": args.variant, "runs": runs, "frozen": [], "dpo": LOSSES})
    if check.failed:
        sys.exit(f"{check.failed} self-check(s) failed")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
