"""Reads of the model registry."""

from __future__ import annotations

from django.db.models import QuerySet

from classifier.models import APIKey, ModelVersion


def model_version_current() -> ModelVersion | None:
    """The promoted model version, or None before the first promotion."""
    return ModelVersion.objects.filter(is_current=True).first()


def model_version_list() -> QuerySet[ModelVersion]:
    return ModelVersion.objects.select_related("run", "promoted_by").order_by(
        "-created_at", "-id"
    )


def api_key_find(raw: str) -> APIKey | None:
    """The key whose prefix matches `raw` (the hash is checked by the caller)."""
    prefix, sep, _ = raw.partition(".")
    if not sep or not prefix or len(prefix) > 16:
        return None
    return APIKey.objects.filter(prefix=prefix).first()
