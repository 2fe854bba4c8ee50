// mitten quantize's GGUF files in llama.cpp itself: node-llama-cpp 3.22.1 with its prebuilt llama.cpp (release
// v0.5.0, CPU build for Linux x64; package.json installs both). For each file type, on the shipped tiny model
// (Qwen2.5-VL, so the qwen2vl arch with its M-RoPE sections):
//   - llama.cpp loads the file and tokenizes a chat prompt into mitten's ids (vocabulary, merges, pre-tokenizer and
//     special tokens as the GGUF carries them);
//   - its next-token logits after the prompt against mitten's on the checkpoint (`mitten logits`), as a share of
//     the largest logit, under each type's bound below (llama.cpp's qwen2vl reads no RMSNorm epsilon and runs with
//     0 where the model has 1e-6; the other types round the weights, and llama.cpp's quantized dot products round
//     the activations to 8 bits too);
//   - greedy continuations: mitten's answer for f32, f16, bf16 and q8_0.
// The mmproj files are checked by mmproj_check.py and run by llama-mtmd-cli in llama_mtmd.py (the node build has no
// mtmd; scripts/build_llama_cpp.sh builds the CLI).
//
//     node llama_cpp.mjs MITTEN SOURCE_DIR WORK_DIR
import {execFileSync} from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import {getLlama} from "node-llama-cpp";

import {check, failed, readNpy, writeIds} from "./npy_check.mjs";

const [mitten, source, work] = process.argv.slice(2);
const model = path.join(source, "models", "mitten-tiny");
fs.rmSync(work, {recursive: true, force: true});
fs.mkdirSync(work, {recursive: true});

function mittenRun(args) {
  return execFileSync(mitten, args, {encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], maxBuffer: 1 << 26});
}

const prompt = "<|im_start|>user\nWhat colour is the shape?<|im_end|>\n<|im_start|>assistant\n";
const ids = mittenRun(["tokenize", "-m", model, "--text", prompt, "--ids-only"]).trim().split(/\s+/).map(Number);
const idsFile = path.join(work, "ids.npy");
writeIds(idsFile, ids);
const logitsFile = path.join(work, "logits.npy"), greedyFile = path.join(work, "greedy.npy");
mittenRun(["logits", "-m", model, "--ids", idsFile, "--out", logitsFile, "--greedy", "8", "--greedy-out", greedyFile,
           "--threads", "2"]);
const L = readNpy(logitsFile);
const V = L.shape[1];
const want = L.data.slice((L.shape[0] - 1) * V, L.shape[0] * V);
const wantGreedy = readNpy(greedyFile).data;
const scale = Math.max(...want.map(Math.abs));

// The largest logit difference allowed, relative to the largest logit: f32 from the missing epsilon alone; the
// others add their rounding of the weights (measured on this model: see docs/VALIDATION.md).
// Measured 2026-12-06: f32 6.1e-5, f16 3.1e-4, bf16 1.7e-3, q8_0 7.5e-3, q6_K 9.2e-3, q4_K 3.5e-2, q4_0 4.0e-2.
const types = [
  {type: "f32", bound: 2e-4, greedy: true},
  {type: "f16", bound: 1e-3, greedy: true},
  {type: "bf16", bound: 5e-3, greedy: true},
  {type: "q8_0", bound: 2e-2, greedy: true},
  {type: "q6_K", bound: 3e-2, greedy: false},
  {type: "q4_K", bound: 8e-2, greedy: false},
  {type: "q4_0", bound: 1e-1, greedy: false},
];

const llama = await getLlama({gpu: false, build: "never", progressLogs: false, logLevel: "error"});
for (const {type, bound, greedy} of types) {
  const file = path.join(work, `tiny-${type}.gguf`);
  const args = ["quantize", "-m", model, "--type", type, "--out", file];
  try {
    mittenRun(args);
  } catch (e) {
    check(`${type}: mitten quantize`, false, String(e.stderr || e).slice(-400));
    continue;
  }
  check(`${type}: mitten quantize writes the model and mmproj-tiny-${type}.gguf`,
        fs.existsSync(file) && fs.existsSync(path.join(work, `mmproj-tiny-${type}.gguf`)));
  const lm = await llama.loadModel({modelPath: file});
  const tokens = lm.tokenize(prompt, true);
  check(`${type}: llama.cpp tokenizes the prompt as mitten`, JSON.stringify(tokens) === JSON.stringify(ids),
        `${tokens} vs ${ids}`);
  const ctx = await lm.createContext({contextSize: 256, batchSize: 256, threads: 2});
  const seq = ctx.getSequence();
  const res = await seq.controlledEvaluate([...ids.slice(0, -1), [ids[ids.length - 1],
                                            {generateNext: {logits: true}}]]);
  const got = res[res.length - 1].next.logits;
  let gap = 0;
  for (let v = 0; v < V; v++) gap = Math.max(gap, Math.abs((got.get(v) ?? -Infinity) - want[v]));
  const rel = gap / scale;
  check(`${type}: logits within ${bound} of mitten's (largest difference ${rel.toExponential(2)} of the largest ` +
        `logit ${scale.toFixed(2)})`, rel <= bound);
  if (greedy) {
    // llama.cpp's generator stops before an end-of-generation token; mitten's --greedy writes it
    const wantText = [];
    for (const t of wantGreedy) {
      if (lm.isEogToken(t)) break;
      wantText.push(t);
    }
    await seq.clearHistory();
    const out = [];
    for await (const t of seq.evaluate(ids, {temperature: 0})) {
      out.push(t);
      if (out.length === wantText.length) break;
    }
    check(`${type}: greedy continuation ${JSON.stringify(out)} is mitten's`,
          wantText.length > 0 && JSON.stringify(out) === JSON.stringify(wantText), `mitten ${JSON.stringify(wantGreedy)}`);
  }
  await ctx.dispose();
  await lm.dispose();
}

// An existing file is refused, untouched.
const existing = path.join(work, "tiny-f32.gguf");
const before = fs.readFileSync(existing);
let refused = false;
try {
  mittenRun(["quantize", "-m", model, "--type", "f32", "--out", existing]);
} catch (e) {
  refused = e.status === 1 && /exists/.test(String(e.stderr));
}
check("an existing output file is refused and left as it was", refused && before.equals(fs.readFileSync(existing)));

console.log(failed ? `${failed} check(s) failed` : "all checks passed");
process.exit(failed ? 1 : 0);
