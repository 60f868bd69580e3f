"""Predictions and API keys: the writes and actions of the classifier app."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from classifier import predictor
from classifier.errors import InvalidPredictInput
from classifier.models import APIKey
from classifier.predictor import Prediction
from classifier.selectors import api_key_find
from datasets import fetch, scraping
from datasets.imaging import ImageRejected
from datasets.services import image_decode

if TYPE_CHECKING:
    from PIL import Image as PILImage

# last_used_at is written at most this often per key, not on every request.
API_KEY_TOUCH_INTERVAL = timedelta(minutes=1)


def image_predict(*, data: bytes) -> Prediction:
    """Classify one image with the current model."""
    return images_predict(images=[("image", data)])[0]


def decoded_predict(*, image: PILImage.Image) -> Prediction:
    """Classify an image image_decode already checked (the upload page shows it too)."""
    return predictor.current_model().predict([image])[0]


def images_predict(*, images: Sequence[tuple[str, bytes]]) -> list[Prediction]:
    """Classify (name, bytes) images in order, in one batch; all or nothing.

    Raises NoCurrentModel, ImageRejected (naming the file when there are several)
    or InvalidPredictInput.
    """
    if not images:
        raise InvalidPredictInput("No image was sent.", code="missing_image")
    limit = settings.SNAPCLASS_PREDICT_MAX_IMAGES
    if len(images) > limit:
        raise InvalidPredictInput(
            f"{len(images)} images sent; at most {limit} per request.",
            code="too_many_images",
        )
    model = predictor.current_model()
    decoded = []
    for position, (name, data) in enumerate(images, start=1):
        try:
            decoded.append(image_decode(data))
        except ImageRejected as exc:
            if len(images) == 1:
                raise
            raise ImageRejected(
                exc.code, f"Image {position} ({name[:100]}): {exc.message}"
            ) from exc
    return model.predict(decoded)


def url_predict(*, url: str) -> Prediction:
    """Download an image through the safe fetcher, then classify it."""
    predictor.current_model()  # no download when nothing could answer
    data = fetch.fetch_image(url, scraping.fetch_limits())
    return image_predict(data=data)


def api_key_create(*, name: str, user: Any = None) -> tuple[APIKey, str]:
    """A new key and its secret; the secret is shown once and stored only hashed."""
    name = (name or "").strip()
    if not name:
        raise InvalidPredictInput("An API key needs a name.", code="invalid_name")
    while True:
        prefix = secrets.token_hex(4)
        if not APIKey.objects.filter(prefix=prefix).exists():
            break
    raw = f"{prefix}.{secrets.token_urlsafe(32)}"
    key = APIKey.objects.create(
        name=name[:100],
        prefix=prefix,
        hashed_key=_hash(raw),
        created_by=user if getattr(user, "pk", None) else None,
    )
    return key, raw


def api_key_revoke(*, key: APIKey) -> bool:
    """Revoke a key for good; False when it was already revoked."""
    now = timezone.now()
    changed = APIKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(
        revoked_at=now
    )
    if changed:
        key.revoked_at = now
    return changed == 1


def api_key_check(*, raw: str) -> APIKey | None:
    """The key whose secret is `raw` (maybe revoked), else None; notes its use."""
    key = api_key_find(raw)
    if key is None or not hmac.compare_digest(key.hashed_key, _hash(raw)):
        return None
    if key.revoked_at is not None:
        return key
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at > API_KEY_TOUCH_INTERVAL:
        APIKey.objects.filter(pk=key.pk).filter(
            Q(last_used_at__isnull=True)
            | Q(last_used_at__lt=now - API_KEY_TOUCH_INTERVAL)
        ).update(last_used_at=now)
        key.last_used_at = now
    return key


def _hash(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()
