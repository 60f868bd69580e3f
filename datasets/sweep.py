"""The orphan sweep: remove media files that no row references.

A worker killed between writing an image's files and committing its row, or a
training run that failed after writing its artifacts, leaves files nobody will
ever read. The sweep (beat, nightly; `manage.py media_sweep --dry-run` to look
first) removes those older than SNAPCLASS_MEDIA_SWEEP_MIN_AGE, so that an ingest
that is committing right now never loses its files.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.core.files.storage import default_storage
from django.utils import timezone

from datasets import media
from datasets.models import Image, JobStatus

logger = logging.getLogger(__name__)

SWEPT_FOLDERS = ("images", "thumbs", "models", ".staging")
_RUN_FOLDER = re.compile(r"^models/run-(\d+)/")
_STAGING_JOB = re.compile(r"^\.staging/scrape-(\d+)/")


@dataclass
class SweepReport:
    dry_run: bool
    checked: int = 0
    removed: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "dry_run": self.dry_run,
            "checked": self.checked,
            "orphans": len(self.removed),
            "files": self.removed[:100],
        }


def referenced_names() -> set[str]:
    """Every media name a row points at: images, thumbnails, run snapshots, models."""
    from classifier.models import ModelVersion
    from training.models import RunImage

    names: set[str] = set()
    for file, thumb in Image.objects.values_list("file", "thumbnail").iterator(5000):
        names.update((file, thumb))
    names.update(RunImage.objects.values_list("file", flat=True).distinct())
    for row in ModelVersion.objects.values_list(
        "weights_path", "meta_path", "onnx_path"
    ):
        names.update(row)
    names.discard("")
    return names


def _busy() -> tuple[set[int], set[int]]:
    """Runs and scrape jobs still queued or running: their files are in the making."""
    from datasets.models import ScrapeJob
    from training.models import TrainingRun

    active = (JobStatus.QUEUED, JobStatus.RUNNING)
    runs = set(
        TrainingRun.objects.filter(status__in=active).values_list("pk", flat=True)
    )
    jobs = set(ScrapeJob.objects.filter(status__in=active).values_list("pk", flat=True))
    return runs, jobs


def media_sweep(*, dry_run: bool = False, min_age: float | None = None) -> SweepReport:
    """Remove (or with dry_run only list) old media files that no row references."""
    min_age = settings.SNAPCLASS_MEDIA_SWEEP_MIN_AGE if min_age is None else min_age
    cutoff = timezone.now() - timedelta(seconds=min_age)
    report = SweepReport(dry_run=dry_run)
    busy_runs, busy_jobs = _busy()
    # Files first, rows after: a row committed meanwhile is seen, its file kept.
    found = [
        (name, modified)
        for folder in SWEPT_FOLDERS
        for name, modified in media.walk(folder)
    ]
    referenced = referenced_names()
    for name, modified in found:
        report.checked += 1
        if name in referenced:
            continue
        if modified is None or timezone.is_naive(modified):
            modified = timezone.make_aware(modified) if modified else timezone.now()
        if modified > cutoff:
            continue
        run = _RUN_FOLDER.match(name)
        if run and int(run[1]) in busy_runs:
            continue
        job = _STAGING_JOB.match(name)
        if job and int(job[1]) in busy_jobs:
            continue
        report.removed.append(name)
        if not dry_run:
            try:
                default_storage.delete(name)
            except OSError as exc:  # gone meanwhile, or a permission problem
                logger.warning("sweep: could not remove %s: %s", name, exc)
    logger.info(
        "media sweep%s: %d files checked, %d orphans %s",
        " (dry run)" if dry_run else "",
        report.checked,
        len(report.removed),
        "found" if dry_run else "removed",
    )
    return report
