"""From four typed words to a served classifier, in Chromium, with a live worker.

A Bing-compatible search endpoint and its images are served on 127.0.0.1 by the
test; the worker scrapes, then trains (a tiny network: the point is the flow).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from classifier.models import Feedback
from classifier.predictor import predictor_reset
from tests.datasets.scrape_site import class_image, serve_classes
from tests.integration.conftest import (  # noqa: F401  (fixtures)
    broker,
    postgres,
    redis_url,
    start_worker,
    wait_for,
)
from tests.webserver import LocalServer
from training.models import Project

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CLASSES = ["woman", "man", "camera", "TV"]
FAST = {"backbone": "tiny_cnn", "epochs": 1, "image_size": 32, "batch_size": 8}
# SNAPCLASS_DOCS_SCREENSHOTS=1 writes the README's pictures of these pages.
SCREENSHOTS = os.environ.get("SNAPCLASS_DOCS_SCREENSHOTS") == "1"


@pytest.fixture
def web(settings):
    with LocalServer() as server:
        settings.BING_SEARCH_ENDPOINT = server.url("/bing/v7.0/images/search")
        settings.BING_SEARCH_KEY = "test-key"
        settings.SNAPCLASS_SEARCH_PROVIDER = "bing"
        settings.SNAPCLASS_FETCH_ALLOW_PRIVATE_HOSTS = ["127.0.0.1"]
        # The README's pictures show a model that learned something.
        settings.SNAPCLASS_TRAIN_DEFAULTS = (
            {
                "backbone": "efficientnet_lite0",
                "epochs": 3,
                "image_size": 64,
                "batch_size": 16,
            }
            if SCREENSHOTS
            else FAST
        )
        settings.SNAPCLASS_PREDICT_RATE = ""
        yield server


@pytest.fixture
def app(live_server, settings, web, start_worker):  # noqa: F811
    settings.ROOT_URLCONF = "tests.classifier.urls"  # /media/ from this test's root
    predictor_reset()
    start_worker(
        "default,scrape,train",
        BING_SEARCH_ENDPOINT=settings.BING_SEARCH_ENDPOINT,
        BING_SEARCH_KEY="test-key",
        SNAPCLASS_FETCH_ALLOW_PRIVATE_HOSTS="127.0.0.1",
    )
    yield live_server
    predictor_reset()


@pytest.fixture
def staff(django_user_model):
    # A staff superuser needs no permission rows, which other integration tests'
    # flushes may have removed (a curator's rights: tests/training/test_projects.py).
    return django_user_model.objects.create_superuser("stella", "", "a-long-password")


def sign_in(page, url: str) -> None:
    page.fill("#id_username", "stella")
    page.fill("#id_password", "a-long-password")
    with page.expect_navigation():
        page.click("input[type=submit]")
    assert page.url == url, page.url


def test_four_typed_words_become_a_classifier_that_answers(
    app, web, staff, open_page, tmp_path
):
    per_class = 24 if SCREENSHOTS else 12
    serve_classes(web, CLASSES, per_class=per_class)
    new_url = app.url + "/classifiers/new/"
    page, console = open_page(app.url + "/")
    # A fresh database: the home page points to the new-classifier page.
    assert "No model has been trained yet" in page.inner_text("#no-model")
    page.click("#no-model a[href='/classifiers/new/']")
    sign_in(page, new_url)

    page.fill("textarea[name=classes]", "\n".join(CLASSES))
    assert page.inner_text("#slug-preview").splitlines() == [
        "woman → woman",
        "man → man",
        "camera → camera",
        "TV → tv",
    ]
    page.check("input[name=provider][value=bing]")
    page.fill("input[name=per_label]", str(per_class))
    assert page.is_checked("input[name=train]")
    if SCREENSHOTS:
        page.set_viewport_size({"width": 1100, "height": 900})
        page.screenshot(path=str(ROOT / "docs" / "new-classifier.png"), full_page=True)
    with page.expect_navigation():
        page.click("#create-button")

    project = Project.objects.get()
    assert page.url == f"{app.url}/classifiers/{project.pk}/"
    rows = page.locator("#class-progress tr[data-class]")
    assert [rows.nth(i).get_attribute("data-class") for i in range(4)] == [
        "woman",
        "man",
        "camera",
        "tv",
    ]
    # Per-class progress arrives without a reload...
    for slug in ("woman", "man", "camera", "tv"):
        page.wait_for_selector(
            f"#class-progress tr[data-class={slug}] "
            f"[data-f=downloaded]:text-is('{per_class}')",
            timeout=120_000,
        )
    # ...then the run starts by itself and its model becomes current.
    page.wait_for_selector("#run-link a", timeout=120_000)
    page.wait_for_selector("#model-ready", timeout=300_000)
    assert "is current" in page.inner_text("#project-headline")
    project.refresh_from_db()
    run = project.run
    assert run.status == "succeeded" and run.trigger == "auto"
    assert sorted(run.label_names) == sorted(CLASSES)
    if SCREENSHOTS:
        page.screenshot(
            path=str(ROOT / "docs" / "classifier-ready.png"), full_page=True
        )
        run_page, _ = open_page(f"{app.url}/runs/{run.pk}/")
        run_page.set_viewport_size({"width": 1100, "height": 900})
        run_page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
        run_page.wait_for_load_state("networkidle")
        run_page.evaluate("window.scrollTo(0, 0)")
        run_page.screenshot(
            path=str(ROOT / "docs" / "run.png"),
            full_page=True,
            clip={"x": 0, "y": 0, "width": 1100, "height": 1400},
        )

    with page.expect_navigation():
        page.click("#model-ready a.button")
    photo = tmp_path / "photo.png"
    photo.write_bytes(class_image(2, 999))  # a "camera"
    page.set_input_files("#image-input", str(photo))
    page.wait_for_selector(
        "#predict-form[data-state=done], #predict-form[data-state=error]"
    )
    assert page.get_attribute("#predict-form", "data-state") == "done"
    predicted = page.inner_text("#top-label").strip()
    assert predicted in CLASSES
    correct = next(name for name in CLASSES if name != predicted)
    page.click(f"#feedback-form button[data-label='{correct}']")
    page.wait_for_selector("#feedback-form[data-state=sent]")

    item = Feedback.objects.select_related("correct_label").get()
    assert item.correct_label.name == correct and item.predicted_label == predicted
    assert console.errors == []
