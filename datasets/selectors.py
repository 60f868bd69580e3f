"""Reads of the dataset that are more than a one-line query."""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet

from datasets.models import Image, ImageStatus, Label


def label_list_with_counts() -> QuerySet[Label]:
    """Labels with their image counts per status, in one query."""
    return Label.objects.annotate(
        active_count=Count("images", filter=Q(images__status=ImageStatus.ACTIVE)),
        review_count=Count("images", filter=Q(images__status=ImageStatus.REVIEW)),
        deleted_count=Count("images", filter=Q(images__status=ImageStatus.DELETED)),
    ).order_by("name")


def image_find_near_duplicate(phash: str, *, max_distance: int) -> Image | None:
    """The closest stored image whose perceptual hash is within `max_distance` bits."""
    if max_distance < 0:
        return None
    best: tuple[int, int] | None = None
    target = int(phash, 16)
    for pk, other in Image.objects.values_list("pk", "phash").iterator(chunk_size=5000):
        distance = (target ^ int(other, 16)).bit_count()
        if distance <= max_distance and (best is None or distance < best[0]):
            best = (distance, pk)
            if distance == 0:
                break
    return Image.objects.get(pk=best[1]) if best else None


def near_duplicate_groups(
    *, max_distance: int, statuses=(ImageStatus.ACTIVE, ImageStatus.REVIEW)
) -> list[list[int]]:
    """Groups of two or more image ids whose phashes are within `max_distance`."""
    rows = list(
        Image.objects.filter(status__in=statuses)
        .values_list("pk", "phash")
        .order_by("pk")
    )
    parent = {pk: pk for pk, _ in rows}

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    hashes = [(pk, int(h, 16)) for pk, h in rows]
    for i, (a, ha) in enumerate(hashes):
        for b, hb in hashes[i + 1 :]:
            if (ha ^ hb).bit_count() <= max_distance:
                parent[find(a)] = find(b)
    groups: dict[int, list[int]] = {}
    for pk, _ in rows:
        groups.setdefault(find(pk), []).append(pk)
    return [sorted(g) for g in groups.values() if len(g) > 1]
