from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from classifier import feedback
from classifier.models import Feedback, PredictionLog
from datasets.models import Image
from datasets.services import image_ingest, label_get_or_create
from tests.conftest import make_jpeg

pytestmark = pytest.mark.django_db


@pytest.fixture
def labels():
    return label_get_or_create(name="camera"), label_get_or_create(name="TV")


def post_feedback(client, data: bytes, **fields):
    upload = SimpleUploadedFile("photo.jpg", data, "image/jpeg")
    return client.post(reverse("api-feedback"), {"image": upload, **fields})


def test_feedback_stores_the_image_for_review_with_both_labels(client, labels):
    response = post_feedback(client, make_jpeg(1), label="tv", predicted_label="camera")

    assert response.status_code == 201, response.content
    body = response.json()
    item = Feedback.objects.get(pk=body["id"])
    assert item.correct_label == labels[1] and item.predicted_label == "camera"
    image = Image.objects.get(pk=body["image"])
    assert (image.source_kind, image.status, image.label) == (
        "feedback",
        "review",
        labels[1],
    )


@pytest.mark.parametrize(
    ("data", "fields", "code"),
    [
        (make_jpeg(2), {"label": "no-such-label"}, "unknown_label"),
        (b"not an image", {"label": "tv"}, "not_an_image"),
        (make_jpeg(3), {"label": "tv", "prediction": "999"}, "unknown_prediction"),
        (make_jpeg(4), {}, None),
    ],
)
def test_bad_feedback_is_a_4xx_with_a_reason(client, labels, data, fields, code):
    response = post_feedback(client, data, **fields)

    assert 400 <= response.status_code < 500
    assert "detail" in response.json()
    if code:
        assert response.json()["code"] == code
    assert not Feedback.objects.exists() and not Image.objects.exists()


def test_feedback_on_a_known_image_reuses_it(client, labels):
    known = image_ingest(data=make_jpeg(5), label=labels[0], source_kind="upload")

    response = post_feedback(client, make_jpeg(5), label="tv")

    assert response.status_code == 201
    assert response.json()["image"] == known.pk
    assert Image.objects.count() == 1


def test_accepting_adds_the_image_with_the_corrected_label_and_rejecting_deletes_it(
    labels,
):
    cam, tv = labels
    good = feedback.feedback_submit(data=make_jpeg(6), correct_label=tv)
    bad = feedback.feedback_submit(data=make_jpeg(7), correct_label=cam)

    assert feedback.feedback_accept(feedback=Feedback.objects.filter(pk=good.pk)) == 1
    assert feedback.feedback_reject(feedback=Feedback.objects.filter(pk=bad.pk)) == 1

    good.image.refresh_from_db()
    bad.image.refresh_from_db()
    assert (good.image.status, good.image.label) == ("active", tv)
    assert bad.image.status == "deleted"


def test_the_prediction_log_is_off_by_default_and_queues_the_least_confident(settings):
    assert feedback.prediction_log(version_id=None, label="TV", confidence=0.9) is None
    settings.SNAPCLASS_PREDICTION_LOG = True
    for confidence in (0.9, 0.3, 0.6):
        feedback.prediction_log(version_id=None, label="TV", confidence=confidence)

    assert [p.confidence for p in feedback.review_queue()] == [0.3, 0.6, 0.9]
    assert PredictionLog.objects.count() == 3


def test_feedback_can_point_at_a_logged_prediction(settings, labels):
    settings.SNAPCLASS_PREDICTION_LOG = True
    logged = feedback.prediction_log(version_id=None, label="camera", confidence=0.55)

    item = feedback.feedback_submit(
        data=make_jpeg(8), correct_label=labels[1], prediction_id=logged.pk
    )

    assert item.prediction == logged and item.predicted_label == "camera"


def test_with_the_log_on_a_prediction_is_logged_and_feedback_can_cite_it(
    client, install_model, settings
):
    version = install_model("two", promote=True)
    settings.SNAPCLASS_PREDICTION_LOG = True
    label_get_or_create(name="red")
    photo = make_jpeg(9)

    answer = client.post(
        reverse("api-predict"),
        {"image": SimpleUploadedFile("p.jpg", photo, "image/jpeg")},
    ).json()
    logged = PredictionLog.objects.get(pk=answer["prediction_id"])
    response = post_feedback(client, photo, label="red", prediction=str(logged.pk))

    assert (logged.label, logged.model_version_id) == (answer["label"], version.pk)
    assert response.status_code == 201
    item = Feedback.objects.get(pk=response.json()["id"])
    assert item.predicted_label == answer["label"] and item.model_version == version


# --- "Wrong? It is ..." on the upload page without JavaScript --------------------


def _page_feedback_form(html: str) -> dict[str, str]:
    """The hidden fields of the result page's feedback form."""
    import re

    form = html.split('id="feedback-form"')[1].split("</form>")[0]
    return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', form))


def _predicted_on_the_page(client, pattern: int) -> dict[str, str]:
    """Predict a picture with the page's plain form; its feedback form's fields."""
    page = client.post(
        "/", {"image": SimpleUploadedFile("p.jpg", make_jpeg(pattern), "image/jpeg")}
    )
    assert page.status_code == 200
    return _page_feedback_form(page.content.decode())


def test_the_result_page_offers_every_label_and_sends_the_correction(
    client, install_model, settings
):
    version = install_model("two", promote=True)  # labels red, blue
    red, blue = label_get_or_create(name="red"), label_get_or_create(name="blue")
    photo = make_jpeg(21, size=(300, 200))

    page = client.post("/", {"image": SimpleUploadedFile("p.jpg", photo, "image/jpeg")})
    html = page.content.decode()
    fields = _page_feedback_form(html)
    predicted = fields["predicted_label"]
    wrong = blue if predicted == "red" else red

    assert page.status_code == 200 and predicted in ("red", "blue")
    assert f'value="{wrong.slug}"' in html and "Wrong?" in html
    assert fields["model_version"] == str(version.pk)
    assert Image.objects.count() == 0  # nothing is stored by predicting

    response = client.post(
        reverse("classifier:feedback"), {**fields, "label": wrong.slug}, follow=True
    )

    assert response.status_code == 200
    assert "sent for review as" in response.content.decode()
    item = Feedback.objects.get()
    assert (item.predicted_label, item.correct_label, item.model_version) == (
        predicted,
        wrong,
        version,
    )
    assert (item.image.source_kind, item.image.status) == ("feedback", "review")
    # Shrunk like the page's script does: the short side is the model's input size.
    assert min(item.image.width, item.image.height) == max(
        version.preprocessing["image_size"], settings.SNAPCLASS_MIN_IMAGE_SIDE
    )


@pytest.mark.parametrize(
    "change, code",
    [
        ({"image": "forged"}, "feedback_expired"),
        ({"image": ""}, "feedback_expired"),
        ({"label": "no-such-label"}, "unknown_label"),
        ({"label": ""}, "unknown_label"),
    ],
)
def test_bad_page_feedback_is_a_400_in_words_and_stores_nothing(
    client, install_model, change, code
):
    install_model("two", promote=True)
    label_get_or_create(name="red")
    fields = {**_predicted_on_the_page(client, 22), "label": "red", **change}

    response = client.post(reverse("classifier:feedback"), fields)

    assert response.status_code == 400
    assert f"(code {code})" in response.content.decode()
    assert Feedback.objects.count() == 0 and Image.objects.count() == 0


def test_a_signed_image_cannot_be_swapped_for_another(client, install_model):
    """The token signs the image: editing its bytes breaks the signature."""
    import base64

    from django.core import signing

    install_model("two", promote=True)
    label_get_or_create(name="red")
    fields = _predicted_on_the_page(client, 23)
    other = base64.b64encode(make_jpeg(24)).decode()
    payload = signing.dumps(other, salt="another-purpose")

    response = client.post(
        reverse("classifier:feedback"), {**fields, "image": payload, "label": "red"}
    )

    assert response.status_code == 400
    assert Feedback.objects.count() == 0


@pytest.mark.parametrize("field", ["prediction", "model_version"])
def test_an_id_too_large_for_the_database_is_a_400(client, labels, field):
    response = post_feedback(client, make_jpeg(60), label="tv", **{field: "9" * 30})

    assert response.status_code == 400
    assert response.json()["code"]


def test_page_feedback_ignores_ids_that_cannot_exist(client, install_model):
    install_model("two", promote=True)
    label_get_or_create(name="red")
    fields = _predicted_on_the_page(client, 61)
    fields.update(label="red", model_version="9" * 30, prediction="٣")

    response = client.post(reverse("classifier:feedback"), fields)

    assert response.status_code == 302
    assert Feedback.objects.get().model_version is None
