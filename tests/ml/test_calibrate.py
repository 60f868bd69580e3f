from __future__ import annotations

import numpy as np
import pytest

from training.ml import calibrate


def overconfident(n: int = 2000, seed: int = 0):
    """Logits of a 3-class model that is right 70% of the time but sure 99%."""
    rng = np.random.default_rng(seed)
    targets = rng.integers(0, 3, n)
    predicted = np.where(rng.random(n) < 0.7, targets, (targets + 1) % 3)
    logits = rng.normal(0, 0.3, (n, 3))
    logits[np.arange(n), predicted] += 6.0
    return logits, targets


def test_temperature_scaling_fixes_an_overconfident_model():
    logits, targets = overconfident()
    before = calibrate.expected_calibration_error(calibrate.softmax(logits), targets)

    t = calibrate.fit_temperature(logits, targets)
    after = calibrate.expected_calibration_error(calibrate.softmax(logits, t), targets)

    assert t > 2  # it softens
    assert before > 0.25 and after < 0.03
    assert calibrate.nll(logits, targets, t) < calibrate.nll(logits, targets)


def test_temperature_does_not_change_the_answers():
    logits, targets = overconfident(200)
    t = calibrate.fit_temperature(logits, targets)
    assert (calibrate.softmax(logits, t).argmax(1) == logits.argmax(1)).all()


def test_softmax_with_temperature_is_softmax_of_scaled_logits():
    logits = np.array([[2.0, -1.0, 0.5], [10.0, 10.0, -3.0]])
    for t in (0.5, 1.0, 3.0):
        z = np.exp(logits / t)
        expected = z / z.sum(axis=1, keepdims=True)
        assert np.allclose(calibrate.softmax(logits, t), expected, atol=1e-12)


def test_a_perfectly_calibrated_model_has_no_calibration_error():
    # Two bins: confidence 0.6 right 60% of the time, 0.9 right 90%.
    probs = np.array([[0.6, 0.4]] * 10 + [[0.9, 0.1]] * 10)
    targets = np.array([0] * 6 + [1] * 4 + [0] * 9 + [1])
    assert calibrate.expected_calibration_error(probs, targets) == pytest.approx(0.0)


def test_no_answers_have_no_calibration_error_or_temperature():
    assert calibrate.expected_calibration_error(np.zeros((0, 2)), np.zeros(0)) is None
    assert calibrate.fit_temperature(np.zeros((0, 2)), np.zeros(0)) == 1.0


def test_the_threshold_keeps_the_answers_above_it_as_right_as_asked():
    logits, targets = overconfident()
    probs = calibrate.softmax(logits, calibrate.fit_temperature(logits, targets))
    threshold = calibrate.uncertainty_threshold(probs, targets, target_accuracy=0.8)

    sure = probs.max(1) >= threshold
    accuracy = (probs.argmax(1) == targets)[sure].mean()
    assert 0.8 <= accuracy and 0 < sure.mean() < 1


def test_a_model_never_that_reliable_marks_almost_everything():
    probs = np.array([[0.6, 0.4], [0.7, 0.3], [0.55, 0.45]])
    targets = np.array([1, 1, 1])  # always wrong
    threshold = calibrate.uncertainty_threshold(probs, targets, target_accuracy=0.9)
    assert threshold == pytest.approx(0.7)
