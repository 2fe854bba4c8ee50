"""Gradients of fused attention from PyTorch autograd, for mitten's CPU attention backward.

usage: attn_grad_ref.py PATH/TO/test_kernels_attn_backward WORK_DIR

For each case writes WORK_DIR/case<i>_<name>.npy:

  | name          | dtype | shape      | content                                                             |
  |---------------|-------|------------|---------------------------------------------------------------------|
  | meta          | i64   | (9,)       | T, S, H, Hk, D, causal, q_pos0, n_seg, window                       |
  | scale         | f32   | (1,)       | softmax scale, 1/sqrt(D) rounded to f32                             |
  | cu            | i64   | (n_seg+1,) | segment bounds (only when n_seg > 0)                                |
  | q, dout       | f32   | (T, H, D)  | random inputs                                                       |
  | k, v          | f32   | (S, Hk, D) | random inputs                                                       |
  | out           | f32   | (T, H, D)  | softmax(scale q k^T + mask) v                                       |
  | dq, dk, dv    | f32   | like q/k/v | gradients of sum(dout * out), torch.autograd                        |

then runs the test binary on WORK_DIR, which compares at every ISA level and thread count within 1e-5 of max |ref|.
The reference computes in float64 from the f32 inputs, with the masks of mitten's attention (tensor/cpu/cpu.h):
query t sees key j when both are in the same segment [cu[s], cu[s+1]) (if segments are given) and, if causal,
j <= q_pos0 + t and, with a sliding window w > 0, j > q_pos0 + t - w (transformers' sliding_window_overlay: w keys
counting the query's own). A query that sees no key has output zero and gradient zero. Head h reads kv head
h // (H / Hk).
"""
import os
import subprocess
import sys

import numpy as np
import torch

CASES = [
    # T, S, H, Hk, D, causal, q_pos0, cu[, window]
    dict(T=300, S=300, H=4, Hk=2, D=64, causal=True, q_pos0=0, cu=None),  # LLM prefill, GQA
    dict(T=300, S=300, H=4, Hk=4, D=80, causal=False, q_pos0=0, cu=[0, 37, 38, 150, 300]),  # vision windows
    dict(T=260, S=260, H=4, Hk=2, D=64, causal=True, q_pos0=0, cu=[0, 100, 101, 199, 260]),  # packed samples
    dict(T=77, S=200, H=6, Hk=2, D=64, causal=True, q_pos0=123, cu=None),  # chunk after a prefix
    dict(T=50, S=50, H=2, Hk=1, D=32, causal=True, q_pos0=-3, cu=None),  # three rows see no key
    dict(T=40, S=130, H=2, Hk=2, D=17, causal=False, q_pos0=0, cu=None),  # bidirectional, odd head dim
    # sliding windows: prefill with a window inside one 64-key tile and one across tiles (GQA), decode-like single
    # rows far past the window, a chunk after a prefix, rows that see no key
    dict(T=300, S=300, H=4, Hk=2, D=64, causal=True, q_pos0=0, cu=None, window=6),
    dict(T=300, S=300, H=8, Hk=2, D=64, causal=True, q_pos0=0, cu=None, window=100),
    dict(T=1, S=250, H=8, Hk=2, D=64, causal=True, q_pos0=249, cu=None, window=40),
    dict(T=1, S=250, H=4, Hk=1, D=128, causal=True, q_pos0=249, cu=None, window=7),
    dict(T=77, S=200, H=6, Hk=2, D=64, causal=True, q_pos0=123, cu=None, window=90),
    dict(T=50, S=50, H=2, Hk=1, D=32, causal=True, q_pos0=-3, cu=None, window=5),
]


def visible(c):
    t = torch.arange(c["T"])[:, None]
    j = torch.arange(c["S"])[None, :]
    vis = torch.ones(c["T"], c["S"], dtype=torch.bool)
    if c["cu"] is not None:
        seg_t = torch.full((c["T"],), -1)
        seg_j = torch.full((c["S"],), -2)
        for s in range(len(c["cu"]) - 1):
            seg_t[c["cu"][s]:c["cu"][s + 1]] = s
            seg_j[c["cu"][s]:c["cu"][s + 1]] = s
        vis &= seg_t[:, None] == seg_j[None, :]
    if c["causal"]:
        vis &= j <= c["q_pos0"] + t
        if c.get("window", 0) > 0:
            vis &= j > c["q_pos0"] + t - c["window"]
    return vis


def reference(c, q, k, v, dout, scale):
    G = c["H"] // c["Hk"]
    qd, kd, vd = (torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in (q, k, v))
    kk, vv = kd.repeat_interleave(G, dim=1), vd.repeat_interleave(G, dim=1)  # (S, H, D)
    s = torch.einsum("thd,shd->hts", qd, kk) * scale
    vis = visible(c)
    seen = vis.any(dim=1)  # (T,)
    s = s.masked_fill(~vis[None], float("-inf")).masked_fill(~seen[None, :, None], 0.0)
    p = torch.softmax(s, dim=-1) * seen[None, :, None]
    out = torch.einsum("hts,shd->thd", p, vv)
    (out * torch.tensor(dout, dtype=torch.float64)).sum().backward()
    return [x.detach().numpy().astype("<f4") for x in (out, qd.grad, kd.grad, vd.grad)]


def main():
    tool, work = sys.argv[1], sys.argv[2]
    os.makedirs(work, exist_ok=True)
    for f in os.listdir(work):
        if f.startswith("case") and f.endswith(".npy"):
            os.remove(os.path.join(work, f))
    rng = np.random.default_rng(4)
    for i, c in enumerate(CASES):
        T, S, H, Hk, D = c["T"], c["S"], c["H"], c["Hk"], c["D"]
        scale = np.float32(1.0) / np.sqrt(np.float32(D))
        q = rng.standard_normal((T, H, D)).astype("<f4")
        k = rng.standard_normal((S, Hk, D)).astype("<f4")
        v = rng.standard_normal((S, Hk, D)).astype("<f4")
        dout = rng.standard_normal((T, H, D)).astype("<f4")
        out, dq, dk, dv = reference(c, q, k, v, dout, float(scale))
        n_seg = 0 if c["cu"] is None else len(c["cu"]) - 1
        meta = np.array([T, S, H, Hk, D, int(c["causal"]), c["q_pos0"], n_seg, c.get("window", 0)], dtype="<i8")
        arrays = dict(meta=meta, scale=np.array([scale], dtype="<f4"), q=q, k=k, v=v, dout=dout, out=out, dq=dq,
                      dk=dk, dv=dv)
        if n_seg:
            arrays["cu"] = np.array(c["cu"], dtype="<i8")
        for name, a in arrays.items():
            np.save(os.path.join(work, f"case{i}_{name}.npy"), a)
    r = subprocess.run([tool, work])
    sys.exit(r.returncode)


if __name__ == "__main__":
    main()
