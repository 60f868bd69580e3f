"""Writes to the dataset. `image_ingest` is the only way an Image row is made."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from config.errors import Conflict, DomainError
from datasets import imaging
from datasets.models import Image, ImageChange, ImageStatus, Label, SourceKind
from datasets.selectors import image_find_near_duplicate

logger = logging.getLogger(__name__)


class DuplicateImage(Conflict):
    code = "duplicate"

    def __init__(self, existing: Image) -> None:
        super().__init__(
            f"This image is already in the dataset as image {existing.pk}."
        )
        self.existing = existing


class InvalidLabel(DomainError):
    code = "invalid_label"


def label_get_or_create(*, name: str, queries: list[str] | None = None) -> Label:
    """The label named `name` (matched by slug), created if it does not exist."""
    name = (name or "").strip()
    slug = slugify(name)
    if not slug or len(name) > 64:
        raise InvalidLabel(f"{name!r} is not a usable label name.")
    label = Label.objects.filter(slug=slug).first()
    if label is None:
        try:
            with transaction.atomic():
                label = Label.objects.create(
                    slug=slug, name=name, queries=queries or []
                )
        except IntegrityError:
            label = Label.objects.get(slug=slug)
    return label


def image_normalize(data: bytes) -> imaging.NormalizedImage:
    """Check and normalise untrusted bytes with the configured limits (thread-safe)."""
    if len(data) > settings.SNAPCLASS_MAX_FILE_BYTES:
        raise imaging.ImageRejected(
            "too_large",
            f"The file is larger than {settings.SNAPCLASS_MAX_FILE_BYTES} bytes.",
        )
    return imaging.normalize_image(
        data,
        max_side=settings.SNAPCLASS_MAX_IMAGE_SIDE,
        thumb_side=settings.SNAPCLASS_THUMB_SIDE,
        min_side=settings.SNAPCLASS_MIN_IMAGE_SIDE,
        max_pixels=settings.SNAPCLASS_MAX_IMAGE_PIXELS,
    )


def image_ingest(
    *,
    data: bytes | None = None,
    normalized: imaging.NormalizedImage | None = None,
    label: Label | None,
    source_kind: str,
    source_url: str = "",
    page_url: str = "",
    provider: str = "",
    query: str = "",
    license: str = "",
    original_name: str = "",
    status: str | None = None,
    user: Any = None,
    extra: dict[str, Any] | None = None,
) -> Image:
    """Check, normalise and store one image with its thumbnail, atomically.

    Pass the raw `data`, or `normalized` when `image_normalize` already ran (in a
    worker thread, say). Raises `imaging.ImageRejected` for anything that is not a
    usable image and `DuplicateImage` when the same normalised content is already
    stored. A near duplicate is stored with status `review` and a pointer to the
    image it resembles.
    """
    if source_kind not in SourceKind.values:
        raise ValueError(f"unknown source kind {source_kind!r}")
    norm = normalized if normalized is not None else image_normalize(data or b"")
    existing = Image.objects.filter(sha256=norm.sha256).order_by().first()
    if existing is not None:
        raise DuplicateImage(existing)
    near = image_find_near_duplicate(
        norm.phash, max_distance=settings.SNAPCLASS_NEAR_DUPLICATE_DISTANCE
    )
    if status is None:
        status = ImageStatus.REVIEW if near is not None else ImageStatus.ACTIVE

    sha = norm.sha256
    written: list[str] = []
    try:
        with transaction.atomic():
            written.append(
                default_storage.save(
                    f"images/{sha[:2]}/{sha}.jpg", ContentFile(norm.jpeg)
                )
            )
            written.append(
                default_storage.save(
                    f"thumbs/{sha[:2]}/{sha}.jpg", ContentFile(norm.thumbnail)
                )
            )
            image = Image.objects.create(
                label=label,
                file=written[0],
                thumbnail=written[1],
                width=norm.width,
                height=norm.height,
                sha256=sha,
                phash=norm.phash,
                source_kind=source_kind,
                source_url=source_url[:2000],
                page_url=page_url[:2000],
                provider=provider[:32],
                query=query[:255],
                license=license[:255],
                original_name=original_name[:255],
                status=status,
                near_duplicate_of=near,
                added_by=user if getattr(user, "pk", None) else None,
                **(extra or {}),
            )
    except IntegrityError:
        _delete_files(written)
        existing = Image.objects.filter(sha256=sha).first()
        if existing is None:
            raise
        raise DuplicateImage(existing) from None
    except BaseException:
        _delete_files(written)
        raise
    return image


def _delete_files(names: Iterable[str]) -> None:
    for name in names:
        try:
            default_storage.delete(name)
        except OSError:  # pragma: no cover - best effort cleanup
            logger.warning("could not remove %s after a failed ingest", name)


def _record(
    images: list[Image],
    *,
    action: str,
    user: Any,
    new_label: Label | None = None,
    new_status: str = "",
) -> None:
    ImageChange.objects.bulk_create(
        ImageChange(
            image=image,
            action=action,
            old_label_id=image.label_id,
            new_label=new_label if action == ImageChange.Action.RELABEL else None,
            old_status=image.status,
            new_status=new_status or image.status,
            user=user if getattr(user, "pk", None) else None,
        )
        for image in images
    )


@transaction.atomic
def image_relabel(*, images: Iterable[Image], label: Label, user: Any = None) -> int:
    """Give the images a new label; images already carrying it are left alone."""
    to_change = [i for i in _lock(images) if i.label_id != label.pk]
    _record(to_change, action=ImageChange.Action.RELABEL, user=user, new_label=label)
    Image.objects.filter(pk__in=[i.pk for i in to_change]).update(label=label)
    return len(to_change)


def _set_status(
    images: Iterable[Image], *, status: str, action: str, user: Any, only_from: set[str]
) -> int:
    to_change = [i for i in _lock(images) if i.status in only_from]
    _record(to_change, action=action, user=user, new_status=status)
    Image.objects.filter(pk__in=[i.pk for i in to_change]).update(
        status=status,
        status_changed_at=timezone.now(),
        status_changed_by=user if getattr(user, "pk", None) else None,
    )
    return len(to_change)


@transaction.atomic
def image_delete(*, images: Iterable[Image], user: Any = None) -> int:
    """Soft delete: the files stay and `image_restore` brings the images back."""
    return _set_status(
        images,
        status=ImageStatus.DELETED,
        action=ImageChange.Action.DELETE,
        user=user,
        only_from={ImageStatus.ACTIVE, ImageStatus.REVIEW},
    )


@transaction.atomic
def image_restore(*, images: Iterable[Image], user: Any = None) -> int:
    return _set_status(
        images,
        status=ImageStatus.ACTIVE,
        action=ImageChange.Action.RESTORE,
        user=user,
        only_from={ImageStatus.DELETED},
    )


@transaction.atomic
def image_mark_reviewed(*, images: Iterable[Image], user: Any = None) -> int:
    return _set_status(
        images,
        status=ImageStatus.ACTIVE,
        action=ImageChange.Action.REVIEW,
        user=user,
        only_from={ImageStatus.REVIEW},
    )


def _lock(images: Iterable[Image]) -> list[Image]:
    ids = [i.pk if isinstance(i, Image) else int(i) for i in images]
    return list(Image.objects.select_for_update().filter(pk__in=ids).order_by("pk"))
