from __future__ import annotations

import pytest
from django.core.files.storage import default_storage

from datasets import imaging
from datasets.models import Image, ImageChange, ImageStatus, Label, ReviewReason
from datasets.selectors import label_list_with_counts
from datasets.services import (
    DuplicateImage,
    IngestItem,
    image_delete,
    image_fields,
    image_flag,
    image_ingest,
    image_ingest_many,
    image_mark_reviewed,
    image_normalize,
    image_relabel,
    image_restore,
    label_get_or_create,
)
from tests.conftest import make_jpeg

pytestmark = pytest.mark.django_db


@pytest.fixture
def label():
    return label_get_or_create(name="camera")


def imaging_resized(data: bytes, size) -> bytes:
    import io

    from PIL import Image as PILImage

    out = io.BytesIO()
    PILImage.open(io.BytesIO(data)).resize(size).save(out, "JPEG", quality=80)
    return out.getvalue()


def ingest(data, label, **kw):
    return image_ingest(data=data, label=label, source_kind="upload", **kw)


def test_it_stores_the_normalised_image_and_thumbnail(label):
    image = ingest(make_jpeg(1, size=(1200, 900)), label)

    assert (image.width, image.height) == (512, 384)
    assert default_storage.exists(image.file.name)
    assert default_storage.exists(image.thumbnail.name)
    assert image.status == ImageStatus.ACTIVE
    assert len(image.sha256) == 64 and len(image.phash) == 16


def test_it_refuses_an_exact_duplicate_and_writes_nothing(label, settings):
    first = ingest(make_jpeg(2), label)
    files_before = sorted(p for p in settings.MEDIA_ROOT.rglob("*") if p.is_file())

    with pytest.raises(DuplicateImage) as exc:
        ingest(make_jpeg(2), label)

    assert exc.value.existing == first
    assert Image.objects.count() == 1
    assert (
        sorted(p for p in settings.MEDIA_ROOT.rglob("*") if p.is_file()) == files_before
    )


def test_a_new_image_starts_its_own_group(label):
    image = ingest(make_jpeg(3), label)
    assert image.group_key == image.sha256 and image.review_reason == ""


def test_a_near_duplicate_of_the_same_label_joins_the_group_and_is_trained(label):
    original = ingest(make_jpeg(3, size=(640, 480)), label)

    near = ingest(make_jpeg(3, size=(600, 450)), label)

    assert near.status == ImageStatus.ACTIVE and near.review_reason == ""
    assert near.near_duplicate_of == original
    assert near.group_key == original.group_key == original.sha256


def test_a_near_duplicate_of_another_label_waits_for_review(label):
    original = ingest(make_jpeg(3, size=(640, 480)), label)
    other = label_get_or_create(name="TV")

    near = ingest(make_jpeg(3, size=(600, 450)), other)

    assert near.status == ImageStatus.REVIEW
    assert near.review_reason == ReviewReason.CONFLICT
    assert near.near_duplicate_of == original
    assert near.group_key == original.group_key  # accepted, it keeps its side


def test_a_look_alike_of_a_deleted_image_waits_for_review(label):
    original = ingest(make_jpeg(3, size=(640, 480)), label)
    image_delete(images=[original])

    near = ingest(make_jpeg(3, size=(600, 450)), label)

    assert near.status == ImageStatus.REVIEW
    assert near.review_reason == ReviewReason.DELETED_LOOKALIKE


def test_a_caller_that_asks_for_review_says_why(label):
    image = ingest(
        make_jpeg(5), label, status=ImageStatus.REVIEW, review_reason="feedback"
    )
    assert image.status == ImageStatus.REVIEW and image.review_reason == "feedback"
    image_mark_reviewed(images=[image])
    image.refresh_from_db()
    assert image.status == ImageStatus.ACTIVE and image.review_reason == ""


def test_flagging_holds_an_image_back_for_review(label):
    image = ingest(make_jpeg(6), label)

    assert image_flag(images=[image]) == 1

    image.refresh_from_db()
    assert image.status == ImageStatus.REVIEW
    assert image.review_reason == ReviewReason.FLAGGED
    assert ImageChange.objects.get(image=image).action == "flag"


@pytest.mark.parametrize("data", [b"", b"hello, not an image", make_jpeg(4)[:400]])
def test_it_rejects_bad_bytes_and_stores_nothing(label, settings, data):
    with pytest.raises(imaging.ImageRejected):
        ingest(data, label)

    assert Image.objects.count() == 0
    assert not [p for p in settings.MEDIA_ROOT.rglob("*") if p.is_file()]


def _items(*payloads, label):
    return [
        IngestItem(
            image_normalize(data), image_fields(label=label, source_kind="search")
        )
        for data in payloads
    ]


def test_a_batch_is_stored_in_a_few_queries_with_its_duplicates_sorted_out(
    label, django_assert_max_num_queries
):
    stored = ingest(make_jpeg(30), label)
    near_stored = make_jpeg(31, size=(640, 480))
    original = ingest(near_stored, label)
    fresh = [make_jpeg(40 + i) for i in range(20)]
    batch = _items(
        *fresh,
        make_jpeg(30),  # already stored
        fresh[3],  # the same content twice in one batch
        imaging_resized(near_stored, (600, 450)),  # near a stored image
        imaging_resized(fresh[5], (300, 225)),  # near an image of this batch
        label=label,
    )

    with django_assert_max_num_queries(8):
        outcomes = image_ingest_many(batch)

    new = outcomes[:20]
    assert all(isinstance(o, Image) and o.pk for o in new)
    assert all(o.status == ImageStatus.ACTIVE for o in new)
    assert isinstance(outcomes[20], DuplicateImage) and outcomes[20].existing == stored
    assert isinstance(outcomes[21], DuplicateImage) and outcomes[21].existing == new[3]
    assert outcomes[22].status == ImageStatus.ACTIVE  # same label: trained
    assert outcomes[22].near_duplicate_of == original
    assert outcomes[22].group_key == original.sha256
    assert outcomes[23].status == ImageStatus.ACTIVE
    assert outcomes[23].near_duplicate_of == new[5]
    assert outcomes[23].group_key == new[5].sha256
    assert Image.objects.count() == 2 + 22
    for image in outcomes[22:]:
        image.refresh_from_db()
    assert outcomes[23].near_duplicate_of_id == new[5].pk
    assert all(default_storage.exists(o.file.name) for o in new)


def test_a_batch_that_loses_a_race_is_stored_one_by_one(label, monkeypatch):
    """A row with the same content committed meanwhile: the batch insert fails on
    the unique sha256, and the rest of the batch is still stored."""
    batch = _items(make_jpeg(50), make_jpeg(51), make_jpeg(52), label=label)
    real = Image.objects.filter
    raced = {"done": False}

    def filter_then_race(*args, **kwargs):
        # The duplicate lookup ran; now another process stores image 51.
        result = real(*args, **kwargs)
        if "sha256__in" in kwargs and not raced["done"]:
            raced["done"] = True
            list(result)
            ingest(make_jpeg(51), label)
        return result

    monkeypatch.setattr(Image.objects, "filter", filter_then_race)

    outcomes = image_ingest_many(batch)

    assert isinstance(outcomes[0], Image) and isinstance(outcomes[2], Image)
    assert isinstance(outcomes[1], DuplicateImage)
    assert Image.objects.count() == 3


def test_a_failing_row_insert_leaves_no_file(label, settings, monkeypatch):
    # Fault injection: the database refuses the row after the files were written.
    def boom(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(Image.objects, "bulk_create", boom)

    with pytest.raises(RuntimeError):
        ingest(make_jpeg(5), label)

    assert not [p for p in settings.MEDIA_ROOT.rglob("*") if p.is_file()]


def test_relabel_delete_restore_review_are_recorded(label, django_user_model):
    user = django_user_model.objects.create_user("cur", password="x")
    other = label_get_or_create(name="TV")
    a = ingest(make_jpeg(6), label)
    b = ingest(make_jpeg(7), label)

    assert image_relabel(images=[a, b], label=other, user=user) == 2
    assert image_delete(images=[a], user=user) == 1
    a.refresh_from_db()
    assert a.status == ImageStatus.DELETED and a.status_changed_by == user
    assert image_restore(images=[a], user=user) == 1
    a.refresh_from_db()
    assert a.status == ImageStatus.ACTIVE and a.label == other

    actions = list(
        ImageChange.objects.filter(image=a)
        .order_by("id")
        .values_list("action", "old_label", "new_label")
    )
    assert actions == [
        ("relabel", label.pk, other.pk),
        ("delete", other.pk, None),
        ("restore", other.pk, None),
    ]


def test_mark_reviewed_only_touches_images_in_review(label):
    a = ingest(make_jpeg(8), label)
    b = ingest(make_jpeg(9), label, status=ImageStatus.REVIEW)

    assert image_mark_reviewed(images=[a, b]) == 1
    b.refresh_from_db()
    assert b.status == ImageStatus.ACTIVE


def test_label_counts_come_in_one_query(label, django_assert_num_queries):
    ingest(make_jpeg(10), label)
    ingest(make_jpeg(11), label, status=ImageStatus.REVIEW)
    label_get_or_create(name="man")

    with django_assert_num_queries(1):
        rows = {
            lbl.name: (lbl.active_count, lbl.review_count)
            for lbl in label_list_with_counts()
        }

    assert rows == {"camera": (1, 1), "man": (0, 0)}


def test_labels_are_matched_by_slug():
    a = label_get_or_create(name="TV")
    assert label_get_or_create(name="tv") == a
    assert Label.objects.count() == 1
