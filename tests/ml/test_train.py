from __future__ import annotations

import json
import math
import multiprocessing
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import torch
from PIL import Image

from training.ml import Item, TrainCallbacks, TrainCancelled, load_model, train
from training.ml.export import FORMAT
from training.ml.preprocess import preprocess


def valid_items(items: list[Item]) -> list[Item]:
    return [item for item in items if item.split == "valid"]


def preprocessed(items: list[Item], meta: dict) -> np.ndarray:
    return np.concatenate(
        [preprocess(Image.open(item.path).convert("RGB"), meta) for item in items]
    )


def learner_valid_probs(trained) -> np.ndarray:
    probs, _ = trained.learner.get_preds(dl=trained.learner.dls.valid)
    return probs.numpy()


def softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_it_reports_one_row_per_epoch_across_both_phases(trained, tiny_config):
    result = trained.result
    config = tiny_config()

    assert result.status == "succeeded"
    assert result.device == "cpu"
    assert len(result.epochs) == config.freeze_epochs + config.epochs
    assert [r["epoch"] for r in result.epochs] == [0, 1, 2]
    assert [r["phase"] for r in result.epochs] == ["frozen", "unfrozen", "unfrozen"]
    for row in result.epochs:
        assert set(row) == {
            "epoch",
            "phase",
            "train_loss",
            "valid_loss",
            "error_rate",
            "accuracy",
            "seconds",
        }
        assert math.isclose(row["error_rate"] + row["accuracy"], 1, abs_tol=1e-6)
    assert result.seconds > 0


def test_it_keeps_the_epoch_with_the_lowest_validation_loss(trained):
    result = trained.result
    losses = [r["valid_loss"] for r in result.epochs]

    assert result.best_epoch == int(np.argmin(losses))
    # The kept weights reproduce that epoch's validation loss and error rate.
    best = result.epochs[result.best_epoch]
    assert result.valid_loss == pytest.approx(best["valid_loss"], abs=1e-5)
    assert result.error_rate == pytest.approx(best["error_rate"], abs=1e-6)
    assert result.best_error_rate == min(r["error_rate"] for r in result.epochs)


def test_confusion_matrix_counts_every_valid_item(trained, items):
    result = trained.result
    matrix = np.array(result.confusion_matrix)

    assert result.label_names == ["blue", "green", "red"]
    assert matrix.shape == (3, 3)
    assert matrix.sum() == len(valid_items(items))
    assert list(matrix.sum(axis=1)) == [r["support"] for r in result.per_class]
    assert 1 - np.trace(matrix) / matrix.sum() == pytest.approx(result.error_rate)


def test_per_class_scores_follow_from_the_confusion_matrix(trained):
    matrix = np.array(trained.result.confusion_matrix)
    for i, row in enumerate(trained.result.per_class):
        tp = matrix[i, i]
        precision = tp / matrix[:, i].sum() if matrix[:, i].sum() else 0.0
        recall = tp / matrix[i].sum()
        assert row["label"] == trained.result.label_names[i]
        assert row["precision"] == pytest.approx(precision)
        assert row["recall"] == pytest.approx(recall)
        f1 = 2 * precision * recall / (precision + recall) if tp else 0.0
        assert row["f1"] == pytest.approx(f1)


def test_per_image_covers_every_train_and_valid_item(trained, items):
    rows = trained.result.per_image

    assert [(r["path"], r["label"], r["split"]) for r in rows] == [
        tuple(item) for item in items
    ]
    for row in rows:
        assert row["predicted"] in trained.result.label_names
        assert 1 / 3 <= row["confidence"] <= 1
        assert row["loss"] >= 0


def test_per_image_rows_of_valid_items_match_the_learner(trained, items):
    # The rows carry the calibrated probabilities: softmax(logits / T).
    t = trained.result.calibration["temperature"]
    probs = softmax(np.log(learner_valid_probs(trained)) / t)
    rows = [r for r in trained.result.per_image if r["split"] == "valid"]
    names = trained.result.label_names

    for row, p in zip(rows, probs, strict=True):
        assert row["predicted"] == names[int(p.argmax())]
        assert row["confidence"] == pytest.approx(float(p.max()), abs=1e-6)
        expected_loss = -math.log(p[names.index(row["label"])])
        assert row["loss"] == pytest.approx(expected_loss, abs=1e-5)


def test_it_writes_weights_meta_and_onnx(trained):
    artifacts = trained.result.artifacts
    assert set(artifacts) == {"weights", "meta", "onnx"}
    assert all(Path(p).is_file() for p in artifacts.values())

    meta = json.loads(Path(artifacts["meta"]).read_text())
    assert meta["format"] == FORMAT
    assert meta["architecture"] == "tiny_cnn"
    assert meta["label_names"] == ["blue", "green", "red"]
    assert meta["num_classes"] == 3
    assert meta["image_size"] == 32
    assert meta["resize_method"] == "squish"
    assert meta["mean"] == [0.5, 0.5, 0.5] and meta["std"] == [0.5, 0.5, 0.5]
    assert meta["input_name"] == "input" and meta["output_name"] == "logits"
    assert meta["onnx_exporter"] == "dynamo" and meta["onnx_opset"] == 18
    assert len(meta["weights_sha256"]) == 64
    for key in ("torch_version", "fastai_version", "created"):
        assert meta[key]
    assert not list(Path(artifacts["onnx"]).parent.glob("*.data"))


def test_preprocess_equals_the_valid_dataloader_input(trained, items):
    meta = json.loads(Path(trained.result.artifacts["meta"]).read_text())
    batches = [xb for xb, _ in trained.learner.dls.valid]
    expected = torch.cat(batches).cpu().numpy()

    got = preprocessed(valid_items(items), meta)

    assert got.dtype == np.float32 and got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)


def test_load_model_reproduces_the_learners_validation_probabilities(trained, items):
    model, meta = load_model(trained.result.artifacts["meta"])
    x = torch.from_numpy(preprocessed(valid_items(items), meta))

    with torch.no_grad():
        probs = torch.softmax(model(x), dim=1).numpy()

    assert not model.training
    np.testing.assert_allclose(probs, learner_valid_probs(trained), atol=1e-5)


def test_onnx_reproduces_the_learners_validation_probabilities(trained, items):
    meta = json.loads(Path(trained.result.artifacts["meta"]).read_text())
    session = onnxruntime.InferenceSession(
        trained.result.artifacts["onnx"], providers=["CPUExecutionProvider"]
    )
    x = preprocessed(valid_items(items), meta)

    (logits,) = session.run([meta["output_name"]], {meta["input_name"]: x})
    (single,) = session.run(None, {"input": x[:1]})

    np.testing.assert_allclose(softmax(logits), learner_valid_probs(trained), atol=1e-4)
    np.testing.assert_allclose(single, logits[:1], atol=1e-5)


def test_load_model_refuses_weights_whose_hash_differs(trained, tmp_path):
    source = Path(trained.result.artifacts["meta"]).parent
    for name in ("meta.json", "weights.safetensors"):
        (tmp_path / name).write_bytes((source / name).read_bytes())
    data = bytearray((tmp_path / "weights.safetensors").read_bytes())
    data[-1] ^= 0xFF
    (tmp_path / "weights.safetensors").write_bytes(bytes(data))

    with pytest.raises(ValueError, match="sha256"):
        load_model(tmp_path / "meta.json")


def test_the_same_seed_gives_the_same_run(trained, items, tmp_path, tiny_config):
    again = train(tiny_config(), items, tmp_path)

    assert again.epochs == [
        {**row, "seconds": again.epochs[i]["seconds"]}
        for i, row in enumerate(trained.result.epochs)
    ]
    assert again.per_image == trained.result.per_image


class CancelAfter(TrainCallbacks):
    def __init__(self, n_batches: int) -> None:
        self.n_batches = n_batches
        self.batches: list[tuple[int, int]] = []
        self.started: dict | None = None

    def on_start(self, *, device: str, n_epochs: int, n_batches: int) -> None:
        self.started = {"device": device, "n_epochs": n_epochs, "n_batches": n_batches}

    def on_batch(self, *, epoch: int, batch: int, n_batches: int, n_epochs: int):
        self.batches.append((epoch, batch))

    def should_cancel(self) -> bool:
        return len(self.batches) >= self.n_batches


def test_should_cancel_stops_the_run_between_batches(items, tmp_path, tiny_config):
    callbacks = CancelAfter(n_batches=3)

    result = train(tiny_config(batch_size=4), items, tmp_path / "out", callbacks)

    assert result.status == "cancelled"
    n_train = sum(item.split == "train" for item in items)
    assert callbacks.started == {
        "device": "cpu",
        "n_epochs": 3,
        "n_batches": n_train // 4,  # the last, incomplete batch is dropped
    }
    assert callbacks.batches == [(0, 0), (0, 1), (0, 2)]
    assert result.epochs == []
    assert result.artifacts == {} and result.per_image == []
    assert not (tmp_path / "out").exists()


def test_raising_train_cancelled_ends_the_run_after_what_was_measured(
    items, tmp_path, tiny_config
):
    class StopAfterFirstEpoch(TrainCallbacks):
        def on_epoch_end(self, metrics: dict) -> None:
            raise TrainCancelled

    result = train(tiny_config(), items, tmp_path, StopAfterFirstEpoch())

    assert result.status == "cancelled"
    assert [r["phase"] for r in result.epochs] == ["frozen"]
    assert result.best_epoch == 0
    assert result.artifacts == {}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda items: [], "No items"),
        (lambda items: [i._replace(split="holdout") for i in items], "split"),
        (lambda items: [i._replace(label="one") for i in items], "two labels"),
        (lambda items: [i._replace(split="train") for i in items], "validation"),
    ],
)
def test_it_refuses_items_it_cannot_train_on(
    items, tmp_path, change, message, tiny_config
):
    with pytest.raises(ValueError, match=message):
        train(tiny_config(), change(items), tmp_path)


def test_torch_evaluation_matches_the_onnx_one_it_replaces_on_cpu(trained, items):
    # GPUs evaluate with torch, CPUs with ONNX Runtime: both give the same rows.
    from training.ml import evaluate

    predictions = evaluate.predict_items(
        evaluate.torch_logits(trained.learner.model), trained.learner.dls, items
    )
    rows = evaluate.summarize(items, trained.result.label_names, predictions)

    for got, expected in zip(rows["per_image"], trained.result.per_image, strict=True):
        assert got["predicted"] == expected["predicted"]
        assert got["confidence"] == pytest.approx(expected["confidence"], abs=1e-5)
        assert got["loss"] == pytest.approx(expected["loss"], abs=1e-5)


def test_the_torchscript_exporter_takes_over_when_dynamo_fails(
    trained, tmp_path, monkeypatch
):
    from training.ml import export

    real_export = torch.onnx.export

    def dynamo_fails(*args, dynamo=True, **kwargs):
        if dynamo:
            raise RuntimeError("injected dynamo failure")
        return real_export(*args, dynamo=False, **kwargs)

    monkeypatch.setattr(torch.onnx, "export", dynamo_fails)
    model, meta = load_model(trained.result.artifacts["meta"])
    path = tmp_path / "model.onnx"

    how = export.export_onnx(model, path, meta["image_size"])

    assert how == {"onnx_exporter": "torchscript", "onnx_opset": 17}
    x = torch.randn(3, 3, 32, 32)
    assert export.onnx_max_abs_diff(model, export.onnx_logits(path), x) < 1e-4


def test_loader_processes_give_the_same_run(trained, items, tmp_path, tiny_config):
    again = train(tiny_config(num_workers=2), items, tmp_path)

    assert again.per_image == trained.result.per_image
    assert [row["valid_loss"] for row in again.epochs] == [
        row["valid_loss"] for row in trained.result.epochs
    ]


def _loader_workers_in_child(requested: int, answers) -> None:
    from training.ml.data import loader_workers

    answers.put(loader_workers(requested))


@pytest.mark.parametrize(("daemon", "expected"), [(True, 0), (False, 3)])
def test_a_daemonic_process_loads_in_process(daemon, expected):
    """A Celery prefork child is daemonic: loader processes would fail to start."""
    context = multiprocessing.get_context("fork")
    answers = context.SimpleQueue()
    child = context.Process(
        target=_loader_workers_in_child, args=(3, answers), daemon=daemon
    )
    child.start()
    child.join(30)

    assert child.exitcode == 0
    assert answers.get() == expected
