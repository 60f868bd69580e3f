from __future__ import annotations

import io
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from django.core.management import call_command

from datasets.models import Image, Label

ROOT = Path(__file__).resolve().parent.parent


def settings_env_names() -> set[str]:
    """Every environment variable the settings modules read."""
    names: set[str] = set()
    for path in (ROOT / "config" / "settings").glob("*.py"):
        text = path.read_text()
        names |= set(re.findall(r'env(?:\.\w+)?\(\s*"([A-Z0-9_]+)"', text))
        names |= set(re.findall(r'env_\w+\(\s*"([A-Z0-9_]+)"', text))
    return names


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_has_the_production_services(compose):
    services = compose["services"]
    assert set(services) == {
        "proxy",
        "postgres",
        "redis",
        "minio",
        "web",
        "worker",
        "gpu-worker",
        "beat",
    }
    assert "s3" in services["minio"]["profiles"]
    proxy = services["proxy"]
    assert "./deploy/Caddyfile:/etc/caddy/Caddyfile:ro" in proxy["volumes"]
    assert "media:/data/media:ro" in proxy["volumes"]
    assert not services["web"].get("ports")  # only the proxy is published
    app = {name: services[name] for name in ("web", "worker", "gpu-worker", "beat")}
    for name, service in app.items():
        assert service["build"] == "." and service["image"] == "snapclass:latest", name
        assert "media:/data/media" in service["volumes"], name
    assert "gunicorn config.wsgi" in app["web"]["command"]
    assert "--queues default,scrape" in app["worker"]["command"]
    gpu = app["gpu-worker"]
    assert "--queues train" in gpu["command"]
    assert "--pool=solo" in gpu["command"] and "--concurrency=1" in gpu["command"]
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]
    assert "celery -A config beat" in app["beat"]["command"]
    assert "media" in compose["volumes"]


def test_compose_environment_names_are_read_by_the_settings(compose):
    known = settings_env_names() | {"DJANGO_SETTINGS_MODULE"}
    for name in ("web", "worker", "gpu-worker", "beat"):
        env = compose["services"][name]["environment"]
        unknown = set(env) - known
        assert not unknown, f"{name} sets {unknown}, which no setting reads"
    assert compose["services"]["web"]["environment"]["DJANGO_SETTINGS_MODULE"] == (
        "config.settings.production"
    )


def test_env_example_names_are_read_by_the_settings():
    names = {
        line.split("=", 1)[0]
        for line in (ROOT / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    }
    assert names - settings_env_names() <= {"POSTGRES_PASSWORD", "SNAPCLASS_DOMAIN"}


def test_the_celery_queues_match_compose_and_procfile(compose, settings):
    routes = settings.CELERY_TASK_ROUTES
    queues = {r["queue"] for r in routes.values()} | {
        settings.CELERY_TASK_DEFAULT_QUEUE
    }
    assert queues == {"default", "scrape", "train"}
    procfile = (ROOT / "Procfile").read_text()
    assert "--queues default,scrape,train" in procfile


def production_env(**extra: str) -> dict[str, str]:
    """A valid production environment: a real key, hosts, database, broker, Redis."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "DATABASE_URL", "CELERY_", "CACHE_URL"))
        and not k.startswith("SNAPCLASS_")
    }
    env.update(
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DJANGO_ALLOWED_HOSTS="snapclass.example.com",
        DJANGO_CSRF_TRUSTED_ORIGINS="https://snapclass.example.com",
        DATABASE_URL="postgres://snapclass:pw@127.0.0.1:5432/snapclass",
        CELERY_BROKER_URL="redis://127.0.0.1:6379/0",
        REDIS_URL="redis://127.0.0.1:6379/1",
        SNAPCLASS_TRUSTED_PROXIES="1",
    )
    env.update(extra)
    return env


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_with_production_settings_reports_no_warnings():
    env = production_env(DJANGO_SETTINGS_MODULE="config.settings.production")

    result = manage("check", "--deploy", "--fail-level", "WARNING", env=env)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues (0 silenced)" in result.stdout


def test_entry_points_default_to_production_settings():
    env = production_env()
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env.pop("DJANGO_SECRET_KEY")

    result = manage("check", env=env)

    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is not set" in result.stderr
    for name in (
        "manage.py",
        "config/wsgi.py",
        "config/asgi.py",
        "config/celery_app.py",
    ):
        text = (ROOT / name).read_text()
        assert '"DJANGO_SETTINGS_MODULE", "config.settings.production"' in text, name


@pytest.mark.parametrize(
    "key",
    [
        "change-me-to-a-long-random-string-of-at-least-fifty-characters-0123456789",
        "local-only-insecure-key-do-not-use-in-production",
        "short-but-random-7f3a9",
        "a" * 60,
    ],
)
def test_production_refuses_a_placeholder_or_weak_secret_key(key):
    env = production_env(
        DJANGO_SETTINGS_MODULE="config.settings.production", DJANGO_SECRET_KEY=key
    )

    result = manage("check", env=env)

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "DJANGO_SECRET_KEY" in result.stderr


@pytest.mark.parametrize("hosts", ["", "*"])
def test_production_refuses_missing_or_wildcard_allowed_hosts(hosts):
    env = production_env(
        DJANGO_SETTINGS_MODULE="config.settings.production",
        DJANGO_ALLOWED_HOSTS=hosts,
    )

    result = manage("check", env=env)

    assert result.returncode != 0
    assert "DJANGO_ALLOWED_HOSTS" in result.stderr


def test_make_targets_procfile_and_benches_name_their_settings():
    makefile = (ROOT / "Makefile").read_text()
    assert "setup run bench gpu-check: export DJANGO_SETTINGS_MODULE = " in makefile
    assert "config.settings.local" in makefile
    assert (
        "test test-unit test-integration: export DJANGO_SETTINGS_MODULE = "
        "config.settings.test"
    ) in makefile
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line and not line.startswith("#"):
            assert "DJANGO_SETTINGS_MODULE=config.settings.local" in line, line
    bench = (ROOT / "bench" / "__main__.py").read_text()
    assert 'os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.local"' in bench


def test_requirements_are_split_and_the_image_installs_only_production():
    prod = (ROOT / "requirements.txt").read_text()
    dev = (ROOT / "requirements-dev.txt").read_text()
    names = {line.split("==")[0].lower() for line in prod.splitlines() if "==" in line}
    assert not names & {"pytest", "pytest-django", "ruff", "playwright", "moto"}
    assert {"django", "gunicorn", "django-redis", "django-storages"} <= names
    assert (
        dev.splitlines()[
            [line.startswith("-r") for line in dev.splitlines()].index(True)
        ]
        == "-r requirements.txt"
    )
    for tool in ("pytest==", "ruff==", "playwright==", "moto=="):
        assert tool in dev, tool
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "pip install -r requirements.txt" in dockerfile
    assert "-r requirements-dev" not in dockerfile
    assert "-r requirements-dev.txt" in (ROOT / "Makefile").read_text()


@pytest.mark.django_db
def test_bootstrap_creates_admin_labels_and_demo_images_and_is_repeatable(
    settings, tmp_path
):
    from tests.conftest import make_jpeg

    demo = tmp_path / "demo"
    for i, name in enumerate(["woman", "man", "camera", "TV"]):
        (demo / name).mkdir(parents=True)
        (demo / name / "a.jpg").write_bytes(make_jpeg(100 + i))
    settings.SNAPCLASS_DEMO_DIR = demo
    settings.SNAPCLASS_ADMIN_PASSWORD = ""
    out = io.StringIO()

    call_command("bootstrap", stdout=out)
    call_command("bootstrap", stdout=out)

    from django.contrib.auth import get_user_model

    assert get_user_model().objects.filter(is_superuser=True).count() == 1
    assert out.getvalue().count("password:") == 1
    assert set(Label.objects.values_list("name", flat=True)) == {
        "woman",
        "man",
        "camera",
        "TV",
    }
    assert all(Label.objects.values_list("queries", flat=True))
    assert Image.objects.count() == 4


def test_the_bundled_demo_dataset_is_usable():
    demo = ROOT / "datasets" / "demo" / "images"
    sizes = 0
    for label in ("woman", "man", "camera", "TV"):
        files = [p for p in (demo / label).iterdir() if p.is_file()]
        assert len(files) >= 20, label
        sizes += sum(p.stat().st_size for p in files)
    assert sizes <= 10 * 1024 * 1024
    assert (ROOT / "datasets" / "demo" / "ATTRIBUTION.md").is_file()


@pytest.mark.django_db
def test_deeply_nested_json_is_a_400_on_every_json_endpoint(admin_client):
    body = "[" * 50_000 + "]" * 50_000
    for url in ("/api/v1/scrape-jobs/", "/api/v1/training-runs/"):
        response = admin_client.post(url, body, content_type="application/json")
        assert response.status_code == 400, url
        assert response.json()["code"] == "parse_error"
