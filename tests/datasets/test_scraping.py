from __future__ import annotations

import io
import json
import time
from pathlib import Path

import pytest
from django.core.management import call_command

from datasets import scraping
from datasets.models import Image, ScrapeJob
from datasets.services import label_get_or_create
from datasets.staging import Staging
from tests.datasets.scrape_site import build_site, serve_bing
from tests.webserver import LocalServer

pytestmark = pytest.mark.django_db


@pytest.fixture
def site(settings):
    with LocalServer() as server:
        settings.BING_SEARCH_ENDPOINT = server.url("/bing/v7.0/images/search")
        settings.BING_SEARCH_KEY = "test-key"
        settings.SNAPCLASS_FETCH_ALLOW_PRIVATE_HOSTS = ["127.0.0.1"]
        settings.SNAPCLASS_FETCH_DEADLINE = 1.5
        settings.SNAPCLASS_FETCH_MAX_BYTES = 1024 * 1024
        yield server


@pytest.fixture
def label():
    return label_get_or_create(name="camera", queries=["photo camera"])


def run_job(**kw) -> ScrapeJob:
    job = scraping.scrape_job_create(enqueue=False, **kw)
    claimed = scraping.scrape_job_claim(job.pk)
    assert claimed is not None
    return scraping.scrape_job_run(claimed)


def test_a_job_downloads_counts_and_explains_against_a_noisy_site(site, label):
    build_site(site)
    started = time.monotonic()

    job = run_job(label=label, provider="bing", requested=200)

    assert job.status == "succeeded", job.message
    assert (job.found, job.downloaded, job.duplicates) == (200, 165, 10)
    assert job.rejected + job.failed == 25
    assert sum(job.reasons.values()) == 25
    assert {"timeout", "too_large", "http_404", "not_an_image"} <= set(job.reasons)
    assert job.reason_samples and all("code" in s for s in job.reason_samples)
    assert time.monotonic() - started < 60
    images = Image.objects.filter(scrape_job=job)
    assert images.count() == 165
    image = images.first()
    assert image.provider == "bing" and image.query == "photo camera"
    assert image.source_kind == "search" and image.page_url.startswith(
        "http://127.0.0.1"
    )


def test_a_job_stores_whole_files_and_leaves_nothing_staged(site, label, settings):
    build_site(site, good=12, duplicates=2, broken=0, slow=0)

    job = run_job(label=label, provider="bing", requested=14)

    assert (job.downloaded, job.duplicates) == (12, 2)
    media = Path(settings.MEDIA_ROOT)
    images = Image.objects.filter(scrape_job=job)
    stored = {i.file.name for i in images} | {i.thumbnail.name for i in images}
    assert {str(p.relative_to(media)) for p in media.rglob("*.jpg")} == stored
    assert all(i.file.read()[:2] == b"\xff\xd8" for i in images)
    assert not (media / ".staging" / f"scrape-{job.pk}").exists()


def test_a_job_whose_staging_folder_cannot_be_made_saves_directly(
    site, label, settings
):
    media = Path(settings.MEDIA_ROOT)
    media.mkdir(parents=True)
    (media / ".staging").write_text("a file where the folder should be")
    build_site(site, good=4, duplicates=0, broken=0, slow=0)

    job = run_job(label=label, provider="bing", requested=4)

    assert job.status == "succeeded" and job.downloaded == 4
    for image in Image.objects.filter(scrape_job=job):
        assert image.file.read()[:2] == image.thumbnail.read()[:2] == b"\xff\xd8"


def test_a_job_stores_through_a_storage_that_cannot_stage(site, label, settings):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    }
    build_site(site, good=5, duplicates=0, broken=0, slow=0)

    job = run_job(label=label, provider="bing", requested=5)

    assert job.downloaded == 5
    image = Image.objects.filter(scrape_job=job).first()
    assert image.thumbnail.read()[:2] == b"\xff\xd8"
    assert not Path(settings.MEDIA_ROOT).exists()


def test_running_a_job_twice_adds_no_duplicates(site, label):
    build_site(site, good=12, duplicates=0, broken=0, slow=0)
    job = run_job(label=label, provider="bing", requested=12)
    assert job.downloaded == 12

    # A redelivered message: the job is running again (stale) and is resumed.
    ScrapeJob.objects.filter(pk=job.pk).update(status="queued")
    again = scraping.scrape_job_run(scraping.scrape_job_claim(job.pk))

    assert again.status == "succeeded"
    assert Image.objects.count() == 12
    assert again.downloaded == 12


def test_the_default_settings_refuse_a_private_address(site, label, settings):
    build_site(site, good=3, duplicates=0, broken=0, slow=0)
    settings.SNAPCLASS_FETCH_ALLOW_PRIVATE_HOSTS = []

    job = run_job(label=label, provider="bing", requested=3)

    assert job.downloaded == 0 and job.failed == 3
    assert job.reasons == {"private_address": 3}


def test_a_wrong_key_fails_the_job_with_the_providers_message(site, label, settings):
    serve_bing(site, [], key="right-key")

    job = run_job(label=label, provider="bing", requested=5)

    assert job.status == "failed"
    assert "Access denied" in job.message


def test_a_missing_key_fails_the_job_clearly(site, label, settings):
    settings.SERPAPI_KEY = ""

    job = run_job(label=label, provider="serpapi", requested=5)

    assert job.status == "failed"
    assert job.message == "SerpApi (Google Images) needs an API key: set SERPAPI_KEY."


def test_an_unknown_provider_is_refused_before_a_job_exists(label):
    with pytest.raises(scraping.InvalidScrapeRequest):
        scraping.scrape_job_create(label=label, provider="altavista", enqueue=False)
    assert not ScrapeJob.objects.exists()


def test_a_cancelled_job_stops(site, label):
    build_site(site, good=80, duplicates=0, broken=0, slow=0, latency=0.1)
    job = scraping.scrape_job_create(
        label=label, provider="bing", requested=80, enqueue=False
    )
    claimed = scraping.scrape_job_claim(job.pk)

    def cancel_at_the_first_batch(job, counts):
        assert scraping.scrape_job_cancel(job=job)

    done = scraping.scrape_job_run(claimed, on_progress=cancel_at_the_first_batch)

    assert done.status == "cancelled"
    assert 0 < done.processed < 80


def test_a_stale_running_job_is_reaped(label, settings):
    job = scraping.scrape_job_create(label=label, provider="ddg", enqueue=False)
    scraping.scrape_job_claim(job.pk)
    settings.SNAPCLASS_JOB_HEARTBEAT_TIMEOUT = 1
    ScrapeJob.objects.filter(pk=job.pk).update(
        heartbeat_at=job.created_at.replace(year=2000)
    )

    # What its dead worker had staged but not stored.
    staging = Staging.open(f"scrape-{job.pk}")
    left = staging.write(b"half a job", "images/ab/abc.jpg").path

    assert scraping.scrape_jobs_reap_stale() == 1
    job.refresh_from_db()
    assert job.status == "failed" and "heartbeat" in job.message
    assert not left.exists() and not staging.root.exists()


def test_the_scrape_command_waits_and_prints_one_json_line(site, label, tmp_path):
    urls = build_site(site, good=6, duplicates=1, broken=2, slow=0)
    url_file = tmp_path / "urls.txt"
    url_file.write_text("# my list\n" + "\n".join(urls) + "\n\n")
    out = io.StringIO()

    call_command(
        "scrape",
        "--label",
        "camera",
        "--urls-file",
        str(url_file),
        "--wait",
        stdout=out,
    )

    line = json.loads(out.getvalue().strip().splitlines()[-1])
    assert line["status"] == "succeeded"
    assert (line["found"], line["downloaded"], line["duplicates"]) == (9, 6, 1)
    assert line["rejected"] + line["failed"] == 2
    assert Image.objects.filter(source_kind="url").count() == 6


def test_the_scrape_command_without_wait_queues_a_job(label):
    out = io.StringIO()
    call_command("scrape", "--label", "camera", "--query", "old camera", stdout=out)
    job = ScrapeJob.objects.get()
    assert job.status == "queued" and job.query == "old camera"
    assert f"Queued scrape job {job.pk}" in out.getvalue()
