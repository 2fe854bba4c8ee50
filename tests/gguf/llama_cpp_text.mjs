// The llama and internlm2 archs (llama.cpp's NORM rope: q and k permuted, InternLM2's packed wqkv split) in llama.cpp
// itself, node-llama-cpp 3.22.1 as llama_cpp.mjs: for a tiny random checkpoint of each (tests/ref/gguf_text_ckpt.py,
// Llama 3's tokenizer) and each file type below,
//   - llama.cpp loads `mitten quantize`'s file and tokenizes a Llama 3 chat prompt into mitten's ids (llama-bpe);
//   - its next-token logits after the prompt against mitten's on the checkpoint, as a share of the largest logit,
//     within the type's bound (llama_cpp.mjs's bounds: a wrong permutation moves them by the whole logit);
//   - f32: the same greedy continuation;
//   - mitten reads the file back (`mitten logits -m F.gguf`, q and k permuted back): the f32 file gives the folder's
//     logits, and each file's logits are llama.cpp's on that same file within 2e-2 of the largest (the weights are
//     the same numbers; llama.cpp rounds the activations of its quantized products to 8 bits: measured 1.4e-2 for
//     q8_0, 7e-7 for f32). A q or k left in the wrong order moves the logits by whole units.
// An InternLM2 folder whose tokenizer.model is empty is refused, naming the file (tokenizer.model files that are
// SentencePiece models: gguf_llama_spm).
//
//     node llama_cpp_text.mjs MITTEN SOURCE_DIR WORK_DIR PYTHON
import {execFileSync} from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import {getLlama} from "node-llama-cpp";

import {check, failed, readNpy, writeIds} from "./npy_check.mjs";

const [mitten, source, work, python] = process.argv.slice(2);
fs.rmSync(work, {recursive: true, force: true});
fs.mkdirSync(work, {recursive: true});

const run = (cmd, args) => execFileSync(cmd, args, {encoding: "utf8", stdio: ["ignore", "pipe", "pipe"],
                                                    maxBuffer: 1 << 26});

const prompt = "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nWhat colour is the shape?<|eot_id|>" +
               "<|start_header_id|>assistant<|end_header_id|>\n\n";
// llama_cpp.mjs's bounds, except q8_0: 3e-2 (its q6_K bound), measured 2.4e-2 (llama) and 2.5e-2 (internlm2) here,
// where every matrix, token_embd of 128256 rows included, is Q8_0. Q4_K would be Q8_0 throughout too (no row of
// 256), so it is not run.
const types = [
  {type: "f32", bound: 2e-4, greedy: true},
  {type: "q8_0", bound: 3e-2, greedy: false},
];
const llama = await getLlama({gpu: false, build: "never", progressLogs: false, logLevel: "error"});
for (const arch of ["llama", "internlm2"]) {
  const model = path.join(work, arch);
  run(python, [path.join(source, "tests", "ref", "gguf_text_ckpt.py"), "--arch", arch, "--out", model]);
  const ids = run(mitten, ["tokenize", "-m", model, "--text", prompt, "--ids-only"]).trim().split(/\s+/).map(Number);
  const idsFile = path.join(work, `${arch}-ids.npy`), logitsFile = path.join(work, `${arch}-logits.npy`);
  const greedyFile = path.join(work, `${arch}-greedy.npy`);
  writeIds(idsFile, ids);
  run(mitten, ["logits", "-m", model, "--ids", idsFile, "--out", logitsFile, "--greedy", "6", "--greedy-out",
               greedyFile, "--threads", "2"]);
  const L = readNpy(logitsFile);
  const V = L.shape[1];
  const want = L.data.slice((L.shape[0] - 1) * V, L.shape[0] * V);
  const wantGreedy = readNpy(greedyFile).data;
  const scale = want.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  for (const {type, bound, greedy} of types) {
    const file = path.join(work, `${arch}-${type}.gguf`);
    try {
      run(mitten, ["quantize", "-m", model, "--type", type, "--out", file]);
    } catch (e) {
      check(`${arch} ${type}: mitten quantize`, false, String(e.stderr || e).slice(-400));
      continue;
    }
    const lm = await llama.loadModel({modelPath: file});
    const tokens = lm.tokenize(prompt, true);
    check(`${arch} ${type}: llama.cpp tokenizes the prompt as mitten`, JSON.stringify(tokens) === JSON.stringify(ids),
          `${tokens} vs ${ids}`);
    // an f32 KV cache and no flash attention: the CPU flash attention computes in f16 (logits 8e-4 of the largest
    // off on this model for f32 weights, 1e-6 without it)
    const ctx = await lm.createContext({contextSize: 256, batchSize: 256, threads: 2, flashAttention: false,
                                        experimentalKvCacheKeyType: "F32", experimentalKvCacheValueType: "F32"});
    const seq = ctx.getSequence();
    const res = await seq.controlledEvaluate([...ids.slice(0, -1), [ids[ids.length - 1],
                                              {generateNext: {logits: true}}]]);
    const got = res[res.length - 1].next.logits;
    let gap = 0;
    for (let v = 0; v < V; v++) gap = Math.max(gap, Math.abs((got.get(v) ?? -Infinity) - want[v]));
    const rel = gap / scale;
    check(`${arch} ${type}: logits within ${bound} of mitten's (largest difference ${rel.toExponential(2)} of the ` +
          `largest logit ${scale.toFixed(2)})`, rel <= bound);
    const backFile = path.join(work, `${arch}-${type}-back.npy`);
    run(mitten, ["logits", "-m", file, "--ids", idsFile, "--out", backFile, "--threads", "2"]);
    const B = readNpy(backFile);
    const back = B.data.slice((B.shape[0] - 1) * V, B.shape[0] * V);
    let own = 0, self = 0;
    for (let v = 0; v < V; v++) {
      own = Math.max(own, Math.abs((got.get(v) ?? -Infinity) - back[v]));
      self = Math.max(self, Math.abs(back[v] - want[v]));
    }
    if (type === "f32")
      check(`${arch} f32: mitten reading the file gives the folder's logits (largest difference ` +
            `${(self / scale).toExponential(2)})`, self <= 1e-5 * scale);
    check(`${arch} ${type}: mitten reading the file is within 2e-2 of llama.cpp on it (largest difference ` +
          `${(own / scale).toExponential(2)})`, own <= 2e-2 * scale);
    if (greedy) {
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
      check(`${arch} ${type}: greedy continuation ${JSON.stringify(out)} is mitten's`,
            wantText.length > 0 && JSON.stringify(out) === JSON.stringify(wantText),
            `mitten ${JSON.stringify(wantGreedy)}`);
    }
    await ctx.dispose();
    await lm.dispose();
  }
}

// InternLM2 with a broken tokenizer.model (empty) and no tokenizer.json
const sp = path.join(work, "internlm2-sp");
fs.mkdirSync(sp);
for (const f of ["config.json", "model.safetensors"])
  fs.symlinkSync(path.join(work, "internlm2", f), path.join(sp, f));
fs.writeFileSync(path.join(sp, "tokenizer.model"), "");
let message = "";
try {
  run(mitten, ["quantize", "-m", sp, "--type", "f32", "--out", path.join(work, "sp.gguf")]);
} catch (e) {
  message = String(e.stderr);
}
check("an InternLM2 with an empty tokenizer.model is refused, naming it",
      /tokenizer\.model: no pieces: not a SentencePiece model/.test(message) &&
      !fs.existsSync(path.join(work, "sp.gguf")),
      message.slice(-300));

console.log(failed ? `${failed} check(s) failed` : "all checks passed");
process.exit(failed ? 1 : 0);
