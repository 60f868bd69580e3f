from __future__ import annotations

import json
import os
import time
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from datasets.services import image_ingest, label_get_or_create
from datasets.sweep import media_sweep
from tests.conftest import make_jpeg

pytestmark = pytest.mark.django_db


def orphan(root: Path, name: str, *, age: float) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"left behind")
    old = time.time() - age
    os.utime(path, (old, old))
    return path


def test_the_sweep_removes_old_unreferenced_files_and_keeps_the_rest(settings):
    root = Path(settings.MEDIA_ROOT)
    label = label_get_or_create(name="camera")
    image = image_ingest(data=make_jpeg(1), label=label, source_kind="upload")
    for name in (image.file.name, image.thumbnail.name):
        os.utime(root / name, (time.time() - 10_000,) * 2)
    old = orphan(root, "images/ab/" + "ab" * 32 + ".jpg", age=10_000)
    weights = orphan(root, "models/run-7/weights.safetensors", age=10_000)
    staged = orphan(root, ".staging/scrape-3/123-0.jpg", age=10_000)
    young = orphan(root, "thumbs/cd/" + "cd" * 32 + ".jpg", age=5)
    elsewhere = orphan(root, "notes/readme.txt", age=10_000)

    out = StringIO()
    call_command("media_sweep", "--dry-run", "--min-age", "3600", stdout=out)
    dry = json.loads(out.getvalue())
    assert dry["dry_run"] and dry["orphans"] == 3
    assert old.exists() and weights.exists() and staged.exists()

    report = media_sweep(min_age=3600)

    assert sorted(report.removed) == sorted(
        str(p.relative_to(root)) for p in (old, weights, staged)
    )
    assert not old.exists() and not weights.exists() and not staged.exists()
    assert young.exists() and elsewhere.exists()
    assert (root / image.file.name).exists() and (root / image.thumbnail.name).exists()


def test_the_sweep_spares_the_files_of_a_run_in_progress(settings):
    from training.models import TrainingRun

    root = Path(settings.MEDIA_ROOT)
    run = TrainingRun.objects.create(status="running")
    busy = orphan(root, f"models/run-{run.pk}/model.onnx", age=10_000)

    assert media_sweep(min_age=60).removed == []
    assert busy.exists()


def test_beat_runs_the_sweep(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["sweep-orphan-media"]
    assert entry["task"] == "datasets.tasks.media_sweep"
