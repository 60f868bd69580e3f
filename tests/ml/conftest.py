from __future__ import annotations

import random
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from training.ml import Item, TrainConfig, split_items

COLOURS = {"red": (220, 40, 40), "green": (40, 190, 60), "blue": (40, 60, 220)}
SHAPES = {"red": "ellipse", "green": "rectangle", "blue": "polygon"}


def draw_image(label: str, rnd: random.Random) -> Image.Image:
    """A coloured shape on a light background, of a varying, non-square size."""
    w, h = rnd.randint(48, 90), rnd.randint(40, 80)
    img = Image.new("RGB", (w, h), tuple(rnd.randint(200, 255) for _ in range(3)))
    draw = ImageDraw.Draw(img)
    x0, y0 = rnd.randint(0, w // 3), rnd.randint(0, h // 3)
    x1, y1 = x0 + rnd.randint(w // 3, w // 2), y0 + rnd.randint(h // 3, h // 2)
    if SHAPES[label] == "polygon":
        draw.polygon([(x0, y1), ((x0 + x1) // 2, y0), (x1, y1)], fill=COLOURS[label])
    else:
        getattr(draw, SHAPES[label])((x0, y0, x1, y1), fill=COLOURS[label])
    return img


def make_image_folder(root: Path, per_label: int = 8, seed: int = 0) -> Path:
    rnd = random.Random(seed)
    for label in COLOURS:
        (root / label).mkdir(parents=True, exist_ok=True)
        for i in range(per_label):
            draw_image(label, rnd).save(root / label / f"{label}-{i}.png")
    return root


def items_of(root: Path, *, valid_pct: float = 0.25, seed: int = 0) -> list[Item]:
    paths = sorted(root.glob("*/*.png"))
    labels = [p.parent.name for p in paths]
    keys = [p.relative_to(root).as_posix() for p in paths]
    sides = split_items(
        keys, [None] * len(paths), labels, valid_pct=valid_pct, seed=seed
    )
    return [
        Item(str(p), lab, s) for p, lab, s in zip(paths, labels, sides, strict=True)
    ]


def tiny_config(**overrides: object) -> TrainConfig:
    """tiny_cnn at 32 px: seconds per run on a laptop CPU."""
    values: dict[str, object] = {
        "backbone": "tiny_cnn",
        "image_size": 32,
        "epochs": 2,
        "freeze_epochs": 1,
        "batch_size": 8,
        "base_lr": 1e-2,
        "device": "cpu",
        "seed": 7,
    }
    values.update(overrides)
    return TrainConfig(**values)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def _media_root():
    """Overrides tests/conftest.py's: the ML core never reads Django settings,
    so these tests also run without pytest-django (-p no:django)."""


@pytest.fixture(name="draw_image", scope="session")
def draw_image_fixture():
    return draw_image


@pytest.fixture(name="tiny_config", scope="session")
def tiny_config_fixture():
    return tiny_config


@pytest.fixture(scope="session")
def image_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_image_folder(tmp_path_factory.mktemp("images"))


@pytest.fixture(scope="session")
def items(image_folder: Path) -> list[Item]:
    return items_of(image_folder)


@pytest.fixture(scope="session")
def trained(items: list[Item], tmp_path_factory: pytest.TempPathFactory):
    """One tiny_cnn run shared by the tests that only read its outcome."""
    from training.ml.pipeline import run_training

    return run_training(tiny_config(), items, tmp_path_factory.mktemp("run"))
