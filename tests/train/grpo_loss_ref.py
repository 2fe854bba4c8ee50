"""GRPO's advantages, loss, metrics and d loss / d logp, from PyTorch autograd in float64 on TRL GRPOTrainer's
formulas (_compute_loss, _generate_and_score_completions), written for grpo_loss_check to compare.

usage: grpo_loss_ref.py CHECKER WORK
"""
import os
import subprocess
import sys

import torch

torch.manual_seed(5)
checker, work = sys.argv[1], sys.argv[2]
os.makedirs(work, exist_ok=True)
path = os.path.join(work, "cases.txt")


def advantages(rewards, group, scale):
    r = rewards.view(-1, group)
    a = r - r.mean(dim=1, keepdim=True)
    if scale:
        a = a / (r.std(dim=1, keepdim=True) + 1e-4)
    return a.reshape(-1)


def case(kind, beta, eps_low, eps_high, max_tokens, scale, n_groups, group, equal_rewards=False, empty=False):
    n = n_groups * group
    rewards = torch.randint(0, 3, (n,)).double() * 0.5
    if equal_rewards:
        rewards[:] = 1.0
    lens = torch.randint(1, max_tokens + 1, (n,))
    if empty:
        lens[0] = 0
    T = int(lens.sum())
    mask = torch.zeros(n, max_tokens, dtype=torch.float64)
    for i in range(n):
        mask[i, : lens[i]] = 1
    old = -torch.rand(n, max_tokens, dtype=torch.float64) * 3
    # Ratios spread across the clip range and beyond it on both sides.
    logp = (old + torch.randn(n, max_tokens, dtype=torch.float64) * 0.3).requires_grad_(True)
    ref = old + torch.randn(n, max_tokens, dtype=torch.float64) * 0.5
    adv = advantages(rewards, group, scale)
    per_token_kl = torch.exp(ref - logp) - (ref - logp) - 1
    coef_1 = torch.exp(logp - old)
    coef_2 = torch.clamp(coef_1, 1 - eps_low, 1 + eps_high)
    per_token_loss = -torch.min(coef_1 * adv.unsqueeze(1), coef_2 * adv.unsqueeze(1))
    if beta != 0.0:
        per_token_loss = per_token_loss + beta * per_token_kl
    if kind == "grpo":
        loss = ((per_token_loss * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).mean()
    elif kind == "bnpo":
        loss = (per_token_loss * mask).sum() / mask.sum().clamp(min=1.0)
    else:
        loss = (per_token_loss * mask).sum() / (per_token_loss.size(0) * max_tokens)
    loss.backward()
    tokens = mask.sum().clamp(min=1.0)
    kl = (per_token_kl * mask).sum() / tokens if beta != 0.0 else torch.tensor(0.0)
    low = (((coef_1 < 1 - eps_low) & (adv.unsqueeze(1) < 0)) * mask).sum() / tokens
    high = (((coef_1 > 1 + eps_high) & (adv.unsqueeze(1) > 0)) * mask).sum() / tokens
    sel = mask.bool()
    rows = [
        f"{kind} {beta!r} {eps_low!r} {eps_high!r} {max_tokens} {int(scale)} {n_groups} {group}",
        " ".join(repr(float(x)) for x in rewards),
        " ".join(str(int(x)) for x in lens),
    ]
    for t in (logp.detach(), old, ref, logp.grad):
        rows.append(" ".join(repr(float(x)) for x in t[sel]))
    rows.append(" ".join(repr(float(x)) for x in adv))
    rows.append(" ".join(repr(float(x)) for x in (loss, kl, low, high)))
    assert all(len(r.split()) == T for r in rows[3:7])
    return "\n".join(rows)


cases = []
for kind in ("grpo", "bnpo", "dr_grpo"):
    cases.append(case(kind, 0.04, 0.2, 0.2, 12, True, 3, 4))
    cases.append(case(kind, 0.0, 0.2, 0.28, 9, True, 2, 8))
    cases.append(case(kind, 0.1, 0.1, 0.3, 7, False, 4, 2, empty=True))
cases.append(case("grpo", 0.04, 0.2, 0.2, 6, True, 2, 4, equal_rewards=True))
with open(path, "w") as f:
    f.write(f"{len(cases)}\n" + "\n".join(cases) + "\n")
sys.exit(subprocess.run([checker, path]).returncode)
