#!/usr/bin/python3
"""Reference data for the Qwen2.5-VL / Qwen2-VL family: random checkpoints, inputs, and PyTorch dumps.

The forward itself lives in qwen2_vl_model.py (follows transformers 4.55 modeling_qwen2_5_vl.py and
modeling_qwen2_vl.py); safetensors_io.py writes and reads the weights. See README.md in this folder for how the
C tests use the outputs.

    qwen2_vl_ref.py make-checkpoint --variant qwen2_5_vl|qwen2_vl --out DIR --seed N
                                    [--dtype float32|bfloat16] [--shape tiny|demo|qwen2.5-vl-3b]
    qwen2_vl_ref.py make-inputs --case text|one_image|two_images|multi_window|video|... --model DIR --out DIR
                                [--seed N]
    qwen2_vl_ref.py dump --model DIR (--inputs DIR | --ids IDS.npy [--pixel-values PV.npy --grid T,H,W]...)
                         --out OUTDIR [--greedy 16] [--compute float32|bf16]
    qwen2_vl_ref.py self-check [--variant ...]      # internal consistency checks, exits 1 on failure

Shape legend (npy outputs): N patches, M = N/4 merged tokens, D vision hidden, L prompt tokens, H text hidden,
V vocab.
"""

import argparse
import json
import math
import os
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import qwen2_vl_model as qm  # noqa: E402
import safetensors_io as st  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
REAL_3B_CONFIG = os.path.join(HERE, "configs", "qwen2.5-vl-3b-instruct.json")  # the published config.json

# Values of Qwen2.5-VL-3B-Instruct/preprocessor_config.json (also what Qwen2-VL-2B-Instruct ships).
PREPROCESSOR = {
    "min_pixels": 3136,
    "max_pixels": 12845056,
    "patch_size": 14,
    "temporal_patch_size": 2,
    "merge_size": 2,
    "image_mean": [0.48145466, 0.4578275, 0.40821073],
    "image_std": [0.26862954, 0.26130258, 0.27577711],
    "image_processor_type": "Qwen2VLImageProcessor",
    "processor_class": "Qwen2_5_VLProcessor",
}

TINY_IDS = {"bos_token_id": 300, "eos_token_id": 301, "vision_start_token_id": 302, "vision_end_token_id": 303,
            "vision_token_id": 304, "image_token_id": 305, "video_token_id": 306}
# Qwen2-VL / Qwen2.5-VL checkpoints' vocabulary size and special ids (their config.json), for --shape demo.
QWEN_IDS = {"vocab_size": 151936, "bos_token_id": 151643, "eos_token_id": 151645, "vision_start_token_id": 151652,
            "vision_end_token_id": 151653, "vision_token_id": 151654, "image_token_id": 151655,
            "video_token_id": 151656}
TEXT_ID_LIMIT = 300  # make-inputs draws ordinary text ids from [0, 300): below every special id


# ---------------------------------------------------------------------------------------------------------------
# configs


def _text_fields(hidden, heads, kv_heads, layers, intermediate, vocab, tie, dtype, mrope):
    return {
        "attention_dropout": 0.0, "hidden_act": "silu", "hidden_size": hidden, "initializer_range": 0.02,
        "intermediate_size": intermediate, "max_position_embeddings": 128000, "max_window_layers": layers,
        "num_attention_heads": heads, "num_hidden_layers": layers, "num_key_value_heads": kv_heads,
        "rms_norm_eps": 1e-06, "rope_theta": 1000000.0, "sliding_window": 32768, "tie_word_embeddings": tie,
        "torch_dtype": dtype, "transformers_version": "4.41.2", "use_cache": True, "use_sliding_window": False,
        "rope_scaling": {"type": "mrope", "mrope_section": mrope}, "vocab_size": vocab,
    }


def tiny_config(variant, dtype):
    """Same keys and layout as the published config.json of Qwen2.5-VL-3B-Instruct / Qwen2-VL-2B-Instruct."""
    if variant == "qwen2_5_vl":
        cfg = {"architectures": ["Qwen2_5_VLForConditionalGeneration"], "model_type": "qwen2_5_vl", **TINY_IDS}
        cfg.update(_text_fields(64, 4, 2, 3, 96, 320, True, dtype, [2, 3, 3]))
        cfg["vision_config"] = {
            "depth": 4, "hidden_act": "silu", "hidden_size": 32, "intermediate_size": 48, "num_heads": 2,
            "in_chans": 3, "out_hidden_size": 64, "patch_size": 14, "spatial_merge_size": 2,
            "spatial_patch_size": 14, "window_size": 112, "fullatt_block_indexes": [1, 3],
            "tokens_per_second": 2, "temporal_patch_size": 2,
        }
    else:
        cfg = {"architectures": ["Qwen2VLForConditionalGeneration"], "model_type": "qwen2_vl", **TINY_IDS}
        cfg.update(_text_fields(64, 4, 2, 3, 96, 320, False, dtype, [2, 3, 3]))
        # Qwen2-VL-2B's vision_config has no hidden_act: transformers defaults it to quick_gelu
        cfg["vision_config"] = {
            "depth": 3, "embed_dim": 32, "mlp_ratio": 2, "num_heads": 2, "in_chans": 3, "hidden_size": 64,
            "patch_size": 14, "spatial_merge_size": 2, "spatial_patch_size": 14, "temporal_patch_size": 2,
        }
    return cfg


def generation_config(cfg_raw, real):
    """Tiny: only the ids, so transformers' generate is plain greedy. Real: Qwen2.5-VL-3B-Instruct's file."""
    bos, eos = cfg_raw["bos_token_id"], cfg_raw["eos_token_id"]
    gen = {"bos_token_id": bos, "pad_token_id": bos, "eos_token_id": [eos, bos]}
    if real:
        gen.update({"do_sample": True, "repetition_penalty": 1.05, "temperature": 0.1, "top_p": 0.001, "top_k": 1})
    gen["transformers_version"] = "4.49.0"
    return gen


# ---------------------------------------------------------------------------------------------------------------
# weights


def weight_specs(cfg):
    """transformers' checkpoint tensors of this config, in model order: list of (name, shape, kind, fan_in).
    kind: linear | conv | bias | norm | norm_bias | embed."""
    specs = []
    D, I = cfg.vdim, cfg.vintermediate
    specs.append(("visual.patch_embed.proj.weight", [D, cfg.in_chans, cfg.temporal_patch, cfg.patch, cfg.patch],
                  "conv", cfg.in_chans * cfg.temporal_patch * cfg.patch * cfg.patch))

    def linear(name, out_f, in_f, bias=True):
        specs.append((name + ".weight", [out_f, in_f], "linear", in_f))
        if bias:
            specs.append((name + ".bias", [out_f], "bias", in_f))

    def norm(name, dim):
        specs.append((name + ".weight", [dim], "norm", dim))
        if not cfg.is_25:
            specs.append((name + ".bias", [dim], "norm_bias", dim))

    for i in range(cfg.vdepth):
        p = f"visual.blocks.{i}."
        norm(p + "norm1", D)
        norm(p + "norm2", D)
        linear(p + "attn.qkv", 3 * D, D)
        linear(p + "attn.proj", D, D)
        if cfg.is_25:
            linear(p + "mlp.gate_proj", I, D)
            linear(p + "mlp.up_proj", I, D)
            linear(p + "mlp.down_proj", D, I)
        else:
            linear(p + "mlp.fc1", I, D)
            linear(p + "mlp.fc2", D, I)
    M = D * cfg.merge * cfg.merge
    norm("visual.merger.ln_q", D)
    linear("visual.merger.mlp.0", M, M)
    linear("visual.merger.mlp.2", cfg.out_hidden, M)

    H, KV = cfg.hidden, cfg.kv_heads * cfg.head_dim
    specs.append(("model.embed_tokens.weight", [cfg.vocab, H], "embed", H))
    for i in range(cfg.layers):
        p = f"model.layers.{i}."
        specs.append((p + "input_layernorm.weight", [H], "norm", H))
        linear(p + "self_attn.q_proj", H, H)
        linear(p + "self_attn.k_proj", KV, H)
        linear(p + "self_attn.v_proj", KV, H)
        linear(p + "self_attn.o_proj", H, H, bias=False)
        specs.append((p + "post_attention_layernorm.weight", [H], "norm", H))
        linear(p + "mlp.gate_proj", cfg.intermediate, H, bias=False)
        linear(p + "mlp.up_proj", cfg.intermediate, H, bias=False)
        linear(p + "mlp.down_proj", H, cfg.intermediate, bias=False)
    specs.append(("model.norm.weight", [H], "norm", H))
    if not cfg.tie:
        specs.append(("lm_head.weight", [cfg.vocab, H], "linear", H))
    return specs


def init_scale(kind, fan_in):
    """(offset, std) per kind. Linear std 1/sqrt(fan_in) keeps every activation O(1) at any width (about 0.02 at
    the 3B's 2048); norms are 1 +- 0.1 so a wrong norm weight shows; embeddings 4/sqrt(H) give O(1) logits."""
    if kind in ("linear", "conv"):
        return 0.0, 1.0 / math.sqrt(fan_in)
    if kind == "embed":
        return 0.0, 4.0 / math.sqrt(fan_in)
    if kind == "norm":
        return 1.0, 0.1
    return 0.0, 0.1  # bias, norm_bias


def make_tiny_weights(cfg, seed, dtype):
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for name, shape, kind, fan_in in weight_specs(cfg):
        offset, std = init_scale(kind, fan_in)
        out[name] = (torch.randn(shape, generator=gen) * std + offset).to(dtype)
    return out


class PoolSampler:
    """Fast random bf16 tensors for the 3B benchmark checkpoint: slices of one pre-drawn N(0,1) pool at random
    offsets, scaled per tensor. Not independent draws; plenty for timing."""

    POOL = 1 << 24

    def __init__(self, seed):
        self.gen = torch.Generator().manual_seed(seed)
        pool = torch.randn(self.POOL, generator=self.gen).to(torch.bfloat16)
        self.pool = torch.cat([pool, pool])

    def __call__(self, numel, offset, std):
        parts, left = [], numel
        while left:
            n = min(left, self.POOL)
            at = int(torch.randint(0, self.POOL, (1,), generator=self.gen))
            parts.append(self.pool[at:at + n] * std + offset)
            left -= n
        return torch.cat(parts) if len(parts) > 1 else parts[0]


def write_folder(out_dir, cfg_raw, real):
    os.makedirs(out_dir, exist_ok=True)
    for fname, obj in (("config.json", cfg_raw), ("generation_config.json", generation_config(cfg_raw, real)),
                       ("preprocessor_config.json", PREPROCESSOR)):
        with open(os.path.join(out_dir, fname), "w") as f:
            json.dump(obj, f, indent=2)
            f.write("\n")


def cmd_make_checkpoint(args):
    if args.shape == "qwen2.5-vl-3b":
        if args.variant != "qwen2_5_vl":
            raise SystemExit("--shape qwen2.5-vl-3b exists for --variant qwen2_5_vl only")
        with open(args.base_config) as f:
            cfg_raw = json.load(f)
        cfg_raw["torch_dtype"] = "bfloat16"
        cfg = qm.Config(cfg_raw)
        write_folder(args.out, cfg_raw, real=True)
        sample = PoolSampler(args.seed)
        kinds = {name: (kind, fan_in) for name, _, kind, fan_in in weight_specs(cfg)}

        def make(name, dtype, shape):
            offset, std = init_scale(*kinds[name])
            return sample(math.prod(shape), offset, std).reshape(shape)

        specs = [(name, torch.bfloat16, shape) for name, shape, _, _ in weight_specs(cfg)]
        paths = st.write_sharded(args.out, specs, make, args.max_shard_bytes)
        print(f"wrote {len(paths)} shards to {args.out}")
        return
    dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[args.dtype]
    cfg_raw = tiny_config(args.variant, args.dtype)
    if args.shape == "demo":
        # tiny layers with the real vocabulary and special ids, so a real Qwen tokenizer.json drives it
        cfg_raw.update(QWEN_IDS)
    write_folder(args.out, cfg_raw, real=False)
    st.write_file(os.path.join(args.out, "model.safetensors"), make_tiny_weights(qm.Config(cfg_raw), args.seed, dtype))
    print(f"wrote {args.out}")


# ---------------------------------------------------------------------------------------------------------------
# inputs

def V(t, h, w, seconds):
    """A video part of a case: grid (t, h, w) and its second_per_grid_ts entry."""
    return ("video", (t, h, w), seconds)


CASES = {
    # list of text-run lengths, image grids and videos, in sequence order
    "text": [20],
    "one_image": [5, (1, 8, 12), 7],
    "two_images": [4, (1, 4, 6), 5, (1, 10, 8), 6],
    "multi_window": [3, (1, 20, 28), 4],
    "video": [4, V(3, 4, 6, 1.0), 5],
    "image_video": [3, (1, 4, 6), 4, V(2, 8, 4, 1.0), 5],
    "video_image": [3, V(2, 4, 6, 2.0), 4, (1, 8, 4), 5],
    # two rates, and 1.5 s, which 4.57.3 truncates to 1 before it multiplies
    "video_seconds": [2, V(4, 4, 4, 2.0), 3, V(4, 4, 4, 0.5), 3, V(2, 4, 4, 1.5), 2],
    # more patches than mitten's tower takes in one pass (4096): encoded in two chunks of frames
    "video_chunks": [3, V(9, 20, 28, 1.0), 4],
}


def build_inputs(cfg, case, seed):
    """Returns (ids int64 [L], list of (pixel_values float32 [t*h*w, C*Tp*P*P], (t, h, w)))."""
    gen = torch.Generator().manual_seed(seed)
    ids, images = [], []
    row = cfg.in_chans * cfg.temporal_patch * cfg.patch * cfg.patch
    for part in CASES[case]:
        if isinstance(part, int):
            ids += torch.randint(0, TEXT_ID_LIMIT, (part,), generator=gen).tolist()
            continue
        video = part[0] == "video"
        t, h, w = part[1] if video else part
        token = cfg.video_token_id if video else cfg.image_token_id
        ids += [cfg.vision_start_token_id] + [token] * (t * h * w // cfg.merge ** 2) + [cfg.vision_end_token_id]
        pixels = torch.randn(t * h * w, row, generator=gen)
        images.append(qm.Video(pixels, (t, h, w), part[2]) if video else (pixels, (t, h, w)))
    return torch.tensor(ids, dtype=torch.int64), images


def save_inputs(out_dir, ids, images):
    os.makedirs(out_dir, exist_ok=True)
    np.save(os.path.join(out_dir, "ids.npy"), ids.numpy().astype(np.int64))
    with open(os.path.join(out_dir, "grids.txt"), "w") as f:
        for k, item in enumerate(images):
            pv, (t, h, w) = item[0], item[1]
            np.save(os.path.join(out_dir, f"pv{k}.npy"), pv.numpy().astype(np.float32))
            if isinstance(item, qm.Video):
                f.write(f"video {t},{h},{w} {item.seconds!r}\n")
            else:
                f.write(f"{t},{h},{w}\n")


def load_inputs(in_dir):
    ids = torch.from_numpy(np.load(os.path.join(in_dir, "ids.npy")).astype(np.int64))
    images = []
    with open(os.path.join(in_dir, "grids.txt")) as f:
        grids = [line.strip() for line in f if line.strip()]
    for k, g in enumerate(grids):
        pv = torch.from_numpy(np.load(os.path.join(in_dir, f"pv{k}.npy")).astype(np.float32))
        words = g.split()
        if words[0] == "video":
            images.append(qm.Video(pv, parse_grid(words[1]), float(words[2])))
        else:
            images.append((pv, parse_grid(g)))
    return ids, images


def parse_grid(text):
    t, h, w = (int(v) for v in text.split(","))
    return t, h, w


def cmd_make_inputs(args):
    cfg = load_config(args.model)
    ids, images = build_inputs(cfg, args.case, args.seed)
    save_inputs(args.out, ids, images)
    print(f"wrote {args.out}: {ids.numel()} tokens, {len(images)} images")


# ---------------------------------------------------------------------------------------------------------------
# dump


def load_config(model_dir):
    with open(os.path.join(model_dir, "config.json")) as f:
        return qm.Config(json.load(f))


def load_model(model_dir, compute):
    """Returns (cfg, weights in the compute dtype, eos id list). compute float32 upcasts a bf16 checkpoint;
    bf16 runs as transformers with torch_dtype=bfloat16."""
    cfg = load_config(model_dir)
    dtype = {"float32": torch.float32, "bf16": torch.bfloat16}[compute]
    W = {k: v.to(dtype) for k, v in st.read_folder(model_dir).items()}
    eos = cfg.eos_token_id
    gen_path = os.path.join(model_dir, "generation_config.json")
    if os.path.exists(gen_path):
        with open(gen_path) as f:
            eos = json.load(f).get("eos_token_id", eos)
    eos = eos if isinstance(eos, list) else [eos]
    return cfg, W, eos


def save_dumps(out_dir, dumps):
    os.makedirs(out_dir, exist_ok=True)
    for name, t in dumps.items():
        arr = t.detach()
        arr = arr.to(torch.int64).numpy() if not arr.is_floating_point() else arr.float().numpy()
        np.save(os.path.join(out_dir, name + ".npy"), arr)


def run_dump(model_dir, ids, images, out_dir, n_greedy, compute):
    cfg, W, eos = load_model(model_dir, compute)
    dumps = {}
    qm.prefill(cfg, W, ids, images, dumps)
    if n_greedy > 0:
        tokens, step_logits = qm.greedy(cfg, W, ids, images, n_greedy, eos)
        dumps["greedy"] = torch.tensor(tokens, dtype=torch.int64)
        dumps["greedy_logits"] = step_logits
        top2 = step_logits.topk(2, dim=-1).values
        print(f"greedy: {tokens}; smallest top-1/top-2 logit gap {float((top2[:, 0] - top2[:, 1]).min()):.4f}")
    save_dumps(out_dir, dumps)
    return dumps


def cmd_dump(args):
    if args.inputs:
        ids, images = load_inputs(args.inputs)
    else:
        ids = torch.from_numpy(np.load(args.ids).astype(np.int64))
        pvs, grids = args.pixel_values or [], args.grid or []
        if len(pvs) != len(grids):
            raise SystemExit("give one --grid per --pixel-values")
        images = [(torch.from_numpy(np.load(p).astype(np.float32)), parse_grid(g)) for p, g in zip(pvs, grids)]
    dumps = run_dump(args.model, ids, images, args.out, args.greedy, args.compute)
    print(f"wrote {len(dumps)} arrays to {args.out}")


# ---------------------------------------------------------------------------------------------------------------


def main(argv=None):
    torch.manual_seed(0)
    torch.set_default_dtype(torch.float32)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("make-checkpoint")
    p.add_argument("--variant", choices=["qwen2_5_vl", "qwen2_vl"], required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")
    p.add_argument("--shape", choices=["tiny", "demo", "qwen2.5-vl-3b"], default="tiny")
    p.add_argument("--base-config", default=REAL_3B_CONFIG, help="config.json used by --shape qwen2.5-vl-3b")
    p.add_argument("--max-shard-bytes", type=int, default=2 * 1000 ** 3)
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
    p.add_argument("--variant", choices=["qwen2_5_vl", "qwen2_vl", "both"], default="both")
    p.set_defaults(fn=cmd_self_check)

    args = ap.parse_args(argv)
    if args.cmd == "dump" and not args.inputs and not args.ids:
        ap.error("dump needs --inputs or --ids")
    with torch.no_grad():
        args.fn(args)


def cmd_self_check(args):
    import ref_selfcheck  # noqa: E402  (kept apart: it is test code, not reference code)

    variants = ["qwen2_5_vl", "qwen2_vl"] if args.variant == "both" else [args.variant]
    with tempfile.TemporaryDirectory() as tmp:
        ok = ref_selfcheck.run(variants, tmp)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
