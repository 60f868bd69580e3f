"""The cleaner in Chromium: relabel, delete, keys and bulk, then the database.

Chromium comes from tests/e2e/conftest.py (`browser`), which also skips these tests
when /usr/bin/chromium is missing (and fails them when CI is set).
"""

from __future__ import annotations

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from datasets.models import Image, ImageChange, Label
from datasets.services import image_ingest, label_get_or_create
from tests.training.conftest import COLOURS, TINY, coloured_image
from training import runner
from training.models import RunImage, TrainingRun


@pytest.fixture
def cleaner_site(live_server, settings, transactional_db):
    """The live server, serving this test's MEDIA_ROOT (the cards' thumbnails)."""
    settings.ROOT_URLCONF = "tests.classifier.urls"
    return live_server


def add_images() -> list[Image]:
    """Three colours of eight images each."""
    return [
        image_ingest(
            data=coloured_image(colour, seed=n * 100 + i),
            label=label_get_or_create(name=name),
            source_kind="upload",
        )
        for n, (name, colour) in enumerate(COLOURS.items())
        for i in range(8)
    ]


@pytest.fixture
def tiny_run(cleaner_site):
    """A finished tiny_cnn run, trained here."""
    add_images()
    run = runner.training_run_start(config=TINY, enqueue=False)
    run = runner.training_run_execute(runner.training_run_claim(run.pk))
    assert run.status == "succeeded", run.message
    return run


@pytest.fixture
def made_run(cleaner_site):
    """A succeeded run written directly, losses falling with the image order.

    For the tests of the page's controls, which need no real model.
    """
    images = add_images()
    run = TrainingRun.objects.create(
        status="succeeded", slot=None, config=TINY, image_count=len(images)
    )
    RunImage.objects.bulk_create(
        RunImage(
            run=run,
            image=image,
            label_name=image.label.name,
            file=image.file.name,
            split="valid" if n % 2 else "train",
            loss=5 - n / 10,
            predicted=image.label.name,
            confidence=0.5,
        )
        for n, image in enumerate(images)
    )
    return run


@pytest.fixture
def curator_user(django_user_model):
    user = django_user_model.objects.create_user(
        "curator", password="not-used", is_staff=True
    )
    # The permission itself: a transactional test before this one may have flushed
    # the groups that a data migration made.
    user.user_permissions.add(
        Permission.objects.get(
            content_type__app_label="datasets", codename="change_image"
        )
    )
    return user


@pytest.fixture
def curator_page(browser, cleaner_site, curator_user):
    """curator_page(path, javascript=True) -> (page, errors), signed in as curator."""
    client = Client()
    client.force_login(curator_user)
    session = client.cookies[django_settings.SESSION_COOKIE_NAME].value
    contexts = []

    def open_(path: str, *, javascript: bool = True):
        context = browser.new_context(java_script_enabled=javascript)
        contexts.append(context)
        context.add_cookies(
            [
                {
                    "name": django_settings.SESSION_COOKIE_NAME,
                    "value": session,
                    "url": cleaner_site.url,
                }
            ]
        )
        page = context.new_page()
        page.set_default_timeout(30_000)
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else 0)
        page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
        page.goto(cleaner_site.url + path)
        return page, errors

    yield open_
    for context in contexts:
        context.close()


def snapshot(run) -> list[tuple]:
    return list(
        RunImage.objects.filter(run=run)
        .order_by("pk")
        .values_list("image_id", "label_name", "split", "loss", "predicted")
    )


def card(page, image_id: int):
    return page.locator(f'article.clean-card[data-image="{image_id}"]')


def test_relabel_and_delete_with_the_pages_buttons(
    tiny_run, curator_page, curator_user
):
    before = snapshot(tiny_run)
    page, errors = curator_page(reverse("training:cleaner", args=[tiny_run.pk]))
    ids = [
        int(i)
        for i in page.locator("article.clean-card").evaluate_all(
            "cards => cards.map(c => c.dataset.image)"
        )
    ]
    first, second = Image.objects.get(pk=ids[0]), Image.objects.get(pk=ids[1])
    target = Label.objects.exclude(pk=first.label_id).order_by("name").first()

    top = card(page, first.pk)
    top.locator('select[name="label"]').select_option(label=target.name)
    top.locator('button[value="relabel"]').click()
    top.locator(".handled-badge", has_text="relabelled").wait_for()
    assert f"relabelled to {target.name}" in page.inner_text("#cleaner-status")
    other = card(page, second.pk)
    other.locator('button[value="delete"]').click()
    other.locator(".handled-badge", has_text="deleted").wait_for()

    # Updated in place, without a reload.
    assert top.locator(".current-label").inner_text() == target.name
    assert other.locator(".current-status").inner_text() == "deleted"
    assert other.locator('button[value="restore"]').is_visible()
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.label == target and second.status == "deleted"
    assert set(
        ImageChange.objects.filter(user=curator_user).values_list("image_id", "action")
    ) == {(first.pk, "relabel"), (second.pk, "delete")}
    assert snapshot(tiny_run) == before
    assert errors == []


def test_keyboard_shortcuts_and_bulk_selection(made_run, curator_page):
    page, errors = curator_page(reverse("training:cleaner", args=[made_run.pk]))
    ids = [
        int(i)
        for i in page.locator("article.clean-card").evaluate_all(
            "cards => cards.map(c => c.dataset.image)"
        )
    ]
    labels = list(Label.objects.order_by("name"))

    page.keyboard.press("n")  # highlight the first image
    page.keyboard.press("2")  # relabel it to the second label; moves on
    card(page, ids[0]).locator(".handled-badge", has_text="relabelled").wait_for()
    page.keyboard.press("k")  # keep the second image
    card(page, ids[1]).locator(".handled-badge", has_text="kept").wait_for()
    page.keyboard.press("x")  # select the third
    page.keyboard.press("n")
    page.keyboard.press("x")  # and the fourth
    page.keyboard.press("Shift+D")  # delete the selection
    card(page, ids[3]).locator(".handled-badge", has_text="deleted").wait_for()
    card(page, ids[2]).locator(".handled-badge", has_text="deleted").wait_for()

    assert Image.objects.get(pk=ids[0]).label == labels[1]
    assert ImageChange.objects.get(image_id=ids[1]).action == "keep"
    assert set(Image.objects.filter(status="deleted").values_list("pk", flat=True)) == {
        ids[2],
        ids[3],
    }
    assert page.locator("#selected-count").inner_text() == ""
    assert errors == []


def test_the_page_works_without_javascript(made_run, curator_page):
    url = reverse("training:cleaner", args=[made_run.pk])
    page, _ = curator_page(url + "?split=valid", javascript=False)
    first = page.locator("article.clean-card").first
    image_id = int(first.get_attribute("data-image"))

    first.locator('button[value="delete"]').click()
    page.wait_for_load_state()

    assert page.url.endswith(url + "?split=valid")
    assert "1 of 1 image(s) deleted." in page.locator(".messages").inner_text()
    assert Image.objects.get(pk=image_id).status == "deleted"
    assert card(page, image_id).locator(".current-status").inner_text() == "deleted"
