"""The classifier's domain exceptions; config.api maps them to HTTP answers."""

from __future__ import annotations

from config.errors import Conflict, DomainError, Unavailable


class NoCurrentModel(Unavailable):
    code = "no_model"

    def __init__(self, message: str = "") -> None:
        super().__init__(
            message
            or "No model has been trained and promoted yet, so nothing can predict."
        )


class ModelUnavailable(Unavailable):
    """The current model exists but cannot be loaded (missing or altered files)."""

    code = "model_unavailable"


class ArtifactMismatch(Conflict):
    """A model file is missing or its sha256 differs from the one registered."""

    code = "artifact_mismatch"


class InvalidPredictInput(DomainError):
    code = "invalid"
