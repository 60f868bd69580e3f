from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from datasets.imaging import fit_long_side
from training.ml.preprocess import preprocess

ROOT = Path(__file__).resolve().parents[2]
CAMERA = sorted((ROOT / "datasets" / "demo" / "images" / "camera").glob("*.jpg"))
RESOURCE_4XX = re.compile(
    r"Failed to load resource: the server responded with a status of 4\d\d"
)


def read_result(page) -> dict:
    bars = page.locator("#bars li")
    probabilities = {
        bars.nth(i).get_attribute("data-label"): float(
            bars.nth(i).get_attribute("data-probability")
        )
        for i in range(bars.count())
    }
    return {
        "label": page.locator("#top-label").inner_text().strip(),
        "probabilities": probabilities,
        "model_version": int(page.locator("#model-version").inner_text()),
        "backend": page.locator("#backend").inner_text(),
        "timing": page.locator("#timing").inner_text(),
    }


def wait_done(page) -> None:
    page.wait_for_selector(
        "#predict-form[data-state=done], #predict-form[data-state=error]"
    )
    assert page.get_attribute("#predict-form", "data-state") == "done", page.inner_text(
        "#error"
    )


def test_uploading_a_demo_image_shows_the_models_answer(site, open_page):
    version = site.install("demo", promote=True)
    page, console = open_page(site.url + "/")

    page.set_input_files("#image-input", str(CAMERA[0]))
    wait_done(page)

    result = read_result(page)
    assert result["model_version"] == version.pk
    assert result["backend"] == "server"
    assert set(result["probabilities"]) == set(version.label_names)
    assert sum(result["probabilities"].values()) == pytest.approx(1.0, abs=1e-3)
    assert result["label"] == max(
        result["probabilities"], key=result["probabilities"].get
    )
    assert page.locator("#preview").get_attribute("src").startswith("blob:")
    assert page.is_visible("#result")
    assert console.errors == []


def test_browser_mode_answers_like_the_server_without_uploading(site, open_page):
    version = site.install("demo", promote=True)
    page, console = open_page(site.url + "/")
    posts = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)

    for image in CAMERA[:3]:
        page.set_input_files("#image-input", str(image))
        wait_done(page)
        server = read_result(page)
        posts.clear()
        page.check("input[name=mode][value=browser]")
        page.wait_for_function(
            "document.querySelector('#backend').textContent.includes('browser')"
        )
        wait_done(page)
        local = read_result(page)
        page.check("input[name=mode][value=server]")
        page.wait_for_function(
            "document.querySelector('#backend').textContent === 'server'"
        )
        wait_done(page)

        assert local["label"] == server["label"], image.name
        assert local["model_version"] == version.pk
        for label, p in server["probabilities"].items():
            assert local["probabilities"][label] == pytest.approx(p, abs=0.02), (
                image.name
            )
    assert "wasm" in local["backend"] or "webgpu" in local["backend"]
    assert "inference" in local["timing"]
    assert page.evaluate("self.crossOriginIsolated") is True
    assert page.evaluate("window.snapclass.browser.threads") >= 1
    assert console.errors == []


def test_browser_mode_shows_softmax_of_its_logits_over_the_temperature(site, open_page):
    version = site.install("demo", promote=True)
    assert version.temperature != 1.0
    page, console = open_page(site.url + "/")
    page.check("input[name=mode][value=browser]")

    page.set_input_files("#image-input", str(CAMERA[2]))
    wait_done(page)

    logits = np.array(page.evaluate("window.snapclass.lastResult().logits"))
    z = logits / version.temperature
    expected = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    shown = read_result(page)["probabilities"]
    for i, label in enumerate(version.label_names):
        assert shown[label] == pytest.approx(expected[i], abs=1e-6)
    assert console.errors == []


@pytest.mark.parametrize("where", ["server", "browser"])
def test_an_uncertain_answer_says_not_sure(site, open_page, settings, where):
    settings.SNAPCLASS_UNCERTAIN_BELOW = 1.0  # every answer is below the line
    site.install("demo", promote=True)
    page, console = open_page(site.url + "/")
    if where == "browser":
        page.check("input[name=mode][value=browser]")

    page.set_input_files("#image-input", str(CAMERA[0]))
    wait_done(page)

    heading = page.inner_text("#result h2")
    assert heading.startswith("Not sure — maybe " + read_result(page)["label"])
    settings.SNAPCLASS_UNCERTAIN_BELOW = 0.0
    page.reload()
    if where == "browser":
        page.check("input[name=mode][value=browser]")
    page.set_input_files("#image-input", str(CAMERA[0]))
    wait_done(page)
    assert not page.is_visible("#not-sure")
    assert console.errors == []


def test_another_class_is_sent_by_its_name(site, open_page):
    from classifier.models import Feedback

    site.install("demo", promote=True)
    page, console = open_page(site.url + "/")
    page.set_input_files("#image-input", str(CAMERA[0]))
    wait_done(page)

    page.fill("#new-label", "Polaroid camera")
    page.click("#new-label-button")
    page.wait_for_selector("#feedback-form[data-state=sent]")

    item = Feedback.objects.get()
    assert item.correct_label.name == "Polaroid camera"
    assert item.correct_label.is_active is False  # nothing trains on it yet
    assert item.image.status == "review"
    assert "Polaroid camera" in page.inner_text("#feedback-status")
    assert console.errors == []


def test_browser_mode_uploads_nothing(site, open_page):
    site.install("demo", promote=True)
    page, console = open_page(site.url + "/")
    page.check("input[name=mode][value=browser]")
    posts = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)

    page.set_input_files("#image-input", str(CAMERA[1]))
    wait_done(page)

    assert "browser" in read_result(page)["backend"]
    assert posts == []
    assert console.errors == []


def test_a_corrupt_file_shows_an_error_in_words(site, open_page):
    site.install("demo", promote=True)
    page, console = open_page(site.url + "/")

    page.set_input_files(
        "#image-input",
        files=[
            {"name": "broken.jpg", "mimeType": "image/jpeg", "buffer": b"not a photo"}
        ],
    )
    page.wait_for_selector("#predict-form[data-state=error]")

    error = page.inner_text("#error")
    assert "This file is not an image we can read (code not_an_image)" in error
    assert not page.is_visible("#result")
    # The 415 answer itself is the only thing the console may complain about.
    assert [e for e in console.errors if not RESOURCE_4XX.search(e)] == []


def test_the_form_works_without_javascript(site, open_page):
    version = site.install("demo", promote=True)
    page, console = open_page(site.url + "/", javascript=False)

    page.set_input_files("#image-input", str(CAMERA[0]))
    with page.expect_navigation():
        page.click("#predict-button")

    result = read_result(page)
    assert result["model_version"] == version.pk
    assert result["backend"] == "server"
    assert set(result["probabilities"]) == set(version.label_names)
    assert page.locator("#preview").get_attribute("src").startswith("data:image/jpeg")


def test_the_page_without_a_model_explains_how_to_get_one(site, open_page):
    page, console = open_page(site.url + "/")

    assert "No model has been trained yet" in page.inner_text("#no-model")
    assert console.errors == []


@pytest.mark.parametrize(
    "model,size",
    [
        ("three", (300, 200)),
        ("three", (77, 241)),
        ("demo", (1100, 70)),
        ("demo", (3000, 90)),
    ],
)
def test_the_pages_preprocessing_equals_the_servers(site, open_page, model, size):
    """The JavaScript port of Pillow's resampling gives the server's tensor."""
    version = site.install(model, promote=True)
    page, console = open_page(site.url + "/")
    rng = np.random.default_rng(sum(size))
    pixels = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    pixels[: size[1] // 2] //= 3  # some structure, so a wrong offset shows

    got = page.evaluate(
        """([w, h, b64]) => {
            const data = Uint8ClampedArray.from(atob(b64), (c) => c.charCodeAt(0));
            return Array.from(window.snapclass.preprocess({width: w, height: h, data}));
        }""",
        [size[0], size[1], base64.b64encode(pixels.tobytes()).decode()],
    )

    from django.conf import settings

    image = fit_long_side(Image.fromarray(pixels), settings.SNAPCLASS_MAX_IMAGE_SIDE)
    expected = preprocess(image, version.preprocessing).reshape(-1)
    assert np.abs(np.array(got, dtype=np.float32) - expected).max() < 1e-5
    assert console.errors == []


def test_the_page_config_is_valid_json_for_the_script(site, open_page):
    version = site.install("demo", promote=True)
    page, _ = open_page(site.url + "/")

    config = (
        json.loads(page.inner_text("#snapclass-config") or "{}")
        if False
        else (page.evaluate("window.snapclass.config"))
    )

    assert config["model"]["version"] == version.pk
    assert config["model"]["label_names"] == version.label_names


def _labels_of(version):
    from datasets.services import label_get_or_create

    return {name: label_get_or_create(name=name) for name in version.label_names}


@pytest.mark.parametrize("where", ["server", "browser"])
def test_wrong_it_is_sends_the_correction_for_review(site, open_page, where):
    from classifier.models import Feedback
    from datasets.models import Image as ImageRow

    version = site.install("demo", promote=True)
    labels = _labels_of(version)
    page, console = open_page(site.url + "/")
    page.check(f"input[name=mode][value={where}]")
    page.set_input_files("#image-input", str(CAMERA[0]))
    wait_done(page)
    predicted = read_result(page)["label"]
    correct = next(name for name in version.label_names if name != predicted)

    buttons = page.locator("#feedback-form button[name=label]:not([value=''])")
    shown = {
        buttons.nth(i).get_attribute("data-label")
        for i in range(buttons.count())
        if buttons.nth(i).is_visible()
    }
    assert shown == set(version.label_names) - {predicted}
    assert ImageRow.objects.count() == 0  # predicting stores nothing

    page.click(f"#feedback-form button[data-label='{correct}']")
    page.wait_for_selector("#feedback-form[data-state=sent]")

    assert f"sent for review as \u201c{correct}\u201d" in page.inner_text(
        "#feedback-status"
    )
    item = Feedback.objects.select_related("image").get()
    assert item.correct_label == labels[correct]
    assert item.predicted_label == predicted and item.model_version == version
    assert (item.image.source_kind, item.image.status) == ("feedback", "review")
    assert item.image.label == labels[correct]
    assert console.errors == []


def test_wrong_it_is_works_without_javascript(site, open_page):
    from classifier.models import Feedback

    version = site.install("demo", promote=True)
    labels = _labels_of(version)
    page, console = open_page(site.url + "/", javascript=False)
    page.set_input_files("#image-input", str(CAMERA[0]))
    with page.expect_navigation():
        page.click("#predict-button")
    predicted = read_result(page)["label"]
    correct = next(name for name in version.label_names if name != predicted)

    with page.expect_navigation():
        page.click(f"#feedback-form button[data-label='{correct}']")

    assert "sent for review" in page.inner_text(".messages")
    item = Feedback.objects.get()
    assert (item.correct_label, item.predicted_label) == (labels[correct], predicted)
    assert console.errors == []
