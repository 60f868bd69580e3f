from __future__ import annotations

import random
from pathlib import Path

import pytest

from tests.shapes import COLOURS, draw_image
from training.ml import Item, TrainConfig, split_items


def make_image_folder(root: Path, per_label: int = 8, seed: int = 0) -> Path:
    rnd = random.Random(seed)
    for label in COLOURS:
        (root / label).mkdir(parents=True, exist_ok=True)
        for i in range(per_label):
            draw_image(label, rnd).save(root / label / f"{label}-{i}.png")
    return root


def items_of(
    root: Path, *, valid_pct: float = 0.25, seed: int = 0, test_pct: float = 0.0
) -> list[Item]:
    paths = sorted(root.glob("*/*.png"))
    labels = [p.parent.name for p in paths]
    keys = [p.relative_to(root).as_posix() for p in paths]
    sides = split_items(
        keys,
        [None] * len(paths),
        labels,
        valid_pct=valid_pct,
        test_pct=test_pct,
        seed=seed,
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
