from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image as PILImage

from datasets.services import image_ingest, label_get_or_create

COLOURS = {"red": (220, 40, 40), "green": (40, 200, 60), "blue": (40, 60, 220)}


def coloured_image(colour, seed: int) -> bytes:
    """A noisy image dominated by one colour: easy to learn, distinct phashes."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 90, size=(6, 6, 3)) + np.array(colour) * 0.6
    img = PILImage.fromarray(blocks.clip(0, 255).astype(np.uint8), "RGB")
    img = img.resize((96, 96), PILImage.NEAREST)
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def small_dataset(db):
    """Three labels of eight generated images each, ingested like real ones."""
    images = []
    for n, (name, colour) in enumerate(COLOURS.items()):
        label = label_get_or_create(name=name)
        for i in range(8):
            images.append(
                image_ingest(
                    data=coloured_image(colour, seed=n * 100 + i),
                    label=label,
                    source_kind="upload",
                )
            )
    return images


TINY = {"backbone": "tiny_cnn", "epochs": 1, "image_size": 32, "batch_size": 8}
