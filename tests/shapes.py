"""Generated training images shared by the ML and classifier tests: plain code,
no fixtures, no Django."""

from __future__ import annotations

import random

from PIL import Image, ImageDraw

COLOURS = {"red": (220, 40, 40), "green": (40, 190, 60), "blue": (40, 60, 220)}
SHAPES = {"red": "ellipse", "green": "rectangle", "blue": "polygon"}


def draw_image(
    label: str, rnd: random.Random, *, max_size: tuple[int, int] = (90, 80)
) -> Image.Image:
    """A coloured shape on a light background, of a varying, non-square size."""
    w, h = rnd.randint(48, max_size[0]), rnd.randint(40, max_size[1])
    img = Image.new("RGB", (w, h), tuple(rnd.randint(200, 255) for _ in range(3)))
    draw = ImageDraw.Draw(img)
    x0, y0 = rnd.randint(0, w // 3), rnd.randint(0, h // 3)
    x1, y1 = x0 + rnd.randint(w // 3, w // 2), y0 + rnd.randint(h // 3, h // 2)
    if SHAPES[label] == "polygon":
        draw.polygon([(x0, y1), ((x0 + x1) // 2, y0), (x1, y1)], fill=COLOURS[label])
    else:
        getattr(draw, SHAPES[label])((x0, y0, x1, y1), fill=COLOURS[label])
    return img
