"""The improvement loop end to end on the demo dataset.

Train, find deliberately wrong labels at the top of the cleaner, fix them through
the cleaner's own form posts, let the scheduled task retrain, and check that the
new run learned from the fixed labels and went through the promotion gate.
"""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from classifier.models import ModelVersion
from datasets.importing import import_images
from datasets.models import Image, ImageChange, Label
from datasets.services import image_relabel
from training import ml, runner
from training.models import RunImage, TrainingRun
from training.tasks import training_retrain_scheduled

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

# Pretrained features tell a camera from a woman; the tiny random CNN of the other
# tests cannot, on these icons. About a minute per run on two CPU cores.
CONFIG = {
    "backbone": "efficientnet_lite0",
    "image_size": 96,
    "freeze_epochs": 2,  # the head (and batch norms) only: enough here
    "epochs": 0,
    "batch_size": 8,
    "base_lr": 1e-2,
}
# Plain still cameras: a curator would never call one of them a woman.
MISLABELLED = ("mdi-camera-1.png", "twemoji-camera-1.jpg", "noto-camera-1.png")


def seed_holding_out(image_ids: set[int], label: str) -> int:
    """A split seed under which the images, labelled `label`, are all held out.

    A network fine-tuned on a hundred images memorises the few wrong labels it
    trains on, so their training loss says little; a wrong label it never
    trained on is what the cleaner can catch. The snapshot's split is
    reproducible (group keys, labels, seed), so it can be worked out here before
    the run, exactly as the snapshot will do it.
    """
    rows = list(
        runner.trainable_images()
        .order_by("pk")
        .values_list("pk", "group_key", "label__name")
    )
    groups = [group for _, group, _ in rows]
    labels = [label if pk in image_ids else name for pk, _, name in rows]
    config = runner.training_config_build(CONFIG)
    for seed in range(1000):
        sides = ml.split_groups(
            groups,
            labels,
            valid_pct=config.valid_pct,
            test_pct=config.test_pct,
            seed=seed,
        )
        held = {
            pk for (pk, _, _), side in zip(rows, sides, strict=True) if side == "valid"
        }
        if held >= image_ids:
            return seed
    raise AssertionError("no split seed holds these images out")


def shown_ids(response) -> list[int]:
    return [
        int(i) for i in re.findall(r'data-image="(\d+)"', response.content.decode())
    ]


def train(run: TrainingRun) -> TrainingRun:
    claimed = runner.training_run_claim(run.pk)
    assert claimed is not None
    run = runner.training_run_execute(claimed)
    assert run.status == "succeeded", run.message
    return run


def test_mislabelled_images_are_found_fixed_and_the_schedule_retrains(
    client, django_user_model, settings
):
    # Given the demo's cameras and women, three cameras labelled woman by mistake
    for name in ("camera", "woman"):
        report = import_images(settings.SNAPCLASS_DEMO_DIR / name, label=name)
        assert report.imported >= 50 and report.rejected == 0
    camera, woman = Label.objects.get(name="camera"), Label.objects.get(name="woman")
    wrong = [
        Image.objects.get(original_name__endswith=f"/camera/{name}")
        for name in MISLABELLED
    ]
    wrong_ids = {image.pk for image in wrong}
    config = {**CONFIG, "seed": seed_holding_out(wrong_ids, "woman")}
    image_relabel(images=wrong, label=woman)

    # When a run trains on them
    first = train(runner.training_run_start(config=config, enqueue=False))
    assert first.model_version.is_current  # the first model is promoted

    # Then the cleaner, showing held-out images labelled woman, lists them first
    curator = django_user_model.objects.create_user("curator", password="pw")
    curator.user_permissions.add(
        Permission.objects.get(
            content_type__app_label="datasets", codename="change_image"
        )
    )
    client.force_login(curator)
    url = reverse("training:cleaner", args=[first.pk])
    assert set(
        RunImage.objects.filter(run=first, image_id__in=wrong_ids).values_list(
            "split", flat=True
        )
    ) == {"valid"}
    held = shown_ids(client.get(url, {"actual": "woman", "split": "valid"}))
    losses = dict(RunImage.objects.filter(run=first).values_list("image_id", "loss"))
    assert set(held[: len(wrong)]) == wrong_ids, [(pk, losses[pk]) for pk in held]

    # Nothing changed since the run: the schedule has nothing to do
    settings.SNAPCLASS_RETRAIN_MIN_CHANGES = len(wrong)
    assert training_retrain_scheduled() is None

    # When the curator relabels them with the cleaner's bulk form
    response = client.post(
        url,
        {
            "action": "relabel",
            "image": sorted(wrong_ids),
            "label": camera.pk,
            "next": f"{url}?actual=woman",
        },
    )
    assert response.status_code == 302 and response.url == f"{url}?actual=woman"
    assert (
        set(
            ImageChange.objects.filter(
                user=curator, action="relabel", new_label=camera
            ).values_list("image_id", flat=True)
        )
        == wrong_ids
    )
    assert set(
        RunImage.objects.filter(run=first, image_id__in=wrong_ids).values_list(
            "label_name", flat=True
        )
    ) == {"woman"}  # the first run's snapshot is history

    # And the scheduled task fires (the beat entry, called as beat would)
    run_id = training_retrain_scheduled()
    assert run_id is not None
    second = TrainingRun.objects.get(pk=run_id)
    assert second.trigger == "schedule" and second.config == first.config
    second = train(second)

    # Then the new run trained on the corrected labels
    assert set(
        RunImage.objects.filter(run=second, image_id__in=wrong_ids).values_list(
            "label_name", flat=True
        )
    ) == {"camera"}
    # And its model went through the promotion gate, with the decision recorded
    version = ModelVersion.objects.get(run=second)
    assert re.match(
        r"(Promoted over|Kept) v\d+"
        r"( \(it is not better\)| \(its calibration error is more than [0-9.]+ "
        r"worse\))?: error ",
        version.decision,
    )
    compared = version.comparison["n_images"]
    assert compared == sum(version.comparison["by_split"].values()) > 0
    assert compared <= second.valid_count + second.test_count
    assert set(version.comparison) >= {"new", "current"}
    assert second.message.endswith(version.decision)
    page = client.get(reverse("training:run", args=[second.pk])).content.decode()
    assert version.decision.split(":")[0] in page
