"""Data migrations, run for real: back to the old schema, old rows, forward."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("datasets", "0002_groups")]
AFTER = [("datasets", "0003_image_groups_review_reason")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def test_withheld_near_duplicates_of_the_same_label_join_their_group():
    apps = migrate(BEFORE)
    Label = apps.get_model("datasets", "Label")
    Image = apps.get_model("datasets", "Image")
    cat = Label.objects.create(slug="cat", name="cat")
    dog = Label.objects.create(slug="dog", name="dog")

    def image(n, label, status="active", like=None, kind="import"):
        return Image.objects.create(
            label=label,
            file=f"images/{n}.jpg",
            thumbnail=f"thumbs/{n}.jpg",
            width=64,
            height=64,
            sha256=f"{n:064x}",
            phash="0" * 16,
            source_kind=kind,
            status=status,
            near_duplicate_of=like,
        )

    original = image(1, cat)
    same = image(2, cat, "review", original)  # withheld by the old policy
    chained = image(3, cat, "review", same)
    other = image(4, dog, "review", original)  # a real conflict
    gone = image(5, cat, "deleted")
    like_gone = image(6, cat, "review", gone)
    feedback = image(7, dog, "review", kind="feedback")
    alone = image(8, dog)

    apps = migrate(AFTER)
    Image = apps.get_model("datasets", "Image")
    ImageChange = apps.get_model("datasets", "ImageChange")
    rows = {i.pk: i for i in Image.objects.all()}

    def row(img):
        return rows[img.pk]

    assert row(same).status == row(chained).status == "active"
    assert row(same).group_key == row(chained).group_key == original.sha256
    assert row(original).group_key == original.sha256
    assert (row(other).status, row(other).review_reason) == ("review", "conflict")
    assert row(other).group_key == original.sha256
    assert (row(like_gone).status, row(like_gone).review_reason) == (
        "review",
        "deleted",
    )
    assert row(feedback).review_reason == "feedback"
    assert row(alone).group_key == alone.sha256
    # Released images are recorded as reviewed, so the retrain schedule sees them.
    assert set(
        ImageChange.objects.filter(action="review").values_list("image_id", flat=True)
    ) == {same.pk, chained.pk}
