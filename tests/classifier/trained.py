"""Tiny models trained once on generated images, cached between test sessions.

The cache (in pytest's cache folder) is keyed by the training code, the config
and the torch version, so a change to any of them trains again.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from PIL import Image

from tests.shapes import COLOURS, draw_image
from training.ml import Item, TrainConfig, TrainResult, split_items

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "datasets" / "demo" / "images"
# Bump when the generated images change (the cache key covers the rest).
DATA_VERSION = 1

# name -> (images, labels, TrainConfig overrides). "two" stays near chance, so its
# probabilities are informative numbers; "three" learns its colours well.
RECIPES: dict[str, tuple[str, tuple[str, ...], dict[str, Any]]] = {
    "two": ("shapes", ("blue", "red"), {"image_size": 32}),
    "three": (
        "blocks",
        ("blue", "green", "red"),
        {
            "image_size": 40,
            "resize_method": "crop",
            "epochs": 6,
            "base_lr": 3e-2,
            "batch_size": 16,
        },
    ),
    "demo": ("demo", (), {"image_size": 64, "epochs": 4, "batch_size": 16}),
}


@dataclass
class TrainedModel:
    name: str
    artifacts: Path
    result: TrainResult
    items: list[Item]

    @property
    def valid_items(self) -> list[Item]:
        return [item for item in self.items if item.split == "valid"]


def draw_blocks(label: str, seed: int, rnd: random.Random) -> Image.Image:
    """Noisy blocks dominated by one colour: easy to learn."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 90, size=(6, 6, 3)) + np.array(COLOURS[label]) * 0.6
    img = Image.fromarray(blocks.clip(0, 255).astype(np.uint8), "RGB")
    size = (rnd.randint(48, 120), rnd.randint(40, 100))
    return img.resize(size, Image.Resampling.NEAREST)


def _generated_items(folder: Path, kind: str, labels: tuple[str, ...]) -> list[Item]:
    rnd = random.Random(0)
    per_label = 10 if kind == "shapes" else 40
    paths, names = [], []
    for n, label in enumerate(labels):
        (folder / label).mkdir(parents=True, exist_ok=True)
        for i in range(per_label):
            suffix = ".png" if i % 2 else ".jpg"
            path = folder / label / f"{label}-{i}{suffix}"
            if kind == "shapes":
                img = draw_image(label, rnd, max_size=(120, 100))
            else:
                img = draw_blocks(label, n * 1000 + i, rnd)
            img.save(path, quality=92)
            paths.append(path)
            names.append(label)
    return _split(folder, paths, names)


def _demo_items() -> list[Item]:
    paths = sorted(p for p in DEMO.glob("*/*") if p.is_file())
    return _split(DEMO, paths, [p.parent.name for p in paths])


def _split(root: Path, paths: list[Path], labels: list[str]) -> list[Item]:
    keys = [p.relative_to(root).as_posix() for p in paths]
    sides = split_items(keys, [None] * len(paths), labels, valid_pct=0.3, seed=0)
    return [
        Item(str(p), lab, s) for p, lab, s in zip(paths, labels, sides, strict=True)
    ]


def _config(overrides: dict[str, Any]) -> TrainConfig:
    values: dict[str, Any] = {
        "backbone": "tiny_cnn",
        "epochs": 3,
        "freeze_epochs": 0,
        "batch_size": 8,
        "base_lr": 1e-2,
        "device": "cpu",
        "seed": 7,
        **overrides,
    }
    return TrainConfig(**values)


def _code_key(name: str, config: TrainConfig, labels: Any) -> str:
    import torch

    digest = hashlib.sha256()
    digest.update(
        json.dumps(
            [DATA_VERSION, name, config.to_dict(), labels, torch.__version__]
        ).encode()
    )
    for path in sorted((ROOT / "training" / "ml").glob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def train_cached(cache_dir: Path, name: str) -> TrainedModel:
    from training.ml import train

    kind, labels, overrides = RECIPES[name]
    config = _config(overrides)
    folder = cache_dir / f"{name}-{_code_key(name, config, [kind, labels])}"
    done = folder / "result.json"
    if not done.exists():
        for stale in cache_dir.glob(f"{name}-*"):
            shutil.rmtree(stale, ignore_errors=True)
        folder.mkdir(parents=True)
        if kind == "demo":
            items = _demo_items()
        else:
            items = _generated_items(folder / "images", kind, labels)
        result = train(config, items, folder / "artifacts")
        assert result.status == "succeeded", result
        (folder / "items.json").write_text(json.dumps([list(i) for i in items]))
        done.write_text(json.dumps(result.to_dict()))
    items = [Item(*row) for row in json.loads((folder / "items.json").read_text())]
    result = TrainResult(**json.loads(done.read_text()))
    return TrainedModel(
        name=name, artifacts=folder / "artifacts", result=result, items=items
    )


_counter = itertools.count(1)


def install(trained: TrainedModel, *, promote: bool = False, with_run: bool = True):
    """Copy a trained model under MEDIA_ROOT with a run and its validation images,
    register it like the training runner does, and optionally promote it."""
    from classifier.registry import model_version_promote, model_version_register
    from training.models import RunImage, TrainingRun

    media = Path(settings.MEDIA_ROOT)
    n = next(_counter)
    target = media / "models" / f"{trained.name}-{n}"
    shutil.copytree(trained.artifacts, target)
    run = None
    if with_run:
        run = TrainingRun.objects.create(
            status="succeeded", slot=None, label_names=trained.result.label_names
        )
        for i, item in enumerate(trained.valid_items):
            relative = f"images/run{n}/{i}{Path(item.path).suffix}"
            (media / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(item.path, media / relative)
            RunImage.objects.create(
                run=run,
                label_name=item.label,
                file=relative,
                split=RunImage.Split.VALID,
            )
    version = model_version_register(
        run=run, artifacts_dir=target, result=trained.result
    )
    if promote:
        version = model_version_promote(version=version)
    return version


def after_training(version):
    """The promotion gate as the runner calls it: held-out images from the run."""
    from classifier.registry import model_version_after_training
    from training.runner import training_run_held_out

    return model_version_after_training(
        version,
        held_out_for=lambda current: training_run_held_out(version.run, current),
    )
