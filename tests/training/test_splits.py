"""Splits by group that stay put across runs, and the gate's comparison set."""

from __future__ import annotations

import io

import pytest
from PIL import Image as PILImage

from classifier.models import ModelVersion
from datasets.models import Image, ImageStatus
from datasets.services import image_delete, image_ingest, label_get_or_create
from tests.training.conftest import COLOURS, coloured_image
from training import runner
from training.models import RunImage, TrainingRun

pytestmark = pytest.mark.django_db

CONFIG = {"backbone": "tiny_cnn", "valid_pct": 0.2, "test_pct": 0.1}


def ingest(data: bytes, name: str) -> Image:
    return image_ingest(
        data=data, label=label_get_or_create(name=name), source_kind="upload"
    )


def add_images(n: int, start: int) -> list[Image]:
    return [
        ingest(coloured_image(colour, seed=start + 10 * i + c), name)
        for i in range(n)
        for c, (name, colour) in enumerate(COLOURS.items())
    ]


def snapshot() -> TrainingRun:
    """A run's snapshot, as a finished run leaves it (no training needed here)."""
    run = runner.training_run_start(config=CONFIG, enqueue=False)
    runner.training_run_snapshot(run)
    TrainingRun.objects.filter(pk=run.pk).update(status="succeeded", slot=None)
    return run


def sides(run: TrainingRun) -> dict[int, str]:
    return dict(run.images.values_list("image_id", "split"))


def resized(data: bytes, size: tuple[int, int]) -> bytes:
    out = io.BytesIO()
    PILImage.open(io.BytesIO(data)).resize(size).save(out, "PNG")
    return out.getvalue()


def test_every_remaining_image_keeps_its_split_when_images_come_and_go():
    images = add_images(30, start=0)
    first = snapshot()
    image_delete(images=images[::4])
    add_images(10, start=1000)

    second = snapshot()

    before, after = sides(first), sides(second)
    kept = [i.pk for i in images if i.pk not in {d.pk for d in images[::4]}]
    assert all(after[pk] == before[pk] for pk in kept)
    assert set(after.values()) == {"train", "valid", "test"}
    second.refresh_from_db()
    assert second.test_count == sum(1 for s in after.values() if s == "test") > 0


def test_a_same_label_near_duplicate_is_trained_on_the_side_of_its_original():
    add_images(20, start=0)
    data = coloured_image(COLOURS["red"], seed=5000)
    original = ingest(data, "red")
    copy = ingest(resized(data, (90, 90)), "red")
    assert copy.status == ImageStatus.ACTIVE and copy.group_key == original.group_key

    run = snapshot()

    split = sides(run)
    assert split[copy.pk] == split[original.pk]


def test_the_test_split_never_shares_a_group_with_validation_or_training():
    add_images(30, start=0)
    for seed in range(5000, 5010):  # groups of two
        data = coloured_image(COLOURS["blue"], seed=seed)
        ingest(data, "blue")
        ingest(resized(data, (90, 90)), "blue")

    run = snapshot()

    group_sides: dict[str, set[str]] = {}
    for group, split in RunImage.objects.filter(run=run).values_list(
        "image__group_key", "split"
    ):
        group_sides.setdefault(group, set()).add(split)
    assert all(len(s) == 1 for s in group_sides.values())
    assert any(s == {"test"} for s in group_sides.values())


def test_the_gate_compares_only_on_images_neither_model_trained_on():
    images = add_images(30, start=0)
    old = snapshot()
    current = ModelVersion.objects.create(run=old, label_names=list(COLOURS))
    # The next run sees other images: some of the old one's training images are
    # now held out (a new seed), some held-out ones are new.
    add_images(10, start=1000)
    new = runner.training_run_start(config={**CONFIG, "seed": 7}, enqueue=False)
    runner.training_run_snapshot(new)

    held_out = runner.training_run_held_out(new, current)

    trained_by_old = set(
        old.images.filter(split="train").values_list("file", flat=True)
    )
    trained_by_new = set(
        new.images.filter(split="train").values_list("file", flat=True)
    )
    compared = {file for file, _, _ in held_out.items}
    assert compared and not compared & (trained_by_old | trained_by_new)
    assert (
        held_out.excluded
        == new.images.filter(
            split__in=["valid", "test"], file__in=trained_by_old
        ).count()
        > 0
    )
    assert held_out.current_training_known
    assert {split for _, _, split in held_out.items} <= {"valid", "test"}
    assert len(images) == 90
