from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from training.ml import TrainConfig

ROOT = Path(__file__).resolve().parents[2]


def test_training_ml_imports_without_django_or_torch():
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    code = (
        "import sys\n"
        "import training.ml as ml\n"
        "from training.ml import (BACKBONES, BackboneUnavailable, Item,"
        " TrainCallbacks, TrainCancelled, TrainConfig, TrainResult, load_model,"
        " split_items, train)\n"
        "roots = {name.split('.')[0] for name in sys.modules}\n"
        "loaded = {'django', 'torch', 'fastai'} & roots\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True)


def test_config_round_trips_through_a_dict():
    config = TrainConfig(backbone="resnet18", epochs=2, base_lr=1e-3, seed=1)
    assert TrainConfig.from_dict(config.to_dict()) == config
    assert TrainConfig.from_dict({}) == TrainConfig()


def test_config_from_dict_names_unknown_keys():
    with pytest.raises(ValueError, match="epoch, lr"):
        TrainConfig.from_dict({"epochs": 2, "lr": 0.1, "epoch": 3})


@pytest.mark.parametrize(
    "bad",
    [
        {"epochs": -1},
        {"epochs": 0, "freeze_epochs": 0},
        {"valid_pct": 0},
        {"device": "tpu"},
        {"resize_method": "pad"},
        {"image_size": 8},
        {"base_lr": 0},
        {"epochs": "4"},
        {"seed": True},
    ],
)
def test_config_refuses_bad_values(bad):
    with pytest.raises(ValueError):
        TrainConfig(**bad)
