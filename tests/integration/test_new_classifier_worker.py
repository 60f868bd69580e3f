"""The new-classifier flow through the API and through `manage.py classify`, on a
live worker over Redis and PostgreSQL (the page's flow is in tests/e2e)."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from classifier.selectors import model_version_current
from tests.datasets.scrape_site import serve_classes
from tests.integration.conftest import wait_for
from tests.webserver import LocalServer
from training import projects
from training.models import Project

CLASSES = ["woman", "man", "camera", "TV"]
FAST = {"backbone": "tiny_cnn", "epochs": 1, "image_size": 32, "batch_size": 8}


@pytest.fixture
def web(settings):
    with LocalServer() as server:
        settings.BING_SEARCH_ENDPOINT = server.url("/bing/v7.0/images/search")
        settings.BING_SEARCH_KEY = "test-key"
        settings.SNAPCLASS_FETCH_ALLOW_PRIVATE_HOSTS = ["127.0.0.1"]
        settings.SNAPCLASS_TRAIN_DEFAULTS = FAST
        serve_classes(server, CLASSES, per_class=10)
        yield server


@pytest.fixture
def worker(start_worker, settings, web):
    return start_worker(
        "default,scrape,train",
        BING_SEARCH_ENDPOINT=settings.BING_SEARCH_ENDPOINT,
        BING_SEARCH_KEY="test-key",
        SNAPCLASS_FETCH_ALLOW_PRIVATE_HOSTS="127.0.0.1",
    )


def wait_ready(project_id: int, worker) -> projects.ProjectState:
    def ready():
        state = projects.project_state(
            Project.objects.select_related("run").get(pk=project_id)
        )
        assert state.stage != "failed", state.headline
        return state if state.stage == "ready" else None

    try:
        return wait_for(ready, timeout=300, interval=1, message="the model")
    except AssertionError:
        print(worker.log())
        raise


def test_one_api_call_makes_a_served_classifier(worker, client, django_user_model):
    # A superuser needs no permission rows, which other integration tests'
    # flushes may have removed (a curator's rights: tests/training/test_projects.py).
    client.force_login(django_user_model.objects.create_superuser("root", "", "pw"))

    response = client.post(
        "/api/v1/projects/",
        {
            "classes": [{"name": name} for name in CLASSES],
            "provider": "bing",
            "per_label": 10,
        },
        content_type="application/json",
    )

    assert response.status_code == 201, response.json()
    state = wait_ready(response.json()["id"], worker)
    assert state.is_current and state.model_version == model_version_current()
    assert [(row.slug, row.downloaded) for row in state.classes] == [
        ("woman", 10),
        ("man", 10),
        ("camera", 10),
        ("tv", 10),
    ]
    body = client.get(f"/api/v1/projects/{state.project.pk}/").json()
    assert body["stage"] == "ready" and body["model_is_current"] is True
    assert body["model_version"] == state.model_version.pk
    assert sorted(state.model_version.label_names) == sorted(CLASSES)


def test_one_command_makes_a_served_classifier(worker, capsys):
    call_command("classify", *CLASSES, "--per-label", "10", "--provider", "bing")

    out = capsys.readouterr().out
    assert out.startswith("Queued classifier ")
    project = Project.objects.get()
    state = wait_ready(project.pk, worker)
    assert state.is_current
    assert state.run.trigger == "auto" and state.run.config["backbone"] == "tiny_cnn"
    assert sum(row.downloaded for row in state.classes) == 40
