"""Labels in the admin and on the dataset page: derived slugs, plain-line queries,
clashes in words, scraping with a chosen provider."""

from __future__ import annotations

import pytest
from django.urls import reverse

from datasets.models import Label, ScrapeJob

pytestmark = pytest.mark.django_db


def test_the_admin_label_form_derives_the_slug_and_takes_queries_as_lines(
    admin_client,
):
    response = admin_client.post(
        reverse("admin:datasets_label_add"),
        {
            "name": "Flat TV",
            "queries": "flat screen tv\n\ntelevision set\n",
            "is_active": "on",
        },
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    label = Label.objects.get()
    assert (label.slug, label.name) == ("flat-tv", "Flat TV")
    assert label.queries == ["flat screen tv", "television set"]
    page = admin_client.get(reverse("admin:datasets_label_change", args=[label.pk]))
    assert "flat screen tv\ntelevision set</textarea>" in page.content.decode()


def test_the_admin_label_form_explains_a_clash(admin_client):
    Label.objects.create(slug="tv", name="TV")

    response = admin_client.post(
        reverse("admin:datasets_label_add"), {"name": "tv", "queries": ""}
    )

    assert response.status_code == 200
    assert "would clash with the label “TV” (slug “tv”)" in response.content.decode()
    assert Label.objects.count() == 1


def test_renaming_a_label_in_the_admin_moves_its_slug(admin_client):
    label = Label.objects.create(slug="tv", name="TV", queries=["tv"])

    admin_client.post(
        reverse("admin:datasets_label_change", args=[label.pk]),
        {"name": "Television", "queries": "tv\ntelevision", "is_active": "on"},
    )

    label.refresh_from_db()
    assert (label.slug, label.name, label.queries) == (
        "television",
        "Television",
        ["tv", "television"],
    )


def test_the_admin_scrape_action_chooses_the_provider_and_takes_url_lists(
    admin_client,
):
    tv = Label.objects.create(slug="tv", name="TV")
    cam = Label.objects.create(slug="camera", name="camera", queries=["a", "b"])
    url = reverse("admin:datasets_label_changelist")
    chosen = {"action": "scrape", "_selected_action": [tv.pk, cam.pk]}

    form = admin_client.post(url, chosen)
    assert form.status_code == 200 and 'id="scrape-form"' in form.content.decode()

    done = admin_client.post(
        url,
        {
            **chosen,
            "apply": "1",
            "provider": "urls",
            "count": "10",
            "urls": "TV\nhttps://example.com/1.jpg\nhttps://example.com/2.jpg\n"
            "camera\nhttps://example.com/3.jpg",
        },
    )

    assert done.status_code == 302
    jobs = {j.label.slug: j for j in ScrapeJob.objects.select_related("label")}
    assert jobs["tv"].provider == "urls" and len(jobs["tv"].urls) == 2
    assert jobs["camera"].urls == ["https://example.com/3.jpg"]


def test_the_url_list_without_urls_for_a_label_is_refused_in_words(admin_client):
    tv = Label.objects.create(slug="tv", name="TV")

    response = admin_client.post(
        reverse("admin:datasets_label_changelist"),
        {
            "action": "scrape",
            "_selected_action": [tv.pk],
            "apply": "1",
            "provider": "urls",
            "count": "10",
            "urls": "",
        },
    )

    assert response.status_code == 200
    assert "needs a list of image URLs" in response.content.decode()
    assert not ScrapeJob.objects.exists()


def test_the_dataset_page_adds_renames_deactivates_and_scrapes_labels(
    admin_client, settings
):
    settings.SNAPCLASS_SEARCH_PROVIDER = "ddg"
    admin_client.post(
        reverse("datasets:label-create"), {"name": "Camera", "queries": "photo camera"}
    )
    label = Label.objects.get()
    assert (label.slug, label.queries) == ("camera", ["photo camera"])

    admin_client.post(
        reverse("datasets:label-edit", args=[label.pk]),
        {
            f"label-{label.pk}-name": "Photo camera",
            f"label-{label.pk}-queries": "digital camera\nphoto camera",
        },
    )
    label.refresh_from_db()
    assert (label.slug, label.is_active) == ("photo-camera", False)
    assert label.queries == ["digital camera", "photo camera"]

    admin_client.post(
        reverse("datasets:label-scrape", args=[label.pk]),
        {f"scrape-{label.pk}-provider": "ddg", f"scrape-{label.pk}-count": "20"},
    )
    assert sorted(ScrapeJob.objects.values_list("query", "requested")) == [
        ("digital camera", 10),
        ("photo camera", 10),
    ]
    page = admin_client.get(reverse("datasets:summary")).content.decode()
    assert 'id="label-photo-camera" class="inactive"' in page


def test_the_dataset_page_explains_a_clash(admin_client):
    Label.objects.create(slug="tv", name="TV")

    response = admin_client.post(
        reverse("datasets:label-create"), {"name": "Tv"}, follow=True
    )

    assert "would clash with the existing label “TV”" in response.content.decode()


def test_admin_pages_have_a_favicon_and_round_numbers(admin_client, client):
    from training.models import EpochMetric, TrainingRun

    run = TrainingRun.objects.create(
        status="succeeded",
        slot=None,
        error_rate=0.22499999999999998,
        per_class=[{"label": "a", "precision": 2 / 3}],
    )
    EpochMetric.objects.create(run=run, epoch=0, phase="frozen", valid_loss=1.0 / 3)

    listing = admin_client.get(reverse("admin:training_trainingrun_changelist"))
    detail = admin_client.get(
        reverse("admin:training_trainingrun_change", args=[run.pk])
    )

    for page in (listing, detail):
        html = page.content.decode()
        assert "0.225" in html and "0.22499999999999998" not in html
        assert 'rel="icon" href="/static/img/favicon.svg"' in html
    assert "0.3333<" in detail.content.decode()
    assert "precision&quot;: 0.6667" in detail.content.decode()
    favicon = client.get("/favicon.ico")
    assert favicon.status_code == 301
    assert favicon["Location"] == "/static/img/favicon.svg"
