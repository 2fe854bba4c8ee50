#!/bin/sh
# bench_train.sh BUILD_DIR [WORK_DIR]: one training step of mitten (bench_train) and of PyTorch (bench_train_ref.py)
# on the same random Qwen2.5-VL, batch and threads, each side in its own process, and a markdown table of the time
# split, tokens/s, samples/s, peak RSS and the ratios. Rows: full fine-tuning on f32 weights, LoRA on bf16 weights.
#
# Environment: THREADS (default: nproc), STEPS (timed steps, 2), WARMUP (1), MODES ("full lora"), BASELINE: another
# build's bench_train binary (e.g. of an earlier commit) run first, for a before/after row in the same run;
# MT_BENCH_BLAS_DIR: a folder holding the libblas.so.3 torch should load. Debian's python3-torch calls whatever
# libblas.so.3 the system has; the default, netlib's reference BLAS, multiplies at about 0.5 GFLOP/s, which would
# make PyTorch a straw man (a step of this model takes tens of minutes). The script uses OpenBLAS when it finds it:
# /usr/lib/x86_64-linux-gnu/openblas-pthread (package libopenblas0-pthread), or any folder given here, e.g. one
# unpacked without installing: apt-get download libopenblas0-pthread && dpkg-deb -x libopenblas0-pthread_*.deb D
# (then D/usr/lib/x86_64-linux-gnu/openblas-pthread).
set -eu
BUILD=${1:?usage: bench_train.sh BUILD_DIR [WORK_DIR]}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
WORK=${2:-$BUILD/bench-train}
THREADS=${THREADS:-$(nproc)}
STEPS=${STEPS:-2}
WARMUP=${WARMUP:-1}
MODES=${MODES:-full lora}
PY=/usr/bin/python3
BIN=$BUILD/bench/bench_train
[ -x "$BIN" ] || { echo "bench_train.sh: $BIN missing (cmake --build $BUILD --target bench_train)" >&2; exit 1; }

BLAS_DIR=${MT_BENCH_BLAS_DIR:-}
[ -z "$BLAS_DIR" ] && [ -e /usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3 ] &&
    BLAS_DIR=/usr/lib/x86_64-linux-gnu/openblas-pthread
if [ -n "$BLAS_DIR" ]; then
    BLAS="OpenBLAS from $BLAS_DIR"
else
    BLAS="the system libblas.so.3 ($(readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3 2>/dev/null || echo unknown))"
    echo "bench_train.sh: no OpenBLAS found; torch runs on $BLAS, which may be netlib's reference BLAS (slow)" >&2
fi

[ -e "$WORK/image.png" ] || "$PY" "$HERE/bench_train_ref.py" make --out "$WORK"

commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null | head -1)
cpu=$(grep -m1 "model name" /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
echo "bench_train  commit $commit${dirty:+ (uncommitted changes)}  $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "machine  $cpu, $(nproc) CPUs, $THREADS threads each side; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "torch    $("$PY" -c 'import torch; print(torch.__version__)') with $BLAS"
echo

for mode in $MODES; do
    model=$WORK/model-f32
    [ "$mode" = lora ] && model=$WORK/model-bf16
    common="--mode $mode --threads $THREADS --steps $STEPS --warmup $WARMUP"
    # shellcheck disable=SC2086
    [ -n "${BASELINE:-}" ] && "$BASELINE" "$model" "$WORK/image.png" $common --json "$WORK/baseline-$mode.json" >/dev/null
    # shellcheck disable=SC2086
    "$BIN" "$model" "$WORK/image.png" $common --json "$WORK/mitten-$mode.json" >/dev/null
    # shellcheck disable=SC2086
    env ${BLAS_DIR:+LD_LIBRARY_PATH=$BLAS_DIR} OPENBLAS_NUM_THREADS="$THREADS" OMP_NUM_THREADS="$THREADS" \
        MT_BENCH_BLAS="$BLAS" "$PY" "$HERE/bench_train_ref.py" run --model "$model" --image "$WORK/image.png" \
        $common --json "$WORK/torch-$mode.json" >/dev/null
done

BASELINE=${BASELINE:-} "$PY" - "$WORK" $MODES <<'EOF'
import json, os, sys
work, modes = sys.argv[1], sys.argv[2:]
ph = ("data", "vision", "lm", "loss", "backward", "optimizer", "total")
print("| mode | side | weights | " + " | ".join(f"{p} s" for p in ph) +
      " | tokens/s | samples/s | peak RSS MiB | first loss |")
print("|---|---|---|" + "---:|" * (len(ph) + 4))
for mode in modes:
    m = json.load(open(os.path.join(work, f"mitten-{mode}.json")))
    t = json.load(open(os.path.join(work, f"torch-{mode}.json")))
    wt = {"full": ("f32, all trained", "f32, all trained"), "lora": ("bf16 frozen", "f32 frozen (from bf16)")}[mode]
    rows = [("mitten", m, wt[0]), ("torch", t, wt[1])]
    base = os.path.join(work, f"baseline-{mode}.json")
    if os.environ.get("BASELINE") and os.path.exists(base):
        rows.insert(0, ("mitten baseline", json.load(open(base)), wt[0]))
    for side, r, w in rows:
        cells = [f"{r['time'][p]:.2f}" for p in ph]
        print(f"| {mode} | {side} | {w} | " + " | ".join(cells) +
              f" | {r['tokens_per_s']:.1f} | {r['samples_per_s']:.3f} | {r['peak_rss_mib']:.0f} | {r['losses'][0]:.6f} |")
    ratio = [f"{t['time'][p] / m['time'][p]:.1f}x" if m['time'][p] > 0 else "-" for p in ph]
    print(f"| {mode} | **torch / mitten** | | " + " | ".join(ratio) +
          f" | **{m['tokens_per_s'] / t['tokens_per_s']:.2f}x** | | {t['peak_rss_mib'] / m['peak_rss_mib']:.2f}x | |")
    if len(rows) == 3:
        b = rows[0][1]
        ratio = [f"{b['time'][p] / m['time'][p]:.1f}x" if m['time'][p] > 0 else "-" for p in ph]
        print(f"| {mode} | baseline / mitten | | " + " | ".join(ratio) +
              f" | {m['tokens_per_s'] / b['tokens_per_s']:.2f}x | | {b['peak_rss_mib'] / m['peak_rss_mib']:.2f}x | |")
print()
for mode in modes:
    m = json.load(open(os.path.join(work, f"mitten-{mode}.json")))
    t = json.load(open(os.path.join(work, f"torch-{mode}.json")))
    same = abs(m["losses"][0] - t["losses"][0]) <= 1e-4 * abs(t["losses"][0])
    print(f"{mode}: batch {m['batch']} x {m['tokens'] // m['batch']} tokens ({m['image_tokens'] // m['batch']} image "
          f"tokens, {m['supervised']} supervised in all), {m['trained_params']:,} trained parameters "
          f"(torch {t['trained_params']:,}); first-step loss {'equal' if same else 'DIFFERENT'} within 1e-4; "
          f"model work {m['step_gflop']:.0f} GFLOP per step (mitten executes {m['executed_gflop']:.0f}: no LM head "
          f"backward on unlabelled rows); mitten {m['executed_gflops']:.1f} GFLOP/s executed = "
          f"{100 * m['share_of_peak']:.1f}% of the measured f32 peak {m['peak_gflops']:.0f} GFLOP/s; "
          f"torch {m['step_gflop'] / t['time']['total']:.1f} GFLOP/s")
EOF
