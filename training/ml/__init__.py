"""Snapclass's pure ML core: fine-tune an image classifier, evaluate, export.

Never imports Django. Importing this package is cheap: torch and fastai load
only when train() or load_model() is first called.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from training.ml.backbones import BACKBONES, Backbone, BackboneUnavailable
from training.ml.config import (
    Item,
    TrainCallbacks,
    TrainCancelled,
    TrainConfig,
    TrainResult,
)
from training.ml.split import split_groups, split_items

if TYPE_CHECKING:
    from collections.abc import Sequence

    from torch import nn

__all__ = [
    "BACKBONES",
    "Backbone",
    "BackboneUnavailable",
    "Item",
    "TrainCallbacks",
    "TrainCancelled",
    "TrainConfig",
    "TrainResult",
    "load_model",
    "split_groups",
    "split_items",
    "train",
]


def train(
    config: TrainConfig,
    items: Sequence[Item],
    out_dir: str | Path,
    callbacks: TrainCallbacks | None = None,
) -> TrainResult:
    """Fine-tune config.backbone on items; write weights, meta.json and ONNX.

    Returns status "cancelled" (with the epochs measured so far and no artifacts)
    when callbacks.should_cancel() turns True or a callback raises TrainCancelled.
    """
    from training.ml.pipeline import train as _train

    return _train(config, items, out_dir, callbacks)


def load_model(meta_path: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a trained model (eval mode) from meta.json + weights.safetensors."""
    from training.ml.export import load_model as _load_model

    return _load_model(meta_path)
