from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from datasets.models import Image, ImageChange, ImageStatus, Label
from datasets.services import image_delete, image_ingest, image_relabel
from tests.conftest import make_jpeg
from tests.training.conftest import TINY
from training import runner
from training.cleaner import PAGE_SIZE
from training.models import RunImage, TrainingRun

pytestmark = pytest.mark.django_db
JSON = {"HTTP_ACCEPT": "application/json"}


@pytest.fixture
def finished_run(small_dataset):
    """A succeeded run over small_dataset with known losses: image i has loss i/10.

    Every fourth image is predicted wrongly (as the next colour), odd ones are
    validation images; no training needed to test the page.
    """
    names = sorted({i.label.name for i in small_dataset})
    run = TrainingRun.objects.create(
        status="succeeded",
        slot=None,
        config=TINY,
        label_names=names,
        image_count=len(small_dataset),
        started_at=timezone.now(),
        finished_at=timezone.now(),
    )
    rows = []
    for n, image in enumerate(small_dataset):
        actual = image.label.name
        wrong = names[(names.index(actual) + 1) % len(names)]
        rows.append(
            RunImage(
                run=run,
                image=image,
                label=image.label,
                label_name=actual,
                file=image.file.name,
                split="valid" if n % 2 else "train",
                loss=n / 10,
                predicted=wrong if n % 4 == 0 else actual,
                confidence=0.5 + n / 100,
            )
        )
    RunImage.objects.bulk_create(rows)
    return run


@pytest.fixture
def curator(django_user_model):
    """A curator who is not staff: the change_image permission is enough."""
    user = django_user_model.objects.create_user("cura", password="pw")
    user.user_permissions.add(
        Permission.objects.get(
            content_type__app_label="datasets", codename="change_image"
        )
    )
    return user


@pytest.fixture
def curator_client(curator):
    client = Client()
    client.force_login(curator)
    return client


def cleaner_url(run, **params) -> str:
    url = reverse("training:cleaner", args=[run.pk])
    if params:
        url += "?" + "&".join(f"{k}={v}" for k, v in params.items())
    return url


def shown_ids(response) -> list[int]:
    """Image ids of the cards, in page order."""
    return [
        int(i) for i in re.findall(r'data-image="(\d+)"', response.content.decode())
    ]


def snapshot(run) -> list[tuple]:
    return list(
        RunImage.objects.filter(run=run)
        .order_by("pk")
        .values_list("image_id", "label_id", "label_name", "split", "loss")
    )


# --- the page ---------------------------------------------------------------


def test_it_lists_the_runs_images_by_loss_highest_first(curator_client, finished_run):
    response = curator_client.get(cleaner_url(finished_run))

    assert response.status_code == 200
    expected = list(
        RunImage.objects.filter(run=finished_run)
        .order_by("-loss")
        .values_list("image_id", flat=True)
    )
    assert shown_ids(response) == expected
    body = response.content.decode()
    assert "2.300" in body  # the highest loss, formatted
    assert "Keyboard shortcuts" in body and "<kbd>d</kbd>" in body


def test_it_filters_by_actual_label_predicted_label_and_split(
    curator_client, finished_run
):
    response = curator_client.get(
        cleaner_url(finished_run, actual="red", predicted="blue", split="train")
    )

    rows = RunImage.objects.filter(
        run=finished_run, label_name="red", predicted="blue", split="train"
    ).order_by("-loss")
    assert rows.exists()
    assert shown_ids(response) == [r.image_id for r in rows]
    assert shown_ids(curator_client.get(cleaner_url(finished_run, split="valid"))) == [
        r.image_id
        for r in RunImage.objects.filter(run=finished_run, split="valid").order_by(
            "-loss"
        )
    ]


def test_an_unknown_filter_value_is_a_400_not_a_500(curator_client, finished_run):
    response = curator_client.get(cleaner_url(finished_run, split="holdout"))

    assert response.status_code == 400
    assert "split" in response.content.decode()


def test_it_pages_the_grid(curator_client, finished_run, small_dataset):
    label = small_dataset[0].label
    extra = [
        image_ingest(data=make_jpeg(100 + i), label=label, source_kind="upload")
        for i in range(PAGE_SIZE)
    ]
    RunImage.objects.bulk_create(
        RunImage(run=finished_run, image=i, label_name=label.name, split="train")
        for i in extra
    )

    first = curator_client.get(cleaner_url(finished_run, actual=label.name))
    second = curator_client.get(cleaner_url(finished_run, actual=label.name, page=2))

    assert len(shown_ids(first)) == PAGE_SIZE
    assert len(shown_ids(second)) == 8 + len(extra) - PAGE_SIZE
    assert "actual=red&amp;page=2" in first.content.decode()


def test_it_shows_each_images_current_label_and_status(
    curator_client, finished_run, small_dataset
):
    top = RunImage.objects.filter(run=finished_run).order_by("-loss").first()
    green = Label.objects.get(name="green")
    image_relabel(images=[top.image], label=green)
    image_delete(images=[top.image])

    body = curator_client.get(cleaner_url(finished_run)).content.decode()

    card = body[body.index(f'data-image="{top.image_id}"') :][:3000]
    assert f'<dd class="actual">{top.label_name}</dd>' in card
    assert '<span class="current-label">green</span>' in card
    assert '<span class="current-status">deleted</span>' in card
    assert '<span class="handled-badge">deleted</span>' in card


def test_hide_changed_leaves_out_images_curated_since_the_run(
    curator_client, curator, finished_run
):
    ids = shown_ids(curator_client.get(cleaner_url(finished_run)))
    curator_client.post(cleaner_url(finished_run), {"action": "keep", "image": ids[0]})

    pending = shown_ids(curator_client.get(cleaner_url(finished_run, pending="on")))

    assert pending == ids[1:]


def test_the_page_takes_a_fixed_number_of_queries(
    curator_client, finished_run, django_assert_max_num_queries
):
    with django_assert_max_num_queries(12):
        response = curator_client.get(cleaner_url(finished_run))
    assert len(shown_ids(response)) == 24


def test_an_unfinished_run_has_nothing_to_clean(curator_client, small_dataset):
    run = runner.training_run_start(config=TINY, enqueue=False)
    image = small_dataset[0]
    RunImage.objects.create(run=run, image=image, label_name="red", split="train")

    page = curator_client.get(cleaner_url(run))
    post = curator_client.post(
        cleaner_url(run), {"action": "delete", "image": image.pk}, **JSON
    )

    assert page.status_code == 200 and shown_ids(page) == []
    assert "once it has finished" in page.content.decode()
    assert post.status_code == 409 and post.json()["code"] == "run_not_finished"
    image.refresh_from_db()
    assert image.status == ImageStatus.ACTIVE


# --- actions ----------------------------------------------------------------


def test_keep_records_a_keep_and_changes_nothing_else(
    curator_client, curator, finished_run, small_dataset
):
    image = small_dataset[3]
    before = snapshot(finished_run)

    response = curator_client.post(
        cleaner_url(finished_run), {"action": "keep", "image": image.pk}
    )

    assert response.status_code == 302
    assert response.url == cleaner_url(finished_run)
    change = ImageChange.objects.get(image=image)
    assert change.action == "keep" and change.user == curator
    assert change.old_label == image.label and change.new_label is None
    image.refresh_from_db()
    assert image.status == ImageStatus.ACTIVE and image.label.name == "red"
    assert snapshot(finished_run) == before


def test_relabel_changes_the_dataset_records_who_and_keeps_the_snapshot(
    curator_client, curator, finished_run, small_dataset
):
    image = small_dataset[0]  # red
    blue = Label.objects.get(name="blue")
    before = snapshot(finished_run)

    response = curator_client.post(
        cleaner_url(finished_run),
        {"action": "relabel", "image": image.pk, "label": blue.pk},
    )

    assert response.status_code == 302
    image.refresh_from_db()
    assert image.label == blue
    change = ImageChange.objects.get(image=image)
    assert (change.action, change.old_label.name, change.new_label) == (
        "relabel",
        "red",
        blue,
    )
    assert change.user == curator and change.created_at is not None
    assert snapshot(finished_run) == before
    assert RunImage.objects.get(run=finished_run, image=image).label_name == "red"
    # The dataset page shows it at once.
    summary = curator_client.get(reverse("datasets:summary")).content.decode()
    assert re.search(
        r"<td>blue</td>\s*<td><code>blue</code></td>\s*<td>9</td>", summary
    )
    assert f'href="{reverse("datasets:duplicates")}"' in summary


def test_delete_soft_deletes_and_restore_brings_it_back(
    curator_client, curator, finished_run, small_dataset
):
    image = small_dataset[5]

    curator_client.post(
        cleaner_url(finished_run), {"action": "delete", "image": image.pk}
    )
    image.refresh_from_db()
    assert image.status == ImageStatus.DELETED and image.status_changed_by == curator

    curator_client.post(
        cleaner_url(finished_run), {"action": "restore", "image": image.pk}
    )
    image.refresh_from_db()
    assert image.status == ImageStatus.ACTIVE
    assert list(
        ImageChange.objects.filter(image=image)
        .order_by("pk")
        .values_list("action", "old_status", "new_status")
    ) == [("delete", "active", "deleted"), ("restore", "deleted", "active")]


def test_bulk_actions_apply_to_the_whole_selection(
    curator_client, finished_run, small_dataset
):
    reds = [i for i in small_dataset if i.label.name == "red"][:3]
    greens = [i for i in small_dataset if i.label.name == "green"][:2]
    blue = Label.objects.get(name="blue")

    relabel = curator_client.post(
        cleaner_url(finished_run),
        {"action": "relabel", "image": [i.pk for i in reds], "label": blue.pk},
        **JSON,
    )
    delete = curator_client.post(
        cleaner_url(finished_run),
        {"action": "delete", "image": [i.pk for i in greens]},
        **JSON,
    )

    assert relabel.json()["changed"] == 3 and delete.json()["changed"] == 2
    assert set(Image.objects.filter(label=blue).values_list("pk", flat=True)) >= {
        i.pk for i in reds
    }
    assert Image.objects.filter(status="deleted").count() == 2
    assert ImageChange.objects.filter(action="relabel").count() == 3


def test_json_requests_get_the_new_state_of_each_image(
    curator_client, finished_run, small_dataset
):
    image = small_dataset[0]
    green = Label.objects.get(name="green")

    response = curator_client.post(
        cleaner_url(finished_run),
        {"action": "relabel", "image": image.pk, "label": green.pk},
        **JSON,
    )

    assert response.status_code == 200
    assert response.json() == {
        "detail": "1 of 1 image(s) relabelled to green.",
        "action": "relabel",
        "changed": 1,
        "images": [
            {
                "id": image.pk,
                "label": "green",
                "label_id": green.pk,
                "status": "active",
                "status_display": "Active",
                "handled": "relabelled",
            }
        ],
    }


def test_it_returns_to_the_filtered_page_and_never_offsite(
    curator_client, finished_run, small_dataset
):
    here = cleaner_url(finished_run, actual="red", page=1)
    back = curator_client.post(
        cleaner_url(finished_run),
        {"action": "keep", "image": small_dataset[0].pk, "next": here},
    )
    away = curator_client.post(
        cleaner_url(finished_run),
        {"action": "keep", "image": small_dataset[0].pk, "next": "https://evil.test/"},
    )

    assert back.url == here
    assert away.url == cleaner_url(finished_run)


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({"action": "burn", "image": "IMAGE"}, "action"),
        ({"action": "keep"}, "Select at least one image"),
        ({"action": "keep", "image": "abc"}, "whole numbers"),
        ({"action": "keep", "image": "999999"}, "Not images of run"),
        ({"action": "relabel", "image": "IMAGE", "label": "999999"}, "label"),
        ({"action": "relabel", "image": "IMAGE", "label": "red"}, "label"),
        ({"action": "relabel", "image": "IMAGE"}, "Choose the label"),
    ],
)
def test_bad_input_is_a_400_with_a_message_and_changes_nothing(
    curator_client, finished_run, small_dataset, data, words
):
    data = {k: str(small_dataset[0].pk) if v == "IMAGE" else v for k, v in data.items()}

    as_json = curator_client.post(cleaner_url(finished_run), data, **JSON)
    as_html = curator_client.post(cleaner_url(finished_run), data)

    assert as_json.status_code == 400
    assert words in as_json.json()["detail"]
    assert as_html.status_code == 400
    assert words in as_html.content.decode()
    assert not ImageChange.objects.exists()


def test_images_of_another_run_are_refused(
    curator_client, finished_run, django_user_model
):
    label = Label.objects.get(name="red")
    stranger = image_ingest(data=make_jpeg(777), label=label, source_kind="upload")

    response = curator_client.post(
        cleaner_url(finished_run), {"action": "delete", "image": stranger.pk}, **JSON
    )

    assert response.status_code == 400
    assert (
        f"Not images of run {finished_run.pk}: {stranger.pk}"
        in response.json()["detail"]
    )
    stranger.refresh_from_db()
    assert stranger.status == ImageStatus.ACTIVE


def test_a_missing_run_is_a_404(curator_client):
    assert (
        curator_client.get(reverse("training:cleaner", args=[9999])).status_code == 404
    )


def test_posts_need_the_csrf_token(curator, finished_run, small_dataset):
    client = Client(enforce_csrf_checks=True)
    client.force_login(curator)

    response = client.post(
        cleaner_url(finished_run), {"action": "delete", "image": small_dataset[0].pk}
    )

    assert response.status_code == 403
    assert not ImageChange.objects.exists()


# --- who may use it ---------------------------------------------------------


def test_anonymous_users_are_sent_to_the_login_page(client, finished_run):
    response = client.get(cleaner_url(finished_run))

    assert response.status_code == 302
    assert response.url.startswith(reverse("admin:login"))


def test_users_without_change_image_get_a_403(
    client, django_user_model, finished_run, small_dataset
):
    viewer = django_user_model.objects.create_user("v", password="pw", is_staff=True)
    viewer.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="datasets", codename__startswith="view_"
        )
    )
    client.force_login(viewer)

    page = client.get(cleaner_url(finished_run))
    post = client.post(
        cleaner_url(finished_run), {"action": "delete", "image": small_dataset[0].pk}
    )
    duplicates = client.get(reverse("datasets:duplicates"))

    assert (page.status_code, post.status_code, duplicates.status_code) == (
        403,
        403,
        403,
    )
    assert not ImageChange.objects.exists()


def test_superusers_may_clean(admin_client, finished_run):
    assert admin_client.get(cleaner_url(finished_run)).status_code == 200


# --- a real run -------------------------------------------------------------


def test_the_cleaner_of_a_real_run_leaves_its_snapshot_alone(
    curator_client, small_dataset
):
    run = runner.training_run_start(config=TINY, enqueue=False)
    run = runner.training_run_execute(runner.training_run_claim(run.pk))
    assert run.status == "succeeded", run.message
    before = snapshot(run)
    ids = shown_ids(curator_client.get(cleaner_url(run)))
    losses = [RunImage.objects.get(run=run, image_id=pk).loss for pk in ids]
    assert losses == sorted(losses, reverse=True) and len(ids) == len(small_dataset)

    blue = Label.objects.get(name="blue")
    curator_client.post(
        cleaner_url(run), {"action": "relabel", "image": ids[:2], "label": blue.pk}
    )
    curator_client.post(cleaner_url(run), {"action": "delete", "image": ids[2]})

    assert snapshot(run) == before
    assert Image.objects.get(pk=ids[2]).status == ImageStatus.DELETED
    assert set(
        Image.objects.filter(pk__in=ids[:2]).values_list("label", flat=True)
    ) == {blue.pk}


def test_the_run_page_and_the_admin_link_to_the_cleaner(admin_client, finished_run):
    url = cleaner_url(finished_run)

    run_page = admin_client.get(reverse("training:run", args=[finished_run.pk]))
    admin_list = admin_client.get(reverse("admin:training_trainingrun_changelist"))

    assert url in run_page.content.decode()
    assert url in admin_list.content.decode()


# --- changes since the last run ---------------------------------------------


def test_the_runs_page_summarises_changes_since_the_last_run(
    client, finished_run, small_dataset
):
    earlier = timezone.now() - timezone.timedelta(minutes=5)
    Image.objects.update(created_at=earlier - timezone.timedelta(minutes=5))
    TrainingRun.objects.filter(pk=finished_run.pk).update(created_at=earlier)
    red, blue = Label.objects.get(name="red"), Label.objects.get(name="blue")
    image_relabel(images=small_dataset[:2], label=blue)  # two reds
    image_delete(images=[small_dataset[10]])  # a green
    image_ingest(data=make_jpeg(4242), label=red, source_kind="upload")

    body = client.get(reverse("training:runs")).content.decode()

    section = body[body.index('id="changes-since"') :][:2000]
    assert f"run {finished_run.pk}" in section
    assert "<tr><td>blue</td><td>0</td><td>2</td><td>0</td></tr>" in section
    assert "<tr><td>green</td><td>0</td><td>0</td><td>1</td></tr>" in section
    assert "<tr><td>red</td><td>1</td><td>0</td><td>0</td></tr>" in section
    assert "4 changes in all." in section


# --- near-duplicate groups --------------------------------------------------


@pytest.fixture
def near_duplicates(db):
    """An original, two near copies of it (one filed under another label, waiting
    for review; one under its own, trained on) and a stranger."""
    from io import BytesIO

    from PIL import Image as PILImage

    label = Label.objects.get_or_create(slug="tv", name="TV")[0]
    other = Label.objects.get_or_create(slug="camera", name="camera")[0]
    data = make_jpeg(1, size=(320, 240))
    original = image_ingest(data=data, label=label, source_kind="upload")
    copies = []
    for size, copy_label in (((300, 225), other), ((280, 210), label)):
        out = BytesIO()
        PILImage.open(BytesIO(data)).resize(size).save(out, "JPEG", quality=80)
        copies.append(
            image_ingest(data=out.getvalue(), label=copy_label, source_kind="upload")
        )
    stranger = image_ingest(data=make_jpeg(2), label=label, source_kind="upload")
    assert [c.status for c in copies] == ["review", "active"]
    assert {c.group_key for c in copies} == {original.group_key}
    return original, copies, stranger


def test_the_duplicates_page_shows_each_group(curator_client, near_duplicates):
    original, copies, stranger = near_duplicates

    response = curator_client.get(reverse("datasets:duplicates"))

    assert response.status_code == 200
    body = response.content.decode()
    assert "1 group." in body
    for image in (original, *copies):
        assert f'name="keep" value="{image.pk}"' in body
    assert f'value="{stranger.pk}"' not in body


def test_keeping_one_deletes_the_rest_and_reviews_the_kept_one(
    curator_client, curator, near_duplicates
):
    original, copies, stranger = near_duplicates
    group = [original.pk, *(c.pk for c in copies)]

    response = curator_client.post(
        reverse("datasets:duplicates"),
        {"action": "keep_one", "keep": copies[0].pk, "image": group},
    )

    assert response.status_code == 302
    statuses = dict(Image.objects.values_list("pk", "status"))
    assert statuses[copies[0].pk] == "active"  # was in review
    assert statuses[original.pk] == statuses[copies[1].pk] == "deleted"
    assert statuses[stranger.pk] == "active"
    assert set(
        ImageChange.objects.filter(user=curator).values_list("image_id", "action")
    ) == {(original.pk, "delete"), (copies[1].pk, "delete"), (copies[0].pk, "review")}
    page = curator_client.get(reverse("datasets:duplicates")).content.decode()
    assert "0 groups." in page


def test_keeping_an_active_one_records_a_keep(curator_client, near_duplicates):
    original, copies, _ = near_duplicates

    curator_client.post(
        reverse("datasets:duplicates"),
        {
            "action": "keep_one",
            "keep": original.pk,
            "image": [original.pk, copies[0].pk],
        },
    )

    assert ImageChange.objects.get(image=original).action == "keep"
    assert Image.objects.get(pk=copies[0].pk).status == "deleted"


def test_not_duplicates_keeps_all_and_hides_the_group(curator_client, near_duplicates):
    original, copies, _ = near_duplicates
    group = [original.pk, *(c.pk for c in copies)]

    curator_client.post(
        reverse("datasets:duplicates"), {"action": "keep_all", "image": group}
    )

    assert set(Image.objects.filter(pk__in=group).values_list("status", flat=True)) == {
        "active"
    }
    assert (
        "0 groups."
        in curator_client.get(reverse("datasets:duplicates")).content.decode()
    )
    shown = curator_client.get(reverse("datasets:duplicates") + "?all=1")
    assert "1 group." in shown.content.decode()


@pytest.mark.parametrize(
    ("form", "words"),
    [
        ({"action": "keep_one", "image": ["O", "C"]}, "Choose the image to keep"),
        ({"action": "keep_one", "keep": "S", "image": ["O", "C"]}, "not in the group"),
        (
            {"action": "keep_one", "keep": "O", "image": ["O", "S"]},
            "not near duplicates",
        ),
        (
            {"action": "keep_one", "keep": "O", "image": ["O", "99999"]},
            "No such images",
        ),
        ({"action": "keep_one", "keep": "O", "image": ["O"]}, "at least two"),
        ({"action": "merge", "keep": "O", "image": ["O", "C"]}, "action"),
        ({"action": "keep_one", "keep": "O", "image": ["O", "x"]}, "whole numbers"),
    ],
)
def test_the_duplicates_page_refuses_bad_groups(
    curator_client, near_duplicates, form, words
):
    original, copies, stranger = near_duplicates
    ids = {"O": original.pk, "C": copies[0].pk, "S": stranger.pk}

    def sub(v):
        return (
            [str(ids.get(x, x)) for x in v]
            if isinstance(v, list)
            else str(ids.get(v, v))
        )

    response = curator_client.post(
        reverse("datasets:duplicates"), {k: sub(v) for k, v in form.items()}, **JSON
    )

    assert response.status_code == 400
    assert words in response.json()["detail"]
    assert not ImageChange.objects.exists()
    assert not Image.objects.filter(status="deleted").exists()
