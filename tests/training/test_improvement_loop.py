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
from training import ml, runner
from training.models import RunImage, TrainingRun
from training.tasks import training_retrain_scheduled

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

# Pretrained features tell a camera from a woman; the tiny random CNN of the other
# tests cannot, on these icons.
CONFIG = {
    "backbone": "efficientnet_lite0",
    "image_size": 96,
    "freeze_epochs": 3,
    "epochs": 0,
    "batch_size": 8,
    "base_lr": 5e-3,
    "seed": 42,
}
N_WRONG = 3
TOP = 5  # the broken images must all be among the first TOP cards


def held_out_cameras(n: int) -> list[int]:
    """n cameras that the run's split keeps for validation once labelled woman.

    A network fine-tuned on a few hundred images memorises the few wrong labels it
    trains on, so their loss says little; a wrong label it never trained on is
    what the cleaner can catch. The split is reproducible (keys, phashes, labels,
    seed), so it can be worked out before the run, as the snapshot will do it.
    """
    rows = list(
        runner.trainable_images()
        .order_by("pk")
        .values_list("pk", "phash", "label__name")
    )
    cameras = [pk for pk, _, name in rows if name == "camera"]
    chosen: list[int] = []
    for candidate in cameras:
        trial = [*chosen, candidate]
        sides = dict(
            zip(
                [pk for pk, _, _ in rows],
                ml.split_items(
                    [str(pk) for pk, _, _ in rows],
                    [phash for _, phash, _ in rows],
                    ["woman" if pk in trial else name for pk, _, name in rows],
                    valid_pct=0.2,
                    seed=CONFIG["seed"],
                ),
                strict=True,
            )
        )
        if all(sides[pk] == "valid" for pk in trial):
            chosen = trial
            if len(chosen) == n:
                return chosen
    raise AssertionError(f"fewer than {n} cameras can be held out")


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
    started = time.perf_counter()
    # Given the demo's cameras and women, three cameras labelled woman by mistake
    for name in ("camera", "woman"):
        report = import_images(settings.SNAPCLASS_DEMO_DIR / name, label=name)
        assert report.imported >= 50 and report.rejected == 0
    camera, woman = Label.objects.get(name="camera"), Label.objects.get(name="woman")
    wrong_ids = set(held_out_cameras(N_WRONG))
    image_relabel(images=Image.objects.filter(pk__in=wrong_ids), label=woman)

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
    assert set(
        RunImage.objects.filter(run=first, image_id__in=wrong_ids).values_list(
            "split", flat=True
        )
    ) == {"valid"}
    ranked = shown_ids(client.get(url, {"actual": "woman"}))
    held = shown_ids(client.get(url, {"actual": "woman", "split": "valid"}))
    print(
        "\nranks among woman:",
        sorted(ranked.index(pk) for pk in wrong_ids),
        "among valid woman:",
        sorted(held.index(pk) for pk in wrong_ids),
        "of",
        len(ranked),
        len(held),
        "error rate",
        first.error_rate,
    )
    top = ranked[:TOP]
    losses = dict(RunImage.objects.filter(run=first).values_list("image_id", "loss"))
    assert wrong_ids <= set(top), {pk: losses[pk] for pk in top} | {
        pk: losses[pk] for pk in wrong_ids
    }

    # Nothing changed since the run: the schedule has nothing to do
    settings.SNAPCLASS_RETRAIN_MIN_CHANGES = N_WRONG
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
    assert re.match(r"(Promoted over|Kept) v\d+: error ", version.decision)
    assert version.comparison["n_images"] == second.valid_count > 0
    assert set(version.comparison) >= {"new", "current"}
    assert second.message == version.decision
    page = client.get(reverse("training:run", args=[second.pk])).content.decode()
    assert version.decision.split(":")[0] in page
    print(
        f"\nfirst run {first.seconds:.0f}s, second run {second.seconds:.0f}s, "
        f"until the first run ended {trained - started:.0f}s, "
        f"total {time.perf_counter() - started:.0f}s"
    )
