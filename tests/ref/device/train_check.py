"""Loads what `mitten train` saved with the real libraries: the full model folder with transformers, and the LoRA
adapter on its base with PEFT (when PEFT is installed), and compares logits with mitten's. Inputs prepared here
(see README.md): trained/ (OUT/model of a full fine-tuning run) with mitten_trained.npy, base/ + adapter/ (OUT/adapter
of a LoRA run) with mitten_lora.npy (logits of that run's OUT/model), in/ids.npy, in/pv*.npy, in/grids.txt."""
import json
import os
import traceback

import numpy as np
import torch
import transformers
from transformers import Qwen2_5_VLForConditionalGeneration

OUT = os.environ.get("OUT", "/tmp")
HERE = os.path.dirname(os.path.abspath(__file__))
print("torch", torch.__version__, "transformers", transformers.__version__, flush=True)
RESULTS = {}


def load(d):
    try:
        return Qwen2_5_VLForConditionalGeneration.from_pretrained(d, dtype=torch.float32,
                                                                  attn_implementation="eager").eval()
    except TypeError:
        return Qwen2_5_VLForConditionalGeneration.from_pretrained(d, torch_dtype=torch.float32,
                                                                  attn_implementation="eager").eval()


def inputs(model_dir):
    d = os.path.join(HERE, "in")
    ids = torch.from_numpy(np.load(os.path.join(d, "ids.npy")))[None]
    grids = open(os.path.join(d, "grids.txt")).read().split()
    kw = {}
    if grids:
        image_token = json.load(open(os.path.join(model_dir, "config.json")))["image_token_id"]
        kw["mm_token_type_ids"] = (ids == image_token).long()
        kw["pixel_values"] = torch.cat([torch.from_numpy(np.load(os.path.join(d, "pv%d.npy" % i)))
                                        for i in range(len(grids))])
        kw["image_grid_thw"] = torch.tensor([[int(x) for x in g.split(",")] for g in grids])
    return ids, kw


def compare(name, model, model_dir, mitten_file):
    ids, kw = inputs(model_dir)
    with torch.no_grad():
        logits = model(input_ids=ids, **kw).logits[0].float().numpy()
    ref = np.load(os.path.join(HERE, mitten_file))
    err = float(np.abs(logits - ref).max())
    RESULTS[name] = {"max_abs_err": err, "max_abs_logit": float(np.abs(ref).max()),
                     "argmax_equal": float((logits.argmax(-1) == ref.argmax(-1)).mean())}
    print(name, RESULTS[name], flush=True)


try:
    compare("transformers_loads_trained", load(os.path.join(HERE, "trained")), os.path.join(HERE, "trained"),
            "mitten_trained.npy")
except Exception:
    traceback.print_exc()
    RESULTS["transformers_loads_trained"] = "failed"

try:
    import peft
    print("peft", peft.__version__, flush=True)
    base = load(os.path.join(HERE, "base"))
    # the adapter must change something: the base alone against the merged logits, for contrast
    compare("base_without_adapter", base, os.path.join(HERE, "base"), "mitten_lora.npy")
    model = peft.PeftModel.from_pretrained(base, os.path.join(HERE, "adapter")).eval()
    compare("peft_loads_adapter", model, os.path.join(HERE, "base"), "mitten_lora.npy")
except ImportError:
    RESULTS["peft_loads_adapter"] = "peft is not installed"
    print("peft is not installed", flush=True)
except Exception:
    traceback.print_exc()
    RESULTS["peft_loads_adapter"] = "failed"

json.dump(RESULTS, open(os.path.join(OUT, "train_check.json"), "w"), indent=1)
