"""Image–text pairs for a CLIP-style model: the `animal-shape-mnist` silhouettes drawn in a
named colour, and captions that say what is drawn in varied words.

An image is a square of `SIDE` pixels: one silhouette of its split (train, validation and
test use disjoint silhouettes, `vision.split_indices`), scaled so that its side is
`MIN_SCALE`–`MAX_SCALE` of the image, maybe mirrored, at a random position, in one of
`COLOURS` (jittered a little, so that a name covers a range of shades), on a background of
another named colour or, one time in four, on one of the detector's unnamed textured
backgrounds (`scenes.background`). A pair is a pure function of (seed, split, index,
round), so training draws fresh drawings and captions every epoch and nothing is stored
but the test images Rust must read as Python did.

A caption comes from `TRAIN_TEMPLATES`, which name the animal and some of its colour, the
background's colour and its size. Zero-shot classification is measured with
`HELD_OUT_TEMPLATES` only: phrasings never seen in training, Hugging Face's pipeline
default ("This is a photo of {}.") among them, so the figure says whether the text tower
learned the animals' names rather than the training sentences.
"""

from __future__ import annotations

from dataclasses import dataclass

# The image's side in pixels: what the image tower is trained on (the silhouettes are
# 28×28, so more pixels add no detail).
SIDE = 96
# The silhouette's side as a fraction of the image's.
MIN_SCALE, MAX_SCALE = 0.45, 0.95
# Named colours (RGB 0–255) and how far each channel may be jittered.
COLOURS = {
    "red": (210, 40, 40),
    "green": (40, 160, 60),
    "blue": (40, 80, 215),
    "yellow": (240, 215, 40),
    "orange": (245, 140, 30),
    "purple": (135, 55, 185),
    "pink": (245, 150, 190),
    "brown": (125, 80, 40),
    "black": (20, 20, 20),
    "white": (240, 240, 240),
}
JITTER = 18
# Smallest mean channel distance (0–255) between an animal's colour and a named background's.
MIN_CONTRAST = 90
TEXTURED_BACKGROUND = 0.25

# What the training captions say. A field with its article is `{a_<field>}`; `{size}` is
# "small" or "large" from the drawn scale; `{background}` only where the background is named.
TRAIN_TEMPLATES = (
    "{a_colour} {animal}",
    "{a_colour} {animal} on {a_background} background",
    "the silhouette of {a_animal}",
    "{a_animal} drawn in {colour}",
    "{colour} {animal} shape",
    "{a_size} {colour} {animal}",
    "{a_animal}, {colour} on {background}",
    "a {size} {animal} silhouette",
    "{animal} in {colour} against {a_background} backdrop",
    "picture of {a_animal}",
)
# Phrasings for zero-shot classification, never used in training (checked below).
HELD_OUT_TEMPLATES = (
    "This is a photo of {}.",
    "a photo of a {}.",
    "an image that shows a {}",
    "a rendering of the {}.",
)
# A named background is mentioned by a template only when the background is named.
NEEDS_BACKGROUND = tuple(t for t in TRAIN_TEMPLATES if "background}" in t)


def article(word: str) -> str:
    return f"an {word}" if word[:1] in ("a", "e", "i", "o", "u") else f"a {word}"


@dataclass(frozen=True)
class Drawing:
    """What a drawn image shows: the facts its captions may state."""

    label: int
    colour: str
    background: str | None
    scale: float


def draw(rng, silhouette, label: int):
    """Draws one silhouette (uint8 `[28, 28]`, white on black): the uint8 RGB image
    `[SIDE, SIDE, 3]` and what it shows."""
    import numpy as np
    from PIL import Image

    from . import scenes

    names = list(COLOURS)
    scale = float(rng.uniform(MIN_SCALE, MAX_SCALE))
    side = max(8, round(SIDE * scale))
    left = int(rng.integers(0, SIDE - side + 1))
    top = int(rng.integers(0, SIDE - side + 1))
    if rng.random() < TEXTURED_BACKGROUND:
        background = None
        canvas = scenes.background(rng, SIDE, SIDE) * 255.0
        # A colour that stands out from the texture under the animal (the most distant
        # where none is `MIN_CONTRAST` away).
        under = canvas[top : top + side, left : left + side].reshape(-1, 3).mean(axis=0)
        distance = {n: float(np.abs(np.subtract(COLOURS[n], under)).mean()) for n in names}
        contrasting = [n for n in names if distance[n] >= MIN_CONTRAST] or [max(names, key=distance.__getitem__)]
        colour = contrasting[int(rng.integers(len(contrasting)))]
    else:
        colour = names[int(rng.integers(len(names)))]
        contrasting = [n for n in names if np.abs(np.subtract(COLOURS[n], COLOURS[colour])).mean() >= MIN_CONTRAST]
        background = contrasting[int(rng.integers(len(contrasting)))]
        canvas = np.broadcast_to(jittered(rng, background), (SIDE, SIDE, 3)).copy()
    coverage = np.asarray(Image.fromarray(silhouette).resize((side, side), Image.Resampling.BILINEAR), dtype=np.float64) / 255.0
    if rng.random() < 0.5:
        coverage = coverage[:, ::-1]
    alpha = coverage[..., None]
    region = canvas[top : top + side, left : left + side]
    region[...] = region * (1 - alpha) + jittered(rng, colour) * alpha
    pixels = np.clip(np.rint(canvas), 0, 255).astype(np.uint8)
    return pixels, Drawing(label, colour, background, scale)


def jittered(rng, name: str):
    import numpy as np

    return np.clip(np.asarray(COLOURS[name], dtype=np.float64) + rng.integers(-JITTER, JITTER + 1, size=3), 0, 255)


def caption(rng, drawing: Drawing, labels: list[str]) -> str:
    """One training caption of `drawing`, its template drawn from those that fit it."""
    fitting = [t for t in TRAIN_TEMPLATES if drawing.background is not None or t not in NEEDS_BACKGROUND]
    template = fitting[int(rng.integers(len(fitting)))]
    animal = labels[drawing.label]
    size = "small" if drawing.scale < (MIN_SCALE + MAX_SCALE) / 2 else "large"
    return template.format(
        animal=animal,
        a_animal=article(animal),
        colour=drawing.colour,
        a_colour=article(drawing.colour),
        size=size,
        a_size=article(size),
        background=drawing.background,
        a_background=article(drawing.background or ""),
    )


def pair(seed: int, split: str, index: int, epoch: int, silhouettes, labels, names: list[str]):
    """Pair `index` of `split` in round `epoch` (a fresh drawing and caption each round):
    (uint8 RGB image, caption, drawing). `silhouettes` and `labels` are the split's own."""
    import numpy as np

    split_code = {"train": 0, "validation": 1, "test": 2, "golden": 3}[split]
    rng = np.random.default_rng([seed, split_code, index, epoch])
    label = int(labels[index])
    pixels, drawing = draw(rng, silhouettes[index], label)
    return pixels, caption(rng, drawing, names), drawing


def zero_shot_prompts(template: str, names: list[str]) -> list[str]:
    """The hypotheses of zero-shot classification: the pipeline's `template.format(label)`."""
    return [template.format(name) for name in names]


def check_held_out() -> None:
    """Refuses a held-out template that a training caption could produce."""
    for held in HELD_OUT_TEMPLATES:
        for train in TRAIN_TEMPLATES:
            if held.replace("{}", "{animal}") == train or held.replace("{}", "{a_animal}") == train:
                raise SystemExit(f"held-out template {held!r} is a training template")
