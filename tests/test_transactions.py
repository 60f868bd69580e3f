"""config.transactions.on_rollback: the undo runs exactly when the data go away."""

from __future__ import annotations

import pytest
from django.db import connection, transaction

from config.transactions import on_rollback
from datasets.models import Image
from datasets.services import image_ingest, label_get_or_create
from tests.conftest import make_jpeg

pytestmark = pytest.mark.django_db(transaction=True)


def media_files(root) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def test_a_rolled_back_ingest_leaves_no_file(settings):
    label = label_get_or_create(name="camera")
    with pytest.raises(RuntimeError), transaction.atomic():
        image = image_ingest(data=make_jpeg(1), label=label, source_kind="upload")
        assert (settings.MEDIA_ROOT / image.file.name).is_file()
        raise RuntimeError("the caller's later step fails")

    assert not Image.objects.exists()
    assert media_files(settings.MEDIA_ROOT) == set()


def test_an_ingest_in_a_rolled_back_savepoint_loses_only_its_own_files(settings):
    label = label_get_or_create(name="camera")
    with transaction.atomic():
        kept = image_ingest(data=make_jpeg(1), label=label, source_kind="upload")
        with pytest.raises(RuntimeError), transaction.atomic():
            image_ingest(data=make_jpeg(2), label=label, source_kind="upload")
            raise RuntimeError

    assert list(Image.objects.all()) == [kept]
    assert media_files(settings.MEDIA_ROOT) == {kept.file.name, kept.thumbnail.name}


def test_a_committed_ingest_keeps_its_files(settings):
    label = label_get_or_create(name="camera")
    with transaction.atomic():
        image = image_ingest(data=make_jpeg(1), label=label, source_kind="upload")

    assert media_files(settings.MEDIA_ROOT) == {image.file.name, image.thumbnail.name}


def test_a_commit_whose_other_hook_fails_undoes_nothing():
    undone = []
    with pytest.raises(ZeroDivisionError), transaction.atomic():
        transaction.on_commit(lambda: 1 / 0)
        on_rollback(lambda: undone.append(True))

    assert undone == []
    assert not connection.in_atomic_block


def test_outside_a_transaction_there_is_nothing_to_undo():
    undone = []
    on_rollback(lambda: undone.append(True))
    assert undone == []
