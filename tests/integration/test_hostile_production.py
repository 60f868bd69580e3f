"""Issue 14 as a hostile client would try it: gunicorn with 3 workers, production
settings, real Redis (a redis-server of the test's own) and PostgreSQL.

The requests come as Snapclass's reverse proxy would forward them: it appends the
client's address to X-Forwarded-For and says the client used HTTPS
(SNAPCLASS_TRUSTED_PROXIES=1, as in docker-compose.yml).
"""

from __future__ import annotations

import http.client
import json
import re
import select
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest

from classifier.models import APIKey
from datasets.services import image_delete, image_ingest, label_get_or_create
from tests.classifier import trained as trained_models
from tests.conftest import ensure_groups, make_jpeg
from tests.integration.conftest import _database_url
from tests.servers import ROOT, Gunicorn, RedisServer, production_env
from tests.training.conftest import TINY

pytestmark = pytest.mark.django_db(transaction=True)
RATE = 6


@pytest.fixture(scope="module")
def prod(tmp_path_factory, postgres):
    tmp = tmp_path_factory.mktemp("prod")
    redis = RedisServer(tmp)
    media = tmp / "media"
    media.mkdir()
    access = tmp / "access.log"
    env = production_env(
        DATABASE_URL=_database_url(postgres),
        CELERY_BROKER_URL=redis.url,
        REDIS_URL=redis.url,
        MEDIA_ROOT=str(media),
        SNAPCLASS_TRUSTED_PROXIES="1",
        SNAPCLASS_PREDICT_RATE=f"{RATE}/h",
        GUNICORN_CMD_ARGS=(
            f"--access-logfile {access} --access-logformat '%(p)s %(s)s %(U)s'"
        ),
    )
    env["STATIC_ROOT"] = str(tmp / "static")
    collected = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert collected.returncode == 0, collected.stderr
    server = Gunicorn(env, tmp, workers=3)
    server.media, server.redis, server.access = media, redis, access
    yield server
    server.stop()
    redis.stop()


@pytest.fixture(autouse=True)
def _shared_media(prod, settings):
    settings.MEDIA_ROOT = prod.media


def call(
    server,
    method: str,
    path: str,
    body: bytes | None = None,
    *,
    client: str = "198.51.100.7",
    spoofed: str = "",
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes, http.client.HTTPResponse]:
    """One request as the proxy forwards it: `spoofed` is what the client wrote in
    X-Forwarded-For itself, `client` the address the proxy appends."""
    forwarded = f"{spoofed}, {client}" if spoofed else client
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        conn.request(
            method,
            path,
            body=body,
            headers={
                "Host": f"127.0.0.1:{server.port}",
                "X-Forwarded-For": forwarded,
                "X-Forwarded-Proto": "https",
                "Accept": "application/json",
                **(headers or {}),
            },
        )
        response = conn.getresponse()
        return response.status, response.read(), response
    finally:
        conn.close()


def multipart(files: list[tuple[str, bytes]], fields: dict[str, str] | None = None):
    boundary = uuid.uuid4().hex
    parts = []
    for name, value in (fields or {}).items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
            f"{value}\r\n".encode()
        )
    for i, (name, data) in enumerate(files):
        parts.append(
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
                f'filename="{i}.jpg"\r\nContent-Type: image/jpeg\r\n\r\n'
            ).encode()
            + data
            + b"\r\n"
        )
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


@pytest.fixture
def model(trained):
    return trained_models.install(trained("two"), promote=True)


def pids_that_answered(server, path: str) -> Counter:
    time.sleep(0.5)  # the access log is written after each response
    lines = server.access.read_text().splitlines()
    return Counter(line.split()[0] for line in lines if line.endswith(path))


# --- 1. one budget, whatever the workers and the headers ---------------------------


def test_spoofed_forwarded_headers_are_throttled_with_one_budget_for_3_workers(
    prod, model
):
    body, headers = multipart([("image", make_jpeg(1))])
    codes: list[int] = []
    lock = threading.Lock()
    prod.access.write_text("")

    def client(n: int) -> None:
        for i in range(3):
            status, _, _ = call(
                prod,
                "POST",
                "/api/v1/predict/",
                body,
                spoofed=f"10.{n}.{i}.1",  # a new value on every request
                headers=headers,
            )
            with lock:
                codes.append(status)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert Counter(codes) == {200: RATE, 429: 18 - RATE}
    assert len(pids_that_answered(prod, "/api/v1/predict/")) >= 2  # workers shared
    other, _, _ = call(
        prod, "POST", "/api/v1/predict/", body, client="203.0.113.50", headers=headers
    )
    assert other == 200  # another client has its own budget


def test_a_request_with_several_images_spends_one_unit_per_image(prod, model):
    many, many_headers = multipart([("images", make_jpeg(i)) for i in range(RATE)])
    one, one_headers = multipart([("image", make_jpeg(1))])

    first = call(
        prod,
        "POST",
        "/api/v1/predict/",
        many,
        client="192.0.2.10",
        headers=many_headers,
    )
    second = call(
        prod, "POST", "/api/v1/predict/", one, client="192.0.2.10", headers=one_headers
    )

    assert first[0] == 200 and len(json.loads(first[1])["results"]) == RATE
    assert second[0] == 429


# --- 2. limits before work ---------------------------------------------------------


def test_a_200_mb_anonymous_post_is_refused_before_it_is_read(prod):
    before = {pid: prod.rss_mb(pid) for pid in prod.worker_pids()}
    size = 200 * 1024 * 1024
    boundary = "x" * 20
    head = (
        f"POST / HTTP/1.1\r\nHost: 127.0.0.1:{prod.port}\r\n"
        f"X-Forwarded-For: 198.51.100.99\r\nX-Forwarded-Proto: https\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {size}\r\n\r\n"
    ).encode()
    chunk = b"\0" * (1024 * 1024)
    answer = b""
    sent = 0
    with socket.create_connection(("127.0.0.1", prod.port), timeout=30) as sock:
        sock.sendall(head)
        try:
            while sent < size and not answer:
                sock.sendall(chunk)
                sent += len(chunk)
                readable, _, _ = select.select([sock], [], [], 0)
                if readable:
                    answer = sock.recv(65536)
        except (BrokenPipeError, ConnectionResetError):
            pass
        if not answer:
            try:
                answer = sock.recv(65536)
            except ConnectionResetError:
                answer = b""
    after = {pid: prod.rss_mb(pid) for pid in prod.worker_pids() if pid in before}

    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert sent < size  # the server answered long before the body ended
    growth = max(after[pid] - before[pid] for pid in after)
    assert growth < 20, f"a worker grew by {growth:.1f} MB"


# --- 3. who sees what -------------------------------------------------------------


def test_anonymous_clients_cannot_list_or_fetch_private_images_or_staging(
    prod, trained
):
    label = label_get_or_create(name="camera")

    def make(seed, **kw):
        kw.setdefault("source_kind", "upload")
        return image_ingest(data=make_jpeg(seed), label=label, **kw)

    public, review, feedback = (
        make(1),
        make(2, status="review"),
        make(3, source_kind="feedback"),
    )
    rejected = make(4)
    image_delete(images=[rejected])
    staged = prod.media / ".staging" / "scrape-9" / "1-0.jpg"
    staged.parent.mkdir(parents=True)
    staged.write_bytes(make_jpeg(5))

    status, body, _ = call(prod, "GET", "/api/v1/images/?status=review")
    assert status == 200 and json.loads(body)["results"] == []
    status, body, _ = call(prod, "GET", "/api/v1/images/")
    assert [row["id"] for row in json.loads(body)["results"]] == [public.pk]
    for image in (review, feedback, rejected):
        assert call(prod, "GET", f"/api/v1/images/{image.pk}/")[0] == 404
    # Production never serves /media/ itself: the proxy serves the public part.
    for name in (public.file.name, review.file.name, ".staging/scrape-9/1-0.jpg"):
        assert call(prod, "GET", f"/media/{name}")[0] == 404, name
    assert call(prod, "GET", "/api/v1/scrape-jobs/")[0] == 403
    version = trained_models.install(trained("two"))
    run_images = f"/api/v1/training-runs/{version.run_id}/images/"
    assert call(prod, "GET", run_images)[0] == 403


# --- 4. model permissions, not staff ------------------------------------------------


def session(prod, username: str, password: str) -> dict[str, str]:
    """Sign in through the admin's login form; headers for later requests."""
    origin = f"https://127.0.0.1:{prod.port}"
    status, html, response = call(prod, "GET", "/admin/login/")
    cookies = {}
    for header in response.headers.get_all("Set-Cookie") or []:
        name, value = header.split(";", 1)[0].split("=", 1)
        cookies[name] = value
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', html)[1]
    form = (
        f"csrfmiddlewaretoken={token.decode()}&username={username}"
        f"&password={password}&next=/admin/"
    ).encode()
    status, _, response = call(
        prod,
        "POST",
        "/admin/login/",
        form,
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": f"csrftoken={cookies['csrftoken']}",
            "Referer": f"{origin}/admin/login/",
        },
    )
    assert status == 302, "sign-in failed"
    for header in response.headers.get_all("Set-Cookie") or []:
        name, value = header.split(";", 1)[0].split("=", 1)
        cookies[name] = value
    return {
        "Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items()),
        "X-CSRFToken": cookies["csrftoken"],
        "Referer": f"{origin}/",
        "Content-Type": "application/json",
    }


def test_a_viewer_staff_user_gets_403_on_promote_and_train(
    prod, trained, django_user_model, settings
):
    from django.contrib.auth.models import Group

    # Hashed as production checks it (the test settings' fast hasher is not there).
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    ensure_groups()
    version = trained_models.install(trained("two"))
    user = django_user_model.objects.create_user(
        "vic", password="a-long-viewer-password", is_staff=True
    )
    user.groups.add(Group.objects.get(name="viewers"))
    headers = session(prod, "vic", "a-long-viewer-password")

    promote = call(
        prod, "POST", f"/api/v1/models/{version.pk}/promote/", b"", headers=headers
    )
    train = call(
        prod,
        "POST",
        "/api/v1/training-runs/",
        json.dumps(TINY).encode(),
        headers=headers,
    )
    page = call(prod, "POST", f"/models/{version.pk}/promote/", b"", headers=headers)
    admin_start = call(
        prod, "GET", "/admin/training/trainingrun/start/", headers=headers
    )

    assert promote[0] == 403 and json.loads(promote[1])["code"] == "permission_denied"
    assert train[0] == 403
    assert page[0] == 403 and admin_start[0] == 403
    version.refresh_from_db()
    assert not version.is_current


def test_a_curator_key_promotes_and_a_predict_key_does_not(prod, trained):
    from classifier.services import api_key_create

    version = trained_models.install(trained("two"))
    _, predict = api_key_create(name="shop", role=APIKey.Role.PREDICT)
    _, curator = api_key_create(name="ops", role=APIKey.Role.CURATOR)
    path = f"/api/v1/models/{version.pk}/promote/"

    refused = call(
        prod, "POST", path, b"", headers={"Authorization": f"Api-Key {predict}"}
    )
    done = call(
        prod, "POST", path, b"", headers={"Authorization": f"Api-Key {curator}"}
    )

    assert refused[0] == 403 and done[0] == 200


# --- 7. defaults ----------------------------------------------------------------------


@pytest.mark.parametrize("proxies, trusted", [("0", False), ("1", True)])
def test_x_forwarded_proto_is_trusted_only_behind_a_trusted_proxy(proxies, trusted):
    env = production_env(
        DATABASE_URL="postgres://u:p@127.0.0.1:1/x",
        CELERY_BROKER_URL="redis://127.0.0.1:1/0",
        REDIS_URL="redis://127.0.0.1:1/0",
        SNAPCLASS_TRUSTED_PROXIES=proxies,
    )
    code = (
        "import django; django.setup(); from django.conf import settings as s;"
        "print(getattr(s, 'SECURE_PROXY_SSL_HEADER', None))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert ("HTTP_X_FORWARDED_PROTO" in out.stdout) is trusted


def test_the_compose_file_publishes_only_the_proxy():
    import yaml

    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    published = {
        name for name, service in compose["services"].items() if service.get("ports")
    }
    assert published == {"proxy"}
    assert compose["services"]["web"]["environment"]["SNAPCLASS_TRUSTED_PROXIES"] == "1"
    assert Path(ROOT / "deploy" / "Caddyfile").is_file()
