"""Synthetic detection scenes: the `animal-shape-mnist` silhouettes placed on varied
backgrounds, with exact boxes.

A scene is an RGB image of one of a few sizes (square, landscape, portrait, so that the
detector's letterboxing matters) holding 1 to 5 animals. Each animal is a silhouette of its
split (train, validation and test scenes use disjoint silhouettes), scaled so that its
longer side is 36–112 pixels, maybe mirrored, in a colour that stands out from the
background under it, at a random position; animals may overlap (a later one is drawn over an
earlier one), but no two boxes overlap by more than `MAX_IOU`. Backgrounds are solid,
two-colour gradients, smooth noise or stripes.

A box is exact by construction: the tight box, in pixel edges (`xmax` is one past the last
column), of the pixels where the pasted silhouette's coverage is at least one half. Scenes
are a pure function of (seed, split, index), so a scene is regenerated rather than stored:
training draws fresh scenes every epoch, and the test scenes are written once as PNG files
for Rust to read what Python read.
"""

from __future__ import annotations

from dataclasses import dataclass

# Scene sizes (width, height): square, landscape and portrait.
SIZES = ((256, 256), (320, 240), (240, 320), (288, 224))
MIN_ANIMALS, MAX_ANIMALS = 1, 5
# The longer side of a placed silhouette's box, in pixels.
MIN_SIDE, MAX_SIDE = 36, 112
# No two boxes of a scene overlap more than this.
MAX_IOU = 0.4
# Coverage at which a pixel belongs to the animal's box.
COVERAGE = 0.5
# Smallest colour distance (0–1, mean over channels) between an animal and the
# background under it.
MIN_CONTRAST = 0.3


@dataclass(frozen=True)
class Box:
    label: int
    xmin: int
    ymin: int
    xmax: int
    ymax: int

    def area(self) -> int:
        return (self.xmax - self.xmin) * (self.ymax - self.ymin)

    def as_json(self, labels: list[str]) -> dict:
        return {"label": labels[self.label], "box": {"xmin": self.xmin, "ymin": self.ymin, "xmax": self.xmax, "ymax": self.ymax}}


def iou(a: Box, b: Box) -> float:
    width = min(a.xmax, b.xmax) - max(a.xmin, b.xmin)
    height = min(a.ymax, b.ymax) - max(a.ymin, b.ymin)
    if width <= 0 or height <= 0:
        return 0.0
    overlap = width * height
    return overlap / (a.area() + b.area() - overlap)


def background(rng, width: int, height: int):
    """A float RGB background in [0, 1], `[height, width, 3]`."""
    import numpy as np

    kind = rng.integers(4)
    if kind == 0:
        return np.broadcast_to(rng.random(3), (height, width, 3)).copy()
    if kind == 1:
        start, end = rng.random(3), rng.random(3)
        angle = rng.random() * 2 * np.pi
        ys, xs = np.mgrid[0:height, 0:width]
        t = xs * np.cos(angle) + ys * np.sin(angle)
        t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
        return start + t[..., None] * (end - start)
    if kind == 2:
        from PIL import Image

        cells = rng.integers(3, 9)
        grid = (rng.random((cells, cells, 3)) * 255).astype(np.uint8)
        smooth = Image.fromarray(grid).resize((width, height), Image.Resampling.BICUBIC)
        return np.asarray(smooth, dtype=np.float64) / 255.0
    first, second = rng.random(3), rng.random(3)
    period = rng.integers(8, 40)
    ys, xs = np.mgrid[0:height, 0:width]
    along = xs if rng.random() < 0.5 else ys
    band = ((along // period) % 2)[..., None]
    return first + band * (second - first)


def place(rng, silhouette, canvas, boxes: list[Box], label: int) -> Box | None:
    """Pastes one silhouette (uint8 [28, 28], white on black) onto `canvas` in place; its
    box, or None where no position keeps `MAX_IOU` after a few tries."""
    import numpy as np
    from PIL import Image

    height, width, _ = canvas.shape
    side = int(rng.integers(MIN_SIDE, MAX_SIDE + 1))
    stretch = rng.uniform(0.8, 1.25)
    size = (max(8, round(side * min(1.0, stretch))), max(8, round(side * min(1.0, 1 / stretch))))
    coverage_image = Image.fromarray(silhouette).resize(size, Image.Resampling.BILINEAR)
    coverage = np.asarray(coverage_image, dtype=np.float64) / 255.0
    if rng.random() < 0.5:
        coverage = coverage[:, ::-1]
    rows, columns = np.nonzero(coverage >= COVERAGE)
    if len(rows) == 0:
        return None
    for _ in range(20):
        left = int(rng.integers(0, width - size[0] + 1))
        top = int(rng.integers(0, height - size[1] + 1))
        box = Box(label, left + int(columns.min()), top + int(rows.min()), left + int(columns.max()) + 1, top + int(rows.max()) + 1)
        if all(iou(box, other) <= MAX_IOU for other in boxes):
            break
    else:
        return None
    region = canvas[top : top + size[1], left : left + size[0]]
    under = region.reshape(-1, 3).mean(axis=0)
    for _ in range(20):
        colour = rng.random(3)
        if np.abs(colour - under).mean() >= MIN_CONTRAST:
            break
    else:
        colour = np.where(under > 0.5, 0.0, 1.0)
    alpha = coverage[..., None]
    region[...] = region * (1 - alpha) + colour * alpha
    return box


def scene(seed: int, split: str, index: int, silhouettes, labels):
    """Scene `index` of `split`: (uint8 RGB array `[height, width, 3]`, boxes). `silhouettes`
    and `labels` are the split's own (its indices into the package's arrays already taken)."""
    import numpy as np

    split_code = {"train": 0, "validation": 1, "test": 2, "golden": 3}[split]
    rng = np.random.default_rng([seed, split_code, index])
    width, height = SIZES[rng.integers(len(SIZES))]
    canvas = background(rng, width, height)
    boxes: list[Box] = []
    for _ in range(rng.integers(MIN_ANIMALS, MAX_ANIMALS + 1)):
        chosen = int(rng.integers(len(silhouettes)))
        box = place(rng, silhouettes[chosen], canvas, boxes, int(labels[chosen]))
        if box is not None:
            boxes.append(box)
    pixels = np.clip(np.rint(canvas * 255), 0, 255).astype(np.uint8)
    return pixels, boxes
