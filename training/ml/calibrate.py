"""Calibration: temperature scaling, expected calibration error, a "not sure" line.

Pure numpy and scipy (no torch), so the predictor and the benchmarks use the same
functions as training.
"""

from __future__ import annotations

import math

import numpy as np

# Fitted temperatures stay within these bounds (a degenerate validation set, say
# all answers right and confident, would otherwise push T towards 0).
MIN_TEMPERATURE = 0.05
MAX_TEMPERATURE = 20.0
ECE_BINS = 15


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of logits / temperature, in float64."""
    z = np.asarray(logits, dtype=np.float64) / float(temperature)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def nll(logits: np.ndarray, targets: np.ndarray, temperature: float = 1.0) -> float:
    """Mean cross-entropy of softmax(logits / temperature) against targets."""
    z = np.asarray(logits, dtype=np.float64) / float(temperature)
    z = z - z.max(axis=1, keepdims=True)
    log_probs = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-log_probs[np.arange(len(targets)), targets].mean())


def fit_temperature(logits: np.ndarray, targets: np.ndarray) -> float:
    """The temperature T minimising the NLL of softmax(logits / T) (Guo et al. 2017).

    1.0 when there is nothing to fit on.
    """
    from scipy.optimize import minimize_scalar

    targets = np.asarray(targets, dtype=np.int64)
    if len(targets) == 0:
        return 1.0
    result = minimize_scalar(
        lambda log_t: nll(logits, targets, math.exp(log_t)),
        bounds=(math.log(MIN_TEMPERATURE), math.log(MAX_TEMPERATURE)),
        method="bounded",
        options={"xatol": 1e-4},
    )
    return float(math.exp(result.x))


def expected_calibration_error(
    probs: np.ndarray, targets: np.ndarray, n_bins: int = ECE_BINS
) -> float | None:
    """ECE over equal-width confidence bins: sum of |accuracy - confidence| weighted
    by the share of answers in each bin. None for no answers."""
    probs = np.asarray(probs, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.int64)
    if len(targets) == 0:
        return None
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == targets
    # Bin i holds confidences in (i/n, (i+1)/n]; a confidence of exactly 0 joins bin 0.
    bins = np.clip(np.ceil(confidence * n_bins).astype(int) - 1, 0, n_bins - 1)
    total = 0.0
    for b in range(n_bins):
        mask = bins == b
        if mask.any():
            total += mask.mean() * abs(correct[mask].mean() - confidence[mask].mean())
    return float(total)


def uncertainty_threshold(
    probs: np.ndarray, targets: np.ndarray, *, target_accuracy: float
) -> float:
    """The lowest confidence t at which answers with confidence >= t are right at
    least `target_accuracy` of the time; answers below t are "not sure".

    With no such t (the model is never that reliable) it is the highest confidence
    seen, so nearly every answer is marked; with no answers, 1 / n_classes.
    """
    probs = np.asarray(probs, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.int64)
    n_classes = probs.shape[1] if probs.ndim == 2 else 1
    if len(targets) == 0:
        return 1.0 / n_classes
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == targets
    order = np.argsort(-confidence, kind="stable")
    # Accuracy of the answers at or above each confidence, most confident first.
    running = np.cumsum(correct[order]) / np.arange(1, len(order) + 1)
    ok = np.flatnonzero(running >= target_accuracy)
    if len(ok) == 0:
        return float(confidence.max())
    return float(max(confidence[order][ok[-1]], 1.0 / n_classes))
