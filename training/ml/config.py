"""What a training run takes and gives back: plain data, no torch or fastai."""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Any, NamedTuple

RESIZE_METHODS = ("squish", "crop")
DEVICES = ("auto", "cpu", "cuda")


@dataclass
class TrainConfig:
    """Hyper-parameters of one run; stored as JSON with the run."""

    backbone: str = "efficientnet_lite0"
    epochs: int = 4
    base_lr: float | None = None  # None: fastai's fine_tune default (2e-3)
    image_size: int = 224
    valid_pct: float = 0.2
    seed: int = 42
    batch_size: int = 32
    freeze_epochs: int = 1
    device: str = "auto"  # "auto" | "cpu" | "cuda"
    num_workers: int = 0
    weights_dir: str | None = None  # where torchvision resnet weights may lie
    resize_method: str = "squish"  # "squish" | "crop"

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ValueError naming the first bad value."""
        for name, kinds in _FIELD_TYPES.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, kinds):
                raise ValueError(f"{name} has the wrong type: {value!r}")
        if self.epochs < 0 or self.freeze_epochs < 0:
            raise ValueError("epochs and freeze_epochs must be >= 0")
        if self.epochs + self.freeze_epochs < 1:
            raise ValueError("epochs + freeze_epochs must be >= 1")
        if self.base_lr is not None and not self.base_lr > 0:
            raise ValueError(f"base_lr must be > 0, got {self.base_lr}")
        if not 16 <= self.image_size <= 1024:
            raise ValueError(f"image_size must be 16..1024, got {self.image_size}")
        if not 0.0 < self.valid_pct < 1.0:
            raise ValueError(f"valid_pct must be between 0 and 1, got {self.valid_pct}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.num_workers < 0:
            raise ValueError(f"num_workers must be >= 0, got {self.num_workers}")
        if self.device not in DEVICES:
            raise ValueError(f"device must be one of {DEVICES}, got {self.device!r}")
        if self.resize_method not in RESIZE_METHODS:
            raise ValueError(
                f"resize_method must be one of {RESIZE_METHODS}, "
                f"got {self.resize_method!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Build from a dict; unknown keys are an error, missing ones default."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"Unknown TrainConfig keys: {', '.join(unknown)}")
        return cls(**data)


def _accepted_types(hint: Any) -> tuple[type, ...]:
    kinds = typing.get_args(hint) or (hint,)
    return kinds + (int,) if float in kinds else kinds  # an int is a fine float


# Field name -> the types its annotation allows, checked by validate().
_FIELD_TYPES = {
    name: _accepted_types(hint)
    for name, hint in typing.get_type_hints(TrainConfig).items()
}


class Item(NamedTuple):
    """One image of a run: its file, its label and its side of the split."""

    path: str
    label: str
    split: str  # "train" | "valid"


class TrainCancelled(Exception):
    """Raise from any TrainCallbacks method to end the run as cancelled."""


class TrainCallbacks:
    """Progress hooks of a run; subclass and override what you need.

    Every method may raise TrainCancelled; should_cancel() is polled between
    batches.
    """

    def on_start(self, *, device: str, n_epochs: int, n_batches: int) -> None:
        """Training starts: n_epochs over all phases, n_batches per epoch."""

    def on_batch(
        self, *, epoch: int, batch: int, n_batches: int, n_epochs: int
    ) -> None:
        """A training batch finished; epoch and batch are 0-based."""

    def on_epoch_end(self, metrics: dict[str, Any]) -> None:
        """An epoch finished; metrics as in TrainResult.epochs."""

    def should_cancel(self) -> bool:
        return False


@dataclass
class TrainResult:
    """What a run measured and wrote.

    error_rate, confusion_matrix, per_class and valid_loss describe the kept
    (best by validation loss) weights on the validation split; best_error_rate is
    the lowest error rate any epoch reached.
    """

    status: str  # "succeeded" | "cancelled"
    device: str
    seconds: float
    epochs: list[dict[str, Any]]
    best_epoch: int | None
    label_names: list[str]
    error_rate: float | None = None
    best_error_rate: float | None = None
    valid_loss: float | None = None
    confusion_matrix: list[list[int]] = field(default_factory=list)
    per_class: list[dict[str, Any]] = field(default_factory=list)
    per_image: list[dict[str, Any]] = field(default_factory=list)
    artifacts: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
