"""Items from a folder of images labelled by their parent folder's name."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from training.ml.config import Item
from training.ml.split import split_items

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif"}


def image_phash(path: Path) -> str | None:
    """The image's perceptual hash (hex), or None without imagehash."""
    try:
        import imagehash
    except ImportError:
        return None
    with Image.open(path) as img:
        return str(imagehash.phash(img.convert("RGB")))


def folder_items(
    root: str | Path, *, valid_pct: float, seed: int, test_pct: float = 0.0
) -> list[Item]:
    """Every image below root, labelled by its immediate parent folder.

    Images directly in root have no label folder and are skipped. The split
    comes from split_items on the paths relative to root, so it is the same on
    any machine for the same files and seed.
    """
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"{root} is not a folder")
    paths = sorted(
        p
        for p in root.rglob("*")
        if p.suffix.lower() in IMAGE_SUFFIXES and p.parent != root and p.is_file()
    )
    labels = [p.parent.name for p in paths]
    keys = [p.relative_to(root).as_posix() for p in paths]
    phashes = [image_phash(p) for p in paths]
    sides = split_items(
        keys, phashes, labels, valid_pct=valid_pct, test_pct=test_pct, seed=seed
    )
    return [
        Item(str(p), label, side)
        for p, label, side in zip(paths, labels, sides, strict=True)
    ]
