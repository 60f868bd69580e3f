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
from config.errors import DomainError
from datasets import fetch
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


def url_fetch_limits() -> fetch.FetchLimits:
    """Prediction by URL: its own short deadline, and never the scraping allowlist
    (an anonymous client must not reach the hosts scraping may)."""
    return fetch.FetchLimits(
        max_bytes=settings.SNAPCLASS_MAX_FILE_BYTES,
        deadline=settings.SNAPCLASS_PREDICT_URL_DEADLINE,
        max_redirects=settings.SNAPCLASS_FETCH_MAX_REDIRECTS,
        allow_private_hosts=frozenset(
            settings.SNAPCLASS_PREDICT_URL_ALLOW_PRIVATE_HOSTS
        ),
    )


def url_predict(*, url: str) -> Prediction:
    """Download an image through the safe fetcher, then classify it."""
    predictor.current_model()  # no download when nothing could answer
    data = fetch.fetch_image(url, url_fetch_limits())
    return image_predict(data=data)


class RoleNotHeld(DomainError):
    http_status = 403
    code = "permission_denied"


def api_key_role_allowed(*, user: Any, role: str) -> bool:
    """A user may hand out a role only when they hold its permissions."""
    if role not in APIKey.ROLE_PERMS:
        return False
    if user is None or not getattr(user, "is_authenticated", False):
        return role == APIKey.Role.PREDICT
    return user.has_perms(APIKey.ROLE_PERMS[role])


def api_key_create(
    *, name: str, user: Any = None, role: str = APIKey.Role.PREDICT
) -> tuple[APIKey, str]:
    """A new key and its secret; the secret is shown once and stored only hashed.

    Raises RoleNotHeld unless `user` holds every permission of `role` (None: a
    command run by the operator, who may make any key).
    """
    name = (name or "").strip()
    if not name:
        raise InvalidPredictInput("An API key needs a name.", code="invalid_name")
    if role not in APIKey.ROLE_PERMS:
        raise InvalidPredictInput(f"Unknown role {role!r}.", code="invalid_role")
    if user is not None and not api_key_role_allowed(user=user, role=role):
        raise RoleNotHeld(
            f"You cannot create a {role} key: it needs permissions you do not have."
        )
    while True:
        prefix = secrets.token_hex(4)
        if not APIKey.objects.filter(prefix=prefix).exists():
            break
    raw = f"{prefix}.{secrets.token_urlsafe(32)}"
    key = APIKey.objects.create(
        name=name[:100],
        role=role,
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
