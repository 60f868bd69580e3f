"""The model contract: the files a trained model is made of and its meta.json.

Training writes it (training/ml/export.py), the registry records it, the predictor
and the browser read it. Plain Python, no torch: the web process imports this.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

FORMAT = "snapclass-model/1"
WEIGHTS_FILE = "weights.safetensors"
META_FILE = "meta.json"
ONNX_FILE = "model.onnx"
FILES = {"weights": WEIGHTS_FILE, "meta": META_FILE, "onnx": ONNX_FILE}
INPUT_NAME = "input"
OUTPUT_NAME = "logits"
# What a consumer needs to turn an image into the model's input, and its output
# into calibrated answers.
PREPROCESSING_KEYS = (
    "image_size",
    "resize_method",
    "mean",
    "std",
    "input_name",
    "output_name",
)


@dataclass
class ModelMeta:
    """meta.json: how to rebuild, feed and read one trained model.

    The ONNX graph outputs logits; calibrated probabilities are
    softmax(logits / temperature), and an answer whose probability is below
    `uncertain_below` is "not sure".
    """

    architecture: str
    label_names: list[str]
    image_size: int
    resize_method: str
    mean: list[float]
    std: list[float]
    weights_sha256: str
    temperature: float = 1.0
    uncertain_below: float | None = None
    input_name: str = INPUT_NAME
    output_name: str = OUTPUT_NAME
    weights_file: str = WEIGHTS_FILE
    onnx_file: str = ONNX_FILE
    format: str = FORMAT
    # Provenance and evaluation details: versions, exporter, the training config,
    # calibration figures. Kept as they are; nothing reads them to run the model.
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.format != FORMAT:
            raise ValueError(f"not a {FORMAT} model (format {self.format!r})")
        if not self.label_names or len(set(self.label_names)) != len(self.label_names):
            raise ValueError("label_names must be distinct and not empty")
        if len(self.mean) != 3 or len(self.std) != 3:
            raise ValueError("mean and std need three channels")
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        for name in (self.weights_file, self.onnx_file):
            if "/" in name or "\\" in name or name in ("", ".", ".."):
                raise ValueError(f"artifact names must be bare file names: {name!r}")

    @property
    def num_classes(self) -> int:
        return len(self.label_names)

    def preprocessing(self) -> dict[str, Any]:
        """The keys a predictor (server or browser) needs to build the input."""
        return {key: getattr(self, key) for key in PREPROCESSING_KEYS}

    def to_dict(self) -> dict[str, Any]:
        data = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name != "extra"
        }
        return {**self.extra, **data, "num_classes": self.num_classes}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelMeta:
        """Read a meta.json's contents; ValueError when it is not one of ours."""
        if not isinstance(data, dict):
            raise ValueError("meta.json must hold an object")
        if data.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT} model (format {data.get('format')!r})")
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        known = {k: v for k, v in data.items() if k in names}
        extra = {k: v for k, v in data.items() if k not in names | {"num_classes"}}
        missing = sorted(
            f.name
            for f in dataclasses.fields(cls)
            if f.name not in known
            and f.name != "extra"
            and f.default is dataclasses.MISSING
            and f.default_factory is dataclasses.MISSING
        )
        if missing:
            raise ValueError(f"meta.json lacks {', '.join(missing)}")
        if "num_classes" in data and data["num_classes"] != len(known["label_names"]):
            raise ValueError("num_classes differs from the number of label_names")
        try:
            return cls(**known, extra=extra)
        except TypeError as exc:
            raise ValueError(f"meta.json is malformed: {exc}") from None

    @classmethod
    def from_json(cls, text: str | bytes) -> ModelMeta:
        try:
            data = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ValueError(f"meta.json is not JSON: {exc}") from None
        return cls.from_dict(data)
