"""Every job ends: lost queue messages, time limits, lost claims (issue 14, point 6)."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from classifier.models import ModelVersion
from datasets import scraping
from datasets.models import ScrapeJob
from datasets.services import label_get_or_create
from tests.training.conftest import TINY, small_dataset  # noqa: F401 (fixture)
from training import runner
from training.models import TrainingRun

pytestmark = pytest.mark.django_db


def age(model, pk: int, seconds: float) -> None:
    model.objects.filter(pk=pk).update(
        updated_at=timezone.now() - timedelta(seconds=seconds)
    )


def test_a_queued_run_whose_message_was_lost_is_queued_again_then_failed(
    small_dataset,  # noqa: F811
    settings,
):
    settings.SNAPCLASS_JOB_QUEUED_TIMEOUT = 60
    run = runner.training_run_start(config=TINY, enqueue=False)  # message lost
    age(TrainingRun, run.pk, 30)
    assert runner.training_runs_requeue_stale() == {"requeued": 0, "failed": 0}

    age(TrainingRun, run.pk, 61)
    assert runner.training_runs_requeue_stale() == {"requeued": 1, "failed": 0}
    run.refresh_from_db()
    assert run.status == "queued" and run.message.startswith(runner.REQUEUED)

    age(TrainingRun, run.pk, 61)
    assert runner.training_runs_requeue_stale() == {"requeued": 0, "failed": 1}
    run.refresh_from_db()
    assert run.status == "failed" and "`train` queue" in run.message
    assert run.slot is None
    # The slot is free: the next run starts.
    assert runner.training_run_start(config=TINY, enqueue=False).status == "queued"


def test_a_queued_scrape_job_whose_message_was_lost_is_queued_again(settings):
    settings.SNAPCLASS_JOB_QUEUED_TIMEOUT = 60
    label = label_get_or_create(name="camera")
    job = scraping.scrape_job_create(label=label, provider="bing", enqueue=False)
    age(ScrapeJob, job.pk, 61)

    assert scraping.scrape_jobs_requeue_stale() == {"requeued": 1, "failed": 0}
    age(ScrapeJob, job.pk, 61)
    assert scraping.scrape_jobs_requeue_stale() == {"requeued": 0, "failed": 1}
    job.refresh_from_db()
    assert job.status == "failed" and "`scrape` queue" in job.message


def test_a_training_over_its_time_limit_ends_failed_and_frees_the_slot(
    small_dataset,  # noqa: F811
    settings,
):
    settings.SNAPCLASS_TRAIN_TIME_LIMIT = 1
    run = runner.training_run_start(config={**TINY, "epochs": 200}, enqueue=False)
    run = runner.training_run_claim(run.pk)
    started = time.monotonic()

    run = runner.training_run_execute(run)

    assert time.monotonic() - started < 60
    assert run.status == "failed"
    assert "exceeded its time limit of 1 s" in run.message
    assert run.slot is None and not ModelVersion.objects.exists()


def test_a_run_that_lost_its_claim_registers_and_promotes_nothing(
    small_dataset,  # noqa: F811
):
    run = runner.training_run_start(config=TINY, enqueue=False)
    run = runner.training_run_claim(run.pk)
    # The reaper marks it failed (no heartbeat) while this worker still trains.
    TrainingRun.objects.filter(pk=run.pk).update(
        status="failed", slot=None, message="reaped"
    )

    run = runner.training_run_execute(run)

    assert run.status == "failed" and run.message == "reaped"
    assert not ModelVersion.objects.exists()
