"""Per-image predictions and the validation / test metrics derived from them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from fastai.data.core import DataLoaders
from torch import nn

from training.ml import calibrate
from training.ml.config import Item

# Fewer validation images than this: the temperature stays 1 (a fit on a handful
# of answers would be noise).
MIN_CALIBRATION_ITEMS = 20


@dataclass
class Predictions:
    """Logits and targets per item, in the items' order."""

    logits: np.ndarray  # (n_items, n_classes) float32
    targets: np.ndarray  # (n_items,) int64, index into label_names

    def probs(self, temperature: float = 1.0) -> np.ndarray:
        return calibrate.softmax(self.logits, temperature)

    def losses(self, temperature: float = 1.0) -> np.ndarray:
        """Cross-entropy of each item under softmax(logits / temperature)."""
        log_probs = np.log(np.clip(self.probs(temperature), 1e-300, None))
        return -log_probs[np.arange(len(self.targets)), self.targets]


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
    logits, targets = [], []
    with torch.inference_mode():
        for xb, yb in dl:
            logits.append(logits_of(xb.as_subclass(torch.Tensor)).float().cpu())
            targets.append(yb.as_subclass(torch.Tensor).cpu())
    return Predictions(
        logits=torch.cat(logits).numpy(), targets=torch.cat(targets).numpy()
    )


def split_metrics(
    preds: Predictions,
    mask: np.ndarray,
    label_names: Sequence[str],
    temperature: float = 1.0,
) -> dict[str, Any] | None:
    """Error, confusion matrix, per-class scores, loss and calibration error of the
    items in `mask`; None when there are none.

    `loss` and `ece_raw` are those of the raw logits (the loss is what the epoch
    table shows); `loss_calibrated` and `ece` those of softmax(logits /
    temperature), the probabilities the model answers with.
    """
    n = int(mask.sum())
    if n == 0:
        return None
    n_classes = len(label_names)
    probs = preds.probs(temperature)[mask]
    targets = preds.targets[mask]
    predicted = probs.argmax(axis=1)
    confusion = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(confusion, (targets, predicted), 1)
    true_pos = np.diag(confusion)
    support = confusion.sum(axis=1)
    precision = _ratio(true_pos, confusion.sum(axis=0))
    recall = _ratio(true_pos, support)
    f1 = _ratio(2 * precision * recall, precision + recall)
    return {
        "n": n,
        "error_rate": float(1 - true_pos.sum() / n),
        "loss": float(preds.losses()[mask].mean()),
        "loss_calibrated": float(preds.losses(temperature)[mask].mean()),
        "ece": calibrate.expected_calibration_error(probs, targets),
        "ece_raw": calibrate.expected_calibration_error(preds.probs()[mask], targets),
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
    }


def summarize(
    items: Sequence[Item],
    label_names: Sequence[str],
    preds: Predictions,
    temperature: float = 1.0,
) -> dict[str, Any]:
    """Validation and test metrics, and a row for every item.

    The validation figures are what epoch selection and calibration saw; the test
    figures come from groups nothing was chosen on. Each item's confidence and
    loss are those of the calibrated probabilities, the answer it would get.
    """
    sides = np.array([item.split for item in items])
    valid = split_metrics(preds, sides == "valid", label_names, temperature)
    test = split_metrics(preds, sides == "test", label_names, temperature)
    probs = preds.probs(temperature)
    losses = preds.losses(temperature)
    predicted = probs.argmax(axis=1)
    confidence = probs.max(axis=1)
    return {
        "error_rate": valid["error_rate"] if valid else None,
        "valid_loss": valid["loss"] if valid else None,
        "confusion_matrix": valid["confusion_matrix"] if valid else [],
        "per_class": valid["per_class"] if valid else [],
        "test": test,
        "per_image": [
            {
                "path": item.path,
                "label": item.label,
                "split": item.split,
                "predicted": label_names[predicted[i]],
                "confidence": float(confidence[i]),
                "loss": float(losses[i]),
            }
            for i, item in enumerate(items)
        ],
    }


def calibration(
    items: Sequence[Item], preds: Predictions, *, target_accuracy: float
) -> dict[str, Any]:
    """Temperature and "not sure" threshold fitted on the validation items, with the
    calibration error before and after on validation and test."""
    sides = np.array([item.split for item in items])
    valid = sides == "valid"
    temperature = 1.0
    if valid.sum() >= MIN_CALIBRATION_ITEMS:
        temperature = calibrate.fit_temperature(
            preds.logits[valid], preds.targets[valid]
        )
    threshold = calibrate.uncertainty_threshold(
        preds.probs(temperature)[valid],
        preds.targets[valid],
        target_accuracy=target_accuracy,
    )
    out: dict[str, Any] = {
        "temperature": temperature,
        "uncertain_below": threshold,
        "target_accuracy": target_accuracy,
        "fitted_on": int(valid.sum()),
    }
    for side in ("valid", "test"):
        mask = sides == side
        for name, t in (("before", 1.0), ("after", temperature)):
            out[f"{side}_ece_{name}"] = calibrate.expected_calibration_error(
                preds.probs(t)[mask], preds.targets[mask]
            )
    return out


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, 0 where the denominator is 0."""
    numerator = numerator.astype(np.float64)
    out = np.zeros_like(numerator)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out
