#!/usr/bin/python3
"""GRPO's learning target (issue 14) on mitten-tiny's synthetic pictures: an under-trained SFT start that counts
shapes badly, GRPO with the exact-match reward on count questions, held-out count accuracy before and after.

usage: grpo_learning.py [--mitten build/mitten] [--work build/grpo-learning] [--seed S] [--sft-steps N]
                        [--grpo-steps N] [--grpo-lr LR] [--eval-every N] [--min-gain POINTS] [--threads N]

Steps, each into --work:
    data/     sft.jsonl (count questions with answers), prompts.jsonl (count questions with an "answer" field),
              heldout.jsonl (tiny_eval cases) and their pictures; scenes of one, two and three shapes in equal
              numbers, so no answer is a majority the start could sit on
    init/     models/mitten-tiny's vision tower and projector (a trained encoder, as a VLM starts from one) with a
              fresh language model (tiny_model's initialisation, --seed)
    sft/      mitten train on sft.jsonl for --sft-steps steps, language model only: the deliberately short start
    grpo/     mitten train --method grpo from sft/model on prompts.jsonl, reward "answer", checkpoints every
              --eval-every steps
    curve.json, curve.svg: per GRPO step the mean reward, and the held-out count accuracy of every checkpoint
Prints the before/after table; exits 1 when the gain is below --min-gain points. models/mitten-tiny is only read.
"""

import argparse
import glob
import json
import os
import random
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "ref"))
import safetensors_io  # noqa: E402
import tiny_data  # noqa: E402
import tiny_eval  # noqa: E402
import tiny_model  # noqa: E402

TINY = os.path.join(ROOT, "models", "mitten-tiny")
SIDE_FILES = ("config.json", "generation_config.json", "preprocessor_config.json", "tokenizer.json",
              "tokenizer_config.json")


def scenes(rng, n):
    """n scenes, a third each of one, two and three shapes (training pairs only), in a shuffled order."""
    counts = [1 + i % 3 for i in range(n)]
    rng.shuffle(counts)
    return [tiny_data.make_scene(rng, k, tiny_data.SEEN) for k in counts]


def conversation(question, answer, image):
    return {"messages": [tiny_data.user_turn(question, True), {"role": "assistant", "content": answer}],
            "images": [image]}


def write_data(out, n_sft, n_prompts, n_heldout, seed):
    """sft.jsonl, prompts.jsonl, heldout.jsonl (tiny_eval cases) and heldout_sft.jsonl (the same cases as
    conversations, for mitten train's --eval-data) with their pictures under out/images."""
    os.makedirs(os.path.join(out, "images"), exist_ok=True)
    rng = random.Random(seed)
    q = tiny_data.Q_COUNT
    rows = {"sft": [], "prompts": [], "heldout": [], "heldout_sft": []}
    for name, n in (("sft", n_sft), ("prompts", n_prompts), ("heldout", n_heldout)):
        for i, scene in enumerate(scenes(rng, n)):
            image = f"images/{name}_{i:05d}.png"
            tiny_data.draw_scene(scene).save(os.path.join(out, image))
            answer = tiny_data.COUNT_WORDS[len(scene["shapes"])]
            if name == "sft":
                rows[name].append(conversation(q, answer, image))
            elif name == "prompts":
                rows[name].append({"messages": [tiny_data.user_turn(q, True)], "images": [image], "answer": answer})
            else:
                rows[name].append({"image": image, "kind": "count", "question": q, "answer": answer})
                rows["heldout_sft"].append(conversation(q, answer, image))
    for name, lines in rows.items():
        with open(os.path.join(out, f"{name}.jsonl"), "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in lines)


def write_init(out, seed):
    """mitten-tiny's folder with its language model replaced by freshly initialised weights."""
    os.makedirs(out, exist_ok=True)
    for name in SIDE_FILES:
        shutil.copyfile(os.path.join(TINY, name), os.path.join(out, name))
    with open(os.path.join(TINY, "config.json")) as f:
        cfg = json.load(f)
    trained = safetensors_io.read_file(os.path.join(TINY, "model.safetensors"))
    fresh = tiny_model.init_weights(cfg, seed)
    weights = {k: (trained[k] if k.startswith("visual.") else fresh[k]) for k in trained}
    safetensors_io.write_file(os.path.join(out, "model.safetensors"), weights)


def accuracy(mitten, model, cases, jobs):
    """Held-out exact match (greedy, tiny_eval's `mitten run`): right, total, and how often each answer came."""
    got_cases, got = tiny_eval.evaluate(mitten, model, cases, jobs)
    right = sum(g == c["answer"] for c, g in zip(got_cases, got))
    answers = {w: got.count(w) for w in sorted(set(got))}
    return right, len(got), answers


def checkpoint_model(start, checkpoint, out):
    """A model folder of a checkpoint: the start's folder with the checkpoint's trained tensors in place."""
    os.makedirs(out, exist_ok=True)
    for name in SIDE_FILES:
        shutil.copyfile(os.path.join(start, name), os.path.join(out, name))
    weights = safetensors_io.read_file(os.path.join(start, "model.safetensors"))
    weights.update(safetensors_io.read_file(os.path.join(checkpoint, "model.safetensors")))
    safetensors_io.write_file(os.path.join(out, "model.safetensors"), weights)


def plot_svg(path, title, rewards, acc_points):
    """Mean reward per step (line) and held-out accuracy per checkpoint (dots on a line), both 0..1."""
    w, h, left, right, top, bottom = 720, 400, 60, 20, 40, 50
    steps = len(rewards)
    x = lambda s: left + (w - left - right) * s / max(steps, 1)  # noqa: E731
    y = lambda v: top + (h - top - bottom) * (1 - v)  # noqa: E731
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" '
           f'font-size="12">', f'<rect width="{w}" height="{h}" fill="white"/>',
           f'<text x="{w / 2}" y="22" text-anchor="middle" font-size="14">{title}</text>',
           f'<rect x="{left}" y="{top}" width="{w - left - right}" height="{h - top - bottom}" fill="none" '
           'stroke="#444"/>']
    for k in range(11):
        v = k / 10
        out.append(f'<line x1="{left}" y1="{y(v):.1f}" x2="{w - right}" y2="{y(v):.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{v:.1f}</text>')
    tick = max(1, steps // 8)
    for s in range(0, steps + 1, tick):
        out.append(f'<text x="{x(s):.1f}" y="{h - bottom + 16}" text-anchor="middle">{s}</text>')
    out.append(f'<text x="{w / 2}" y="{h - 12}" text-anchor="middle">GRPO step</text>')
    line = " ".join(f"{x(i + 1):.1f},{y(r):.1f}" for i, r in enumerate(rewards))
    out.append(f'<polyline points="{line}" fill="none" stroke="#1f77b4" stroke-width="1.5"/>')
    line = " ".join(f"{x(s):.1f},{y(a):.1f}" for s, a in acc_points)
    out.append(f'<polyline points="{line}" fill="none" stroke="#d62728" stroke-width="2"/>')
    out += [f'<circle cx="{x(s):.1f}" cy="{y(a):.1f}" r="3.5" fill="#d62728"/>' for s, a in acc_points]
    out.append(f'<text x="{left + 10}" y="{top + 18}" fill="#1f77b4">mean reward of the step\'s rollouts '
               '(exact match)</text>')
    out.append(f'<text x="{left + 10}" y="{top + 34}" fill="#d62728">held-out count accuracy (greedy)</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def run(cmd):
    print("grpo_learning: " + " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mitten", default=os.path.join(ROOT, "build", "mitten"))
    ap.add_argument("--work", default=os.path.join(ROOT, "build", "grpo-learning"))
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--sft-images", type=int, default=1500)
    ap.add_argument("--prompts", type=int, default=600)
    ap.add_argument("--heldout", type=int, default=90)
    ap.add_argument("--sft-steps", type=int, default=30)
    ap.add_argument("--sft-lr", type=float, default=3e-4)
    ap.add_argument("--grpo-steps", type=int, default=40)
    ap.add_argument("--grpo-lr", type=float, default=5e-5)
    ap.add_argument("--grpo-schedule", default="constant")
    ap.add_argument("--group", type=int, default=8)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--eval-every", type=int, default=5, help="GRPO steps between held-out scores (and SFT's)")
    ap.add_argument("--min-gain", type=float, default=15.0, help="points of held-out accuracy GRPO must add")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    work = os.path.abspath(args.work)
    data, init, sft, grpo = (os.path.join(work, d) for d in ("data", "init", "sft", "grpo"))
    heldout = os.path.join(data, "heldout.jsonl")
    jobs = args.threads
    shutil.rmtree(work, ignore_errors=True)
    write_data(data, args.sft_images, args.prompts, args.heldout, args.seed)
    write_init(init, args.seed)
    run([args.mitten, "train", "-m", init, "--data", os.path.join(data, "sft.jsonl"), "--out", sft,
         "--max-steps", str(args.sft_steps), "--train", "llm", "--batch", "8", "--lr", str(args.sft_lr),
         "--warmup", "0", "--schedule", "cosine", "--seed", str(args.seed), "--threads", str(args.threads),
         "--log-every", "5", "--eval-data", os.path.join(data, "heldout_sft.jsonl"),
         "--eval-every", str(args.eval_every), "--eval-tokens", "4"])
    start = os.path.join(sft, "model")
    before = accuracy(args.mitten, start, heldout, jobs)
    run([args.mitten, "train", "-m", start, "--method", "grpo", "--data", os.path.join(data, "prompts.jsonl"),
         "--out", grpo, "--reward", "answer", "--group", str(args.group), "--max-new", "4",
         "--temperature", str(args.temperature), "--batch", str(args.batch), "--max-steps", str(args.grpo_steps),
         "--train", "llm", "--lr", str(args.grpo_lr), "--warmup", "0", "--schedule", args.grpo_schedule,
         "--seed", str(args.seed), "--threads", str(args.threads), "--save-every", str(args.eval_every),
         "--keep", "0", "--log-every", "1", "--log-completions", "8"])
    after = accuracy(args.mitten, os.path.join(grpo, "model"), heldout, jobs)
    points = [(0, before)]
    for ck in sorted(glob.glob(os.path.join(grpo, "checkpoint-*")), key=lambda p: int(p.rsplit("-", 1)[1])):
        step = int(ck.rsplit("-", 1)[1])
        if step == args.grpo_steps:
            points.append((step, after))
            continue
        model = os.path.join(work, "eval-model")
        checkpoint_model(start, ck, model)
        points.append((step, accuracy(args.mitten, model, heldout, jobs)))
    with open(os.path.join(grpo, f"checkpoint-{args.grpo_steps}", "trainer_state.json")) as f:
        history = json.load(f)["grpo_history"]
    curve = {"reward": [e["reward"] for e in history], "kl": [e["kl"] for e in history],
             "heldout": [{"step": s, "right": r, "of": n, "answers": a} for s, (r, n, a) in points]}
    with open(os.path.join(work, "curve.json"), "w") as f:
        json.dump(curve, f, indent=1)
    plot_svg(os.path.join(work, "curve.svg"), "mitten-tiny count start: GRPO, exact-match reward", curve["reward"],
             [(s, r / n) for s, (r, n, _) in points])
    print("| GRPO step | mean reward (steps before) | held-out count right | answers |")
    print("| --- | --- | --- | --- |")
    prev = 0
    for s, (r, n, a) in points:
        mean = sum(curve["reward"][prev:s]) / (s - prev) if s > prev else None
        prev = s
        shown = "-" if mean is None else f"{mean:.3f}"
        print(f"| {s} | {shown} | {r}/{n} = {100.0 * r / n:.1f}% | {', '.join(f'{k} {v}' for k, v in a.items())} |")
    gain = 100.0 * (after[0] / after[1] - before[0] / before[1])
    print(f"grpo_learning: held-out count {before[0]}/{before[1]} -> {after[0]}/{after[1]}: {gain:+.1f} points "
          f"(at least {args.min_gain:g} wanted)")
    return 0 if gain >= args.min_gain else 1


if __name__ == "__main__":
    sys.exit(main())
