from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from django.conf import settings as django_settings
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from datasets.importing import import_images
from tests.integration.conftest import ROOT, _database_url, wait_for
from tests.training.conftest import TINY, small_dataset  # noqa: F401 (fixture)
from training import runner
from training.models import EpochMetric, RunImage, TrainingRun


@pytest.mark.slow
def test_the_demo_dataset_trains_through_redis_on_a_live_worker(start_worker):
    report = import_images(django_settings.SNAPCLASS_DEMO_DIR)
    assert report.imported >= 80
    start_worker("train")
    config = {"epochs": 1, "image_size": 96, "batch_size": 32}

    run = runner.training_run_start(config=config)

    run = wait_for(
        lambda: TrainingRun.objects.filter(
            pk=run.pk, status__in=["succeeded", "failed"]
        ).first(),
        timeout=900,
        interval=1,
        message="the run to finish",
    )
    assert run.status == "succeeded", run.message
    assert run.config["backbone"] == "efficientnet_lite0"
    assert EpochMetric.objects.filter(run=run).count() == 2  # frozen + 1 epoch
    assert (
        RunImage.objects.filter(run=run).count() == run.image_count == report.imported
    )
    assert sum(map(sum, run.confusion_matrix)) == run.valid_count
    assert run.valid_count == RunImage.objects.filter(run=run, split="valid").count()
    assert run.model_version.is_current


def test_beat_fires_retraining_and_a_second_trigger_is_refused(
    small_dataset,  # noqa: F811
    start_worker,
    postgres,
    broker,
    tmp_path,
    settings,
):
    # A finished run whose config the schedule reuses: slow enough to overlap.
    TrainingRun.objects.create(
        status="succeeded",
        slot=None,
        config={**runner.training_config_build(TINY).to_dict(), "epochs": 40},
    )
    every = IntervalSchedule.objects.create(every=2, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.create(
        name="test retraining",
        task="training.tasks.training_retrain_scheduled",
        interval=every,
        kwargs=json.dumps({"force": True}),
    )
    trigger = start_worker("default")
    start_worker("train")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": _database_url(postgres),
        "CELERY_BROKER_URL": broker,
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
    }
    log = (tmp_path / "beat.log").open("wb")
    beat = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "beat",
            "--loglevel=INFO",
            "--scheduler",
            "django_celery_beat.schedulers:DatabaseScheduler",
            "--max-interval",
            "1",
            "--pidfile=",
            "--schedule",
            str(tmp_path / "beat.db"),
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        run = wait_for(
            lambda: TrainingRun.objects.filter(
                trigger="schedule", status="running"
            ).first(),
            timeout=90,
            message="beat to start a run",
        )
        wait_for(
            lambda: "scheduled retraining refused" in trigger.log(),
            timeout=60,
            message="a second trigger to be refused",
        )
        assert TrainingRun.objects.filter(trigger="schedule").count() == 1
        assert f"Run {run.pk} is already running" in trigger.log()
    finally:
        os.killpg(beat.pid, signal.SIGTERM)
        beat.wait(20)
        log.close()
    runner.training_run_cancel(run=run)
    wait_for(
        lambda: TrainingRun.objects.filter(pk=run.pk, status="cancelled").exists(),
        timeout=60,
    )
    time.sleep(0.5)
