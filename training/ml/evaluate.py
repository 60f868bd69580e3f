"""Per-image predictions and the validation metrics derived from them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from fastai.data.core import DataLoaders
from torch import nn

from training.ml.config import Item


@dataclass
class Predictions:
    """Softmax probabilities and cross-entropy per item, in the items' order."""

    probs: np.ndarray  # (n_items, n_classes) float32
    losses: np.ndarray  # (n_items,) float32
    targets: np.ndarray  # (n_items,) int64, index into label_names


Logits = Callable[[torch.Tensor], torch.Tensor]


def torch_logits(model: nn.Module) -> Logits:
    model.eval()

    def logits(x: torch.Tensor) -> torch.Tensor:
        return model(x).float()

    return logits


def predict_items(
    logits_of: Logits, dls: DataLoaders, items: Sequence[Item]
) -> Predictions:
    """Run every item through the validation transforms (no augmentation)."""
    dl = dls.test_dl(list(items), with_labels=True)
    probs, losses, targets = [], [], []
    with torch.inference_mode():
        for xb, yb in dl:
            y = yb.as_subclass(torch.Tensor)
            logits = logits_of(xb.as_subclass(torch.Tensor)).to(y.device)
            probs.append(F.softmax(logits, dim=1).cpu())
            losses.append(F.cross_entropy(logits, y, reduction="none").cpu())
            targets.append(y.cpu())
    return Predictions(
        probs=torch.cat(probs).numpy(),
        losses=torch.cat(losses).numpy(),
        targets=torch.cat(targets).numpy(),
    )


def summarize(
    items: Sequence[Item], label_names: Sequence[str], preds: Predictions
) -> dict[str, Any]:
    """Confusion matrix, per-class scores and loss on valid; rows for every item."""
    n_classes = len(label_names)
    predicted = preds.probs.argmax(axis=1)
    confidence = preds.probs.max(axis=1)
    valid = np.array([item.split == "valid" for item in items], dtype=bool)

    confusion = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(confusion, (preds.targets[valid], predicted[valid]), 1)
    true_pos = np.diag(confusion)
    support = confusion.sum(axis=1)
    predicted_count = confusion.sum(axis=0)
    precision = _ratio(true_pos, predicted_count)
    recall = _ratio(true_pos, support)
    f1 = _ratio(2 * precision * recall, precision + recall)
    n_valid = int(valid.sum())

    return {
        "error_rate": float(1 - true_pos.sum() / n_valid) if n_valid else None,
        "valid_loss": float(preds.losses[valid].mean()) if n_valid else None,
        "confusion_matrix": confusion.tolist(),
        "per_class": [
            {
                "label": label,
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, label in enumerate(label_names)
        ],
        "per_image": [
            {
                "path": item.path,
                "label": item.label,
                "split": item.split,
                "predicted": label_names[predicted[i]],
                "confidence": float(confidence[i]),
                "loss": float(preds.losses[i]),
            }
            for i, item in enumerate(items)
        ],
    }


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, 0 where the denominator is 0."""
    numerator = numerator.astype(np.float64)
    out = np.zeros_like(numerator)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out
