"""What a training run takes and gives back: plain data, no torch or fastai."""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

RESIZE_METHODS = ("squish", "crop")
DEVICES = ("auto", "cpu", "cuda")
BODY_BN = ("auto", "frozen", "train")


def _backbone_names() -> tuple[str, ...]:
    from training.ml.backbones import BACKBONES

    return tuple(BACKBONES)


def option(
    default: Any,
    help: str,
    *,
    min: float | None = None,
    max: float | None = None,
    choices: tuple[str, ...] | Callable[[], tuple[str, ...]] | None = None,
    public: bool = True,
) -> Any:
    """A TrainConfig field with what every interface needs to offer it.

    The `train` command's flags, the run form, the API serializer and
    `python -m training.ml` are generated from these (training/ml/cli.py and
    training/interfaces.py); `public=False` fields are set by the server only.
    """
    return field(
        default=default,
        metadata={
            "help": help,
            "min": min,
            "max": max,
            "choices": choices,
            "public": public,
        },
    )


def field_choices(f: dataclasses.Field) -> tuple[str, ...] | None:
    choices = f.metadata.get("choices")
    return choices() if callable(choices) else choices


@dataclass
class TrainConfig:
    """Hyper-parameters of one run; stored as JSON with the run."""

    backbone: str = option(
        "efficientnet_lite0",
        "pretrained network to start from",
        choices=_backbone_names,
    )
    epochs: int = option(4, "epochs with the whole network trainable", min=0, max=200)
    freeze_epochs: int = option(
        1, "epochs training only the new head first", min=0, max=50
    )
    base_lr: float | None = option(
        None,
        "base learning rate (empty: fastai's fine_tune default)",
        min=1e-7,
        max=1.0,
    )
    image_size: int = option(
        224, "side of the square training images", min=32, max=1024
    )
    valid_pct: float = option(
        0.2, "share of the groups held out for validation", min=0.05, max=0.5
    )
    test_pct: float = option(
        0.1,
        "share of the groups held out as the test split (never used to choose "
        "anything)",
        min=0.0,
        max=0.4,
    )
    seed: int = option(42, "random seed (also fixes the split)", min=0, max=2**31 - 1)
    batch_size: int = option(32, "images per training batch", min=1, max=1024)
    resize_method: str = option(
        "squish", "how images become squares", choices=RESIZE_METHODS
    )
    label_smoothing: float = option(
        0.0,
        "label smoothing of the training loss (0: plain cross-entropy)",
        min=0.0,
        max=0.5,
    )
    body_bn: str = option(
        "auto",
        "the pretrained body's batch norms: keep their ImageNet statistics "
        "('frozen'), update them ('train'), or what the backbone needs ('auto')",
        choices=BODY_BN,
    )
    confidence_target: float = option(
        0.9,
        "answers at or above the model's 'not sure' threshold are right this often "
        "on validation",
        min=0.5,
        max=0.999,
    )
    device: str = option("auto", "where to train", choices=DEVICES)
    num_workers: int = option(0, "loader processes", min=0, max=64, public=False)
    weights_dir: str | None = option(
        None, "where torchvision resnet weights may lie", public=False
    )

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ValueError naming the first bad value."""
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            kinds = _FIELD_TYPES[f.name]
            if isinstance(value, bool) or not isinstance(value, kinds):
                raise ValueError(f"{f.name} has the wrong type: {value!r}")
            if value is None:
                continue
            low, high = f.metadata.get("min"), f.metadata.get("max")
            if low is not None and value < low or high is not None and value > high:
                raise ValueError(f"{f.name} must be {low}..{high}, got {value!r}")
            choices = field_choices(f)
            if choices is not None and value not in choices:
                raise ValueError(
                    f"Unknown {f.name} {value!r}; known: {', '.join(choices)}"
                )
        if self.epochs + self.freeze_epochs < 1:
            raise ValueError("epochs + freeze_epochs must be >= 1")
        if self.valid_pct + self.test_pct >= 0.9:
            raise ValueError("valid_pct + test_pct must leave 10% or more to train on")

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

    @classmethod
    def public_fields(cls) -> list[dataclasses.Field]:
        """The fields users may set through the command, the page and the API."""
        return [f for f in dataclasses.fields(cls) if f.metadata.get("public", True)]


def _accepted_types(hint: Any) -> tuple[type, ...]:
    kinds = typing.get_args(hint) or (hint,)
    return kinds + (int,) if float in kinds else kinds  # an int is a fine float


# Field name -> the types its annotation allows, checked by validate().
_FIELD_TYPES = {
    name: _accepted_types(hint)
    for name, hint in typing.get_type_hints(TrainConfig).items()
}


def field_kind(f: dataclasses.Field) -> type:
    """float, int or str: what a form or a flag parses the field's value as."""
    kinds = _FIELD_TYPES[f.name]
    return float if float in kinds else int if int in kinds else str


class Item(NamedTuple):
    """One image of a run: its file, its label and its side of the split."""

    path: str
    label: str
    split: str  # "train" | "valid" | "test"


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
    (best by validation loss) weights on the validation split, with calibrated
    probabilities; best_error_rate is the lowest error rate any epoch reached.
    `test` holds the same figures on the test split (None without one), and
    `calibration` the fitted temperature, the "not sure" threshold and the
    expected calibration error before and after. `notes` say, in words, what the
    run decided on its own (which epoch it kept and why).
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
    test: dict[str, Any] | None = None
    calibration: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    artifacts: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
