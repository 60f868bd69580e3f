"""From typed words to a served classifier, in one process (no worker)."""

from __future__ import annotations

import json
import re

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command

from config.errors import DomainError
from datasets.labels import ClassSpec, class_specs_build, sections_parse
from datasets.models import Label, ScrapeJob
from tests.datasets.scrape_site import serve_classes
from tests.webserver import LocalServer
from training import projects
from training.models import Project

pytestmark = pytest.mark.django_db
FAST = {"backbone": "tiny_cnn", "epochs": 1, "image_size": 32, "batch_size": 8}


@pytest.fixture
def site(settings):
    with LocalServer() as server:
        settings.BING_SEARCH_ENDPOINT = server.url("/bing/v7.0/images/search")
        settings.BING_SEARCH_KEY = "test-key"
        settings.SNAPCLASS_FETCH_ALLOW_PRIVATE_HOSTS = ["127.0.0.1"]
        settings.SNAPCLASS_SEARCH_PROVIDER = "bing"
        yield server


@pytest.fixture
def curator(django_user_model):
    user = django_user_model.objects.create_user("cora", password="pw")
    user.groups.add(Group.objects.get(name="curators"))
    return user


def test_class_names_become_labels_with_derived_slugs_and_queries():
    specs = class_specs_build(
        ["woman", "Flat TV", "camera"],
        queries=sections_parse(
            "camera\ndigital camera\nphoto camera", ["camera"], what="queries"
        ),
    )

    assert [(s.name, s.slug, s.queries) for s in specs] == [
        ("woman", "woman", ()),
        ("Flat TV", "flat-tv", ()),
        ("camera", "camera", ("digital camera", "photo camera")),
    ]


@pytest.mark.parametrize(
    ("names", "words"),
    [
        (["TV", "tv"], "“TV” and “tv” would both be the label “tv”"),
        (["!!!"], "“!!!” has no letters or digits"),
        (["x" * 65], "longer than 64 characters"),
        ([], "Type at least one class name."),
    ],
)
def test_class_names_that_cannot_be_labels_are_explained(names, words):
    with pytest.raises(DomainError) as excinfo:
        class_specs_build(names)

    assert words in excinfo.value.message


def test_queries_before_any_class_name_are_explained():
    with pytest.raises(DomainError, match="comes before any class name"):
        sections_parse("digital camera\ncamera\nphoto", ["camera"], what="queries")


def test_creating_reuses_an_existing_label_and_says_so(site):
    Label.objects.create(slug="tv", name="TV", is_active=False)

    project = projects.project_create(
        classes=[ClassSpec("Tv"), ClassSpec("camera")], per_label=10, enqueue=False
    )

    assert project.notes == [
        "“Tv” is the existing label “TV”; its 0 active images are kept; it was "
        "inactive and is active again."
    ]
    assert Label.objects.get(slug="tv").is_active
    assert sorted(project.labels.values_list("slug", flat=True)) == ["camera", "tv"]
    assert project.scrape_jobs.count() == 2


def test_a_provider_without_its_key_is_refused_before_anything_is_made(settings):
    settings.SERPAPI_KEY = ""

    with pytest.raises(projects.ProviderNotConfigured, match="needs SERPAPI_KEY"):
        projects.project_create(classes=[ClassSpec("a")], provider="serpapi")

    assert not Label.objects.exists() and not Project.objects.exists()


def test_the_url_list_needs_urls_for_every_class():
    with pytest.raises(projects.InvalidProject, match="none for: b"):
        projects.project_create(
            classes=[
                ClassSpec("a", urls=("https://example.com/a.jpg",)),
                ClassSpec("b"),
            ],
            provider="urls",
        )


def test_classify_command_goes_from_words_to_a_current_model(site, capsys):
    serve_classes(site, ["red", "green", "blue"], per_class=8)

    call_command(
        "classify",
        "red",
        "green",
        "blue",
        "--per-label",
        "8",
        "--wait",
        "--backbone",
        "tiny_cnn",
        "--epochs",
        "1",
        "--image-size",
        "32",
    )

    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["stage"] == "ready", line
    assert line["model_is_current"] is True
    assert {k: v["downloaded"] for k, v in line["classes"].items()} == {
        "red": 8,
        "green": 8,
        "blue": 8,
    }
    project = Project.objects.get(pk=line["project"])
    assert project.run.config["backbone"] == "tiny_cnn"
    assert project.run.trigger == "auto"
    assert sorted(project.run.label_names) == ["blue", "green", "red"]


def test_the_new_page_is_for_curators(client, curator):
    assert client.get("/classifiers/new/").status_code == 302

    client.force_login(curator)
    page = client.get("/classifiers/new/")

    assert page.status_code == 200
    assert b'name="classes"' in page.content and b"BING_SEARCH_KEY" in page.content


def test_the_new_page_creates_labels_and_jobs_and_shows_per_class_progress(
    client, curator, site, settings
):
    settings.SNAPCLASS_TRAIN_DEFAULTS = FAST
    client.force_login(curator)

    response = client.post(
        "/classifiers/new/",
        {
            "classes": "woman\nman\n\ncamera\nTV",
            "queries": "camera\ndigital camera",
            "provider": "bing",
            "per_label": "12",
            "train": "on",
        },
    )

    project = Project.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/classifiers/{project.pk}/"
    assert sorted(Label.objects.values_list("slug", flat=True)) == [
        "camera",
        "man",
        "tv",
        "woman",
    ]
    assert Label.objects.get(slug="camera").queries == ["digital camera"]
    assert ScrapeJob.objects.filter(provider="bing").count() == 4
    assert project.train_config["backbone"] == "tiny_cnn"
    page = client.get(response["Location"])
    html = page.content.decode()
    for slug in ("woman", "man", "camera", "tv"):
        assert f'data-class="{slug}"' in html
    assert "Collecting images: 0 of 4 classes done." in html
    assert (
        client.get(response["Location"] + "?part=1").content.count(b"data-class") == 4
    )


def test_the_new_page_explains_a_clash_and_keeps_what_was_typed(client, curator, site):
    client.force_login(curator)

    response = client.post(
        "/classifiers/new/",
        {"classes": "TV\ntv", "provider": "bing", "per_label": "5"},
    )

    assert response.status_code == 400
    html = response.content.decode()
    assert "would both be the label “tv”" in html
    assert "TV\ntv" in html
    assert not Label.objects.exists()


def test_the_projects_api_starts_the_same_flow(client, curator, site):
    client.force_login(curator)

    response = client.post(
        "/api/v1/projects/",
        {
            "classes": [
                {"name": "woman"},
                {"name": "man", "queries": ["man portrait"]},
            ],
            "provider": "bing",
            "per_label": 20,
        },
        content_type="application/json",
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["stage"] == "scraping"
    assert [c["slug"] for c in body["classes"]] == ["woman", "man"]
    assert ScrapeJob.objects.get(label__slug="man").query == "man portrait"
    assert client.get(f"/api/v1/projects/{body['id']}/").json()["id"] == body["id"]


@pytest.mark.parametrize(
    "path",
    ["/", "/dataset/", "/scrape-jobs/", "/runs/", "/models/", "/classifiers/new/"],
)
def test_every_page_has_the_one_navigation(admin_client, path):
    html = admin_client.get(path).content.decode()

    nav = html[html.index('<nav id="nav">') : html.index("</nav>")]
    for link in ("/", "/classifiers/new/", "/dataset/", "/scrape-jobs/", "/runs/"):
        assert f'href="{link}"' in nav
    assert re.search(r'<a href="/models/"[^>]*>Models</a>', nav)
    assert html.count('<nav id="nav">') == 1


def _finish_jobs(project, status="failed", message="No internet connection."):
    project.scrape_jobs.update(status=status, message=message)


def test_a_project_whose_searches_found_nothing_explains_why_it_did_not_train(site):
    project = projects.project_create(
        classes=[ClassSpec("a"), ClassSpec("b")], per_label=5, enqueue=False
    )
    _finish_jobs(project)

    project = projects.project_advance(project.pk, enqueue=False)

    assert project.status == "failed" and project.run is None
    assert project.message.startswith("Training did not start: Training needs")
    state = projects.project_state(project)
    assert state.stage == "failed"
    assert state.classes[0].messages == ["No internet connection."]


def test_a_project_waits_for_an_active_run_and_the_backstop_starts_it_later(
    site, small_dataset
):
    from training import runner

    busy = runner.training_run_start(config=FAST, enqueue=False)
    project = projects.project_create(
        classes=[ClassSpec("red")], per_label=5, train_config=FAST, enqueue=False
    )
    _finish_jobs(project, status="succeeded", message="5 new images.")

    project = projects.project_advance(project.pk, enqueue=False)
    assert project.status == "scraping" and project.run is None
    assert f"waiting to train: Run {busy.pk} is already queued" in project.message

    runner.training_run_cancel(run=busy)
    assert projects.projects_advance_waiting() == 1
    project.refresh_from_db()
    assert project.status == "training" and project.run.trigger == "auto"


def test_a_project_without_training_is_done_when_the_images_are_in(site):
    project = projects.project_create(
        classes=[ClassSpec("a")], per_label=5, train=False, enqueue=False
    )
    assert projects.project_advance(project.pk).status == "scraping"
    _finish_jobs(project, status="succeeded")

    project = projects.project_advance(project.pk)

    assert project.status == "done"
    assert projects.project_state(project).stage == "ready"
