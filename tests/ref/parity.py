#!/usr/bin/env python3
"""Parity of every family with the PyTorch references of this folder (qwen2_vl_ref.py for Qwen2-VL / Qwen2.5-VL,
qwen3_ref.py for Qwen2 and the Qwen3 family, internvl_ref.py for InternVL in both checkpoint layouts).

For each case: a tiny random checkpoint (make-checkpoint), its inputs (make-inputs), the reference tensors (dump),
then `mitten logits --dump-dir` on the same inputs; every named tensor is compared, MoE routing included.

Tolerances (max abs error; activations and logits are O(1) by construction of the random weights):
  f32 weights, f32 compute on both sides:     1e-4 for every tensor
  bf16 weights, reference upcast to f32:      1e-4 (mitten computes in f32 from bf16 weights, as the reference)
  bf16 weights, reference computing in bf16:  logits within 3% of the largest |logit| and 90% of top-1 tokens equal
                                              (transformers with torch_dtype=bfloat16 rounds every activation to
                                              bf16; mitten keeps them in f32, so it is the closer of the two to the
                                              f32 result: the reference's own bf16-vs-f32 gap is this size)
Position ids and greedy tokens must be identical in the f32 cases.
usage: parity.py --mitten BIN --work DIR [--variant NAME]   (NAME: a key of VARIANTS)
"""
import argparse
import os
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
QWEN2_VL = [sys.executable, os.path.join(HERE, "qwen2_vl_ref.py")]
QWEN3 = [sys.executable, os.path.join(HERE, "qwen3_ref.py")]
INTERNVL = [sys.executable, os.path.join(HERE, "internvl_ref.py")]
IVL_CASES = ["text", "one_tile", "two_images", "interp"]
IVL_VIDEO_CASES = ["video", "image_video", "video_image", "video_chunks"]

# name: (reference CLI, its --variant, cases, dtype, extra make-checkpoint arguments)
VARIANTS = {
    "qwen2_5_vl": (QWEN2_VL, "qwen2_5_vl", ["text", "one_image", "two_images", "multi_window"], "float32", []),
    "qwen2_vl": (QWEN2_VL, "qwen2_vl", ["text", "one_image", "two_images"], "float32", []),
    # videos (pixel_values_videos, video_grid_thw, second_per_grid_ts): alone, before and after an image, at several
    # rates (2.5's time index scales with them; 2's does not), and one longer than a pass of mitten's tower
    "qwen2_5_vl_video": (QWEN2_VL, "qwen2_5_vl", ["video", "image_video", "video_image", "video_seconds",
                                                  "video_chunks"], "float32", []),
    "qwen2_vl_video": (QWEN2_VL, "qwen2_vl", ["video", "image_video", "video_image", "video_seconds"], "float32", []),
    "bf16": (QWEN2_VL, "qwen2_5_vl", ["two_images"], "bfloat16", []),
    "qwen2": (QWEN3, "qwen2", ["text", "text_long"], "float32", []),
    "qwen3": (QWEN3, "qwen3", ["text", "text_long"], "float32", ["--config-form", "4"]),
    "qwen3_moe": (QWEN3, "qwen3_moe", ["text", "text_long"], "float32", []),
    "qwen3_vl": (QWEN3, "qwen3_vl", ["text", "one_image", "two_images"], "float32", []),
    "qwen3_vl_4x": (QWEN3, "qwen3_vl", ["two_images"], "float32", ["--config-form", "4"]),
    # videos as Qwen3VLProcessor expands them ("<T seconds>" and its own vision_start / vision_end per temporal group;
    # mitten expands the prompt's one placeholder per input itself, with a byte-level tokenizer.json): alone with
    # times from second_per_grid, before and after an image with given times, one longer than a pass of the tower
    "qwen3_vl_video": (QWEN3, "qwen3_vl", ["video", "image_video", "video_image", "video_chunks"], "float32",
                       ["--byte-tokenizer"]),
    "qwen3_vl_moe": (QWEN3, "qwen3_vl_moe", ["one_image", "two_images"], "float32", []),
    # use_sliding_window, sliding_window 6 over 40 tokens and 16 decoded ones: layers 1-2 slide (5.x layer_types,
    # 4.x max_window_layers 1), every layer of qwen3_moe
    "qwen3_swa": (QWEN3, "qwen3", ["text_long"], "float32", ["--sliding-window", "6", "--max-window-layers", "1"]),
    "qwen2_swa": (QWEN3, "qwen2", ["text_long"], "float32",
                  ["--sliding-window", "6", "--max-window-layers", "1", "--config-form", "4"]),
    "qwen3_moe_swa": (QWEN3, "qwen3_moe", ["text_long"], "float32", ["--sliding-window", "6"]),
    "qwen2_moe": (QWEN3, "qwen2_moe", ["text", "text_long"], "float32", ["--config-form", "4"]),
    # Llama 3.1's layout: no biases, head_dim 24 (not H / heads), llama3 rope scaling; in each config form
    "llama": (QWEN3, "llama", ["text", "text_long"], "float32", []),
    "llama_4x": (QWEN3, "llama", ["text_long"], "float32", ["--config-form", "4"]),
    # InternVL (internvl_ref.py: --variant is the layout; images are pixel_values [tiles, 3, S, S] without --grid):
    # the 300M tower with a Qwen2 decoder in each layout, each also converted from the other layout, and the 6B tower
    # (RMSNorm, q/k norm) with a Qwen3 decoder, select_layer -2 and the transposed v1 pixel shuffle
    "internvl_hf": (INTERNVL, "hf", IVL_CASES, "float32", []),
    "internvl_original": (INTERNVL, "original", IVL_CASES, "float32", []),
    # InternVL videos, one placeholder per input expanded by mitten (logits --expand): each frame one tile after its
    # "FrameN: " text; alone, after and before an image, and one of more frames than a pass of mitten's tower (also
    # run without dumps, where the tower takes 8 frames a pass)
    "internvl_hf_video": (INTERNVL, "hf", IVL_VIDEO_CASES, "float32", []),
    "internvl_original_video": (INTERNVL, "original", IVL_VIDEO_CASES, "float32", []),
    "internvl_internlm2_video": (INTERNVL, "original", ["image_video"], "float32", ["--llm", "internlm2"]),
    "internvl_hf_from_original": (INTERNVL, "hf", ["two_images", "interp"], "float32", ["--via", "original"]),
    "internvl_original_from_hf": (INTERNVL, "original", ["two_images", "interp"], "float32", ["--via", "hf"]),
    "internvl_6b_qwen3": (INTERNVL, "original", ["one_tile", "two_images", "interp"], "float32",
                          ["--vision", "6b", "--llm", "qwen3", "--select-layer", "-2", "--ps-version", "v1"]),
    # InternVL 2.5: the original layout with an InternLM2 decoder (packed wqkv in grouped order, 4 query heads per KV
    # head, biases on, dynamic rope_scaling below max_position_embeddings)
    "internvl_internlm2": (INTERNVL, "original", IVL_CASES, "float32", ["--llm", "internlm2"]),
    # converted to the transformers layout (text_config.model_type internlm2: no transformers class, mitten's names)
    "internvl_hf_internlm2": (INTERNVL, "hf", ["two_images"], "float32", ["--llm", "internlm2", "--via", "original"]),
    # InternVL2-76B's kind of decoder (Llama, llama3 rope), in the transformers layout
    "internvl_llama": (INTERNVL, "hf", ["two_images"], "float32", ["--llm", "llama", "--via", "original"]),
    # its language model alone (extract-llm): InternLM2ForCausalLM, model.tok_embeddings ... output.weight
    "internlm2_text": (INTERNVL, "original", ["text"], "float32", ["--llm", "internlm2"]),
}
# variants whose mitten run loads only the language model of the reference's checkpoint
LLM_ONLY = {"internlm2_text"}
# variants whose mitten run expands the placeholders of prompt_ids.npy itself (logits --expand)
EXPAND = {"qwen3_vl_video", "internvl_hf_video", "internvl_original_video", "internvl_internlm2_video"}
# cases whose logits are checked again from a run without dumps (a dump makes mitten's tower take one pass)
NO_DUMP = {"video_chunks"}


def run(cmd):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        sys.exit("FAILED: %s\n%s" % (" ".join(cmd), r.stdout))
    return r.stdout


def mitten_logits(binary, model, inputs, out_dir, greedy, expand=False):
    cmd = [binary, "logits", "-m", model, "--ids", os.path.join(inputs, "prompt_ids.npy" if expand else "ids.npy"),
           "--out", os.path.join(out_dir, "logits.npy"), "--dump-dir", out_dir, "--threads", "2"]
    if expand:
        cmd.append("--expand")
    grids = open(os.path.join(inputs, "grids.txt")).read().splitlines() if os.path.exists(
        os.path.join(inputs, "grids.txt")) else []
    grids = [g.split() for g in grids if g.strip()]
    for i, g in enumerate(grids):
        pv = os.path.join(inputs, "pv%d.npy" % i)
        if g[0] == "video":  # "video T,H,W SECONDS [TIMESTAMPS]"
            cmd += ["--video-pixel-values", pv, "--video-grid", g[1], "--second-per-grid", g[2]]
            cmd += ["--video-timestamps", g[3]] if len(g) > 3 else []
        else:
            cmd += ["--pixel-values", pv, "--grid", g[0]]
    i = 0
    videos = set()  # InternVL: which tile arrays are videos (frames, one tile each)
    if os.path.exists(os.path.join(inputs, "videos.txt")):
        videos = {int(k) for k in open(os.path.join(inputs, "videos.txt")).read().split()}
    while not grids and os.path.exists(os.path.join(inputs, "pv%d.npy" % i)):  # tiles [T, 3, S, S], no grid
        cmd += ["--video-pixel-values" if i in videos else "--pixel-values", os.path.join(inputs, "pv%d.npy" % i)]
        i += 1
    if greedy:
        cmd += ["--greedy", str(greedy), "--greedy-out", os.path.join(out_dir, "greedy.npy")]
    run(cmd)
    return cmd


def compare(ref_dir, got_dir, tol, exact_ids):
    failures, worst = [], {}
    names = sorted(f[:-4] for f in os.listdir(ref_dir) if f.endswith(".npy"))
    for name in names:
        if name in ("rope_delta", "greedy_logits"):
            continue
        # Qwen2.5-VL's reference writes its window order and, as _orig, the processor's order mitten dumps
        if name.startswith("vision_block_") and not name.endswith("_orig") and name + "_orig" in names:
            continue
        got_name = name[:-5] if name.endswith("_orig") else name
        ref = np.load(os.path.join(ref_dir, name + ".npy"))
        path = os.path.join(got_dir, got_name + ".npy")
        if name == "greedy" and not exact_ids:
            continue
        if not os.path.exists(path):
            failures.append("%s: mitten wrote no %s.npy" % (name, got_name))
            continue
        got = np.load(path)
        if name == "position_ids" and got.shape[0] == 1:
            got = np.repeat(got, ref.shape[0], 0)  # 1-D rope: the reference writes its one axis three times
        if got.shape != ref.shape:
            failures.append("%s: shape %s, reference %s" % (name, got.shape, ref.shape))
            continue
        if ref.dtype == np.int64:
            if exact_ids and not np.array_equal(got, ref):
                failures.append("%s differs:\n  mitten %s\n  torch  %s" % (name, got.tolist(), ref.tolist()))
            continue
        err = float(np.max(np.abs(got.astype(np.float64) - ref))) if ref.size else 0.0
        worst[name] = err
        if not err <= tol[0]:
            failures.append("%s: max abs error %.3g > %.3g" % (name, err, tol[0]))
    return failures, worst


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mitten", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--variant", default="qwen2_5_vl", choices=sorted(VARIANTS))
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    model = os.path.join(a.work, "model")
    REF, arch, cases, dtype, extra = VARIANTS[a.variant]
    if REF is INTERNVL:
        run(REF + ["make-checkpoint", "--layout", arch, "--out", model, "--seed", "7"] + extra)
    else:
        run(REF + ["make-checkpoint", "--variant", arch, "--out", model, "--seed", "7", "--dtype", dtype] + extra)
    mitten_model = model
    if a.variant in LLM_ONLY:
        mitten_model = os.path.join(a.work, "llm")
        run(REF + ["extract-llm", "--model", model, "--out", mitten_model])
    all_failures = []
    for case in cases:
        inputs = os.path.join(a.work, "in_" + case)
        run(REF + ["make-inputs", "--case", case, "--model", model, "--out", inputs])
        checks = [("f32", "float32", (1e-4,), True)]
        if a.variant == "bf16":
            checks.append(("bf16", "bf16", None, False))
        for label, compute, tol, exact in checks:
            ref_dir = os.path.join(a.work, "ref_%s_%s" % (case, label))
            got_dir = os.path.join(a.work, "got_%s_%s" % (case, label))
            os.makedirs(got_dir, exist_ok=True)
            run(REF + ["dump", "--model", model, "--inputs", inputs, "--out", ref_dir, "--greedy", "16"] +
                ([] if REF is INTERNVL else ["--compute", compute]))
            cmd = mitten_logits(a.mitten, mitten_model, inputs, got_dir, 16, a.variant in EXPAND)
            if case in NO_DUMP and tol is not None:
                plain = os.path.join(a.work, "plain_%s_%s" % (case, label))
                os.makedirs(plain, exist_ok=True)
                k = cmd.index("--dump-dir")
                run(cmd[:k] + cmd[k + 2:] + ["--out", os.path.join(plain, "logits.npy")])
                ref = np.load(os.path.join(ref_dir, "logits.npy"))
                err = float(np.max(np.abs(np.load(os.path.join(plain, "logits.npy")) - ref)))
                print("%-14s %-5s logits without dumps: max abs error %.3g" % (case, label, err))
                if not err <= tol[0]:
                    all_failures.append("%s/%s: logits without dumps, max abs error %.3g" % (case, label, err))
            if tol is None:
                ref = np.load(os.path.join(ref_dir, "logits.npy"))
                got = np.load(os.path.join(got_dir, "logits.npy"))
                err = float(np.max(np.abs(ref - got))) / float(np.max(np.abs(ref)))
                agree = float(np.mean(ref.argmax(-1) == got.argmax(-1)))
                print("%-14s %-5s logits max abs err %.3g of max |logit|, top-1 agreement %.3f" % (case, label, err, agree))
                if err > 0.03 or agree < 0.90:
                    all_failures.append("%s/%s: logits err %.3g, top-1 agreement %.3f" % (case, label, err, agree))
                continue
            failures, worst = compare(ref_dir, got_dir, tol, exact)
            top = max(worst.items(), key=lambda kv: kv[1]) if worst else ("-", 0.0)
            print("%-14s %-5s %d tensors, worst %s %.3g" % (case, label, len(worst), top[0], top[1]))
            all_failures += ["%s/%s: %s" % (case, label, f) for f in failures]
    for f in all_failures:
        print("FAIL", f)
    sys.exit(1 if all_failures else 0)


if __name__ == "__main__":
    main()
