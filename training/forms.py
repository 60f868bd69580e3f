"""Forms of the training pages."""

from __future__ import annotations

from training.interfaces import TrainingRunForm

__all__ = ["TrainingRunForm"]
