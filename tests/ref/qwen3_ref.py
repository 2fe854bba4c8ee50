#!/usr/bin/python3
"""Reference data for the Qwen3 family (Qwen2, Qwen3, Qwen3-MoE, Qwen3-VL, Qwen3-VL-MoE): random checkpoints,
inputs and PyTorch dumps.

The forward lives in qwen3_model.py (language side) and qwen3_vision.py (vision tower), following transformers
5.0.0.dev0 git ccc7d90bcb; qwen3_ckpt.py has configs, tensor lists and sparse checkpoints. See README.md.

    qwen3_ref.py make-checkpoint --variant qwen2|qwen3|qwen3_moe|qwen3_vl|qwen3_vl_moe|qwen2_moe|llama --out DIR [--seed N]
                                 [--dtype float32|bfloat16] [--config-form 5|4]
                                 [--sliding-window W --max-window-layers M]   # text variants: use_sliding_window
    qwen3_ref.py make-checkpoint --shape-from CONFIG.json --sparse --out DIR    # real shapes, data a hole
                                 [--byte-tokenizer]   # a tokenizer.json of bytes (ids 0-255) and the specials
    qwen3_ref.py make-inputs --case text|text_long|one_image|two_images|video|... --model DIR --out DIR [--seed N]
    qwen3_ref.py dump --model DIR (--inputs DIR | --ids IDS.npy [--pixel-values PV.npy --grid T,H,W]...)
                      --out OUTDIR [--greedy 16] [--compute float32|bf16]
    qwen3_ref.py self-check      # internal consistency checks, exits 1 on failure

Shape legend (npy outputs): N patches, M = N/4 merged tokens, D vision hidden, L prompt tokens, H text hidden,
V vocab, k experts per token.
"""

import argparse
import json
import os
import shutil
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import qwen2_vl_model as qm2  # noqa: E402  (its Video tuple)
import qwen2_vl_ref as q2ref  # noqa: E402  (npy input/output helpers shared with the Qwen2-VL reference)
import qwen3_ckpt as ck  # noqa: E402
import qwen3_model as q3  # noqa: E402
import safetensors_io as st  # noqa: E402

TEXT_ID_LIMIT = 300  # make-inputs draws ordinary text ids from [0, 300): below every special id

def V(t, h, w, fps, indices=None):
    """A video part of a case: grid (t, h, w) of 2 t sampled frames at their indices in a video of fps frames per
    second (None: frames 0 .. 2t-1, evenly spaced, which mitten derives from second_per_grid alone)."""
    return ("video", (t, h, w), fps, indices)


CASES = {
    # text-run lengths, image grids (t, h, w) in patches and videos, in sequence order
    "text": [20],
    "text_long": [40],
    "one_image": [5, (1, 8, 12), 7],
    "two_images": [4, (1, 4, 6), 5, (1, 10, 8), 6],
    # videos as Qwen3VLProcessor expands them: "<T seconds>" and the frame between its own vision_start / vision_end
    # per temporal group. 0.25 s and 1.25 s print as 0.2 and 1.2 (round half to even, both sides)
    "video": [4, V(3, 4, 6, 2.0), 5],
    # frames sampled unevenly (linspace over 300 frames, rounded), times given explicitly
    "image_video": [3, (1, 4, 6), 4, V(2, 8, 4, 30.0, [0, 100, 199, 299]), 5],
    "video_image": [3, V(2, 4, 6, 24.0, [3, 9, 40, 41]), 4, (1, 8, 4), 5],
    # more patches than mitten's tower takes in one pass (4096): encoded in two chunks of frames
    "video_chunks": [3, V(9, 20, 28, 1.0), 4],
}


def calculate_timestamps(indices, fps, merge_size):
    """processing_qwen3_vl.py _calculate_timestamps: pad the frame indices to a multiple of merge_size with the last
    one, then each group's time is the mean of its first and last frame's idx / fps."""
    indices = list(indices)
    if len(indices) % merge_size:
        indices += [indices[-1]] * (merge_size - len(indices) % merge_size)
    ts = [i / fps for i in indices]
    return [(ts[i] + ts[i + merge_size - 1]) / 2 for i in range(0, len(ts), merge_size)]


def byte_ids(text):
    """The ids of text under the --byte-tokenizer checkpoint's tokenizer.json: its bytes (no merges)."""
    return list(text.encode("utf-8"))


def byte_tokenizer(cfg):
    """tokenizer.json: byte-level BPE whose vocab is the 256 GPT-2 byte characters (byte b is id b), no merges, and
    the tiny config's special ids as added tokens."""
    def char(b):
        printable = list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
        extra = [c for c in range(256) if c not in printable]
        return chr(b) if b in printable else chr(256 + extra.index(b))

    specials = {cfg.vision_start_token_id: "<|vision_start|>", cfg.vision_end_token_id: "<|vision_end|>",
                cfg.image_token_id: "<|image_pad|>", cfg.video_token_id: "<|video_pad|>",
                ck.TINY_IDS["bos_token_id"]: "<|im_start|>", ck.TINY_IDS["eos_token_id"]: "<|im_end|>"}
    return {"version": "1.0", "truncation": None, "padding": None,
            "added_tokens": [{"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
                              "normalized": False, "special": True} for i, t in sorted(specials.items())],
            "normalizer": None,
            "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False,
                              "use_regex": True},
            "post_processor": None, "decoder": {"type": "ByteLevel"},
            "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
                      "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False,
                      "vocab": {char(b): b for b in range(256)}, "merges": []}}


def cmd_make_checkpoint(args):
    if args.shape_from:
        if not args.sparse:
            raise SystemExit("--shape-from writes real-size checkpoints only with --sparse (data a hole)")
        with open(args.shape_from) as f:
            cfg_raw = json.load(f)
        cfg = q3.Config(cfg_raw)
        os.makedirs(args.out, exist_ok=True)
        shutil.copyfile(args.shape_from, os.path.join(args.out, "config.json"))
        paths = ck.write_sparse(args.out, cfg, args.max_shard_bytes)
        n = ck.param_counts(cfg)
        print(f"wrote {len(paths)} sparse bf16 shards to {args.out} ({cfg.model_type})")
        print(f"parameters: total {n['total']:,}  vision {n['vision']:,}  projector {n['projector']:,}  "
              f"language {n['language']:,}")
        return
    if not args.variant:
        raise SystemExit("make-checkpoint needs --variant (or --shape-from CONFIG --sparse)")
    dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[args.dtype]
    sliding = (args.sliding_window, args.max_window_layers) if args.sliding_window else None
    cfg_raw = ck.tiny_config(args.variant, args.dtype, args.config_form, sliding)
    cfg = q3.Config(cfg_raw)
    ck.write_folder(args.out, cfg_raw, cfg.is_vl)
    if args.byte_tokenizer:
        with open(os.path.join(args.out, "tokenizer.json"), "w") as f:
            json.dump(byte_tokenizer(cfg), f, ensure_ascii=False)
    st.write_file(os.path.join(args.out, "model.safetensors"), ck.make_tiny_weights(cfg, args.seed, dtype))
    print(f"wrote {args.out}")


def build_inputs(cfg, case, seed):
    """Returns (ids int64 [L], list of (pixel_values, (t, h, w)) and qwen2_vl_model.Video): build_case's expanded
    ids and inputs."""
    ids, _, images = build_case(cfg, case, seed)
    return ids, [it[0] if isinstance(it[0], qm2.Video) else it for it in images]


def build_case(cfg, case, seed):
    """Returns (ids int64 [L] as the processor expands them, the prompt's ids int64 with one
    <|vision_start|><|image_pad|> / <|video_pad|><|vision_end|> per input, list of (pixel_values float32
    [t*h*w, C*Tp*P*P], (t, h, w)) for images and (qwen2_vl_model.Video, timestamps or None) for videos). Pixel rows
    are standard normal values, already in the processor's merge-block order."""
    gen = torch.Generator().manual_seed(seed)
    ids, prompt, images = [], [], []
    row = cfg.in_chans * cfg.temporal_patch * cfg.patch * cfg.patch if cfg.is_vl else 0
    vs, ve = (cfg.vision_start_token_id, cfg.vision_end_token_id) if cfg.is_vl else (None, None)
    for part in CASES[case]:
        if isinstance(part, int):
            text = torch.randint(0, TEXT_ID_LIMIT, (part,), generator=gen).tolist()
            ids += text
            prompt += text
            continue
        if not cfg.is_vl:
            raise SystemExit(f"case {case} has images; {cfg.model_type} is text-only")
        if part[0] != "video":
            t, h, w = part
            ids += [vs] + [cfg.image_token_id] * (t * h * w // cfg.merge ** 2) + [ve]
            prompt += [vs, cfg.image_token_id, ve]
            images.append((torch.randn(t * h * w, row, generator=gen), (t, h, w)))
            continue
        _, (t, h, w), fps, indices = part
        given = indices is not None
        indices = indices if given else list(range(cfg.temporal_patch * t))
        stamps = calculate_timestamps(indices, fps, cfg.merge)
        frame = h * w // cfg.merge ** 2
        for f in range(t):
            ids += byte_ids(f"<{stamps[f]:.1f} seconds>") + [vs] + [cfg.video_token_id] * frame + [ve]
        prompt += [vs, cfg.video_token_id, ve]
        seconds = cfg.temporal_patch / fps
        video = qm2.Video(torch.randn(t * h * w, row, generator=gen), (t, h, w), seconds)
        images.append((video, stamps[:t] if given else None))
    return torch.tensor(ids, dtype=torch.int64), torch.tensor(prompt, dtype=torch.int64), images


def save_inputs(out_dir, ids, prompt, images):
    """qwen2_vl_ref's layout (ids.npy, pv{k}.npy, grids.txt), a video's line with its timestamps as a fourth word
    where they are given, and prompt_ids.npy: the ids before the expansion."""
    q2ref.save_inputs(out_dir, ids, [it[0] if isinstance(it[0], qm2.Video) else it for it in images])
    np.save(os.path.join(out_dir, "prompt_ids.npy"), prompt.numpy().astype(np.int64))
    with open(os.path.join(out_dir, "grids.txt")) as f:
        lines = f.read().splitlines()
    for k, it in enumerate(images):
        if isinstance(it[0], qm2.Video) and it[1] is not None:
            lines[k] += " " + ",".join(repr(s) for s in it[1])
    with open(os.path.join(out_dir, "grids.txt"), "w") as f:
        f.write("".join(line + "\n" for line in lines))


def load_config(model_dir):
    with open(os.path.join(model_dir, "config.json")) as f:
        return q3.Config(json.load(f))


def cmd_make_inputs(args):
    cfg = load_config(args.model)
    ids, prompt, images = build_case(cfg, args.case, args.seed)
    save_inputs(args.out, ids, prompt, images)
    print(f"wrote {args.out}: {ids.numel()} tokens, {len(images)} images")


def load_model(model_dir, compute):
    """Returns (cfg, weights in the compute dtype, eos id list)."""
    cfg = load_config(model_dir)
    dtype = {"float32": torch.float32, "bf16": torch.bfloat16}[compute]
    W = {k: v.to(dtype) for k, v in st.read_folder(model_dir).items()}
    eos = cfg.eos_token_id
    gen_path = os.path.join(model_dir, "generation_config.json")
    if os.path.exists(gen_path):
        with open(gen_path) as f:
            eos = json.load(f).get("eos_token_id", eos)
    return cfg, W, eos if isinstance(eos, list) else [eos]


def run_dump(model_dir, ids, images, out_dir, n_greedy, compute):
    cfg, W, eos = load_model(model_dir, compute)
    dumps = {}
    q3.prefill(cfg, W, ids, images, dumps)
    if n_greedy > 0:
        tokens, step_logits = q3.greedy(cfg, W, ids, images, n_greedy, eos)
        dumps["greedy"] = torch.tensor(tokens, dtype=torch.int64)
        dumps["greedy_logits"] = step_logits
        top2 = step_logits.topk(2, dim=-1).values
        print(f"greedy: {tokens}; smallest top-1/top-2 logit gap {float((top2[:, 0] - top2[:, 1]).min()):.4f}")
    if cfg.is_moe:
        print(f"routing: smallest gap between the k-th and (k+1)-th router probability "
              f"{router_margin(cfg, W, ids, images):.2e}")
    q2ref.save_dumps(out_dir, dumps)
    return dumps


def router_margin(cfg, W, ids, images):
    """Smallest p_k - p_(k+1) over tokens and MoE layers: how much error an exact comparison of the chosen experts
    can bear."""
    saved, gaps = q3.route, []

    def spy(cfg_, W_, p, h):
        out = saved(cfg_, W_, p, h)
        top = out[2].topk(cfg_.top_k + 1, dim=-1).values
        gaps.append(float((top[:, -2] - top[:, -1]).min()))
        return out

    q3.route = spy
    try:
        q3.prefill(cfg, W, ids, images)
    finally:
        q3.route = saved
    return min(gaps)


def cmd_dump(args):
    if args.inputs:
        ids, images = q2ref.load_inputs(args.inputs)
    else:
        ids = torch.from_numpy(np.load(args.ids).astype(np.int64))
        pvs, grids = args.pixel_values or [], args.grid or []
        if len(pvs) != len(grids):
            raise SystemExit("give one --grid per --pixel-values")
        images = [(torch.from_numpy(np.load(p).astype(np.float32)), q2ref.parse_grid(g)) for p, g in zip(pvs, grids)]
    dumps = run_dump(args.model, ids, images, args.out, args.greedy, args.compute)
    print(f"wrote {len(dumps)} arrays to {args.out}")


def cmd_self_check(args):
    import qwen3_selfcheck  # noqa: E402  (test code, kept apart from the reference)

    with tempfile.TemporaryDirectory() as tmp:
        ok = qwen3_selfcheck.run(tmp)
    sys.exit(0 if ok else 1)


def main(argv=None):
    torch.manual_seed(0)
    torch.set_default_dtype(torch.float32)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("make-checkpoint")
    p.add_argument("--variant", choices=ck.VARIANTS)
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")
    p.add_argument("--config-form", type=int, choices=[4, 5], default=5,
                   help="config.json layout: 5 = transformers 5.x (rope_parameters, dtype), 4 = as published")
    p.add_argument("--sliding-window", type=int, help="use_sliding_window true with this sliding_window")
    p.add_argument("--max-window-layers", type=int, default=0, help="with --sliding-window: layers before it attend "
                   "fully (qwen2, qwen3)")
    p.add_argument("--shape-from", help="a real config.json: write every tensor it implies (needs --sparse)")
    p.add_argument("--sparse", action="store_true", help="with --shape-from: bf16 shards whose data is a hole")
    p.add_argument("--max-shard-bytes", type=int, default=4 * 1000 ** 3)
    p.add_argument("--byte-tokenizer", action="store_true", help="write a tokenizer.json of bytes and specials "
                   "(what mitten's Qwen3-VL video expansion tokenizes its timestamps with)")
    p.set_defaults(fn=cmd_make_checkpoint)

    p = sub.add_parser("make-inputs")
    p.add_argument("--case", choices=sorted(CASES), required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=1234)
    p.set_defaults(fn=cmd_make_inputs)

    p = sub.add_parser("dump")
    p.add_argument("--model", required=True)
    p.add_argument("--inputs", help="folder written by make-inputs (instead of --ids/--pixel-values/--grid)")
    p.add_argument("--ids")
    p.add_argument("--pixel-values", action="append")
    p.add_argument("--grid", action="append")
    p.add_argument("--out", required=True)
    p.add_argument("--greedy", type=int, default=16)
    p.add_argument("--compute", choices=["float32", "bf16"], default="float32")
    p.set_defaults(fn=cmd_dump)

    p = sub.add_parser("self-check")
    p.set_defaults(fn=cmd_self_check)

    args = ap.parse_args(argv)
    if args.cmd == "dump" and not args.inputs and not args.ids:
        ap.error("dump needs --inputs or --ids")
    with torch.no_grad():
        args.fn(args)


if __name__ == "__main__":
    main()
