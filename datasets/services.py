"""Writes to the dataset. `image_ingest` is the only way an Image row is made."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from config.errors import Conflict, DomainError
from config.transactions import on_rollback
from datasets import imaging
from datasets.models import (
    Image,
    ImageChange,
    ImageStatus,
    Label,
    ReviewReason,
    SourceKind,
)
from datasets.selectors import images_find_near_duplicates
from datasets.staging import StagedFile, staged_place

if TYPE_CHECKING:
    from PIL import Image as PILImage

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


# Enum .values builds a new list on every access; this is asked per image.
_SOURCE_KINDS = frozenset(SourceKind.values)


def label_get_or_create(
    *, name: str, queries: list[str] | None = None, is_active: bool = True
) -> Label:
    """The label named `name` (matched by slug), created if it does not exist
    (inactive with `is_active=False`: not trained on until a curator says so)."""
    name = (name or "").strip()
    slug = slugify(name)
    if not slug or len(name) > 64:
        raise InvalidLabel(f"{name!r} is not a usable label name.")
    label = Label.objects.filter(slug=slug).first()
    if label is None:
        try:
            with transaction.atomic():
                label = Label.objects.create(
                    slug=slug, name=name, queries=queries or [], is_active=is_active
                )
        except IntegrityError:
            label = Label.objects.get(slug=slug)
    return label


def _check_file_size(data: bytes) -> None:
    if len(data) > settings.SNAPCLASS_MAX_FILE_BYTES:
        raise imaging.ImageRejected(
            "too_large",
            f"The file is larger than {settings.SNAPCLASS_MAX_FILE_BYTES} bytes.",
        )


def image_decode(data: bytes) -> PILImage.Image:
    """Untrusted bytes -> upright RGB image capped like ingest, or ImageRejected.

    max_side applies fit_long_side (and JPEG draft decoding) exactly as
    image_normalize does, so a model sees what it was trained on.
    """
    _check_file_size(data)
    return imaging.decode_image(
        data,
        min_side=settings.SNAPCLASS_MIN_IMAGE_SIDE,
        max_pixels=settings.SNAPCLASS_MAX_IMAGE_PIXELS,
        max_side=settings.SNAPCLASS_MAX_IMAGE_SIDE,
    )


def image_normalize(data: bytes) -> imaging.NormalizedImage:
    """Check and normalise untrusted bytes with the configured limits (thread-safe)."""
    _check_file_size(data)
    return imaging.normalize_image(
        data,
        max_side=settings.SNAPCLASS_MAX_IMAGE_SIDE,
        thumb_side=settings.SNAPCLASS_THUMB_SIDE,
        min_side=settings.SNAPCLASS_MIN_IMAGE_SIDE,
        max_pixels=settings.SNAPCLASS_MAX_IMAGE_PIXELS,
    )


def image_fields(
    *,
    label: Label | None,
    source_kind: str,
    source_url: str = "",
    page_url: str = "",
    provider: str = "",
    query: str = "",
    license: str = "",
    original_name: str = "",
    status: str | None = None,
    review_reason: str = "",
    user: Any = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The fields of an image row other than its content, checked and truncated.

    `status` None means: decided by ingest (`near_duplicate_review`); a caller that
    sets `review` says why in `review_reason`.
    """
    if source_kind not in _SOURCE_KINDS:
        raise ValueError(f"unknown source kind {source_kind!r}")
    return {
        "label": label,
        "source_kind": source_kind,
        "source_url": source_url[:2000],
        "page_url": page_url[:2000],
        "provider": provider[:32],
        "query": query[:255],
        "license": license[:255],
        "original_name": original_name[:255],
        "status": status,
        "review_reason": review_reason if status == ImageStatus.REVIEW else "",
        "added_by": user if getattr(user, "pk", None) else None,
        **(extra or {}),
    }


@dataclass(frozen=True)
class IngestItem:
    normalized: imaging.NormalizedImage
    fields: dict[str, Any]  # from image_fields()
    # The image and its thumbnail already written to a staging folder, if they were.
    staged: tuple[StagedFile, StagedFile] | None = None


def near_duplicate_review(like: Image | None, label: Label | None) -> str:
    """Why a new image that resembles `like` must wait for review ("" if it need not).

    A near duplicate of an image with the same label is one more picture of the same
    subject and is trained on; one of another label, or of an image a curator
    deleted, is a conflict for a person to settle.
    """
    if like is None:
        return ""
    if like.status == ImageStatus.DELETED:
        return ReviewReason.DELETED_LOOKALIKE
    if like.label_id != (label.pk if label is not None else None):
        return ReviewReason.CONFLICT
    return ""


def image_file_name(field: str, sha256: str) -> str:
    """Where an image's `file` or `thumbnail` is stored: sharded by its hash."""
    folder = {"file": "images", "thumbnail": "thumbs"}[field]
    return f"{folder}/{sha256[:2]}/{sha256}.jpg"


def image_ingest(
    *,
    data: bytes | None = None,
    normalized: imaging.NormalizedImage | None = None,
    **fields: Any,
) -> Image:
    """Check, normalise and store one image with its thumbnail, atomically.

    Pass the raw `data`, or `normalized` when `image_normalize` already ran (in a
    worker thread, say), and the row's fields as `image_fields` takes them. Raises
    `imaging.ImageRejected` for anything that is not a usable image and
    `DuplicateImage` when the same normalised content is already stored. A near
    duplicate joins the group of the image it resembles (`near_duplicate_of`,
    `group_key`); it is trained on when that image has the same label, and waits
    for review (`near_duplicate_review`) when it does not.
    """
    item_fields = image_fields(**fields)
    norm = normalized if normalized is not None else image_normalize(data or b"")
    [outcome] = image_ingest_many([IngestItem(norm, item_fields)])
    if isinstance(outcome, DuplicateImage):
        raise outcome
    return outcome


def image_ingest_many(items: Sequence[IngestItem]) -> list[Image | DuplicateImage]:
    """Store normalised images in one transaction, in order: each becomes its new
    Image or a DuplicateImage naming the stored one (an earlier item of the same
    batch included).

    One query finds the exact duplicates, one the near ones, and one insert per
    level of near duplicates within the batch stores the rows: a scrape job's
    ingest costs a few queries per batch instead of several per image. The files
    are written first and removed again if the rows are not stored.
    """
    if not items:
        return []
    known = {
        image.sha256: image
        for image in Image.objects.filter(
            sha256__in={item.normalized.sha256 for item in items}
        ).order_by()
    }
    max_distance = settings.SNAPCLASS_NEAR_DUPLICATE_DISTANCE
    near_stored = images_find_near_duplicates(
        [item.normalized.phash for item in items], max_distance=max_distance
    )
    outcomes: list[Image | DuplicateImage | None] = [None] * len(items)
    rows: dict[int, Image] = {}  # item index -> new row
    first_with: dict[str, int] = {}  # sha256 -> index of the first new row with it
    same_as: dict[int, int] = {}  # index -> earlier index with the same content
    near_new: dict[int, int] = {}  # index -> earlier new row it resembles
    level: dict[int, int] = {}  # inserted after the rows it points at
    for i, item in enumerate(items):
        norm = item.normalized
        if norm.sha256 in known:
            outcomes[i] = DuplicateImage(known[norm.sha256])
            continue
        if norm.sha256 in first_with:
            same_as[i] = first_with[norm.sha256]
            continue
        first_with[norm.sha256] = i
        fields = dict(item.fields)
        near = near_stored[i]
        if near is None and max_distance >= 0:
            close = [
                (distance, j)
                for j in rows
                if (distance := imaging.phash_distance(norm.phash, rows[j].phash))
                <= max_distance
            ]
            if close:
                near_new[i] = min(close)[1]
        level[i] = level[near_new[i]] + 1 if i in near_new else 0
        like = near if near is not None else rows.get(near_new.get(i, -1))
        if fields.get("status") is None:
            reason = near_duplicate_review(like, fields["label"])
            fields["status"] = ImageStatus.REVIEW if reason else ImageStatus.ACTIVE
            fields["review_reason"] = reason
        rows[i] = Image(
            width=norm.width,
            height=norm.height,
            sha256=norm.sha256,
            phash=norm.phash,
            near_duplicate_of=near,
            group_key=like.group_key if like is not None else norm.sha256,
            **fields,
        )

    written: list[str] = []
    try:
        for i, row in rows.items():
            norm = items[i].normalized
            staged = items[i].staged or (None, None)
            for field, content, staged_file in (
                ("file", norm.jpeg, staged[0]),
                ("thumbnail", norm.thumbnail, staged[1]),
            ):
                name = image_file_name(field, norm.sha256)
                if staged_file is not None:
                    name = staged_place(staged_file, name)
                else:
                    name = default_storage.save(name, ContentFile(content))
                written.append(name)
                setattr(row, field, name)
        with transaction.atomic():
            for depth in sorted(set(level.values())):
                wave = [i for i in rows if level[i] == depth]
                for i in wave:
                    if i in near_new:
                        rows[i].near_duplicate_of = rows[near_new[i]]
                Image.objects.bulk_create([rows[i] for i in wave])
    except IntegrityError:
        # Another process stored the same content meanwhile: sort it out one by one.
        _delete_files(written)
        if len(items) > 1:
            return [image_ingest_many([item])[0] for item in items]
        existing = Image.objects.filter(sha256=items[0].normalized.sha256).first()
        if existing is None:
            raise
        return [DuplicateImage(existing)]
    except BaseException:
        _delete_files(written)
        raise
    _delete_files_on_rollback(written)
    for i, row in rows.items():
        outcomes[i] = row
    for i, j in same_as.items():
        outcomes[i] = DuplicateImage(rows[j])
    return outcomes  # type: ignore[return-value]


def _delete_files_on_rollback(names: list[str]) -> None:
    """Inside a caller's transaction the rows may still roll back: their files go
    with them (outside one, the rows are committed already)."""
    if names:
        on_rollback(lambda: _delete_files(names))


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
    images: Iterable[Image],
    *,
    status: str,
    action: str,
    user: Any,
    only_from: set[str],
    review_reason: str = "",
) -> int:
    to_change = [i for i in _lock(images) if i.status in only_from]
    _record(to_change, action=action, user=user, new_status=status)
    Image.objects.filter(pk__in=[i.pk for i in to_change]).update(
        status=status,
        review_reason=review_reason if status == ImageStatus.REVIEW else "",
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
def image_flag(*, images: Iterable[Image], user: Any = None) -> int:
    """Hold active images back from training until a curator has looked at them."""
    return _set_status(
        images,
        status=ImageStatus.REVIEW,
        action=ImageChange.Action.FLAG,
        user=user,
        only_from={ImageStatus.ACTIVE},
        review_reason=ReviewReason.FLAGGED,
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
