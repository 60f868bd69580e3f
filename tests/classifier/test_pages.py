from __future__ import annotations

import hashlib
import io
import json
import re

import pytest
from django.contrib.messages import get_messages
from django.core.management import call_command
from django.test import Client

from classifier.models import APIKey
from classifier.selectors import model_version_current
from tests.conftest import make_jpeg
from tests.datasets import badfiles

pytestmark = pytest.mark.django_db


def named(data: bytes, name: str = "photo.jpg") -> io.BytesIO:
    f = io.BytesIO(data)
    f.name = name
    return f


def page_config(response) -> dict:
    match = re.search(
        rb'<script id="snapclass-config" type="application/json">(.*?)</script>',
        response.content,
        re.S,
    )
    assert match, "the page carries its configuration as JSON"
    return json.loads(match[1])


def test_the_page_without_a_model_points_to_the_new_classifier_page(
    client, django_user_model
):
    response = client.get("/")

    assert response.status_code == 200
    assert b"No model has been trained yet" in response.content
    assert b'href="/classifiers/new/"' in response.content
    assert b"manage.py" not in response.content
    assert b'id="predict-form"' not in response.content
    client.force_login(django_user_model.objects.create_superuser("root", "", "pw"))
    html = client.get("/").content.decode()
    assert 'id="new-classifier-link" href="/classifiers/new/"' in html


def test_the_page_is_cross_origin_isolated_and_carries_the_models_preprocessing(
    client, install_model
):
    version = install_model("three", promote=True)

    response = client.get("/")

    assert response.status_code == 200
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
    assert response["Cross-Origin-Embedder-Policy"] == "require-corp"
    config = page_config(response)
    assert config["model"]["version"] == version.pk
    assert config["model"]["image_size"] == 40
    assert config["model"]["resize_method"] == "crop"
    assert config["model"]["onnx_url"] == "/media/" + version.onnx_path
    assert config["model"]["onnx_sha256"] == version.onnx_sha256
    assert config["ort"]["wasm"].endswith("vendor/ort/ort.wasm.min.js")
    assert config["errors"]["not_an_image"]
    assert b'accept="image/*" capture' in response.content
    assert b"csrfmiddlewaretoken" in response.content


def test_the_onnx_model_is_served_from_media(client, install_model, settings):
    settings.ROOT_URLCONF = "tests.classifier.urls"
    version = install_model("two", promote=True)

    response = client.get("/media/" + version.onnx_path)

    assert response.status_code == 200
    body = b"".join(response.streaming_content)
    assert hashlib.sha256(body).hexdigest() == version.onnx_sha256


def test_the_form_post_without_javascript_shows_the_result(client, install_model):
    version = install_model("two", promote=True)

    response = client.post("/", {"image": named(make_jpeg(3))})

    assert response.status_code == 200
    html = response.content.decode()
    assert (
        'id="result" class="card result"' in html
        and "hidden>" not in html.split('id="result"')[1].split(">")[0]
    )
    assert f'<span id="model-version">{version.pk}</span>' in html
    assert html.count('data-probability="') == 2
    assert 'src="data:image/jpeg;base64,' in html  # the picture, without storing it
    assert response["Cross-Origin-Embedder-Policy"] == "require-corp"


def test_the_form_post_shows_errors_in_words(client, install_model):
    install_model("two", promote=True)

    response = client.post("/", {"image": named(b"just text", "notes.jpg")})

    assert response.status_code == 415
    assert (
        "This file is not an image we can read (code not_an_image)"
        in response.content.decode()
    )


def test_the_form_post_without_a_file_asks_for_one(client, install_model):
    install_model("two", promote=True)

    response = client.post("/", {})

    assert response.status_code == 400
    assert "(code missing_image)" in response.content.decode()


def test_the_form_post_without_a_model_is_503(client):
    response = client.post("/", {"image": named(make_jpeg(1))})

    assert response.status_code == 503
    assert b"No model has been trained yet" in response.content


def test_the_form_post_needs_the_csrf_token(install_model):
    install_model("two", promote=True)
    client = Client(enforce_csrf_checks=True)

    response = client.post("/", {"image": named(make_jpeg(1))})

    assert response.status_code == 403


def test_the_form_post_is_throttled_like_the_api(client, install_model, settings):
    install_model("two", promote=True)
    settings.SNAPCLASS_PREDICT_RATE = "1/min"

    first = client.post("/", {"image": named(make_jpeg(1))})
    second = client.post("/", {"image": named(make_jpeg(1))})

    assert first.status_code == 200
    assert second.status_code == 429
    assert "(code throttled)" in second.content.decode()


def test_the_registry_page_lists_versions_with_metrics(client, install_model):
    old = install_model("two", promote=True)
    new = install_model("three")

    response = client.get("/models/")

    html = response.content.decode()
    assert response.status_code == 200
    assert f'id="version-{old.pk}" class="current"' in html
    assert f'id="version-{new.pk}"' in html
    assert "F1" in html
    assert "Promote" not in html  # not for anonymous visitors


def test_staff_promote_and_roll_back_from_the_registry_page(
    client, install_model, admin_user
):
    old = install_model("two", promote=True)
    new = install_model("three")
    client.force_login(admin_user)
    assert "Promote" in client.get("/models/").content.decode()

    response = client.post(f"/models/{new.pk}/promote/")
    assert response.status_code == 302
    assert model_version_current() == new
    client.post(f"/models/{old.pk}/promote/")

    assert model_version_current() == old
    texts = [str(m) for m in get_messages(response.wsgi_request)]
    assert any("is now the current model" in t for t in texts)


def test_non_staff_cannot_promote_from_the_page(client, install_model):
    install_model("two", promote=True)
    new = install_model("three")

    response = client.post(f"/models/{new.pk}/promote/")

    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    assert model_version_current() != new


# --- admin -------------------------------------------------------------------------


def test_the_admin_shows_a_new_api_key_once_and_stores_its_hash(admin_client):
    response = admin_client.post(
        "/admin/classifier/apikey/add/",
        {"name": "shop", "role": "curator"},
        follow=True,
    )

    assert response.status_code == 200
    key = APIKey.objects.get(name="shop")
    html = response.content.decode()
    raw = re.search(r"<code>([0-9a-f]{8}\.[A-Za-z0-9_-]+)</code>", html)[1]
    assert raw.startswith(key.prefix)
    assert raw not in key.hashed_key
    change = admin_client.get(f"/admin/classifier/apikey/{key.pk}/change/")
    assert raw not in change.content.decode()


def test_the_admin_revokes_api_keys(admin_client, client, install_model):
    from classifier.services import api_key_create

    install_model("two", promote=True)
    key, raw = api_key_create(name="shop")

    admin_client.post(
        "/admin/classifier/apikey/",
        {"action": "revoke", "_selected_action": [key.pk]},
    )

    key.refresh_from_db()
    assert key.revoked_at is not None
    response = client.post(
        "/api/v1/predict/",
        {"image": named(make_jpeg(1))},
        HTTP_AUTHORIZATION=f"Api-Key {raw}",
    )
    assert response.status_code == 401


def test_the_admin_promotes_a_version_and_shows_artifacts_read_only(
    admin_client, install_model
):
    install_model("two", promote=True)
    new = install_model("three")

    listing = admin_client.get("/admin/classifier/modelversion/")
    detail = admin_client.get(f"/admin/classifier/modelversion/{new.pk}/change/")
    admin_client.post(
        "/admin/classifier/modelversion/",
        {"action": "promote", "_selected_action": [new.pk]},
    )

    assert listing.status_code == 200
    assert detail.status_code == 200
    assert 'name="onnx_sha256"' not in detail.content.decode()  # read-only
    assert new.onnx_sha256 in detail.content.decode()
    assert model_version_current() == new


# --- manage.py predict -------------------------------------------------------------


def test_the_predict_command_prints_one_json_line_per_file(
    install_model, tmp_path, capsys
):
    version = install_model("two", promote=True)
    good = tmp_path / "good.jpg"
    good.write_bytes(make_jpeg(1))
    png = tmp_path / "other.png"
    png.write_bytes(badfiles.png())

    call_command("predict", str(good), str(png))

    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["file"] for line in lines] == [str(good), str(png)]
    assert all(line["model_version"] == version.pk for line in lines)
    assert lines[0]["probabilities"][0]["label"] == lines[0]["label"]


def test_the_predict_command_reports_errors_as_json_and_exits_1(
    install_model, tmp_path, capsys
):
    install_model("two", promote=True)
    good = tmp_path / "good.jpg"
    good.write_bytes(make_jpeg(1))
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")

    with pytest.raises(SystemExit) as exit_info:
        call_command("predict", str(good), str(bad), str(tmp_path / "missing.jpg"))

    assert exit_info.value.code == 1
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert "label" in lines[0]
    assert lines[1]["code"] == "not_an_image"
    assert lines[2]["code"] == "unreadable"


def test_the_predict_command_without_a_model_says_so(tmp_path, capsys):
    image = tmp_path / "a.jpg"
    image.write_bytes(make_jpeg(1))

    with pytest.raises(SystemExit):
        call_command("predict", str(image))

    assert json.loads(capsys.readouterr().out)["code"] == "no_model"
