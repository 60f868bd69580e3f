from __future__ import annotations

from celery import shared_task
from django.conf import settings

from datasets.models import JobStatus
from training import projects, runner


@shared_task(
    acks_late=True,
    soft_time_limit=settings.SNAPCLASS_TRAIN_TIME_LIMIT,
    time_limit=settings.SNAPCLASS_TRAIN_TIME_LIMIT + 120,
)
def training_run_execute(run_id: int) -> None:
    """Train one run on the `train` queue; a redelivered message finds it claimed."""
    run = runner.training_run_claim(run_id)
    if run is None:
        return
    try:
        runner.training_run_execute(run, hard_limit=True)
    except BaseException as exc:  # time limit or shutdown: never leave it `running`
        runner.training_run_finish(run_id, status=JobStatus.FAILED, message=repr(exc))
        raise


@shared_task
def jobs_reap_stale() -> dict[str, int]:
    """Every job ends: running ones whose worker died are marked failed, queued
    ones whose message was lost are queued again (then failed); projects whose
    images are in start their run."""
    from datasets.scraping import scrape_jobs_reap_stale, scrape_jobs_requeue_stale

    scrape_queued = scrape_jobs_requeue_stale()
    run_queued = runner.training_runs_requeue_stale()
    return {
        "scrape_jobs": scrape_jobs_reap_stale(),
        "training_runs": runner.training_runs_reap_stale(),
        "scrape_jobs_requeued": scrape_queued["requeued"],
        "scrape_jobs_never_started": scrape_queued["failed"],
        "training_runs_requeued": run_queued["requeued"],
        "training_runs_never_started": run_queued["failed"],
        # The backstop for a lost "job ended" message or a run that was busy.
        "projects": projects.projects_advance_waiting(),
    }


@shared_task
def projects_advance_for_job(job_id: int) -> list[int]:
    """A scrape job ended: start the runs of the projects whose images are in."""
    return projects.projects_advance_for_job(job_id)


@shared_task
def training_retrain_scheduled(force: bool = False) -> int | None:
    """Beat's nightly entry: retrain when the dataset changed enough."""
    run = runner.training_retrain_if_needed(force=force)
    return run.pk if run else None
