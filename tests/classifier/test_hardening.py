"""Issue 14 in-process: rates, limits, visibility, permissions, key roles.

The same points against gunicorn with 3 workers, real Redis and production
settings: tests/integration/test_hostile_production.py.
"""

from __future__ import annotations

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from classifier.models import APIKey, Feedback
from classifier.services import RoleNotHeld, api_key_create
from config.clients import client_ip
from datasets.models import Image, ScrapeJob
from datasets.services import image_delete, image_ingest, label_get_or_create
from tests.classifier.test_feedback import _page_feedback_form
from tests.conftest import make_jpeg

pytestmark = pytest.mark.django_db
PREDICT = "/api/v1/predict/"


def upload(seed: int = 1, name: str = "p.jpg") -> io.BytesIO:
    f = io.BytesIO(make_jpeg(seed))
    f.name = name
    return f


@pytest.fixture
def model(install_model):
    return install_model("two", promote=True)


def key_client(role: str) -> Client:
    _, raw = api_key_create(name=f"{role} app", role=role)
    return Client(HTTP_AUTHORIZATION=f"Api-Key {raw}")


# --- 1. shared, unspoofable rate limits --------------------------------------------


class FakeRequest:
    def __init__(self, remote: str, forwarded: str = "") -> None:
        self.META = {"REMOTE_ADDR": remote, "HTTP_X_FORWARDED_FOR": forwarded}


def test_without_trusted_proxies_x_forwarded_for_is_ignored(settings):
    settings.SNAPCLASS_TRUSTED_PROXIES = 0
    assert client_ip(FakeRequest("203.0.113.9", "1.2.3.4")) == "203.0.113.9"


def test_behind_one_proxy_only_the_address_it_appended_counts(settings):
    settings.SNAPCLASS_TRUSTED_PROXIES = 1
    spoofed = FakeRequest("172.18.0.5", "1.2.3.4, 5.6.7.8, 203.0.113.9")
    assert client_ip(spoofed) == "203.0.113.9"
    assert client_ip(FakeRequest("172.18.0.5")) == "172.18.0.5"


def test_a_new_forwarded_header_on_each_request_is_still_throttled(
    client, model, settings
):
    settings.SNAPCLASS_PREDICT_RATE = "3/h"
    answers = [
        client.post(
            PREDICT, {"image": upload()}, HTTP_X_FORWARDED_FOR=f"10.0.0.{i}"
        ).status_code
        for i in range(8)
    ]
    assert answers == [200] * 3 + [429] * 5


def test_throttles_count_images_not_requests(client, model, settings):
    settings.SNAPCLASS_PREDICT_RATE = "4/h"

    first = client.post(PREDICT, {"images": [upload(i) for i in range(3)]})
    second = client.post(PREDICT, {"images": [upload(i) for i in range(3)]})
    third = client.post(PREDICT, {"image": upload()})

    assert first.status_code == 200
    assert second.status_code == 429 and second.json()["code"] == "throttled"
    assert third.status_code == 200  # the refused request spent nothing
    assert client.post(PREDICT, {"image": upload()}).status_code == 429


def test_predict_by_url_has_its_own_rate(client, model, settings, local_server):
    settings.SNAPCLASS_PREDICT_URL_RATE = "2/h"
    settings.SNAPCLASS_PREDICT_URL_ALLOW_PRIVATE_HOSTS = ["127.0.0.1"]
    url = local_server.add(
        "/a.jpg", body=make_jpeg(3), headers={"Content-Type": "image/jpeg"}
    )

    codes = [
        client.post(PREDICT, {"url": url}, content_type="application/json").status_code
        for _ in range(3)
    ]

    assert codes == [200, 200, 429]
    assert client.post(PREDICT, {"image": upload()}).status_code == 200


def test_predict_by_url_has_a_short_deadline(client, model, settings, local_server):
    settings.SNAPCLASS_PREDICT_URL_DEADLINE = 0.5
    settings.SNAPCLASS_FETCH_DEADLINE = 20.0  # scraping's, not used here
    settings.SNAPCLASS_PREDICT_URL_ALLOW_PRIVATE_HOSTS = ["127.0.0.1"]
    url = local_server.add("/slow.jpg", body=make_jpeg(3), delay=3)

    response = client.post(PREDICT, {"url": url}, content_type="application/json")

    assert response.status_code in (400, 504)
    assert response.json()["code"] == "timeout"


def test_feedback_is_rate_limited(client, model, settings):
    settings.SNAPCLASS_FEEDBACK_RATE = "2/h"
    label_get_or_create(name="red")
    codes = [
        client.post(
            "/api/v1/feedback/", {"image": upload(40 + i), "label": "red"}
        ).status_code
        for i in range(3)
    ]
    assert codes == [201, 201, 429]
    assert Feedback.objects.count() == 2


def test_a_signed_feedback_token_makes_one_row(client, model, settings):
    label_get_or_create(name="red"), label_get_or_create(name="blue")
    photo = SimpleUploadedFile("p.jpg", make_jpeg(21, size=(300, 200)), "image/jpeg")
    fields = _page_feedback_form(client.post("/", {"image": photo}).content.decode())
    fields["label"] = "blue"

    codes = [
        client.post(reverse("classifier:feedback"), fields).status_code
        for _ in range(6)
    ]

    assert codes == [302] + [400] * 5
    assert Feedback.objects.count() == 1 and Image.objects.count() == 1


# --- 2. limits before work ----------------------------------------------------------


@pytest.mark.parametrize("path", ["/", PREDICT, "/api/v1/feedback/", "/feedback/"])
def test_a_huge_body_is_refused_from_its_length_alone(client, path):
    response = client.generic(
        "POST",
        path,
        b"--x--\r\n",
        content_type="multipart/form-data; boundary=x",
        CONTENT_LENGTH=str(200 * 1024 * 1024),
    )
    assert response.status_code == 413
    assert response.json()["code"] == "too_large"


def test_the_upload_page_takes_one_file(client, model):
    response = client.post("/", {"image": [upload(1), upload(2)]})
    assert response.status_code == 400
    assert "too_many_images" in response.content.decode()


def test_an_exhausted_client_is_refused_before_its_upload_is_parsed(
    client, model, settings
):
    settings.SNAPCLASS_PREDICT_RATE = "1/h"
    assert client.post(PREDICT, {"image": upload()}).status_code == 200
    # A body the parser would refuse (400): the budget answers first.
    response = client.generic(
        "POST", PREDICT, b"garbage", content_type="multipart/form-data; boundary=x"
    )
    assert response.status_code == 429
    page = client.generic(
        "POST", "/", b"garbage", content_type="multipart/form-data; boundary=x"
    )
    assert page.status_code == 429


def test_a_chunked_body_without_length_is_refused(client):
    response = client.generic("POST", PREDICT, b"", HTTP_TRANSFER_ENCODING="chunked")
    assert response.status_code == 411


# --- 3. who sees what ------------------------------------------------------------


@pytest.fixture
def mixed_images():
    camera = label_get_or_create(name="camera")
    retired = label_get_or_create(name="retired")
    retired.is_active = False
    retired.save()

    def make(seed, label=camera, **kw):
        kw.setdefault("source_kind", "upload")
        return image_ingest(data=make_jpeg(seed), label=label, **kw)

    public = make(1)
    review = make(2, status="review")
    deleted = make(3)
    image_delete(images=[deleted])
    feedback = make(4, source_kind="feedback")
    inactive = make(5, label=retired)
    return {
        "public": public,
        "review": review,
        "deleted": deleted,
        "feedback": feedback,
        "inactive": inactive,
    }


def listed(client: Client, query: str = "") -> set[int]:
    response = client.get(f"/api/v1/images/{query}")
    assert response.status_code == 200
    return {row["id"] for row in response.json()["results"]}


def test_anonymous_clients_list_only_active_images_of_active_labels(
    client, mixed_images
):
    assert listed(client) == {mixed_images["public"].pk}
    assert listed(client, "?status=review") == set()
    for name in ("review", "deleted", "feedback", "inactive"):
        detail = client.get(f"/api/v1/images/{mixed_images[name].pk}/")
        assert detail.status_code == 404, name


def test_a_predict_only_key_sees_what_anonymous_clients_see(mixed_images):
    assert listed(key_client("predict")) == {mixed_images["public"].pk}


def test_viewers_and_viewer_keys_see_every_image(client, viewer, mixed_images):
    everything = {image.pk for image in mixed_images.values()}
    assert listed(key_client("viewer")) == everything
    client.force_login(viewer)
    assert listed(client) == everything


def test_public_images_can_be_turned_off(client, mixed_images, settings):
    settings.SNAPCLASS_PUBLIC_IMAGES = "none"
    assert listed(client) == set()


def test_scrape_jobs_and_run_images_need_a_viewer(client, viewer, settings):
    from training.models import TrainingRun

    job = ScrapeJob.objects.create(label=label_get_or_create(name="tv"), query="tv")
    run = TrainingRun.objects.create(status="succeeded", slot=None)
    private = [
        "/api/v1/scrape-jobs/",
        f"/api/v1/scrape-jobs/{job.pk}/",
        f"/api/v1/training-runs/{run.pk}/images/",
    ]
    for url in private:
        anonymous = client.get(url)
        assert anonymous.status_code in (401, 403), url
        assert anonymous.json()["code"] == "not_authenticated"
        assert key_client("predict").get(url).status_code == 403, url
        assert key_client("viewer").get(url).status_code == 200, url
    assert client.get("/scrape-jobs/").status_code == 302  # to the login page
    assert client.get(f"/api/v1/training-runs/{run.pk}/").status_code == 200

    client.force_login(viewer)
    assert all(client.get(url).status_code == 200 for url in private)
    assert client.get("/scrape-jobs/").status_code == 200

    client.logout()
    settings.SNAPCLASS_PUBLIC_DASHBOARD = True
    assert all(client.get(url).status_code == 200 for url in private)


def test_django_serves_only_public_media_itself(client, mixed_images, settings):
    staging = settings.MEDIA_ROOT / ".staging" / "scrape-1" / "1-0.jpg"
    staging.parent.mkdir(parents=True)
    staging.write_bytes(b"x")
    (settings.MEDIA_ROOT / "models" / "run-1").mkdir(parents=True)
    (settings.MEDIA_ROOT / "models" / "run-1" / "weights.safetensors").write_bytes(b"w")

    image = mixed_images["public"]
    assert client.get(f"/media/{image.file.name}").status_code == 200
    assert client.get(f"/media/{image.thumbnail.name}").status_code == 200
    assert client.get("/media/.staging/scrape-1/1-0.jpg").status_code == 404
    assert client.get("/media/models/run-1/weights.safetensors").status_code == 404
    assert client.get("/media/import/dataset.zip").status_code == 404


# --- 4. model permissions, not staff -------------------------------------------------


def test_a_viewer_staff_user_may_not_promote_or_train_anywhere(
    client, viewer, install_model
):
    from tests.training.conftest import TINY

    version = install_model("two")
    client.force_login(viewer)

    api_promote = client.post(f"/api/v1/models/{version.pk}/promote/")
    api_train = client.post(
        "/api/v1/training-runs/", TINY, content_type="application/json"
    )
    page_promote = client.post(reverse("classifier:promote", args=[version.pk]))
    page_train = client.post(reverse("training:start"), {"epochs": 1})
    admin_train = client.get(reverse("admin:training_trainingrun_start"))
    admin_promote = client.post(
        reverse("admin:classifier_modelversion_changelist"),
        {"action": "promote", "_selected_action": [version.pk]},
    )

    assert api_promote.status_code == 403 and api_train.status_code == 403
    assert page_promote.status_code == 403 and page_train.status_code == 403
    assert admin_train.status_code == 403
    assert admin_promote.status_code in (200, 302, 403)
    version.refresh_from_db()
    assert not version.is_current


def test_a_curator_may_promote(client, curator, install_model):
    version = install_model("two")
    client.force_login(curator)

    response = client.post(f"/api/v1/models/{version.pk}/promote/")

    assert response.status_code == 200, response.content
    version.refresh_from_db()
    assert version.is_current


# --- issue 13: API keys with roles ------------------------------------------------


def test_a_predict_only_key_gets_403_on_every_write(install_model):
    version = install_model("two")
    label_get_or_create(name="camera")
    client = key_client("predict")

    writes = [
        client.post(
            "/api/v1/scrape-jobs/",
            {"label": "camera", "max": 5},
            content_type="application/json",
        ),
        client.post("/api/v1/training-runs/", {}, content_type="application/json"),
        client.post(f"/api/v1/models/{version.pk}/promote/"),
    ]

    assert [r.status_code for r in writes] == [403, 403, 403]
    assert all(r.json()["code"] == "permission_denied" for r in writes)


def test_a_curator_key_scrapes_trains_and_promotes(install_model):
    from tests.training.conftest import COLOURS, coloured_image

    version = install_model("two")
    for n, (name, colour) in enumerate(COLOURS.items()):
        label = label_get_or_create(name=name)
        for i in range(5):
            image_ingest(
                data=coloured_image(colour, n * 10 + i),
                label=label,
                source_kind="upload",
            )
    client = key_client("curator")

    scrape = client.post(
        "/api/v1/scrape-jobs/",
        {"label": "red", "max": 5},
        content_type="application/json",
    )
    train = client.post(
        "/api/v1/training-runs/", {"epochs": 1}, content_type="application/json"
    )
    promote = client.post(f"/api/v1/models/{version.pk}/promote/")

    assert scrape.status_code == 201, scrape.content
    assert train.status_code == 201, train.content
    assert promote.status_code == 200, promote.content


def test_a_key_role_must_be_held_by_whoever_creates_it(viewer, curator):
    with pytest.raises(RoleNotHeld):
        api_key_create(name="x", role="curator", user=viewer)
    key, _ = api_key_create(name="x", role="viewer", user=viewer)
    assert key.role == "viewer"
    key, _ = api_key_create(name="y", role="curator", user=curator)
    assert key.role == "curator"


def test_the_admin_offers_only_the_roles_a_user_holds(client, viewer):
    from django.contrib.auth.models import Permission

    viewer.user_permissions.add(Permission.objects.get(codename="add_apikey"))
    client.force_login(viewer)

    form = client.get("/admin/classifier/apikey/add/").content.decode()
    refused = client.post(
        "/admin/classifier/apikey/add/", {"name": "sneaky", "role": "curator"}
    )

    assert 'value="viewer"' in form and 'value="curator"' not in form
    assert refused.status_code == 200  # the form again, with its error
    assert not APIKey.objects.filter(name="sneaky").exists()


# --- 7. sign-in and the first admin ---------------------------------------------------


def test_failed_sign_ins_are_rate_limited(client, django_user_model, settings):
    settings.SNAPCLASS_LOGIN_RATE = "3/h"
    django_user_model.objects.create_user(
        "eve", password="right-password-1", is_staff=True
    )
    url = reverse("admin:login")

    codes = [
        client.post(url, {"username": "eve", "password": f"guess{i}"}).status_code
        for i in range(4)
    ]
    right = client.post(url, {"username": "eve", "password": "right-password-1"})

    assert codes == [200, 200, 200, 429]
    assert right.status_code == 429  # locked out for a while, even when right


def test_production_refuses_to_print_a_generated_admin_password(settings):
    from django.core.management import call_command
    from django.core.management.base import CommandError

    settings.SNAPCLASS_ADMIN_PASSWORD_REQUIRED = True
    settings.SNAPCLASS_ADMIN_PASSWORD = ""
    with pytest.raises(CommandError, match="SNAPCLASS_ADMIN_PASSWORD"):
        call_command("bootstrap", "--no-demo")
    settings.SNAPCLASS_ADMIN_PASSWORD = "password"
    with pytest.raises(CommandError, match="too weak"):
        call_command("bootstrap", "--no-demo")
    settings.SNAPCLASS_ADMIN_PASSWORD = "a-long-and-unusual-passphrase"
    call_command("bootstrap", "--no-demo")
