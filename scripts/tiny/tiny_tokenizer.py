"""mitten-tiny's tokenizer: byte-level BPE in the layout of Qwen2's tokenizer.json, with merges learned from the
synthetic corpus, and its tokenizer_config.json.

    | ids                 | what                                                                                 |
    |---------------------|--------------------------------------------------------------------------------------|
    | 0 .. 255            | the 256 byte symbols, in GPT-2's bytes_to_unicode order (as Qwen2: "!" is 0)          |
    | 256 .. 256+M-1      | one token per merge, in merge order (M merges, learned below)                        |
    | 256+M ..            | added special tokens: SPECIALS, in that order                                        |

Everything but the vocabulary and merges is Qwen2's: NFC normaliser, the Qwen2 split regex then ByteLevel
(no prefix space) as pre-tokenizer, ByteLevel post-processor and decoder, BPE without dropout or byte fallback.

Training is plain BPE (Sennrich et al. 2016): count pre-tokenized words, merge the most frequent adjacent pair
(ties: the smaller pair as strings, so a run is deterministic), repeat until no pair occurs twice or MAX_MERGES.
The corpus is ASCII, so the split regex's \\p{L} / \\p{N} classes are written [A-Za-z] / [0-9] for Python's re;
on ASCII text both forms split alike.
"""

import collections
import json
import re

SPECIALS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>",
            "<|image_pad|>", "<|video_pad|>")
MAX_MERGES = 400
QWEN2_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
               r"\s*[\r\n]+|\s+(?!\S)|\s+")
ASCII_SPLIT = re.compile(r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\nA-Za-z0-9]?[A-Za-z]+|[0-9]| ?[^\sA-Za-z0-9]+[\r\n]*|"
                         r"\s*[\r\n]+|\s+(?!\S)|\s+")


def bytes_to_unicode():
    """GPT-2's reversible byte -> printable character map, in its order."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [(b, chr(c)) for b, c in zip(bs, cs)]


def learn_merges(texts):
    """texts: iterable of strings (one per occurrence). Returns the merges, a list of (left, right) symbols."""
    byte_char = dict(bytes_to_unicode())
    words = collections.Counter()
    for t in texts:
        for w in ASCII_SPLIT.findall(t):
            words[tuple(byte_char[b] for b in w.encode("utf-8"))] += 1
    merges = []
    while len(merges) < MAX_MERGES:
        pairs = collections.Counter()
        for w, n in words.items():
            for a, b in zip(w, w[1:]):
                pairs[(a, b)] += n
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))
        if pairs[best] < 2:
            break
        merges.append(best)
        joined = best[0] + best[1]
        merged = collections.Counter()
        for w, n in words.items():
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and (w[i], w[i + 1]) == best:
                    out.append(joined)
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            merged[tuple(out)] += n
        words = merged
    return merges


def byte_level(kind):
    return {"type": kind, "add_prefix_space": False, "trim_offsets": False, "use_regex": False}


def tokenizer_json(merges):
    vocab = {ch: i for i, (_, ch) in enumerate(bytes_to_unicode())}
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    added = [{"id": len(vocab) + k, "content": s, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for k, s in enumerate(SPECIALS)]
    return {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
        "normalizer": {"type": "NFC"},
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": QWEN2_SPLIT}, "behavior": "Isolated", "invert": False},
            byte_level("ByteLevel")]},
        "post_processor": byte_level("ByteLevel"),
        "decoder": byte_level("ByteLevel"),
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
                  "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": vocab, "merges": [list(m) for m in merges]},
    }


def special_ids(tok):
    return {t["content"]: t["id"] for t in tok["added_tokens"]}


def tokenizer_config(tok, chat_template):
    ids = special_ids(tok)
    decoder = {str(i): {"content": s, "lstrip": False, "normalized": False, "rstrip": False, "single_word": False,
                        "special": True} for s, i in ids.items()}
    return {
        "add_bos_token": False, "add_prefix_space": False, "added_tokens_decoder": decoder,
        "additional_special_tokens": [s for s in SPECIALS if s not in ("<|endoftext|>", "<|im_end|>")],
        "bos_token": None, "chat_template": chat_template, "clean_up_tokenization_spaces": False,
        "eos_token": "<|im_end|>", "errors": "replace", "model_max_length": 4096, "pad_token": "<|endoftext|>",
        "split_special_tokens": False, "tokenizer_class": "Qwen2Tokenizer", "unk_token": None,
    }


def write(out_dir, merges, chat_template):
    """Writes tokenizer.json and tokenizer_config.json; returns the tokenizer.json dict."""
    tok = tokenizer_json(merges)
    for name, obj in (("tokenizer.json", tok), ("tokenizer_config.json", tokenizer_config(tok, chat_template))):
        with open(f"{out_dir}/{name}", "w") as f:
            json.dump(obj, f, indent=2, ensure_ascii=False)
            f.write("\n")
    return tok
