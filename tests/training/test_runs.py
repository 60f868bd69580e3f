from __future__ import annotations

import io
import json
import re

import pytest
from django.core.management import call_command
from django.urls import reverse

from datasets.models import Image
from datasets.services import image_delete, image_relabel, label_get_or_create
from tests.training.conftest import TINY
from training import runner
from training.models import EpochMetric, RunImage, TrainingRun

pytestmark = pytest.mark.django_db


def train_here(config=TINY):
    run = runner.training_run_start(config=config, enqueue=False)
    claimed = runner.training_run_claim(run.pk)
    assert claimed is not None
    return runner.training_run_execute(claimed)


def test_a_run_trains_stores_metrics_and_registers_a_model(small_dataset):
    run = train_here()

    assert run.status == "succeeded", run.message
    assert run.device == "cpu"
    assert EpochMetric.objects.filter(run=run).count() == 2  # 1 frozen + 1 unfrozen
    assert RunImage.objects.filter(run=run).count() == len(small_dataset)
    assert not RunImage.objects.filter(run=run, loss__isnull=True).exists()
    assert sum(map(sum, run.confusion_matrix)) == run.valid_count > 0
    assert [c["label"] for c in run.per_class] == ["blue", "green", "red"]
    assert run.model_version.is_current  # the first model is promoted
    assert run.slot is None and run.progress == 1.0


def test_the_snapshot_survives_curation(small_dataset):
    run = train_here()
    image = small_dataset[0]
    before = image.label.name
    other = next(i.label for i in small_dataset if i.label.name != before)

    image_relabel(images=[image], label=other)
    image_delete(images=[small_dataset[1]])

    assert RunImage.objects.get(run=run, image=image).label_name == before
    assert RunImage.objects.filter(run=run).count() == len(small_dataset)


def test_it_refuses_fewer_than_two_labels(db):
    from datasets.services import image_ingest
    from tests.training.conftest import COLOURS, coloured_image

    label = label_get_or_create(name="only")
    for i in range(6):
        image_ingest(
            data=coloured_image(COLOURS["red"], i), label=label, source_kind="upload"
        )

    with pytest.raises(runner.NotEnoughImages, match="at least 2 labels"):
        runner.training_run_start(config=TINY, enqueue=False)
    assert not TrainingRun.objects.exists()


def test_it_refuses_a_label_with_fewer_than_five_images(small_dataset):
    green = [i for i in small_dataset if i.label.name == "green"]
    image_delete(images=green[:4])

    with pytest.raises(runner.NotEnoughImages, match=r"green \(4\)"):
        runner.training_run_start(config=TINY, enqueue=False)


def test_a_second_run_is_refused_while_one_is_active(small_dataset):
    first = runner.training_run_start(config=TINY, enqueue=False)

    with pytest.raises(runner.RunAlreadyActive, match=f"Run {first.pk}"):
        runner.training_run_start(config=TINY, enqueue=False)

    runner.training_run_cancel(run=first)
    assert runner.training_run_start(config=TINY, enqueue=False).pk != first.pk


def test_a_bad_config_is_refused(small_dataset):
    with pytest.raises(runner.InvalidTrainingConfig, match="backbone"):
        runner.training_run_start(config={"backbone": "vgg99"}, enqueue=False)
    with pytest.raises(runner.InvalidTrainingConfig):
        runner.training_run_start(config={"valid_pct": 2}, enqueue=False)


def test_a_missing_torchvision_backbone_fails_the_run_with_the_file_to_place(
    small_dataset, tmp_path, settings
):
    settings.SNAPCLASS_WEIGHTS_DIR = str(tmp_path / "weights")
    run = train_here({**TINY, "backbone": "resnet18"})

    assert run.status == "failed"
    assert "resnet18" in run.message and ".pth" in run.message
    assert run.slot is None


def test_cancelling_a_running_run_ends_it_cancelled(small_dataset):
    run = runner.training_run_start(config={**TINY, "epochs": 3}, enqueue=False)
    claimed = runner.training_run_claim(run.pk)
    assert runner.training_run_cancel(run=claimed)

    run = runner.training_run_execute(claimed)

    assert run.status == "cancelled"
    assert not hasattr(run, "model_version") or run.model_version is None


def test_a_stale_run_is_reaped(small_dataset, settings):
    run = runner.training_run_start(config=TINY, enqueue=False)
    runner.training_run_claim(run.pk)
    TrainingRun.objects.filter(pk=run.pk).update(
        heartbeat_at=run.created_at.replace(year=2000)
    )

    assert runner.training_runs_reap_stale() == 1
    run.refresh_from_db()
    assert run.status == "failed" and run.slot is None


def test_the_train_command_waits_and_prints_json(small_dataset):
    out = io.StringIO()

    call_command(
        "train",
        "--backbone",
        "tiny_cnn",
        "--epochs",
        "1",
        "--image-size",
        "32",
        "--wait",
        stdout=out,
    )

    line = json.loads(out.getvalue().strip().splitlines()[-1])
    assert line["status"] == "succeeded"
    assert line["device"] == "cpu" and line["model_version"] is not None
    assert set(line) >= {"run", "seconds", "error_rate", "best_error_rate"}


def test_the_train_command_without_wait_queues_a_run(small_dataset):
    out = io.StringIO()
    call_command("train", "--epochs", "2", stdout=out)
    run = TrainingRun.objects.get()
    assert run.status == "queued" and run.config["epochs"] == 2
    assert f"Queued training run {run.pk}" in out.getvalue()


def test_the_api_starts_runs_for_staff_only(
    small_dataset, client, admin_client, django_user_model
):
    url = reverse("trainingrun-list")
    assert client.post(url, TINY, content_type="application/json").status_code in (
        401,
        403,
    )

    response = admin_client.post(url, TINY, content_type="application/json")
    assert response.status_code == 201, response.content
    assert response.json()["status"] == "queued"
    again = admin_client.post(url, TINY, content_type="application/json")
    assert again.status_code == 409 and again.json()["code"] == "run_active"


def test_the_run_pages_show_metrics_and_top_losses(small_dataset, client, viewer):
    run = train_here()

    listing = client.get(reverse("training:runs"))
    detail = client.get(reverse("training:run", args=[run.pk]))
    client.force_login(viewer)
    signed_in = client.get(reverse("training:run", args=[run.pk]))

    assert listing.status_code == 200 and detail.status_code == 200
    body = detail.content.decode()
    assert 'id="confusion"' in body and 'id="loss-chart"' in body
    # Top losses name every image (rejected ones too): viewers and curators only.
    assert body.count("<figure>") == 0
    body = signed_in.content.decode()
    assert body.count("<figure>") == min(24, Image.objects.count())
    assert run.test_count > 0 and 'id="run-test"' in body
    assert 'id="test-confusion"' in body and 'id="run-calibration"' in body
    api = client.get(reverse("trainingrun-detail", args=[run.pk])).json()
    assert len(api["epochs"]) == 2 and api["model_version"] == run.model_version.pk
    assert api["test_metrics"]["n"] == api["test_count"] == run.test_count
    assert api["calibration"]["temperature"] > 0


def test_epochs_are_named_the_same_in_the_progress_the_pages_and_the_api(
    small_dataset, client
):
    from training.epochs import epoch_progress

    # 2 epochs asked for, after fastai's one warm-up epoch with the body frozen.
    assert [epoch_progress(i, 3, 1) for i in range(3)] == [
        "Warm-up (body frozen)",
        "Epoch 1/2",
        "Epoch 2/2",
    ]
    run = train_here({**TINY, "epochs": 2})

    body = client.get(reverse("training:run", args=[run.pk])).content.decode()
    table = body[
        body.index('id="epochs"') : body.index("</table>", body.index('id="epochs"'))
    ]
    assert re.findall(r"<tr[^>]*><td>([^<]+)</td>", table) == ["warm-up", "1", "2"]
    assert "2 epochs after a warm-up of 1 with the pretrained body frozen" in body
    chart = body[body.index('id="loss-chart"') :]
    assert (
        ">warm-up</text>" in chart and ">2</text>" in chart and ">epoch</text>" in chart
    )
    assert re.search(r'text-anchor="end"[^>]*>0</text>', chart)  # the y axis's values
    api = client.get(reverse("trainingrun-detail", args=[run.pk])).json()
    assert [(e["epoch"], e["name"]) for e in api["epochs"]] == [
        (0, "warm-up"),
        (1, "1"),
        (2, "2"),
    ]
    assert body.count(run.model_version.decision) == 1  # said once
