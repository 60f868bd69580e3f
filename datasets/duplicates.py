"""Curation writes and reads beyond relabel/delete: keep, and near-duplicate groups.

The cleaner and the near-duplicate page call these; every write goes through the
`datasets.services` functions or records an `ImageChange` the same way they do.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import transaction

from config.errors import DomainError
from datasets.models import Image, ImageChange, ImageStatus
from datasets.selectors import near_duplicate_groups
from datasets.services import image_delete, image_mark_reviewed


class NotNearDuplicates(DomainError):
    code = "not_near_duplicates"


def _user_or_none(user: Any) -> Any:
    return user if getattr(user, "pk", None) else None


@transaction.atomic
def image_keep(*, images: Iterable[Image | int], user: Any = None) -> int:
    """Record that a curator looked at the images and their labels are right.

    Nothing about the images changes; the record lets pages hide what was checked.
    """
    ids = [i.pk if isinstance(i, Image) else int(i) for i in images]
    locked = list(Image.objects.select_for_update().filter(pk__in=ids).order_by("pk"))
    ImageChange.objects.bulk_create(
        ImageChange(
            image=image,
            action=ImageChange.Action.KEEP,
            old_label_id=image.label_id,
            old_status=image.status,
            new_status=image.status,
            user=_user_or_none(user),
        )
        for image in locked
    )
    return len(locked)


def _connected(phashes: dict[int, int], max_distance: int) -> bool:
    """Whether every hash is linked to the others through steps of max_distance."""
    pending = set(phashes)
    frontier = [pending.pop()]
    while frontier:
        here = phashes[frontier.pop()]
        near = {
            pk for pk in pending if (here ^ phashes[pk]).bit_count() <= max_distance
        }
        pending -= near
        frontier.extend(near)
    return not pending


@transaction.atomic
def duplicate_group_keep_one(
    *,
    keep: int,
    images: Iterable[int],
    max_distance: int,
    user: Any = None,
) -> int:
    """Keep one image of a near-duplicate group and soft-delete the others.

    Refuses ids that are not one group of live near duplicates (a stale page or a
    forged form), so this never deletes images that merely arrived together. The
    kept image is marked reviewed when it was waiting for review. Returns how many
    images were deleted.
    """
    ids = {int(pk) for pk in images} | {int(keep)}
    rows = {
        image.pk: image
        for image in Image.objects.select_for_update().filter(pk__in=ids)
    }
    if len(ids) < 2:
        raise NotNearDuplicates("A group needs at least two images.")
    missing = sorted(ids - set(rows))
    if missing:
        raise NotNearDuplicates(f"No such images: {', '.join(map(str, missing))}.")
    gone = sorted(pk for pk, i in rows.items() if i.status == ImageStatus.DELETED)
    if gone:
        raise NotNearDuplicates(
            f"Already deleted: {', '.join(map(str, gone))}; reload the page."
        )
    if not _connected({pk: int(i.phash, 16) for pk, i in rows.items()}, max_distance):
        raise NotNearDuplicates(
            "These images are not near duplicates of each other "
            f"(perceptual hashes more than {max_distance} bits apart)."
        )
    kept = rows[int(keep)]
    deleted = image_delete(
        images=[i for pk, i in rows.items() if pk != kept.pk], user=user
    )
    if kept.status == ImageStatus.REVIEW:
        image_mark_reviewed(images=[kept], user=user)
    else:
        image_keep(images=[kept], user=user)
    return deleted


@transaction.atomic
def duplicate_group_keep_all(*, images: Iterable[int], user: Any = None) -> int:
    """Not duplicates after all: keep every image (reviewing those in review)."""
    ids = sorted({int(pk) for pk in images})
    if len(ids) < 2:
        raise NotNearDuplicates("A group needs at least two images.")
    rows = list(Image.objects.filter(pk__in=ids))
    if len(rows) != len(ids):
        raise NotNearDuplicates("Some of these images no longer exist.")
    image_mark_reviewed(
        images=[i for i in rows if i.status == ImageStatus.REVIEW], user=user
    )
    return image_keep(images=rows, user=user)


def near_duplicate_group_list(
    *, max_distance: int, include_kept: bool = False
) -> list[list[Image]]:
    """The live near-duplicate groups as images, oldest image first in each.

    A group whose every image a curator chose to keep ("not duplicates") is left
    out unless `include_kept`; a new near duplicate brings the group back.
    """
    groups = near_duplicate_groups(max_distance=max_distance)
    ids = [pk for group in groups for pk in group]
    images = Image.objects.select_related("label").in_bulk(ids)
    kept: set[int] = set()
    if not include_kept:
        kept = set(
            ImageChange.objects.filter(
                image_id__in=ids, action=ImageChange.Action.KEEP
            ).values_list("image_id", flat=True)
        )
    return [
        [images[pk] for pk in group if pk in images]
        for group in groups
        if include_kept or not set(group) <= kept
    ]
