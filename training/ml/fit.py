"""fine_tune with progress, cancellation and best-epoch selection."""

from __future__ import annotations

import math
import time
from typing import Any

import fastai.callback.progress  # noqa: F401  (Learner.no_bar)
import fastai.callback.schedule  # noqa: F401  (Learner.fine_tune)
import torch
from fastai.callback.core import Callback, CancelFitException, TrainEvalCallback
from fastai.callback.fp16 import AMPMode, MixedPrecision
from fastai.data.core import DataLoaders
from fastai.learner import Learner
from fastai.losses import LabelSmoothingCrossEntropyFlat
from fastai.metrics import accuracy, error_rate
from torch import nn

from training.ml.backbones import Backbone
from training.ml.config import TrainCallbacks, TrainCancelled, TrainConfig
from training.ml.nets import create_model


def resolve_device(requested: str) -> torch.device:
    if requested == "cpu":
        return torch.device("cpu")
    if torch.cuda.is_available():
        return torch.device("cuda", torch.cuda.current_device())
    if requested == "cuda":
        raise RuntimeError("device='cuda' was requested but CUDA is not available")
    return torch.device("cpu")


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return str(device)


def finite_or_none(value: Any) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


class RunTracker(Callback):
    """Bridges a fastai fit to TrainCallbacks and keeps the best weights.

    fine_tune runs two fits (frozen, then unfrozen); this numbers epochs across
    both, and once cancelled it also stops the fits that follow. It acts only
    while ``active``: learn.validate() and get_preds() send fit and epoch events
    too.
    """

    order = 60  # after Recorder (50), whose log it reads

    def __init__(self, callbacks: TrainCallbacks, n_epochs: int) -> None:
        self.user = callbacks
        self.n_epochs = n_epochs
        self.global_epoch = 0
        self.rows: list[dict[str, Any]] = []
        self.best_epoch: int | None = None
        self.best_loss = math.inf
        self.best_state: dict[str, torch.Tensor] | None = None
        self.cancelled = False
        self.active = False
        self.phase = "frozen"

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return getattr(self.user, method)(*args, **kwargs)
        except TrainCancelled:
            self._cancel()

    def _cancel(self) -> None:
        self.cancelled = True
        raise CancelFitException()

    def before_fit(self) -> None:
        if not self.active:
            return
        if self.cancelled:
            raise CancelFitException()
        self.phase = "frozen" if self.opt.frozen_idx > 0 else "unfrozen"

    def before_epoch(self) -> None:
        self.started = time.perf_counter()

    def before_batch(self) -> None:
        if self.active and self._call("should_cancel"):
            self._cancel()

    def after_batch(self) -> None:
        if self.active and self.training:
            self._call(
                "on_batch",
                epoch=self.global_epoch,
                batch=self.iter,
                n_batches=self.n_iter,
                n_epochs=self.n_epochs,
            )

    def after_epoch(self) -> None:
        if not self.active:
            return
        logged = dict(zip(self.recorder.metric_names, self.recorder.log, strict=False))
        row = {
            "epoch": self.global_epoch,
            "phase": self.phase,
            **{
                name: finite_or_none(logged[name])
                for name in ("train_loss", "valid_loss", "error_rate", "accuracy")
            },
            "seconds": round(time.perf_counter() - self.started, 3),
        }
        self.rows.append(row)
        loss = row["valid_loss"]
        if loss is not None and loss < self.best_loss:
            # In memory only: a state_dict copy, never a file or a pickle.
            self.best_loss, self.best_epoch = loss, self.global_epoch
            self.best_state = {
                k: v.detach().clone() for k, v in self.model.state_dict().items()
            }
        self.global_epoch += 1
        self._call("on_epoch_end", dict(row))


class BodyBatchNormStats(Callback):
    """The pretrained body's BatchNorm layers normalise with their running
    statistics in training too (and stop updating them); the head's still train.

    Their scale and shift stay trainable, as fastai's train_bn wants.
    """

    order = TrainEvalCallback.order + 1  # after it puts the model in train mode

    def before_train(self) -> None:
        for module in self.learn.model[0].modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.eval()


def body_bn_frozen(config: TrainConfig, backbone: Backbone) -> bool:
    if config.body_bn == "auto":
        return backbone.frozen_bn_stats
    return config.body_bn == "frozen"


def make_learner(
    config: TrainConfig,
    backbone: Backbone,
    dls: DataLoaders,
    tracker: RunTracker | None = None,
) -> Learner:
    """The Learner vision_learner would give, with this backbone's body and split."""
    model = create_model(
        backbone, len(dls.vocab), pretrained=True, weights_dir=config.weights_dir
    )
    loss = (
        LabelSmoothingCrossEntropyFlat(eps=config.label_smoothing)
        if config.label_smoothing
        else None  # fastai's default: cross-entropy
    )
    learn = Learner(
        dls,
        model,
        loss_func=loss,
        splitter=backbone.splitter,
        metrics=[error_rate, accuracy],
        cbs=[tracker] if tracker is not None else None,
    )
    if body_bn_frozen(config, backbone):
        learn.add_cb(BodyBatchNormStats())
    learn.freeze()
    if dls.device is not None and torch.device(dls.device).type == "cuda":
        bf16 = torch.cuda.is_bf16_supported()
        learn.add_cb(MixedPrecision(amp_mode=AMPMode.BF16 if bf16 else AMPMode.FP16))
    return learn


def fine_tune(learn: Learner, config: TrainConfig, tracker: RunTracker) -> None:
    """fastai's fine_tune, quietly, then back to float32 for evaluation and export."""
    kwargs = {} if config.base_lr is None else {"base_lr": config.base_lr}
    tracker.active = True
    try:
        with learn.no_bar(), learn.no_logging():
            learn.fine_tune(config.epochs, freeze_epochs=config.freeze_epochs, **kwargs)
    finally:
        tracker.active = False
    learn.remove_cb(MixedPrecision)
