"""One training run end to end: data, fine_tune, evaluation, artifacts."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from fastai.data.core import DataLoaders
from fastai.learner import Learner
from fastai.torch_core import set_seed

from training.ml import data, evaluate, export, fit
from training.ml.backbones import get_backbone
from training.ml.config import (
    Item,
    TrainCallbacks,
    TrainCancelled,
    TrainConfig,
    TrainResult,
)

log = logging.getLogger(__name__)

# Logits from ONNX Runtime must match torch's this closely, or the run fails.
ONNX_TOLERANCE = 1e-3


@dataclass
class TrainingOutcome:
    result: TrainResult
    learner: Learner


def train(
    config: TrainConfig,
    items: Sequence[Item],
    out_dir: str | Path,
    callbacks: TrainCallbacks | None = None,
) -> TrainResult:
    """Fine-tune config.backbone on items and write the kept model to out_dir."""
    return run_training(config, items, out_dir, callbacks).result


def run_training(
    config: TrainConfig,
    items: Sequence[Item],
    out_dir: str | Path,
    callbacks: TrainCallbacks | None = None,
) -> TrainingOutcome:
    """train(), also handing back the fastai Learner (for tests and notebooks)."""
    started = time.perf_counter()
    config.validate()
    callbacks = callbacks or TrainCallbacks()
    items = [Item(str(path), str(label), split) for path, label, split in items]
    backbone = get_backbone(config.backbone)
    label_names = data.check_items(items)
    backbone.weights_path(config.weights_dir)  # BackboneUnavailable before any work

    set_seed(config.seed, reproducible=True)
    device = fit.resolve_device(config.device)
    device_name = fit.describe_device(device)
    # The test split stays out of the DataLoaders: nothing is chosen on it.
    fit_items = [item for item in items if item.split != "test"]
    dls = data.make_dataloaders(config, fit_items, backbone, label_names, device)
    n_epochs = config.freeze_epochs + config.epochs
    tracker = fit.RunTracker(callbacks, n_epochs)
    learn = fit.make_learner(config, backbone, dls, tracker)

    def result(status: str, **fields: object) -> TrainingOutcome:
        errors = [r["error_rate"] for r in tracker.rows if r["error_rate"] is not None]
        outcome = TrainResult(
            status=status,
            device=device_name,
            seconds=round(time.perf_counter() - started, 3),
            epochs=tracker.rows,
            best_epoch=tracker.best_epoch,
            label_names=label_names,
            best_error_rate=min(errors) if errors else None,
            **fields,  # type: ignore[arg-type]
        )
        return TrainingOutcome(outcome, learn)

    try:
        callbacks.on_start(
            device=device_name, n_epochs=n_epochs, n_batches=len(dls.train)
        )
    except TrainCancelled:
        return result("cancelled")
    fit.fine_tune(learn, config, tracker)
    if tracker.cancelled:
        return result("cancelled")

    fitted = time.perf_counter()
    model = learn.model
    if tracker.best_state is not None:
        model.load_state_dict(tracker.best_state)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    meta, onnx_logits = write_artifacts(model.cpu(), dls, config, label_names, out)
    exported = time.perf_counter()

    model.to(device)
    # On a CPU, ONNX Runtime runs this model several times faster than eager
    # torch, and it scores the very file that will serve predictions.
    logits = onnx_logits if device.type == "cpu" else evaluate.torch_logits(model)
    predictions = evaluate.predict_items(logits, dls, items)
    calibration = evaluate.calibration(
        items, predictions, target_accuracy=config.confidence_target
    )
    meta.temperature = calibration["temperature"]
    meta.uncertain_below = calibration["uncertain_below"]
    meta.extra["calibration"] = calibration
    export.write_meta(meta, out / export.META_FILE)
    summary = evaluate.summarize(
        items, label_names, predictions, calibration["temperature"]
    )
    log.info(
        "trained in %.1fs, exported in %.1fs, evaluated in %.1fs",
        fitted - started,
        exported - fitted,
        time.perf_counter() - exported,
    )
    artifacts = {
        kind: str(out / name) for kind, name in export.artifact_files().items()
    }
    return result(
        "succeeded",
        artifacts=artifacts,
        calibration=calibration,
        notes=kept_epoch_notes(tracker.rows, tracker.best_epoch),
        **summary,
    )


def kept_epoch_notes(rows: list[dict], best_epoch: int | None) -> list[str]:
    """Say which epoch the run kept when it was not the last one."""
    if best_epoch is None or not rows or best_epoch == rows[-1]["epoch"]:
        return []
    kept = rows[best_epoch]
    if kept["phase"] == "frozen" and any(r["phase"] == "unfrozen" for r in rows):
        return [
            f"Kept epoch {best_epoch + 1} of {len(rows)}, the new head on the frozen "
            "pretrained network: fine-tuning the whole network did not lower the "
            "validation loss."
        ]
    return [
        f"Kept epoch {best_epoch + 1} of {len(rows)}, the one with the lowest "
        "validation loss."
    ]


def write_artifacts(
    model: torch.nn.Module,
    dls: DataLoaders,
    config: TrainConfig,
    label_names: list[str],
    out: Path,
) -> tuple[export.ModelMeta, evaluate.Logits]:
    """weights.safetensors and model.onnx (checked against torch).

    Returns the model's metadata, to be written once calibration is known, and
    the ONNX model's logits function.
    """
    backbone = get_backbone(config.backbone)
    sha256 = export.save_weights(model, out / export.WEIGHTS_FILE)
    onnx_path = out / export.ONNX_FILE
    how = export.export_onnx(model, onnx_path, config.image_size)
    onnx_logits = export.onnx_logits(onnx_path)
    xb, _ = dls.valid.one_batch()
    x = xb[:8].cpu().as_subclass(torch.Tensor)
    diff = export.onnx_max_abs_diff(model, onnx_logits, x)
    if diff > ONNX_TOLERANCE:
        raise RuntimeError(f"ONNX logits differ from torch's by {diff:.2e}")
    meta = export.make_meta(
        architecture=config.backbone,
        label_names=label_names,
        image_size=config.image_size,
        resize_method=config.resize_method,
        mean=backbone.mean,
        std=backbone.std,
        weights_sha256=sha256,
        extra={**how, "onnx_max_abs_diff": diff, "train_config": config.to_dict()},
    )
    return meta, onnx_logits
