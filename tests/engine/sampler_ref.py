#!/usr/bin/env python3
"""The sampling distribution as transformers' generate() builds it, for mitten's sampler to match.

Written from transformers' logits processors (RepetitionPenaltyLogitsProcessor, TemperatureLogitsWarper,
TopKLogitsWarper, TopPLogitsWarper, MinPLogitsWarper; applied in that order, each on the scores the one before left,
in float32), in torch. For each case it writes DIR/NNN.npz-like files: logits.npy, history.npy, params.json and
probs.npy (the final softmax; 0 where a token was removed). sampler_check compares mitten's mt_sampler_filter.

usage: sampler_ref.py DIR
"""
import json
import os
import sys

import numpy as np
import torch


def reference(logits, history, t, k, p, min_p, rep):
    s = torch.tensor(logits, dtype=torch.float32)
    if rep != 1.0 and len(history):
        ids = torch.tensor(history, dtype=torch.int64)
        score = torch.gather(s, 0, ids)
        score = torch.where(score < 0, score * rep, score / rep)
        s = s.scatter(0, ids, score)
    if t == 0:
        out = torch.zeros_like(s)
        out[int(torch.argmax(s))] = 1.0
        return out
    s = s / t
    if k > 0:
        kth = torch.topk(s, min(k, s.numel()))[0][-1]
        s = s.masked_fill(s < kth, -float("inf"))
    if p < 1.0:
        sorted_logits, sorted_idx = torch.sort(s, descending=False)
        cum = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
        remove = cum <= (1 - p)
        remove[-1:] = False  # min_tokens_to_keep = 1
        s = s.masked_fill(remove.scatter(0, sorted_idx, remove), -float("inf"))
    if min_p > 0:
        probs = torch.softmax(s, dim=-1)
        s = s.masked_fill(probs < min_p * probs.max(), -float("inf"))
    return torch.softmax(s, dim=-1)


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(7)
    cases = []
    # the example: top_k 2 then top_p 0.5 must keep only the first token
    cases.append((np.array([5.0, 4.9, 1.0, 0.0, -1.0], np.float32), [], 1.0, 2, 0.5, 0.0, 1.0))
    for i in range(200):
        V = int(rng.choice([7, 50, 300]))
        logits = (rng.standard_normal(V) * rng.choice([0.5, 2.0, 6.0])).astype(np.float32)
        if i % 10 == 0:  # ties at the k-th place
            logits[:4] = logits.max() + 1.0
        history = list(rng.integers(0, V, size=int(rng.integers(0, 12))))
        t = float(rng.choice([0.0, 0.3, 0.7, 1.0, 1.5]))
        k = int(rng.choice([0, 0, 1, 2, 5, 20, V + 3]))
        p = float(rng.choice([1.0, 1.0, 0.9, 0.5, 0.1])) if i % 10 else 1.0
        min_p = float(rng.choice([0.0, 0.0, 0.05, 0.3]))
        rep = float(rng.choice([1.0, 1.3, 0.8]))
        cases.append((logits, history, t, k, p, min_p, rep))
    for n, (logits, history, t, k, p, min_p, rep) in enumerate(cases):
        d = os.path.join(out, "%03d" % n)
        os.makedirs(d, exist_ok=True)
        np.save(os.path.join(d, "logits.npy"), logits)
        np.save(os.path.join(d, "history.npy"), np.array(history, dtype=np.int64))
        np.save(os.path.join(d, "probs.npy"), reference(logits, history, t, k, p, min_p, rep).numpy())
        json.dump({"temperature": t, "top_k": k, "top_p": p, "min_p": min_p, "repetition_penalty": rep},
                  open(os.path.join(d, "params.json"), "w"))
    print("%d cases" % len(cases))


if __name__ == "__main__":
    main()
