"""The improvement loop end to end on the demo dataset.

Train, find deliberately wrong labels at the top of the cleaner, fix them through
the cleaner's own form posts, let the scheduled task retrain, and check that the
new run learned from the fixed labels and went through the promotion gate.
"""

from __future__ import annotations

import re
import time

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from classifier.models import ModelVersion
from datasets.importing import import_images
from datasets.models import Image, ImageChange, Label
from datasets.services import image_relabel
from training import runner
from training.models import RunImage, TrainingRun
from training.tasks import training_retrain_scheduled

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

# Pretrained features make a camera drawn on a TV's label stand out; the tiny
# random CNN of the other tests cannot tell a camera from a TV on these icons.
CONFIG = {
    "backbone": "efficientnet_lite0",
    "image_size": 128,
    "freeze_epochs": 1,
    "epochs": 2,
    "batch_size": 16,
    "seed": 42,
}
# Plain still cameras, unmistakable for a person; their labels get broken on purpose.
MISLABELLED = ("mdi-camera-1.png", "twemoji-camera-1.jpg", "noto-camera-1.png")
TOP = 5  # the broken images must all be among the first TOP cards


def shown_ids(response) -> list[int]:
    return [int(i) for i in re.findall(r'data-image="(\d+)"', response.content.decode())]


def train(run: TrainingRun) -> TrainingRun:
    claimed = runner.training_run_claim(run.pk)
    assert claimed is not None
    run = runner.training_run_execute(claimed)
    assert run.status == "succeeded", run.message
    return run


def test_mislabelled_images_are_found_fixed_and_the_schedule_retrains(
    client, django_user_model, settings
):
    started = time.perf_counter()
    # Given the demo's cameras and TVs, three cameras labelled TV by mistake
    for name in ("camera", "TV"):
        report = import_images(settings.SNAPCLASS_DEMO_DIR / name, label=name)
        assert report.imported >= 50 and report.rejected == 0
    camera, tv = Label.objects.get(name="camera"), Label.objects.get(name="TV")
    wrong = [
        Image.objects.get(original_name__endswith=f"/camera/{name}")
        for name in MISLABELLED
    ]
    image_relabel(images=wrong, label=tv)
    wrong_ids = {i.pk for i in wrong}

    # When a run trains on them
    first = train(runner.training_run_start(config=CONFIG, enqueue=False))
    assert first.model_version.is_current  # the first model is promoted
    trained = time.perf_counter()

    # Then the cleaner shows them first among the images labelled TV
    curator = django_user_model.objects.create_user("curator", password="pw")
    curator.user_permissions.add(
        Permission.objects.get(
            content_type__app_label="datasets", codename="change_image"
        )
    )
    client.force_login(curator)
    url = reverse("training:cleaner", args=[first.pk])
    top = shown_ids(client.get(url, {"actual": "TV"}))[:TOP]
    losses = dict(
        RunImage.objects.filter(run=first).values_list("image_id", "loss")
    )
    assert wrong_ids <= set(top), {pk: losses[pk] for pk in top} | {
        pk: losses[pk] for pk in wrong_ids
    }

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
            "next": f"{url}?actual=TV",
        },
    )
    assert response.status_code == 302 and response.url == f"{url}?actual=TV"
    assert set(
        ImageChange.objects.filter(
            user=curator, action="relabel", new_label=camera
        ).values_list("image_id", flat=True)
    ) == wrong_ids
    assert set(
        RunImage.objects.filter(run=first, image_id__in=wrong_ids).values_list(
            "label_name", flat=True
        )
    ) == {"TV"}  # the first run's snapshot is history

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
    assert re.match(r"(Promoted over|Kept) v\d+: error ", version.decision)
    assert version.comparison["n_images"] == second.valid_count > 0
    assert set(version.comparison) >= {"new", "current"}
    assert second.message == version.decision
    page = client.get(reverse("training:run", args=[second.pk])).content.decode()
    assert version.decision.split(":")[0] in page
    print(
        f"\nfirst run {first.seconds:.0f}s, second run {second.seconds:.0f}s, "
        f"setup+first {trained - started:.0f}s, total {time.perf_counter() - started:.0f}s"
    )
