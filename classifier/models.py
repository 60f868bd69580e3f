from __future__ import annotations

from django.db import models
from django.db.models import Q


class ModelVersion(models.Model):
    """A trained model: immutable artifacts plus what is needed to serve them."""

    run = models.OneToOneField(
        "training.TrainingRun",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="model_version",
    )
    label_names = models.JSONField(default=list)
    backbone = models.CharField(max_length=64)
    preprocessing = models.JSONField(default=dict, help_text="from meta.json")
    metrics = models.JSONField(default=dict, blank=True)
    error_rate = models.FloatField(null=True, blank=True)
    valid_loss = models.FloatField(null=True, blank=True)
    weights_path = models.CharField(max_length=255)
    weights_sha256 = models.CharField(max_length=64)
    meta_path = models.CharField(max_length=255)
    meta_sha256 = models.CharField(max_length=64)
    onnx_path = models.CharField(max_length=255)
    onnx_sha256 = models.CharField(max_length=64)
    is_current = models.BooleanField(default=False)
    comparison = models.JSONField(default=dict, blank=True)
    decision = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    promoted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_current"],
                condition=Q(is_current=True),
                name="modelversion_one_current",
            )
        ]

    def __str__(self) -> str:
        return f"Model v{self.pk}{' (current)' if self.is_current else ''}"
