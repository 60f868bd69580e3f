from __future__ import annotations

import io
import json

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.utils import timezone

from classifier.models import APIKey
from classifier.selectors import model_version_current
from classifier.services import api_key_create, api_key_revoke
from tests.conftest import make_jpeg

pytestmark = pytest.mark.django_db
PREDICT = "/api/v1/predict/"


def upload(data: bytes | None = None, name: str = "photo.jpg") -> io.BytesIO:
    f = io.BytesIO(make_jpeg(1) if data is None else data)
    f.name = name
    return f


@pytest.fixture
def model(install_model):
    return install_model("two", promote=True)


def test_predict_one_image_answers_label_and_sorted_probabilities(client, model):
    response = client.post(PREDICT, {"image": upload()})

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {
        "label",
        "confidence",
        "uncertain",
        "probabilities",
        "model_version",
    }
    assert isinstance(body["uncertain"], bool)
    assert body["model_version"] == model.pk
    probs = [p["probability"] for p in body["probabilities"]]
    assert probs == sorted(probs, reverse=True)
    assert {p["label"] for p in body["probabilities"]} == {"blue", "red"}
    assert body["label"] == body["probabilities"][0]["label"]
    assert body["confidence"] == probs[0]
    assert sum(probs) == pytest.approx(1.0)


def test_predict_several_images_answers_results_in_order(client, model):
    files = [upload(make_jpeg(i), f"{i}.jpg") for i in range(3)]
    singles = [
        client.post(PREDICT, {"image": upload(make_jpeg(i))}).json() for i in range(3)
    ]

    response = client.post(PREDICT, {"images": files})

    assert response.status_code == 200
    results = response.json()["results"]
    assert len(results) == 3
    for got, single in zip(results, singles, strict=True):
        assert got["label"] == single["label"]
        assert got["confidence"] == pytest.approx(single["confidence"], abs=1e-6)


def test_predict_url_downloads_through_the_safe_fetcher(
    client,
    model,
    local_server,
    settings,
):
    settings.SNAPCLASS_PREDICT_URL_ALLOW_PRIVATE_HOSTS = ["127.0.0.1"]
    url = local_server.add(
        "/cat.jpg", body=make_jpeg(1), headers={"Content-Type": "image/jpeg"}
    )
    direct = client.post(PREDICT, {"image": upload()}).json()

    response = client.post(PREDICT, {"url": url}, content_type="application/json")

    assert response.status_code == 200, response.json()
    assert response.json()["confidence"] == pytest.approx(direct["confidence"])
    assert local_server.hits["/cat.jpg"] == 1


def test_predict_url_refuses_private_addresses_even_those_scraping_may_reach(
    client, model, local_server, settings
):
    settings.SNAPCLASS_FETCH_ALLOW_PRIVATE_HOSTS = ["127.0.0.1"]  # scraping's list
    url = local_server.add("/cat.jpg", body=make_jpeg(1))

    response = client.post(PREDICT, {"url": url}, content_type="application/json")

    assert response.status_code == 400
    assert response.json()["code"] == "private_address"
    assert local_server.hits["/cat.jpg"] == 0


def test_predict_without_a_model_is_503_with_a_reason(client, db):
    response = client.post(PREDICT, {"image": upload()})

    assert response.status_code == 503
    assert response.json()["code"] == "no_model"
    assert "trained" in response.json()["detail"]


def test_too_many_images_is_refused(client, model, settings):
    settings.SNAPCLASS_PREDICT_MAX_IMAGES = 2

    response = client.post(PREDICT, {"images": [upload() for _ in range(3)]})

    assert response.status_code == 400
    assert response.json()["code"] == "too_many_images"


def test_a_bad_file_among_several_is_named(client, model):
    files = [upload(), upload(b"not an image at all", "notes.txt")]

    response = client.post(PREDICT, {"images": files})

    assert response.status_code == 415
    assert response.json()["code"] == "not_an_image"
    assert "Image 2 (notes.txt)" in response.json()["detail"]


# --- API keys, anonymous access, throttling -----------------------------------------


def test_an_api_key_is_stored_only_as_its_hash(admin_user):
    key, raw = api_key_create(name="shop", user=admin_user)

    assert raw.startswith(key.prefix + ".")
    assert raw not in key.hashed_key
    assert len(key.hashed_key) == 64
    assert not APIKey.objects.filter(hashed_key__contains=raw.split(".")[1]).exists()


@pytest.mark.parametrize("header", ["HTTP_AUTHORIZATION", "HTTP_X_API_KEY"])
def test_an_api_key_authenticates_and_notes_its_last_use(
    client, model, settings, header
):
    settings.SNAPCLASS_ALLOW_ANONYMOUS_PREDICT = False
    key, raw = api_key_create(name="shop")
    value = f"Api-Key {raw}" if header == "HTTP_AUTHORIZATION" else raw

    response = client.post(PREDICT, {"image": upload()}, **{header: value})

    assert response.status_code == 200
    key.refresh_from_db()
    assert key.last_used_at is not None


def test_a_revoked_api_key_is_refused(client, model):
    key, raw = api_key_create(name="old app")
    api_key_revoke(key=key)

    response = client.post(
        PREDICT, {"image": upload()}, HTTP_AUTHORIZATION=f"Api-Key {raw}"
    )

    assert response.status_code == 401
    assert response.json()["code"] == "revoked_key"
    assert response["WWW-Authenticate"] == "Api-Key"


@pytest.mark.parametrize(
    "value",
    ["Api-Key nope", "Api-Key abcdefgh.wrongsecret", "Api-Key", "Api-Key a b"],
)
def test_a_wrong_api_key_is_refused(client, model, value):
    api_key_create(name="shop")

    response = client.post(PREDICT, {"image": upload()}, HTTP_AUTHORIZATION=value)

    assert response.status_code == 401
    assert response.json()["code"] == "invalid_key"


def test_anonymous_prediction_can_be_turned_off(
    client, model, settings, django_user_model
):
    settings.SNAPCLASS_ALLOW_ANONYMOUS_PREDICT = False

    anonymous = client.post(PREDICT, {"image": upload()})
    user = django_user_model.objects.create_user("ann", password="pw")
    client.force_login(user)
    signed_in = client.post(PREDICT, {"image": upload()})

    assert anonymous.status_code == 401
    assert anonymous.json()["code"] == "not_authenticated"
    assert signed_in.status_code == 200


def test_predictions_are_throttled_per_client_with_a_json_429(client, model, settings):
    settings.SNAPCLASS_PREDICT_RATE = "2/min"
    key, raw = api_key_create(name="shop")

    answers = [client.post(PREDICT, {"image": upload()}).status_code for _ in range(3)]
    limited = client.post(PREDICT, {"image": upload()})
    with_key = client.post(
        PREDICT, {"image": upload()}, HTTP_AUTHORIZATION=f"Api-Key {raw}"
    )

    assert answers == [200, 200, 429]
    assert limited.status_code == 429
    assert limited.json()["code"] == "throttled"
    assert "Retry-After" in limited
    assert with_key.status_code == 200  # a key has its own budget


def test_an_empty_rate_turns_throttling_off(client, model, settings):
    settings.SNAPCLASS_PREDICT_RATE = ""

    codes = {client.post(PREDICT, {"image": upload()}).status_code for _ in range(5)}

    assert codes == {200}


def test_a_session_user_posting_without_csrf_token_is_refused(model, admin_user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)

    response = client.post(PREDICT, {"image": upload()})

    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]


def test_a_session_user_posting_with_the_csrf_token_is_served(model, admin_user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    page = client.get("/")
    token = page.cookies["csrftoken"].value

    response = client.post(PREDICT, {"image": upload()}, HTTP_X_CSRFTOKEN=token)

    assert response.status_code == 200


# --- Model versions --------------------------------------------------------------


def test_model_versions_are_listed_newest_first(
    client, install_model, django_assert_max_num_queries
):
    old = install_model("two", promote=True)
    new = install_model("three")

    with django_assert_max_num_queries(3):
        response = client.get("/api/v1/models/")

    assert response.status_code == 200
    rows = response.json()["results"]
    assert [r["id"] for r in rows] == [new.pk, old.pk]
    assert rows[1]["is_current"] is True
    assert rows[0]["onnx_url"].endswith(new.onnx_path)
    assert rows[0]["preprocessing"]["image_size"] == 40


def test_model_version_detail_and_current(client, install_model):
    current = install_model("two", promote=True)

    detail = client.get(f"/api/v1/models/{current.pk}/")
    now = client.get("/api/v1/models/current/")

    assert detail.status_code == 200
    assert now.json()["id"] == current.pk
    assert now.json()["onnx_sha256"] == current.onnx_sha256


def test_current_model_without_any_is_503(client, db):
    response = client.get("/api/v1/models/current/")

    assert response.status_code == 503
    assert response.json()["code"] == "no_model"


def test_unknown_model_version_is_404_json(client, db):
    response = client.get("/api/v1/models/99999999999999999/")

    assert response.status_code == 404
    assert set(response.json()) == {"detail", "code"}


def test_promoting_through_the_api_needs_staff(
    client, install_model, django_user_model
):
    install_model("two", promote=True)
    other = install_model("three")
    curator = django_user_model.objects.create_user("cur", password="pw")
    curator.user_permissions.add(Permission.objects.get(codename="change_image"))

    anonymous = client.post(f"/api/v1/models/{other.pk}/promote/")
    client.force_login(curator)
    not_staff = client.post(f"/api/v1/models/{other.pk}/promote/")

    assert anonymous.status_code == 403
    assert not_staff.status_code == 403
    assert model_version_current() != other


def test_staff_promote_through_the_api(client, install_model, admin_user):
    install_model("two", promote=True)
    other = install_model("three")
    client.force_login(admin_user)

    response = client.post(f"/api/v1/models/{other.pk}/promote/")

    assert response.status_code == 200
    assert response.json()["is_current"] is True
    other.refresh_from_db()
    assert other.is_current and other.promoted_by == admin_user
    assert other.promoted_at <= timezone.now()


def test_the_schema_describes_the_classifier_without_warnings(client, db):
    from drf_spectacular.drainage import GENERATOR_STATS
    from drf_spectacular.generators import SchemaGenerator

    GENERATOR_STATS.reset()
    schema = SchemaGenerator(patterns=None).get_schema(request=None, public=True)
    problems = [
        message
        for message in [*GENERATOR_STATS._warn_cache, *GENERATOR_STATS._error_cache]
        if "classifier" in message or "ModelVersion" in message or "Predict" in message
    ]
    paths = schema["paths"]

    assert problems == []
    assert "/api/v1/predict/" in paths
    assert "/api/v1/models/current/" in paths
    assert "/api/v1/models/{id}/promote/" in paths
    body = paths["/api/v1/predict/"]["post"]["requestBody"]["content"]
    assert set(body) == {"multipart/form-data", "application/json"}
    assert "ApiKeyAuth" in schema["components"]["securitySchemes"]
    assert client.get("/api/schema/").status_code == 200
    assert json.dumps(schema)  # serialisable
