#!/usr/bin/env python3
"""Reference ids from SentencePiece itself (python3-sentencepiece) for tests/text/spm_check.c.

Trains small models on tests/data/tiny_heldout.txt (BPE and unigram, byte_fallback on and off, the default nmt_nfkc
normalization with its precompiled charsmap, and identity normalization keeping extra spaces with user-defined
symbols), then writes, per model, NAME.model and NAME.jsonl: one line per text with its hex, sp.encode's ids and
sp.decode of those ids.

usage: spm_ref.py DATA_DIR CORPUS_JSONL WORK_DIR    (exit 77 when sentencepiece is not installed)
"""
import json
import os
import sys

try:
    import sentencepiece as spm
except ImportError:
    print("SKIPPED: needs python3-sentencepiece (apt-get install python3-sentencepiece)")
    sys.exit(77)

data_dir, corpus, work = sys.argv[1:4]
os.makedirs(work, exist_ok=True)
train_text = os.path.join(data_dir, "tiny_heldout.txt")

MODELS = {
    "bpe": dict(model_type="bpe", vocab_size=400),
    "bpe_bytes": dict(model_type="bpe", vocab_size=700, byte_fallback=True),
    "unigram": dict(model_type="unigram", vocab_size=400),
    "unigram_bytes": dict(model_type="unigram", vocab_size=700, byte_fallback=True),
    # Llama's settings: no normalization, spaces kept, digits split; plus user-defined symbols
    "bpe_identity": dict(model_type="bpe", vocab_size=700, byte_fallback=True, normalization_rule_name="identity",
                         remove_extra_whitespaces=False, split_digits=True, allow_whitespace_only_pieces=True,
                         user_defined_symbols=["<tool>", "foo bar", "@@"]),
    "unigram_user": dict(model_type="unigram", vocab_size=500, user_defined_symbols=["<tool>", "@@"],
                         add_dummy_prefix=False),
    # a charsmap of custom rules (normalization_rule_tsv): one to many, many to one, overlapping prefixes, to space
    "bpe_rules": dict(model_type="bpe", vocab_size=500, normalization_rule_tsv="RULES"),
}
RULES = ["FF21\t41", "FB01\t66 69", "41 42\t78", "41 42 43\t79 79", "3000\t20", "E9\t65 301", "2581\t5F"]

texts = [json.loads(line) for line in open(corpus, encoding="utf-8") if line.strip()]
texts = [t if isinstance(t, str) else t.get("text", "") for t in texts]
texts += [
    "", " ", "   ", "\n", "\n\n\t ", "a", " a", "a ", "  hello   world  ", "hello\nworld\r\n", "tab\there",
    "12345 67.89 3,14 0x1F 1e-9", "ｆｕｌｌｗｉｄｔｈ ＡＢＣ １２３", "ﬁ ﬂ ² ½ Ⅻ ㍿", "e\u0301 é ñ n\u0303",
    "😀 🎉👍🏽 👨‍👩‍👧", "中文字符测试 日本語のテキスト 한국어", "Ωμέγα Привет مرحبا שלום हिन्दी",
    "<s> </s> <unk> <tool> @@ foo bar foo  bar", "\u00a0nbsp\u2003em\u3000ideo", "zero\u200bwidth",
    "\x00nul\x01ctl\x7f", "ẞ ß İ ı", "▁already▁metaspace", "....!!!???", "a" * 300, "ab " * 200,
    "The café’s naïve résumé — “quoted” text…", "\U0001F600" * 5 + "x",
]

rules = os.path.join(work, "rules.tsv")
with open(rules, "w", encoding="utf-8") as f:
    f.write("\n".join(RULES) + "\n")
texts += ["ABC AB ABCD ＡＢ ﬁne café　é", "AAB ABAB ABCABC"]

out_list = []
for name, opts in MODELS.items():
    opts = {k: rules if v == "RULES" else v for k, v in opts.items()}
    prefix = os.path.join(work, name)
    spm.SentencePieceTrainer.train(input=train_text, model_prefix=prefix, character_coverage=0.98,
                                   num_threads=1, minloglevel=2, hard_vocab_limit=False, **opts)
    sp = spm.SentencePieceProcessor(model_file=prefix + ".model")
    with open(prefix + ".jsonl", "w", encoding="utf-8") as f:
        for t in texts:
            ids = sp.encode(t)
            f.write(json.dumps({"hex": t.encode("utf-8").hex(), "ids": ids,
                                "decoded_hex": sp.decode(ids).encode("utf-8").hex()}) + "\n")
    out_list.append(name)
print(" ".join(out_list))
