"""The model that answers predictions in this process: ONNX Runtime on the CPU.

Built lazily and kept once per process, keyed by the current model version. At
most every SNAPCLASS_PREDICTOR_CHECK_SECONDS a call asks the database which
version is current, so a promotion reaches every web process within seconds and
without a restart. Nothing here imports torch or fastai: preprocessing is
training.ml.preprocess (Pillow and numpy), the same validation transform that
training used, after the same decode and size cap as ingest.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from django.conf import settings

from classifier import artifacts
from classifier.errors import ArtifactMismatch, ModelUnavailable, NoCurrentModel
from classifier.models import ModelVersion
from training.ml import calibrate
from training.ml.preprocess import preprocess

if TYPE_CHECKING:
    from PIL import Image

log = logging.getLogger(__name__)

# Preprocessing keys a model's meta.json must carry.
PREPROCESSING_KEYS = ("image_size", "resize_method", "mean", "std")


@dataclass(frozen=True)
class Prediction:
    label: str
    confidence: float  # calibrated: softmax(logits / temperature)
    probabilities: list[tuple[str, float]]  # most probable first
    model_version: int
    uncertain: bool = False  # confidence below the model's "not sure" threshold

    def as_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "confidence": self.confidence,
            "uncertain": self.uncertain,
            "probabilities": [
                {"label": label, "probability": p} for label, p in self.probabilities
            ],
            "model_version": self.model_version,
        }


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    return calibrate.softmax(logits, temperature)


def uncertain_threshold(model_threshold: float | None) -> float | None:
    """The "not sure" line: SNAPCLASS_UNCERTAIN_BELOW when set, else the model's."""
    configured = settings.SNAPCLASS_UNCERTAIN_BELOW
    return model_threshold if configured is None else configured


class OnnxModel:
    """One model version loaded into an ONNX Runtime session."""

    def __init__(
        self,
        *,
        version_id: int,
        label_names: Sequence[str],
        preprocessing: dict[str, Any],
        onnx_bytes: bytes,
        threads: int = 1,
        key: tuple[int, str] | None = None,
        temperature: float = 1.0,
        uncertain_below: float | None = None,
    ) -> None:
        import onnxruntime as ort

        missing = [k for k in PREPROCESSING_KEYS if k not in preprocessing]
        if missing:
            raise ModelUnavailable(
                f"Model v{version_id} lacks preprocessing {', '.join(missing)}."
            )
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Idle pool threads would otherwise spin between requests and steal the
        # cores other web workers are using.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        self.session = ort.InferenceSession(
            onnx_bytes, sess_options=options, providers=["CPUExecutionProvider"]
        )
        self.version_id = version_id
        self.key = key or (version_id, artifacts.sha256_bytes(onnx_bytes))
        self.label_names = list(label_names)
        self.preprocessing = dict(preprocessing)
        self.temperature = float(temperature)
        self.uncertain_below = uncertain_below
        self.input_name = preprocessing.get("input_name") or (
            self.session.get_inputs()[0].name
        )
        self.output_name = preprocessing.get("output_name") or (
            self.session.get_outputs()[0].name
        )

    @classmethod
    def from_version(cls, version: ModelVersion, *, threads: int = 1) -> OnnxModel:
        """Load a version's ONNX file after checking its sha256."""
        data = artifacts.artifact_read(version, "onnx")
        return cls(
            version_id=version.pk,
            label_names=version.label_names,
            preprocessing=version.preprocessing,
            onnx_bytes=data,
            threads=threads,
            key=(version.pk, version.onnx_sha256),
            temperature=version.temperature,
            uncertain_below=version.uncertain_below,
        )

    def inputs(self, images: Sequence[Image.Image]) -> np.ndarray:
        return np.concatenate([preprocess(img, self.preprocessing) for img in images])

    def logits(self, images: Sequence[Image.Image]) -> np.ndarray:
        """(n, n_labels) float32 logits for RGB images, one batch."""
        (out,) = self.session.run(
            [self.output_name], {self.input_name: self.inputs(images)}
        )
        return out

    def probabilities(self, images: Sequence[Image.Image]) -> np.ndarray:
        """(n, n_labels) calibrated probabilities: softmax(logits / temperature)."""
        return softmax(self.logits(images), self.temperature)

    def predict(self, images: Sequence[Image.Image]) -> list[Prediction]:
        return [self._prediction(row) for row in self.probabilities(images)]

    def _prediction(self, probs: np.ndarray) -> Prediction:
        order = np.argsort(-probs, kind="stable")
        ranked = [(self.label_names[i], float(probs[i])) for i in order]
        threshold = uncertain_threshold(self.uncertain_below)
        return Prediction(
            label=ranked[0][0],
            confidence=ranked[0][1],
            probabilities=ranked,
            model_version=self.version_id,
            uncertain=threshold is not None and ranked[0][1] < threshold,
        )


class _Cache:
    """This process's model, and when the database was last asked about it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.model: OnnxModel | None = None
        self.key: tuple[int, str] | None = None
        self.checked_at = -float("inf")


_cache = _Cache()


def _current_key() -> tuple[int, str] | None:
    row = (
        ModelVersion.objects.filter(is_current=True)
        .values_list("pk", "onnx_sha256")
        .first()
    )
    return (row[0], row[1]) if row else None


def current_model() -> OnnxModel:
    """The current version's model, loaded once per process and swapped on change.

    Raises NoCurrentModel when none is promoted and ModelUnavailable when its
    files are missing or altered.
    """
    now = time.monotonic()
    key = _cache.key
    if now - _cache.checked_at >= settings.SNAPCLASS_PREDICTOR_CHECK_SECONDS:
        key = _current_key()
        _cache.key, _cache.checked_at = key, now
    if key is None:
        _cache.model = None
        raise NoCurrentModel()
    model = _cache.model
    if model is not None and model.key == key:
        return model
    with _cache.lock:
        model = _cache.model
        if model is None or model.key != key:
            model = _load(key)
            _cache.model = model
    return model


def _load(key: tuple[int, str]) -> OnnxModel:
    version = ModelVersion.objects.filter(pk=key[0]).first()
    if version is None:
        _cache.checked_at = -float("inf")
        raise NoCurrentModel()
    started = time.perf_counter()
    try:
        model = OnnxModel.from_version(
            version, threads=settings.SNAPCLASS_PREDICT_THREADS
        )
    except ArtifactMismatch as exc:
        log.error("cannot load model v%s: %s", version.pk, exc.message)
        raise ModelUnavailable(
            f"The current model (v{version.pk}) cannot be loaded: {exc.message}"
        ) from exc
    log.info(
        "loaded model v%s (%s, %d labels) in %.2f s",
        version.pk,
        version.backbone,
        len(version.label_names),
        time.perf_counter() - started,
    )
    return model


def predictor_reset() -> None:
    """Forget this process's model (tests; a fresh database reuses version ids)."""
    with _cache.lock:
        _cache.model = None
        _cache.key = None
        _cache.checked_at = -float("inf")
