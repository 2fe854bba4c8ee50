// Reference ids for mitten-tiny's tokenizer: @lenml/tokenizers (a JavaScript port of Hugging Face tokenizers)
// loads the model folder's tokenizer.json and tokenizer_config.json and encodes each string of a JSON array.
//
// usage: node tok_ids.mjs MODEL_DIR STRINGS.json OUT.json
// OUT.json: [{"ids": encode(s) with special tokens parsed, no BOS/EOS, "dec": decode(ids)}, ...] in input order.
import { readFileSync, writeFileSync } from "node:fs";
import { TokenizerLoader } from "@lenml/tokenizers";

const [dir, inPath, outPath] = process.argv.slice(2);
const read = (name) => JSON.parse(readFileSync(`${dir}/${name}`, "utf8"));
const tok = TokenizerLoader.fromPreTrained({
  tokenizerJSON: read("tokenizer.json"),
  tokenizerConfig: read("tokenizer_config.json"),
});
const out = JSON.parse(readFileSync(inPath, "utf8")).map((s) => {
  const ids = tok.encode(s, { add_special_tokens: false });
  const dec = ids.length ? tok.decode(ids, { skip_special_tokens: false, clean_up_tokenization_spaces: false }) : "";
  return { ids, dec };
});
writeFileSync(outPath, JSON.stringify(out));
