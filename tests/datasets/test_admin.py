from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from datasets.models import Image, ImageChange, ImageStatus
from datasets.services import image_ingest, label_get_or_create
from tests.conftest import make_jpeg

pytestmark = pytest.mark.django_db


@pytest.fixture
def images():
    cam = label_get_or_create(name="camera")
    return [
        image_ingest(data=make_jpeg(i), label=cam, source_kind="upload")
        for i in range(3)
    ]


@pytest.fixture
def curator(django_user_model, client):
    user = django_user_model.objects.create_user(
        "curator", password="pw", is_staff=True
    )
    user.groups.add(Group.objects.get(name="curators"))
    client.force_login(user)
    return user


@pytest.fixture
def viewer(django_user_model, client):
    user = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    user.groups.add(Group.objects.get(name="viewers"))
    client.force_login(user)
    return user


def changelist():
    return reverse("admin:datasets_image_changelist")


def test_the_image_list_shows_thumbnails(admin_client, images):
    response = admin_client.get(changelist())

    assert response.status_code == 200
    body = response.content.decode()
    for image in images:
        assert image.thumbnail.url in body


def test_filters_and_search_work(admin_client, images):
    assert admin_client.get(changelist() + "?status__exact=review").status_code == 200
    response = admin_client.get(changelist() + "?q=nothing-matches-this")
    assert (
        response.status_code == 200
        and images[0].thumbnail.url not in response.content.decode()
    )


def test_a_curator_relabels_and_soft_deletes_with_bulk_actions(client, curator, images):
    tv = label_get_or_create(name="TV")
    ids = [str(images[0].pk), str(images[1].pk)]

    response = client.post(
        changelist(), {"action": "relabel", "_selected_action": ids, "label": tv.pk}
    )
    assert response.status_code == 302
    response = client.post(
        changelist(), {"action": "soft_delete", "_selected_action": ids[:1]}
    )
    assert response.status_code == 302

    images[0].refresh_from_db()
    images[1].refresh_from_db()
    assert images[0].label == tv and images[0].status == ImageStatus.DELETED
    assert images[1].label == tv and images[1].status == ImageStatus.ACTIVE
    assert ImageChange.objects.filter(user=curator).count() == 3

    client.post(changelist(), {"action": "restore", "_selected_action": ids[:1]})
    images[0].refresh_from_db()
    assert images[0].status == ImageStatus.ACTIVE


def test_a_viewer_can_look_but_not_change(client, viewer, images):
    assert client.get(changelist()).status_code == 200
    response = client.post(
        changelist(), {"action": "soft_delete", "_selected_action": [str(images[0].pk)]}
    )
    images[0].refresh_from_db()
    assert images[0].status == ImageStatus.ACTIVE
    assert response.status_code in (200, 302, 403)


def test_nobody_but_superusers_hard_deletes(client, curator, images):
    response = client.post(
        changelist(),
        {"action": "delete_selected", "_selected_action": [str(images[0].pk)]},
    )
    assert response.status_code in (200, 302)
    assert Image.objects.filter(pk=images[0].pk).exists()


def test_upload_many_images_at_once(client, curator):
    cam = label_get_or_create(name="camera")
    files = []
    from django.core.files.uploadedfile import SimpleUploadedFile

    for i in range(4):
        files.append(SimpleUploadedFile(f"{i}.jpg", make_jpeg(40 + i), "image/jpeg"))
    files.append(SimpleUploadedFile("bad.jpg", b"not an image", "image/jpeg"))

    response = client.post(
        reverse("admin:datasets_image_upload"), {"label": cam.pk, "files": files}
    )

    assert response.status_code == 302
    assert Image.objects.filter(label=cam, source_kind="upload").count() == 4


def test_the_summary_page_counts_per_label(admin_client, images):
    response = admin_client.get(reverse("admin:datasets_label_summary"))
    assert response.status_code == 200
    assert "camera" in response.content.decode()
    assert response.context["totals"]["active_count"] == 3


def test_groups_exist_with_their_permissions():
    curators = Group.objects.get(name="curators")
    viewers = Group.objects.get(name="viewers")
    assert curators.permissions.filter(codename="change_image").exists()
    assert not curators.permissions.filter(codename="delete_image").exists()
    assert set(viewers.permissions.values_list("codename", flat=True)) >= {
        "view_image",
        "view_label",
    }
    assert not viewers.permissions.exclude(codename__startswith="view_").exists()


def test_a_curator_sends_images_to_review_and_back(client, curator, images):
    client.force_login(curator)
    ids = [str(images[0].pk)]

    client.post(changelist(), {"action": "flag", "_selected_action": ids})

    images[0].refresh_from_db()
    assert (images[0].status, images[0].review_reason) == ("review", "flagged")
    listed = client.get(changelist(), {"review_reason": "flagged"}).content.decode()
    assert f"/{images[0].pk}/change/" in listed
    client.post(changelist(), {"action": "mark_reviewed", "_selected_action": ids})
    images[0].refresh_from_db()
    assert (images[0].status, images[0].review_reason) == ("active", "")
