"""Synthetic image-question-answer data for mitten-tiny: coloured shapes on plain or noisy backgrounds, drawn with
PIL from a seeded generator, so the same seed gives the same files byte for byte.

A scene is one to three shapes, each at its own place; no two shapes share a colour-shape pair:

    +-----+-----+-----+   84 x 84 pixels: 6 x 6 patches of 14, merged 2 x 2 -> 3 x 3 image tokens, one per cell
    |     | top |     |   places: the centre of a 28 x 28 cell, +-2 px jitter
    +-----+-----+-----+     left (14, 42)   right (70, 42)   top (42, 14)   bottom (42, 70)
    |left |     |right|   shapes: circle, square, triangle of equal area (a circle 18-24 px across)
    +-----+-----+-----+   colours: 7 named RGB values, +-16 per channel (or, in training only, an unnamed
    |     | bot |     |     random RGB); background light, plain or noisy
    +-----+-----+-----+

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
import math
import os
import random

import numpy as np
from PIL import Image, ImageDraw

SIZE = 84
COLOURS = {
    "red": (220, 40, 40), "orange": (240, 140, 20), "yellow": (230, 205, 30), "green": (40, 160, 60),
    "blue": (40, 80, 220), "purple": (140, 60, 180), "black": (30, 30, 30),
}
SHAPES = ("circle", "square", "triangle")
PLACES = {"left": (14, 42), "right": (70, 42), "top": (42, 14), "bottom": (42, 70)}
PLACE_ORDER = ("top", "left", "right", "bottom")  # the order "Describe the image." lists shapes in
PLACE_WORDS = {"left": "on the left", "right": "on the right", "top": "at the top", "bottom": "at the bottom"}
SHAPE_SIZE = (18, 24)  # a circle's diameter in pixels, inclusive; squares and triangles get the same area
SQUARE_SIDE = math.sqrt(math.pi) / 2  # side / diameter: a side of 0.89 d has the area of a circle of diameter d
TRIANGLE_BASE = math.sqrt(math.pi / 2)  # base (= height) / diameter: 1.25 d; a thinner shape would hold less colour
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
    placed first; the other pairs come from `pairs`, all distinct. A colour of None is an unnamed random RGB."""
    chosen = [must] if must else []
    while len(chosen) < n:
        p = rng.choice(pairs)
        if p not in chosen:
            chosen.append(p)
    places = rng.sample(list(PLACES), n)
    shapes = []
    for (colour, shape), place in zip(chosen, places):
        if colour is None:
            rgb = tuple(rng.randint(0, 200) for _ in range(3))
        else:
            rgb = tuple(max(0, min(255, v + rng.randint(-16, 16))) for v in COLOURS[colour])
        shapes.append({"colour": colour, "shape": shape, "place": place, "rgb": rgb, "size": rng.randint(*SHAPE_SIZE),
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
        if s["shape"] is None:
            draw_unnamed(d, cx, cy, h, s)
        elif s["shape"] == "circle":
            d.ellipse((cx - h, cy - h, cx + h, cy + h), fill=s["rgb"])
        elif s["shape"] == "square":
            a = h * SQUARE_SIDE
            d.rectangle((cx - a, cy - a, cx + a, cy + a), fill=s["rgb"])
        else:
            a = h * TRIANGLE_BASE  # centroid on the centre: apex 4/3 a above it, base 2/3 a below
            d.polygon([(cx, cy - 4 * a / 3), (cx + a, cy + 2 * a / 3), (cx - a, cy + 2 * a / 3)], fill=s["rgb"])
    return im


def draw_unnamed(d, cx, cy, h, s):
    """A shape with no name (training only): a flat ellipse or bar, a diamond or a pentagon, chosen by its size."""
    kind = s["size"] % 4
    if kind == 0:
        d.ellipse((cx - h, cy - h / 2, cx + h, cy + h / 2), fill=s["rgb"])
    elif kind == 1:
        d.rectangle((cx - h / 2, cy - h, cx + h / 2, cy + h), fill=s["rgb"])
    elif kind == 2:
        d.polygon([(cx, cy - h), (cx + h, cy), (cx, cy + h), (cx - h, cy)], fill=s["rgb"])
    else:
        d.regular_polygon((cx, cy, h), 5, fill=s["rgb"])


def article(word):
    return "an" if word[0] in "aeiou" else "a"


def example_scene():
    """docs/tiny_example.png: one blue square on the left, a pair no training image holds."""
    shape = {"colour": "blue", "shape": "square", "place": "left", "rgb": COLOURS["blue"], "size": 22,
             "dx": 0, "dy": 0}
    return {"shapes": [shape], "background": {"rgb": (240, 240, 236), "noise": False, "noise_seed": 0}}


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
    if shapes[0]["colour"] is None:
        return [("shape", Q_SHAPE, shapes[0]["shape"]), ("count", Q_COUNT, COUNT_WORDS[1])]
    if shapes[0]["shape"] is None:
        return [("colour", Q_COLOUR, shapes[0]["colour"]), ("count", Q_COUNT, COUNT_WORDS[1])]
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


def write_train(out_dir, n_images, seed, identity_every=25, unnamed=0.15):
    """Training conversations (LLaMA-Factory messages, one JSON line each): per scene one to three of its
    questions, each a turn, image in the first. A fraction `unnamed` of the scenes is one shape of a random RGB
    colour, asked only its shape and count, and as many are one unnamed shape (draw_unnamed) of a named colour,
    asked only its colour and count: shape and colour must then be read apart, which is what lets the held-out
    colour-shape pairs be named. Returns the .jsonl path."""
    rng = random.Random(seed)
    os.makedirs(os.path.join(out_dir, "images"), exist_ok=True)
    path = os.path.join(out_dir, "train.jsonl")
    with open(path, "w") as f:
        for i in range(n_images):
            if i % identity_every == identity_every - 1:
                q, a = IDENTITY[(i // identity_every) % len(IDENTITY)]
                msgs = [user_turn(q, False), {"role": "assistant", "content": a}]
                f.write(json.dumps({"messages": msgs}) + "\n")
            u = rng.random()
            if u < unnamed:
                scene = make_scene(rng, 1, [(None, s) for s in SHAPES])
            elif u < 2 * unnamed:
                scene = make_scene(rng, 1, [(c, None) for c in COLOURS])
            else:
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
                must = HELD_OUT[(i // 2) % len(HELD_OUT)]  # every pair alone and in company
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
