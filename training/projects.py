"""From typed words to a served classifier: labels, scrape jobs, then a run.

The new-classifier page, `POST /api/v1/projects/` and `manage.py classify` all call
`project_create`; `project_advance` starts the run once every scrape job has ended
(the scrape task asks for it, and the reaper's minute tick is the backstop).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Q

from config.errors import Conflict, DomainError
from datasets import scraping, search
from datasets.labels import ClassSpec, labels_for_classes
from datasets.models import ImageStatus, JobStatus, ScrapeJob
from training import runner
from training.models import Project, TrainingRun, Trigger

logger = logging.getLogger(__name__)

ACTIVE_JOB = (JobStatus.QUEUED, JobStatus.RUNNING)


class InvalidProject(DomainError):
    code = "invalid_project"


class ProviderNotConfigured(Conflict):
    code = "provider_not_configured"


def project_create(
    *,
    classes: list[ClassSpec],
    provider: str | None = None,
    per_label: int = 150,
    train: bool = True,
    train_config: dict[str, Any] | None = None,
    user: Any = None,
    enqueue: bool = True,
) -> Project:
    """Check everything first, then create the labels, the project and one scrape
    job per query of each class; the run starts when the images are in."""
    provider = provider or settings.SNAPCLASS_SEARCH_PROVIDER
    if provider not in search.PROVIDERS:
        known = ", ".join(sorted(search.PROVIDERS))
        raise InvalidProject(f"Unknown provider “{provider}”; known: {known}.")
    missing = scraping.provider_missing_setting(provider)
    if missing:
        title = scraping.provider_title(provider)
        raise ProviderNotConfigured(
            f"{title} needs {missing}, which is not set on the server; choose "
            "another provider or set it in the environment."
        )
    if not classes:
        raise InvalidProject("Type at least one class name.")
    if not 1 <= per_label <= settings.SNAPCLASS_SCRAPE_MAX_IMAGES:
        raise InvalidProject(
            f"Ask for between 1 and {settings.SNAPCLASS_SCRAPE_MAX_IMAGES} images "
            "per class."
        )
    if provider == "urls":
        empty = [spec.name for spec in classes if not spec.urls]
        if empty:
            raise InvalidProject(
                "The URL list needs image URLs for every class; none for: "
                + ", ".join(empty)
                + "."
            )
    config = runner.training_config_build(train_config).to_dict() if train else {}
    with transaction.atomic():
        outcomes = labels_for_classes(classes)
        project = Project.objects.create(
            name=", ".join(spec.name for spec in classes)[:255],
            provider=provider,
            per_label=per_label,
            train=train,
            train_config=config,
            notes=[o.note for o in outcomes if o.note],
            created_by=user if getattr(user, "pk", None) else None,
        )
        project.labels.set([o.label for o in outcomes])
        jobs = []
        for spec, outcome in zip(classes, outcomes, strict=True):
            jobs += scraping.scrape_jobs_create_for_label(
                label=outcome.label,
                requested=per_label,
                provider=provider,
                urls=list(spec.urls),
                user=user,
                enqueue=enqueue,
            )
        project.scrape_jobs.set(jobs)
    return project


def project_advance(project_id: int, *, enqueue: bool = True) -> Project:
    """Once every scrape job of a collecting project has ended, start its run (or
    mark it done); safe to call any number of times, from any process."""
    project = Project.objects.get(pk=project_id)
    if project.status != Project.Status.SCRAPING:
        return project
    if project.scrape_jobs.filter(status__in=ACTIVE_JOB).exists():
        return project
    if not project.train:
        Project.objects.filter(pk=project.pk, status=Project.Status.SCRAPING).update(
            status=Project.Status.DONE, message="The images are in."
        )
        return _reload(project)
    # Claim the start: of several callers, one gets here.
    n = Project.objects.filter(pk=project.pk, status=Project.Status.SCRAPING).update(
        status=Project.Status.TRAINING, message=""
    )
    if n != 1:
        return _reload(project)
    try:
        run = runner.training_run_start(
            config=project.train_config or None,
            user=project.created_by,
            trigger=Trigger.AUTO,
            enqueue=enqueue,
        )
    except runner.RunAlreadyActive as exc:
        # Wait for that run: the next tick (or the next job's end) tries again.
        Project.objects.filter(pk=project.pk).update(
            status=Project.Status.SCRAPING,
            message=f"The images are in; waiting to train: {exc.message}",
        )
        return _reload(project)
    except DomainError as exc:
        Project.objects.filter(pk=project.pk).update(
            status=Project.Status.FAILED,
            message=f"Training did not start: {exc.message}",
        )
        return _reload(project)
    Project.objects.filter(pk=project.pk).update(run=run)
    return _reload(project)


def projects_advance_for_job(job_id: int) -> list[int]:
    """Advance the projects a finished scrape job belongs to."""
    ids = list(
        Project.objects.filter(
            scrape_jobs=job_id, status=Project.Status.SCRAPING
        ).values_list("pk", flat=True)
    )
    for pk in ids:
        project_advance(pk)
    return ids


def projects_advance_waiting() -> int:
    """The backstop: advance every project still collecting images."""
    ids = list(
        Project.objects.filter(status=Project.Status.SCRAPING).values_list(
            "pk", flat=True
        )
    )
    for pk in ids:
        project_advance(pk)
    return len(ids)


def _reload(project: Project) -> Project:
    project.refresh_from_db()
    return project


# --- reads -----------------------------------------------------------------------


@dataclass
class ClassProgress:
    name: str
    slug: str
    requested: int = 0
    found: int = 0
    processed: int = 0
    downloaded: int = 0
    duplicates: int = 0
    not_usable: int = 0
    active_images: int = 0
    jobs: list[ScrapeJob] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return all(job.is_finished for job in self.jobs)

    @property
    def status(self) -> str:
        statuses = {job.status for job in self.jobs}
        for status in (JobStatus.RUNNING, JobStatus.QUEUED):
            if status in statuses:
                return status
        if statuses == {JobStatus.FAILED}:
            return JobStatus.FAILED
        if JobStatus.SUCCEEDED in statuses:
            return JobStatus.SUCCEEDED
        return next(iter(statuses), JobStatus.QUEUED)

    @property
    def progress(self) -> float:
        if self.finished:
            return 1.0
        total = sum(job.found or job.requested for job in self.jobs)
        return min(1.0, self.processed / total) if total else 0.0

    @property
    def messages(self) -> list[str]:
        return [job.message for job in self.jobs if job.status == JobStatus.FAILED]


@dataclass
class ProjectState:
    project: Project
    stage: str  # scraping | training | ready | failed
    headline: str
    classes: list[ClassProgress]
    run: TrainingRun | None
    model_version: Any  # classifier.models.ModelVersion | None
    is_current: bool

    @property
    def finished(self) -> bool:
        return self.stage in ("ready", "failed")


def project_state(project: Project) -> ProjectState:
    """Everything the page, the API and the command show about a project."""
    jobs = list(project.scrape_jobs.select_related("label").order_by("pk"))
    labels = list(
        project.labels.annotate(
            n=Count("images", filter=Q(images__status=ImageStatus.ACTIVE))
        ).order_by("pk")
    )
    classes = {
        label.pk: ClassProgress(name=label.name, slug=label.slug, active_images=label.n)
        for label in labels
    }
    for job in jobs:
        row = classes.get(job.label_id)
        if row is None:
            continue
        row.jobs.append(job)
        row.requested += job.requested
        row.found += job.found
        row.processed += job.processed
        row.downloaded += job.downloaded
        row.duplicates += job.duplicates
        row.not_usable += job.rejected + job.failed
    rows = list(classes.values())
    run = project.run
    version = getattr(run, "model_version", None) if run is not None else None
    is_current = bool(version and version.is_current)
    stage, headline = _stage(project, rows, run, version, is_current)
    return ProjectState(project, stage, headline, rows, run, version, is_current)


def _stage(project, rows, run, version, is_current) -> tuple[str, str]:
    if project.status == Project.Status.FAILED:
        return "failed", project.message
    if project.status == Project.Status.DONE:
        total = sum(row.active_images for row in rows)
        return "ready", f"The images are in: {total} active images in these classes."
    if project.status == Project.Status.SCRAPING or run is None:
        done = sum(1 for row in rows if row.finished)
        waiting = project.message or ""
        return "scraping", waiting or (
            f"Collecting images: {done} of {len(rows)} classes done."
        )
    if run.status in ACTIVE_JOB:
        text = run.progress_text or "queued for a worker"
        return "training", f"Training run {run.pk}: {text}."
    if run.status != JobStatus.SUCCEEDED:
        return "failed", f"Training run {run.pk} {run.status}: {run.message}"
    if is_current:
        return "ready", (
            f"Model v{version.pk} is current: the upload page answers with it."
        )
    if version is not None:
        decision = version.decision or "it was not promoted."
        return (
            "ready",
            f"Model v{version.pk} was trained but is not current: {decision}",
        )
    return "failed", f"Training run {run.pk} succeeded but registered no model."


def project_totals(state: ProjectState) -> dict[str, int]:
    return {
        key: sum(getattr(row, key) for row in state.classes)
        for key in ("requested", "downloaded", "duplicates", "not_usable")
    }


def projects_recent(limit: int = 10):
    return Project.objects.select_related("run")[:limit]
