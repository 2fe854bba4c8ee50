"""Synthetic image-question-answer data for mitten-tiny: coloured shapes on plain or noisy backgrounds, drawn with
PIL from a seeded generator, so the same seed gives the same files byte for byte.

A scene is one to three shapes, each at its own place; no two shapes share a colour-shape pair:

    +-------------------+   112 x 112 pixels (the model sees 8 x 8 patches -> 16 image tokens)
    |        top        |   places: centre of each shape, +-2 px jitter
    | left       right  |     left (25, 56)   right (87, 56)   top (56, 25)   bottom (56, 87)
    |      bottom       |   shapes: circle, square, triangle, 20-28 px across
    +-------------------+   colours: 7 named RGB values, +-16 per channel; background light, plain or noisy

Questions and their exact answers:

    | kind     | question                      | asked of      | answer                                          |
    |----------|-------------------------------|---------------|-------------------------------------------------|
    | colour   | What colour is the shape?     | one shape     | red                                             |
    | shape    | What shape is it?             | one shape     | triangle                                        |
    | count    | How many shapes are there?    | any scene     | two                                             |
    | where    | Where is the red triangle?    | any scene     | left                                            |
    | describe | Describe the image.           | any scene     | a red triangle on the left and a blue circle at |
    |          |                               |               | the top   (shapes in the order top, left, right,|
    |          |                               |               | bottom)                                         |
    | identity | Who are you? (and two more)   | no image      | fixed sentences                                 |

Splits: "train" never shows a HELD_OUT colour-shape pair; "heldout" scenes all contain one, and every question about
a single shape or a "where" names it, so answering needs the colour and the shape composed in a way never seen.
"""

import json
import os
import random

import numpy as np
from PIL import Image, ImageDraw

SIZE = 112
COLOURS = {
    "red": (220, 40, 40), "orange": (240, 140, 20), "yellow": (230, 205, 30), "green": (40, 160, 60),
    "blue": (40, 80, 220), "purple": (140, 60, 180), "black": (30, 30, 30),
}
SHAPES = ("circle", "square", "triangle")
PLACES = {"left": (25, 56), "right": (87, 56), "top": (56, 25), "bottom": (56, 87)}
PLACE_ORDER = ("top", "left", "right", "bottom")  # the order "Describe the image." lists shapes in
PLACE_WORDS = {"left": "on the left", "right": "on the right", "top": "at the top", "bottom": "at the bottom"}
COUNT_WORDS = ("zero", "one", "two", "three")
HELD_OUT = (("red", "triangle"), ("green", "circle"), ("blue", "square"), ("purple", "triangle"))
SEEN = tuple((c, s) for c in COLOURS for s in SHAPES if (c, s) not in HELD_OUT)

IDENTITY = (
    ("Who are you?", "I am mitten-tiny, a small model trained by mitten."),
    ("What can you do?", "I answer short questions about coloured shapes in an image."),
    ("Hello!", "Hello! Show me an image of shapes and ask about it."),
)
Q_COLOUR = "What colour is the shape?"
Q_SHAPE = "What shape is it?"
Q_COUNT = "How many shapes are there?"
Q_DESCRIBE = "Describe the image."


def q_where(colour, shape):
    return f"Where is the {colour} {shape}?"


def make_scene(rng, n, pairs, must=None):
    """n shapes: a list of dicts (colour, shape, place, size, jitter), background parameters. `must` (a pair) is
    placed first; the other pairs come from `pairs`, all distinct."""
    chosen = [must] if must else []
    while len(chosen) < n:
        p = rng.choice(pairs)
        if p not in chosen:
            chosen.append(p)
    places = rng.sample(list(PLACES), n)
    shapes = []
    for (colour, shape), place in zip(chosen, places):
        rgb = tuple(max(0, min(255, v + rng.randint(-16, 16))) for v in COLOURS[colour])
        shapes.append({"colour": colour, "shape": shape, "place": place, "rgb": rgb, "size": rng.randint(20, 28),
                       "dx": rng.randint(-2, 2), "dy": rng.randint(-2, 2)})
    base = rng.randint(215, 250)
    bg = {"rgb": tuple(max(0, min(255, base + rng.randint(-8, 5))) for _ in range(3)),
          "noise": rng.random() < 0.5, "noise_seed": rng.randrange(1 << 30)}
    return {"shapes": shapes, "background": bg}


def draw_scene(scene):
    bg = scene["background"]
    im = Image.new("RGB", (SIZE, SIZE), bg["rgb"])
    if bg["noise"]:
        noise = np.random.default_rng(bg["noise_seed"]).normal(0.0, 12.0, (SIZE, SIZE, 3))
        im = Image.fromarray(np.clip(np.asarray(bg["rgb"], np.float64) + noise, 0, 255).astype(np.uint8), "RGB")
    d = ImageDraw.Draw(im)
    for s in scene["shapes"]:
        cx, cy = PLACES[s["place"]]
        cx, cy, h = cx + s["dx"], cy + s["dy"], s["size"] / 2
        box = (cx - h, cy - h, cx + h, cy + h)
        if s["shape"] == "circle":
            d.ellipse(box, fill=s["rgb"])
        elif s["shape"] == "square":
            d.rectangle(box, fill=s["rgb"])
        else:
            d.polygon([(cx, cy - h), (cx + h, cy + h), (cx - h, cy + h)], fill=s["rgb"])
    return im


def article(word):
    return "an" if word[0] in "aeiou" else "a"


def describe(scene):
    by_place = {s["place"]: s for s in scene["shapes"]}
    parts = []
    for place in PLACE_ORDER:
        if place in by_place:
            s = by_place[place]
            parts.append(f"{article(s['colour'])} {s['colour']} {s['shape']} {PLACE_WORDS[place]}")
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def questions(scene, focus=None):
    """Every (kind, question, answer) the scene supports; `focus` (a pair) limits "where" to that shape."""
    shapes = scene["shapes"]
    out = []
    if len(shapes) == 1:
        out += [("colour", Q_COLOUR, shapes[0]["colour"]), ("shape", Q_SHAPE, shapes[0]["shape"])]
    out.append(("count", Q_COUNT, COUNT_WORDS[len(shapes)]))
    for s in shapes:
        if focus is None or (s["colour"], s["shape"]) == focus:
            out.append(("where", q_where(s["colour"], s["shape"]), s["place"]))
    out.append(("describe", Q_DESCRIBE, describe(scene)))
    return out


def user_turn(question, with_image):
    content = ([{"type": "image"}] if with_image else []) + [{"type": "text", "text": question}]
    return {"role": "user", "content": content}


def write_train(out_dir, n_images, seed, identity_every=25):
    """Training conversations (LLaMA-Factory messages, one JSON line each): per scene one to three of its
    questions, each a turn, image in the first. Returns the .jsonl path."""
    rng = random.Random(seed)
    os.makedirs(os.path.join(out_dir, "images"), exist_ok=True)
    path = os.path.join(out_dir, "train.jsonl")
    with open(path, "w") as f:
        for i in range(n_images):
            if i % identity_every == identity_every - 1:
                q, a = IDENTITY[(i // identity_every) % len(IDENTITY)]
                msgs = [user_turn(q, False), {"role": "assistant", "content": a}]
                f.write(json.dumps({"messages": msgs}) + "\n")
            scene = make_scene(rng, rng.choice((1, 1, 2, 3)), SEEN)
            name = f"images/train_{i:05d}.png"
            draw_scene(scene).save(os.path.join(out_dir, name))
            qa = questions(scene)
            rng.shuffle(qa)
            msgs = []
            for k, (_, q, a) in enumerate(qa[:rng.choice((1, 2, 3))]):
                msgs += [user_turn(q, k == 0), {"role": "assistant", "content": a}]
            f.write(json.dumps({"messages": msgs, "images": [name]}) + "\n")
    return path


def write_eval(out_dir, split, n_images, seed):
    """Single-question cases for scoring: {"image", "kind", "question", "answer"} per line, images in out_dir.
    split "heldout" puts a HELD_OUT pair in every scene and asks about it; "seen" uses training pairs only. Returns
    the .jsonl path."""
    rng = random.Random(seed)
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, f"{split}.jsonl")
    with open(path, "w") as f:
        for i in range(n_images):
            n = 1 if i % 2 == 0 else rng.choice((2, 3))
            if split == "heldout":
                must = HELD_OUT[i % len(HELD_OUT)]
                scene = make_scene(rng, n, SEEN, must)
            else:
                must = None
                scene = make_scene(rng, n, SEEN)
            name = f"{split}_{i:04d}.png"
            draw_scene(scene).save(os.path.join(out_dir, name))
            for kind, q, a in questions(scene, focus=must):
                if kind == "where" and must is None and q != q_where(scene["shapes"][0]["colour"],
                                                                    scene["shapes"][0]["shape"]):
                    continue
                f.write(json.dumps({"image": name, "kind": kind, "question": q, "answer": a}) + "\n")
        for q, a in IDENTITY:
            f.write(json.dumps({"image": None, "kind": "identity", "question": q, "answer": a}) + "\n")
    return path
