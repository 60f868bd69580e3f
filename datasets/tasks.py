from __future__ import annotations

from celery import current_app, shared_task
from django.conf import settings

from datasets import scraping
from datasets.models import JobStatus


@shared_task(
    bind=True,
    acks_late=True,
    max_retries=3,
    soft_time_limit=settings.SNAPCLASS_SCRAPE_TIME_LIMIT,
    time_limit=settings.SNAPCLASS_SCRAPE_TIME_LIMIT + 60,
)
def scrape_job_execute(self, job_id: int) -> None:
    """Run one scrape job; a redelivered message finds the job claimed and stops."""
    job = scraping.scrape_job_claim(job_id)
    if job is None:
        return
    try:
        scraping.scrape_job_run(job)
        _job_ended(job_id)
    except scraping.TransientScrapeError as exc:
        if self.request.retries >= self.max_retries:
            scraping.scrape_job_finish(
                job_id,
                status=JobStatus.FAILED,
                message=f"{scraping.provider_title(job.provider)} did not answer "
                f"after {self.max_retries + 1} tries: {exc}",
            )
            _job_ended(job_id)
            return
        scraping.scrape_job_release(job_id, f"Retrying after: {exc}")
        raise self.retry(exc=exc, countdown=5 * 2**self.request.retries) from exc
    except BaseException as exc:  # time limit, worker shutdown, a bug: never `running`
        scraping.scrape_job_finish(
            job_id,
            status=JobStatus.FAILED,
            message=f"The job stopped: {type(exc).__name__}: {exc}",
        )
        raise


@shared_task
def media_sweep() -> dict:
    """Beat's nightly entry: remove media files that no row references."""
    from datasets.sweep import media_sweep as sweep

    return sweep().as_dict()


def _job_ended(job_id: int) -> None:
    # A project waiting for its images lives in the training app, which depends on
    # this one: ask for it by name rather than import it.
    current_app.send_task("training.tasks.projects_advance_for_job", args=[job_id])
