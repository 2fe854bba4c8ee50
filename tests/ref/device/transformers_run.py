"""Runs transformers (the real library) on the tiny checkpoints and images, writing what mitten is compared with."""
import json, os, sys, traceback, glob
import numpy as np
import torch
import transformers
from transformers import Qwen2_5_VLForConditionalGeneration, Qwen2VLForConditionalGeneration

OUT = os.environ["OUT"]
HERE = os.path.dirname(os.path.abspath(__file__))
print("torch", torch.__version__, "transformers", transformers.__version__, flush=True)
torch.manual_seed(0)
RESULTS = {}

def load(cls, d):
    try:
        return cls.from_pretrained(d, dtype=torch.float32, attn_implementation="eager").eval()
    except TypeError:
        return cls.from_pretrained(d, torch_dtype=torch.float32, attn_implementation="eager").eval()

for variant, cls in [("qwen2_5_vl", Qwen2_5_VLForConditionalGeneration), ("qwen2_vl", Qwen2VLForConditionalGeneration)]:
    try:
        model = load(cls, os.path.join(HERE, variant))
        saved = os.path.join(OUT, variant + "-saved5x")
        if variant != "qwen2_5_vl":
            saved = os.path.join("/tmp", variant + "-saved5x")
        model.save_pretrained(saved)
        for case in ["text", "one_image", "two_images", "multi_window"]:
            d = os.path.join(HERE, "%s-in-%s" % (variant, case))
            ids = torch.from_numpy(np.load(os.path.join(d, "ids.npy")))[None]
            grids = open(os.path.join(d, "grids.txt")).read().split()
            kw = {}
            if grids:
                image_token = json.load(open(os.path.join(HERE, variant, "config.json")))["image_token_id"]
                kw["mm_token_type_ids"] = (ids == image_token).long()
                kw["pixel_values"] = torch.cat([torch.from_numpy(np.load(os.path.join(d, "pv%d.npy" % i))) for i in range(len(grids))])
                kw["image_grid_thw"] = torch.tensor([[int(x) for x in g.split(",")] for g in grids])
            with torch.no_grad():
                logits = model(input_ids=ids, **kw).logits[0].float().numpy()
                gen = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=16,
                                     do_sample=False, **kw)[0, ids.shape[1]:].numpy()
            RESULTS["%s-%s-logits" % (variant, case)] = logits
            RESULTS["%s-%s-greedy" % (variant, case)] = gen.astype(np.int64)
            print(variant, case, "ok", logits.shape, gen.tolist(), flush=True)
    except Exception:
        traceback.print_exc()

try:
    from transformers import Qwen2VLImageProcessor
    from PIL import Image
    pre = json.load(open(os.path.join(HERE, "qwen2_5_vl", "preprocessor_config.json")))
    for slow in [True]:
        proc = Qwen2VLImageProcessor(**{k: v for k, v in pre.items() if k not in ("image_processor_type", "processor_class")})
        for f in sorted(glob.glob(os.path.join(HERE, "img_*"))):
            r = proc(images=[Image.open(f)], return_tensors="np")
            name = os.path.splitext(os.path.basename(f))[0]
            RESULTS["pre-%s-pixel_values" % name] = np.asarray(r["pixel_values"], dtype=np.float32)
            RESULTS["pre-%s-grid" % name] = np.asarray(r["image_grid_thw"], dtype=np.int64)
            print("preprocess", name, np.asarray(r["pixel_values"]).shape, np.asarray(r["image_grid_thw"]).tolist(), flush=True)
except Exception:
    traceback.print_exc()

groups = {"logits": lambda k: not k.startswith("pre-"), "pre_photo": lambda k: "img_photo" in k,
          "pre_rgba": lambda k: "img_rgba" in k,
          "pre_rest": lambda k: k.startswith("pre-") and "img_photo" not in k and "img_rgba" not in k}
for g, f in groups.items():
    np.savez(os.path.join(OUT, g + ".npz"), **{k: v for k, v in RESULTS.items() if f(k)})
