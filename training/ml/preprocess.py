"""The model's input preprocessing with Pillow and numpy only.

It reproduces fastai's validation pipeline (Resize on the PIL image with
bilinear resampling, then /255 and Normalize) so a web server can feed
model.onnx without torch or fastai. The parameters come from meta.json.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image


def resize(img: Image.Image, size: int, method: str) -> Image.Image:
    """fastai's Resize(size, method) as applied to the validation split."""
    if method == "squish":
        return img.resize((size, size), Image.Resampling.BILINEAR)
    if method == "crop":
        # Center crop to the target's aspect ratio, with fastai's own arithmetic.
        w, h = img.size
        m = w / size if w / size < h / size else h / size
        crop = int(m * size)
        left, top = int(0.5 * (w - crop)), int(0.5 * (h - crop))
        img = img.crop((left, top, min(left + crop, w), min(top + crop, h)))
        return img.resize((size, size), Image.Resampling.BILINEAR)
    raise ValueError(f"Unknown resize method {method!r}")


def preprocess(img: Image.Image, meta: dict[str, Any]) -> np.ndarray:
    """An RGB image -> float32 array (1, 3, H, W) ready for the model."""
    if img.mode != "RGB":
        img = img.convert("RGB")
    img = resize(img, int(meta["image_size"]), meta["resize_method"])
    x = np.asarray(img, dtype=np.float32).transpose(2, 0, 1) / np.float32(255)
    mean = np.asarray(meta["mean"], dtype=np.float32).reshape(3, 1, 1)
    std = np.asarray(meta["std"], dtype=np.float32).reshape(3, 1, 1)
    return ((x - mean) / std)[None].astype(np.float32, copy=False)
