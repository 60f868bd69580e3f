"""The test split and calibration in the ML core."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime
import pytest

from tests.ml.conftest import items_of, make_image_folder
from training.ml import calibrate
from training.ml.pipeline import kept_epoch_notes, run_training
from training.ml.preprocess import preprocess


@pytest.fixture(scope="module")
def held_out_run(tmp_path_factory, tiny_config):
    folder = make_image_folder(tmp_path_factory.mktemp("img"), per_label=24, seed=3)
    items = items_of(folder, valid_pct=0.35, test_pct=0.2, seed=1)
    outcome = run_training(tiny_config(), items, tmp_path_factory.mktemp("run"))
    return items, outcome


def test_test_items_are_scored_but_never_trained_or_validated_on(held_out_run):
    items, outcome = held_out_run
    test_paths = {i.path for i in items if i.split == "test"}
    dls = outcome.learner.dls

    assert test_paths
    assert not test_paths & {i.path for i in dls.train.items}
    assert not test_paths & {i.path for i in dls.valid.items}
    test = outcome.result.test
    assert test["n"] == len(test_paths)
    assert np.array(test["confusion_matrix"]).sum() == len(test_paths)
    assert sum(r["support"] for r in test["per_class"]) == len(test_paths)
    assert {r["split"] for r in outcome.result.per_image} == {"train", "valid", "test"}


def test_the_test_error_is_that_of_the_test_rows(held_out_run):
    _, outcome = held_out_run
    rows = [r for r in outcome.result.per_image if r["split"] == "test"]
    wrong = sum(r["predicted"] != r["label"] for r in rows)
    assert outcome.result.test["error_rate"] == pytest.approx(wrong / len(rows))


def test_temperature_and_threshold_are_fitted_on_validation_and_written(held_out_run):
    items, outcome = held_out_run
    calibration = outcome.result.calibration
    meta = json.loads(Path(outcome.result.artifacts["meta"]).read_text())

    assert calibration["fitted_on"] == sum(i.split == "valid" for i in items) >= 20
    assert calibration["temperature"] != 1.0
    assert meta["temperature"] == calibration["temperature"]
    assert meta["uncertain_below"] == calibration["uncertain_below"]
    assert calibration["valid_ece_after"] <= calibration["valid_ece_before"] + 1e-9


def test_rows_carry_softmax_of_onnx_logits_over_the_temperature(held_out_run):
    items, outcome = held_out_run
    meta = json.loads(Path(outcome.result.artifacts["meta"]).read_text())
    session = onnxruntime.InferenceSession(
        outcome.result.artifacts["onnx"], providers=["CPUExecutionProvider"]
    )
    from PIL import Image

    test_items = [i for i in items if i.split == "test"]
    x = np.concatenate(
        [preprocess(Image.open(i.path).convert("RGB"), meta) for i in test_items]
    )
    (logits,) = session.run(None, {"input": x})
    probs = calibrate.softmax(logits, meta["temperature"])
    rows = [r for r in outcome.result.per_image if r["split"] == "test"]

    for row, p in zip(rows, probs, strict=True):
        assert row["confidence"] == pytest.approx(float(p.max()), abs=1e-5)


def test_a_run_that_keeps_the_frozen_epoch_says_so():
    rows = [
        {"epoch": 0, "phase": "frozen"},
        {"epoch": 1, "phase": "unfrozen"},
        {"epoch": 2, "phase": "unfrozen"},
    ]
    [note] = kept_epoch_notes(rows, 0)
    assert "frozen" in note and "did not lower the validation loss" in note
    assert kept_epoch_notes(rows, 2) == []
    assert "lowest validation loss" in kept_epoch_notes(rows, 1)[0]
