"""Every job ends, with real processes (issue 14, point 6): PostgreSQL, Redis and
a `--pool=solo` worker, where Celery enforces no time limit."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from classifier.models import ModelVersion
from tests.integration.conftest import wait_for
from tests.training.conftest import TINY, small_dataset  # noqa: F401 (fixture)
from training import runner
from training.models import TrainingRun
from training.tasks import jobs_reap_stale


def finished(run_id: int) -> TrainingRun | None:
    return TrainingRun.objects.filter(
        pk=run_id, status__in=["succeeded", "failed", "cancelled"]
    ).first()


def test_a_stale_queued_run_is_recovered_and_the_next_run_starts(
    small_dataset,  # noqa: F811
    start_worker,
    settings,
):
    # The broker was down at commit: the run's message never reached the queue.
    lost = runner.training_run_start(config=TINY, enqueue=False)
    start_worker("train")
    time.sleep(2)
    assert TrainingRun.objects.get(pk=lost.pk).status == "queued"  # stuck...
    settings.SNAPCLASS_JOB_QUEUED_TIMEOUT = 1
    TrainingRun.objects.filter(pk=lost.pk).update(
        updated_at=timezone.now() - timedelta(seconds=5)
    )

    result = jobs_reap_stale()  # ...until beat's reaper sends it again

    assert result["training_runs_requeued"] == 1
    run = wait_for(lambda: finished(lost.pk), timeout=180, message="the run")
    assert run.status == "succeeded", run.message
    following = runner.training_run_start(config=TINY)
    run = wait_for(lambda: finished(following.pk), timeout=180, message="next run")
    assert run.status == "succeeded", run.message


def test_a_training_over_its_time_limit_under_the_solo_pool_fails_and_frees_the_slot(
    small_dataset,  # noqa: F811
    start_worker,
):
    limited = start_worker("train", SNAPCLASS_TRAIN_TIME_LIMIT="3")
    run = runner.training_run_start(config={**TINY, "epochs": 200})

    run = wait_for(lambda: finished(run.pk), timeout=180, message="the run to end")

    assert run.status == "failed"
    assert "exceeded its time limit of 3 s" in run.message
    assert run.slot is None and not ModelVersion.objects.exists()
    # The slot is free: the next run starts (on a worker without the tiny limit,
    # which a loaded machine could exceed with a one-epoch run).
    limited.stop()
    start_worker("train")
    following = runner.training_run_start(config=TINY)
    run = wait_for(lambda: finished(following.pk), timeout=180, message="next run")
    assert run.status == "succeeded", run.message


@pytest.mark.django_db(transaction=True)
def test_heartbeats_go_on_while_the_model_is_registered(
    postgres,
    small_dataset,  # noqa: F811
    monkeypatch,
):
    from classifier import registry

    beats = []
    real = registry.model_version_after_training

    def slow_gate(version, **kwargs):  # a slow promotion comparison
        beats.append(TrainingRun.objects.get(pk=version.run_id).heartbeat_at)
        time.sleep(1.5)
        beats.append(TrainingRun.objects.get(pk=version.run_id).heartbeat_at)
        return real(version, **kwargs)

    monkeypatch.setattr(registry, "model_version_after_training", slow_gate)
    monkeypatch.setattr(runner, "HEARTBEAT_EVERY", 0.2)
    run = runner.training_run_start(config=TINY, enqueue=False)

    run = runner.training_run_execute(runner.training_run_claim(run.pk))

    assert run.status == "succeeded", run.message
    assert beats[1] > beats[0]
