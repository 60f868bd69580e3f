"""Reads of the dataset that are more than a one-line query."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from django.conf import settings
from django.db import connection
from django.db.models import Count, Max, Q, QuerySet

from datasets.models import Image, ImageStatus, Label, SourceKind


def label_list_with_counts() -> QuerySet[Label]:
    """Labels with their image counts per status, in one query."""
    return Label.objects.annotate(
        active_count=Count("images", filter=Q(images__status=ImageStatus.ACTIVE)),
        review_count=Count("images", filter=Q(images__status=ImageStatus.REVIEW)),
        deleted_count=Count("images", filter=Q(images__status=ImageStatus.DELETED)),
    ).order_by("name")


def images_visible(*, private: bool) -> QuerySet[Image]:
    """The images a client may list and fetch.

    `private` (viewers, curators, their keys): every image. Otherwise the active
    images of active labels, not feedback uploads, or none at all when
    SNAPCLASS_PUBLIC_IMAGES is "none".
    """
    if private:
        return Image.objects.all()
    if settings.SNAPCLASS_PUBLIC_IMAGES == "none":
        return Image.objects.none()
    return Image.objects.filter(
        status=ImageStatus.ACTIVE, label__is_active=True
    ).exclude(source_kind=SourceKind.FEEDBACK)


class _PhashIndex:
    """Every stored image's perceptual hash, kept per process and topped up by id.

    Reading all hashes for every ingest made imports quadratic. Rows are almost only
    ever added, so one cheap count tells whether reading the new ids is enough.
    """

    def __init__(self) -> None:
        self.hashes: dict[int, int] = {}
        self.last_pk = 0
        self.lock = threading.Lock()

    def refresh(self) -> None:
        state = Image.objects.aggregate(n=Count("pk"), last=Max("pk"))
        n, last = state["n"], state["last"] or 0
        if n == len(self.hashes) and last == self.last_pk:
            return
        if last < self.last_pk or n < len(self.hashes):
            # Rows went away (a hard delete, a rolled-back test): start again.
            self.hashes, self.last_pk = {}, 0
        rows = Image.objects.filter(pk__gt=self.last_pk).values_list("pk", "phash")
        for pk, phash in rows.order_by("pk").iterator(chunk_size=5000):
            self.hashes[pk] = int(phash, 16)
            self.last_pk = pk
        if len(self.hashes) != n:  # ids reused below last_pk: rebuild once
            self.hashes, self.last_pk = {}, 0
            self.refresh()

    def closest(
        self, phashes: Sequence[str], max_distance: int
    ) -> list[list[tuple[int, int]]]:
        """(distance, pk) of the stored hashes near each of `phashes`, nearest first."""
        targets = [int(phash, 16) for phash in phashes]
        with self.lock:
            self.refresh()
            stored = list(self.hashes.items())
        return [
            sorted(
                (distance, pk)
                for pk, other in stored
                if (distance := (target ^ other).bit_count()) <= max_distance
            )
            for target in targets
        ]

    def forget(self, pk: int) -> None:
        with self.lock:
            self.hashes.pop(pk, None)


_phash_index: dict[str, _PhashIndex] = {}


def _index() -> _PhashIndex:
    # One index per database alias and name: tests swap databases under us.
    key = str(connection.settings_dict.get("NAME"))
    if key not in _phash_index:
        _phash_index[key] = _PhashIndex()
    return _phash_index[key]


def image_find_near_duplicate(phash: str, *, max_distance: int) -> Image | None:
    """The closest stored image whose perceptual hash is within `max_distance` bits."""
    return images_find_near_duplicates([phash], max_distance=max_distance)[0]


def images_find_near_duplicates(
    phashes: Sequence[str], *, max_distance: int
) -> list[Image | None]:
    """For each hash, the closest stored image within `max_distance` bits, or None.

    One pass over the index and one query, however many hashes.
    """
    if max_distance < 0 or not phashes:
        return [None] * len(phashes)
    index = _index()
    found = index.closest(phashes, max_distance)
    wanted = {pk for near in found for _, pk in near}
    images = Image.objects.in_bulk(wanted) if wanted else {}
    for pk in wanted - images.keys():  # deleted since the index read it
        index.forget(pk)
    return [
        next((images[pk] for _, pk in near if pk in images), None) for near in found
    ]


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


def scrape_job_reasons(job) -> list[dict]:
    """Why URLs of a job gave no image: code, words, count and sample URLs."""
    from datasets.scraping import reason_words

    samples: dict[str, list[dict]] = {}
    for sample in job.reason_samples or []:
        samples.setdefault(sample.get("code", ""), []).append(sample)
    return [
        {
            "code": code,
            "words": reason_words(code),
            "count": n,
            "samples": samples.get(code, [])[:5],
        }
        for code, n in sorted(job.reasons.items(), key=lambda kv: (-kv[1], kv[0]))
    ]
