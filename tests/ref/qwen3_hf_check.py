#!/usr/bin/python3
"""Runs transformers' OWN Qwen3-family modeling files on this reference's tiny checkpoints and compares.

Not a ctest: it needs a transformers source tree (a git directory, e.g. the mirror `fetch github:feisenyu/
transformers_4573` gives; that mirror keeps upstream history, upstream commit ccc7d90bcb = 5.0.0.dev0 of 2025-12-23).
The five modeling files are read from that commit with `git show` and imported, unmodified, inside a small stub
`transformers` package written here (PreTrainedModel as a plain nn.Module, a concatenating DynamicCache, an additive
causal mask, eager attention, identity decorators), so they run on Debian's torch 1.13 without the library. The
sliding-window mask evaluates transformers' own mask functions (and_masks, causal_mask_function,
sliding_window_overlay, sliding_window_causal_mask_function of masking_utils.py, read from the same commit) over the
query and key positions.

    qwen3_hf_check.py --git /work/.mirror/feisenyu+transformers_4573/repo [--commit SHA] [--work DIR]

Checks, per variant and case: the checkpoint loads with load_state_dict(strict) into the module tree (so the tensor
names are the module names; Qwen3-MoE's per-expert tensors are merged as conversion_mapping.py does: stack experts,
concatenate [gate; up] on dim 1); logits, merger, DeepStack features, pos_embed, position ids and rope delta, router
choices and the cached greedy logits (the reference's greedy tokens fed back through transformers' cache path).
The Qwen3-VL variants also take videos (pixel_values_videos, video_grid_thw; the ids as the reference's port of
Qwen3VLProcessor expands them, timestamps included): alone, before and after an image.
Besides the five variants, qwen2, qwen3 and qwen3_moe with use_sliding_window, sliding_window 6 and
max_window_layers 1 on text_long (40 tokens, then 16 cached steps); 5.x configs carry layer_types, 4.x ones leave
the layers to max_window_layers.
float32: relative error below 1e-5 (measured 1.5e-6). bf16 (model built under default dtype bf16, as from_pretrained
does, so rotary inv_freq stays float32; the Conv3d patch embedding replaced by its matmul, see qwen2_vl_model.
patch_embed): bit-identical. Exit status 1 on any failure.
"""

import argparse
import json
import os
import subprocess
import sys
import types

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import qwen3_ckpt as ck  # noqa: E402
import qwen3_ref as ref  # noqa: E402
import safetensors_io as st  # noqa: E402

STUBS = {
    "__init__.py": "",
    "initialization.py": "def copy_(*a, **k): pass\ndef normal_(*a, **k): pass\n",
    "activations.py": (
        "import torch.nn as nn, torch.nn.functional as F\n"
        "class TanhGelu(nn.Module):\n    def forward(self, x): return F.gelu(x, approximate='tanh')\n"
        "ACT2FN = {'silu': nn.SiLU(), 'gelu': nn.GELU(), 'gelu_pytorch_tanh': TanhGelu()}\n"),
    "cache_utils.py": (
        "import torch\nclass Cache: pass\n"
        "class DynamicCache(Cache):\n"
        "    def __init__(self, config=None, **k): self.k, self.v = {}, {}\n"
        "    def update(self, k, v, i, kw=None):\n"
        "        if i in self.k:\n"
        "            k, v = torch.cat([self.k[i], k], dim=-2), torch.cat([self.v[i], v], dim=-2)\n"
        "        self.k[i], self.v[i] = k, v\n"
        "        return k, v\n"
        "    def get_seq_length(self, i=0): return self.k[i].shape[-2] if i in self.k else 0\n"),
    "generation.py": "class GenerationMixin: pass\n",
    "integrations.py": ("def use_kernel_forward_from_hub(name): return lambda c: c\n"
                        "def use_kernel_func_from_hub(name): return lambda f: f\n"
                        "def use_kernelized_func(*f): return lambda c: c\n"),
    "masking_utils.py": (
        "import torch\n"
        "def create_causal_mask(config, input_embeds, attention_mask, cache_position, past_key_values, **k):\n"
        "    past = past_key_values.get_seq_length() if past_key_values is not None else 0\n"
        "    ok = torch.arange(past + input_embeds.shape[1]).view(1, -1) <= cache_position.view(-1, 1)\n"
        "    m = torch.zeros(ok.shape, dtype=input_embeds.dtype)\n"
        "    return m.masked_fill(~ok, torch.finfo(input_embeds.dtype).min)[None, None]\n"
        "def create_sliding_window_causal_mask(config, input_embeds, attention_mask, cache_position, past_key_values,"
        " **k):\n"
        "    if config.sliding_window is None: raise ValueError('no sliding_window')\n"
        "    past = past_key_values.get_seq_length() if past_key_values is not None else 0\n"
        "    fn = sliding_window_causal_mask_function(config.sliding_window)\n"
        "    ok = fn(0, 0, cache_position.view(-1, 1), torch.arange(past + input_embeds.shape[1]).view(1, -1))\n"
        "    m = torch.zeros(ok.shape, dtype=input_embeds.dtype)\n"
        "    return m.masked_fill(~ok, torch.finfo(input_embeds.dtype).min)[None, None]\n"),
    "modeling_flash_attention_utils.py": ("from typing import TypedDict\n"
                                          "class FlashAttentionKwargs(TypedDict, total=False): pass\n"),
    "modeling_layers.py": ("import torch.nn as nn\nclass GradientCheckpointingLayer(nn.Module): pass\n"
                           "class GenericForQuestionAnswering: pass\nclass GenericForSequenceClassification: pass\n"
                           "class GenericForTokenClassification: pass\n"),
    "modeling_outputs.py": (
        "class ModelOutput:\n    def __init__(self, **k): self.__dict__.update(k)\n"
        "    def __getattr__(self, name): return None\n"
        "BaseModelOutputWithPast = MoeModelOutputWithPast = CausalLMOutputWithPast = ModelOutput\n"
        "MoeCausalLMOutputWithPast = ModelOutput\n"),
    # 4.x files look the default RoPE up here (5.x has it as a method); written from the formula: 1 / theta^(2j/Hd)
    "modeling_rope_utils.py": (
        "import torch\n"
        "def default(config, device=None, **k):\n"
        "    dim = getattr(config, 'head_dim', None) or config.hidden_size // config.num_attention_heads\n"
        "    return 1.0 / (config.rope_theta ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim)), 1.0\n"
        "ROPE_INIT_FUNCTIONS = {'default': default}\n"
        "def dynamic_rope_update(f): return f\nRopeParameters = dict\n"),
    "modeling_utils.py": (
        "import torch.nn as nn\nALL_ATTENTION_FUNCTIONS = {}\n"
        "class PreTrainedModel(nn.Module):\n"
        "    def __init__(self, config, *a, **k):\n        super().__init__()\n        self.config = config\n"
        "    def post_init(self): pass\n"
        "    @classmethod\n    def _from_config(cls, config, **k): return cls(config)\n"
        "    @property\n    def dtype(self): return next(self.parameters()).dtype\n"
        "    def get_input_embeddings(self): return self.embed_tokens\n"),
    "processing_utils.py": "from typing import Unpack\n",
    "utils/__init__.py": ("from typing import TypedDict\nclass TransformersKwargs(TypedDict, total=False): pass\n"
                          "def auto_docstring(obj=None, **k): return obj if obj is not None else (lambda o: o)\n"
                          "def can_return_tuple(f): return f\ndef is_torchdynamo_compiling(): return False\n"),
    "utils/deprecation.py": "def deprecate_kwarg(*a, **k): return lambda f: f\n",
    "utils/generic.py": ("import contextlib\n"
                         "def check_model_inputs(f=None, **k): return f if f is not None else (lambda g: g)\n"
                         "def maybe_autocast(*a, **k): return contextlib.nullcontext()\n"
                         "class OutputRecorder:\n    def __init__(self, *a, **k): pass\n"),
}
MODULES = {"qwen2": "Qwen2Model", "qwen3": "Qwen3Model", "qwen3_moe": "Qwen3MoeModel",
           "qwen3_vl": "Qwen3VLModel", "qwen3_vl_moe": "Qwen3VLMoeModel", "qwen2_moe": "Qwen2MoeModel"}
# Qwen2MoeConfig.__init__'s defaults for the keys the tiny config leaves out, as the real config class sets them
CONFIG_DEFAULTS = {"qwen2_moe": {"qkv_bias": True, "norm_topk_prob": False, "mlp_only_layers": [],
                                 "decoder_sparse_step": 1}}
# variants whose 4.x modeling file needs more of the library than the stub gives
V5_ONLY = {"qwen2_moe": "its 4.x file builds its own masks (AttentionMaskConverter, StaticCache, flash-attention "
                        "helpers); checked at 5.x only"}
FAILS, WORST = [], [0.0]


MASK_FUNCTIONS = ("and_masks", "causal_mask_function", "sliding_window_overlay", "sliding_window_causal_mask_function")


def mask_functions(git_dir, commit):
    """The source of transformers' index-based mask functions (MASK_FUNCTIONS) at commit, unmodified."""
    import ast
    src = subprocess.run(["git", "-C", git_dir, "show", f"{commit}:src/transformers/masking_utils.py"], check=True,
                         capture_output=True, text=True).stdout
    lines = src.splitlines(keepends=True)
    found = {n.name: "".join(lines[n.lineno - 1:n.end_lineno]) for n in ast.parse(src).body
             if isinstance(n, ast.FunctionDef) and n.name in MASK_FUNCTIONS}
    if len(found) != len(MASK_FUNCTIONS):
        raise SystemExit(f"masking_utils.py at {commit} lacks {set(MASK_FUNCTIONS) - set(found)}")
    return "from typing import Callable\n\n" + "\n\n".join(found[n] for n in MASK_FUNCTIONS) + "\n\n"


def build_stub(root, git_dir, commit):
    pkg = os.path.join(root, "transformers")
    for name, text in STUBS.items():
        os.makedirs(os.path.dirname(os.path.join(pkg, name)), exist_ok=True)
        if name == "masking_utils.py":
            text = text.replace("import torch\n", "import torch\n" + mask_functions(git_dir, commit), 1)
        with open(os.path.join(pkg, name), "w") as f:
            f.write(text)
    os.makedirs(os.path.join(pkg, "models"), exist_ok=True)
    open(os.path.join(pkg, "models", "__init__.py"), "w").close()
    for model, cls in MODULES.items():
        d = os.path.join(pkg, "models", model)
        os.makedirs(d, exist_ok=True)
        open(os.path.join(d, "__init__.py"), "w").close()
        src = subprocess.run(["git", "-C", git_dir, "show", f"{commit}:src/transformers/models/{model}/modeling_{model}.py"],
                             check=True, capture_output=True, text=True).stdout
        with open(os.path.join(d, f"modeling_{model}.py"), "w") as f:
            f.write(src)
        names = {n for n in src.split("from .configuration_" + model + " import ")[1].split("\n")[0].split(", ")}
        with open(os.path.join(d, f"configuration_{model}.py"), "w") as f:
            f.write("".join(f"class {n.strip()}: pass\n" for n in sorted(names)))
    sys.path.insert(0, root)


class Namespace(types.SimpleNamespace):
    """A config object: attributes from the 5.x config.json, _attn_implementation eager."""

    def get_text_config(self, *a, **k):
        return getattr(self, "text_config", self)


def namespace(d):
    out = Namespace(**{k: v for k, v in d.items() if k not in ("text_config", "vision_config")})
    out._attn_implementation, out.pad_token_id = "eager", None
    # Qwen{2,3}Config / Qwen3MoeConfig.__init__: sliding_window only with use_sliding_window; qwen2/qwen3 layer_types
    # from the config, else "sliding_attention" from max_window_layers on
    out.sliding_window = d.get("sliding_window", 4096) if d.get("use_sliding_window") else None
    for k, v in CONFIG_DEFAULTS.get(d.get("model_type"), {}).items():
        if k not in d:
            setattr(out, k, v)
    if d.get("model_type") in ("qwen2", "qwen3", "qwen2_moe") and not d.get("layer_types"):
        out.layer_types = ["sliding_attention" if out.sliding_window is not None and i >= d["max_window_layers"]
                           else "full_attention" for i in range(d["num_hidden_layers"])]
    if "text_config" in d:
        out.text_config, out.vision_config = namespace(d["text_config"]), namespace(d["vision_config"])
    return out


def compare(label, got, want, exact):
    got, want = got.double().numpy(), want.double().numpy()
    err = float(np.abs(got - want).max() / max(np.abs(want).max(), 1e-30))
    WORST[0] = max(WORST[0], err)
    ok = err == 0 if exact else err < 1e-5
    print(("ok   " if ok else "FAIL ") + f"{label}: rel err {err:.2e}")
    if not ok:
        FAILS.append(label)


def same(label, ok):
    print(("ok   " if ok else "FAIL ") + label)
    if not ok:
        FAILS.append(label)


def load_model(variant, model_dir, bf16):
    raw = json.load(open(os.path.join(model_dir, "config.json")))
    W = st.read_folder(model_dir)
    mod = __import__(f"transformers.models.{variant}.modeling_{variant}", fromlist=["x"])
    dtype = torch.bfloat16 if bf16 else torch.float32
    torch.set_default_dtype(dtype)  # as from_pretrained(dtype=...): parameters in dtype, rotary inv_freq float32
    model = getattr(mod, MODULES[variant])(namespace(raw)).eval()
    torch.set_default_dtype(torch.float32)
    sd = {k[len("model."):]: v.to(dtype) for k, v in W.items() if k != "lm_head.weight"}
    fused = any(k.endswith("experts.gate_up_proj") for k in model.state_dict())
    if variant in ("qwen3_moe", "qwen2_moe") and fused:  # 5.x conversion_mapping "qwen2_moe": MergeModulelist(0), Concatenate(1)
        E = raw["num_experts"]
        for i in range(raw["num_hidden_layers"]):
            p = f"layers.{i}.mlp.experts."
            if p + "0.gate_proj.weight" in sd:
                gate, up, down = ([sd.pop(f"{p}{e}.{n}_proj.weight") for e in range(E)] for n in ("gate", "up", "down"))
                sd[p + "gate_up_proj"] = torch.cat([torch.stack(gate), torch.stack(up)], dim=1)
                sd[p + "down_proj"] = torch.stack(down)
    missing, unexpected = model.load_state_dict(sd, strict=False)
    same(f"{variant}: checkpoint names == transformers module tree (missing {missing}, unexpected {unexpected})",
         not missing and not unexpected)
    head = (W["lm_head.weight"] if "lm_head.weight" in W else W[[k for k in W if k.endswith("embed_tokens.weight")][0]])
    if hasattr(model, "visual") and bf16:
        proj = model.visual.patch_embed.proj
        model.visual.patch_embed.forward = lambda x: torch.nn.functional.linear(
            x.to(proj.weight.dtype), proj.weight.reshape(proj.weight.shape[0], -1), proj.bias)
    return mod, model, head.to(dtype), raw


def run_case(variant, model_dir, case, work, bf16):
    tag = f"{variant}/{case}/{'bf16' if bf16 else 'f32'}"
    cfg = ref.load_config(model_dir)
    ids, images = ref.build_inputs(cfg, case, 1234)
    out = os.path.join(work, f"{variant}-{case}-{'bf16' if bf16 else 'f32'}")
    dumps = ref.run_dump(model_dir, ids, images, out, 16, "bf16" if bf16 else "float32")
    mod, model, head, raw = load_model(variant, model_dir, bf16)
    dtype = head.dtype
    routes = {}
    layers = model.language_model.layers if cfg.is_vl else model.layers
    for i, layer in enumerate(layers):
        if hasattr(layer.mlp, "gate"):
            def hook(m, a, o, i=i):
                if a[0].reshape(-1, a[0].shape[-1]).shape[0] == ids.numel():
                    if isinstance(o, tuple):  # qwen3_moe's router returns (probabilities, weights, indices)
                        routes[i] = o[2]
                    else:  # qwen3_vl_moe's gate is the Linear: its logits
                        routes[i] = torch.topk(torch.softmax(o.float(), -1), cfg.top_k, dim=-1)[1]
            layer.mlp.gate.register_forward_hook(hook)
    kw = {}
    videos = [it for it in images if isinstance(it, ref.qm2.Video)]
    with torch.no_grad():
        if videos:
            # images and videos go through the tower separately (Qwen3VLModel.forward); the reference's dumps are
            # in prompt order, so the tower is compared one input at a time
            stills = [it for it in images if not isinstance(it, ref.qm2.Video)]
            for key, items in (("pixel_values", stills), ("pixel_values_videos", videos)):
                if items:
                    kw[key] = torch.cat([it[0] for it in items]).to(dtype)
                    kw["image_grid_thw" if key == "pixel_values" else "video_grid_thw"] = torch.tensor(
                        [it[1] for it in items])
            per = [model.visual(it[0].to(dtype), grid_thw=torch.tensor([it[1]])) for it in images]
            compare(f"{tag} merger", torch.cat([m for m, _ in per]), dumps["merger"], bf16)
            for j, level in enumerate(zip(*[d for _, d in per])):
                compare(f"{tag} deepstack_{j}", torch.cat(level), dumps[f"deepstack_{j}"], bf16)
        elif images:
            pv = torch.cat([p for p, _ in images]).to(dtype)
            thw = torch.tensor([g for _, g in images])
            kw = {"pixel_values": pv, "image_grid_thw": thw}
            merged, deep = model.visual(pv, grid_thw=thw)
            compare(f"{tag} merger", merged, dumps["merger"], bf16)
            for j, d in enumerate(deep):
                compare(f"{tag} deepstack_{j}", d, dumps[f"deepstack_{j}"], bf16)
            compare(f"{tag} pos_embed", model.visual.patch_embed(pv) + model.visual.fast_pos_embed_interpolate(thw),
                    dumps["pos_embed"], bf16)
        if cfg.is_vl:
            pos, delta = model.get_rope_index(ids[None], kw.get("image_grid_thw"), kw.get("video_grid_thw"))
            same(f"{tag} position_ids, rope_delta identical", torch.equal(pos[:, 0], dumps["position_ids"])
                 and int(delta.flatten()[0]) == int(dumps["rope_delta"][0]))
            model.rope_deltas = None
        cache = mod.DynamicCache()
        o = model(input_ids=ids[None], past_key_values=cache, use_cache=True, **kw)
        logits = o.last_hidden_state[0] @ head.t()
        compare(f"{tag} logits", logits, dumps["logits"], bf16)
        for i, r in sorted(routes.items()):
            same(f"{tag} router_topk_{i} identical", torch.equal(r, dumps[f"router_topk_{i}"]))
        steps = [logits[-1]]
        for k, tok in enumerate(dumps["greedy"][:-1].tolist()):
            o = model(input_ids=torch.tensor([[tok]]), past_key_values=cache, use_cache=True,
                      cache_position=torch.tensor([ids.numel() + k]))
            steps.append((o.last_hidden_state[0] @ head.t())[0])
        compare(f"{tag} greedy_logits through the cache", torch.stack(steps), dumps["greedy_logits"], bf16)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--git", required=True, help="a transformers git directory (bare is fine)")
    ap.add_argument("--commit", default="ccc7d90bcb4a94cd0888925c6abac941f3b8151d")
    ap.add_argument("--work", default="/tmp/qwen3_hf_check")
    ap.add_argument("--config-form", type=int, choices=[4, 5], default=5,
                    help="4 for transformers 4.x files (e.g. --commit c0dbe095b0, 4.57.0.dev0, Qwen3-VL's first)")
    ap.add_argument("--f32-only", action="store_true",
                    help="skip the bf16 comparison (4.x Qwen3-MoE casts routing weights to bf16 before use, 5.x "
                         "keeps them float32: bf16 bit-exactness holds for the 5.x files only)")
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    build_stub(os.path.join(a.work, "stub"), a.git, a.commit)
    with torch.no_grad():
        for variant in ck.VARIANTS:
            if variant in V5_ONLY and a.config_form == 4:
                print(f"skip {variant}: {V5_ONLY[variant]}")
                continue
            model_dir = os.path.join(a.work, variant)
            ref.main(["make-checkpoint", "--variant", variant, "--out", model_dir, "--seed", "7",
                      "--config-form", str(a.config_form)])
            vl = variant.startswith("qwen3_vl")
            cases = ["text", "one_image", "two_images", "video", "image_video", "video_image"]
            for case in (cases if vl else ["text", "text_long"]):
                for bf16 in (False,) if a.f32_only else (False, True):
                    run_case(variant, model_dir, case, a.work, bf16)
        for variant in ("qwen2", "qwen3", "qwen3_moe"):
            model_dir = os.path.join(a.work, f"{variant}-sliding")
            ref.main(["make-checkpoint", "--variant", variant, "--out", model_dir, "--seed", "7", "--config-form",
                      str(a.config_form), "--sliding-window", "6", "--max-window-layers", "1"])
            for bf16 in (False,) if a.f32_only else (False, True):
                run_case(variant, model_dir, "text_long", a.work, bf16)
    print(f"{len(FAILS)} failures; worst float32 relative error {WORST[0]:.2e}")
    sys.exit(1 if FAILS else 0)


if __name__ == "__main__":
    main()
