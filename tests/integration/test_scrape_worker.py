from __future__ import annotations

import time
from pathlib import Path

import pytest

from datasets import scraping
from datasets.models import Image, ScrapeJob
from datasets.services import label_get_or_create
from tests.datasets.scrape_site import build_site
from tests.integration.conftest import wait_for
from tests.webserver import LocalServer


@pytest.fixture
def site(settings):
    with LocalServer() as server:
        settings.BING_SEARCH_ENDPOINT = server.url("/bing/v7.0/images/search")
        yield server


def worker_env(site) -> dict[str, str]:
    return {
        "BING_SEARCH_ENDPOINT": site.url("/bing/v7.0/images/search"),
        "BING_SEARCH_KEY": "test-key",
        "SNAPCLASS_FETCH_ALLOW_PRIVATE_HOSTS": "127.0.0.1",
        "SNAPCLASS_FETCH_DEADLINE": "1.5",
        "SNAPCLASS_FETCH_MAX_BYTES": str(1024 * 1024),
    }


def media_files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*.jpg")}


def test_a_job_runs_through_redis_on_a_live_worker(site, start_worker, settings):
    build_site(site, good=40, duplicates=5, broken=4, slow=1)
    start_worker("scrape", **worker_env(site))
    label = label_get_or_create(name="camera", queries=["camera"])

    job = scraping.scrape_job_create(label=label, provider="bing", requested=50)

    job = wait_for(
        lambda: ScrapeJob.objects.filter(pk=job.pk, status="succeeded").first(),
        timeout=90,
        message="the job to succeed",
    )
    assert (job.found, job.downloaded, job.duplicates) == (50, 40, 5)
    assert job.rejected + job.failed == 5
    assert Image.objects.filter(scrape_job=job).count() == 40


def test_a_worker_killed_mid_job_leaves_it_failed_and_no_half_written_images(
    site, start_worker, settings
):
    build_site(site, good=60, duplicates=0, broken=0, slow=0, latency=0.25)
    worker = start_worker(
        "scrape",
        SNAPCLASS_FETCH_CONCURRENCY="2",
        SNAPCLASS_FETCH_PER_HOST="2",
        **worker_env(site),
    )
    label = label_get_or_create(name="camera", queries=["camera"])
    job = scraping.scrape_job_create(label=label, provider="bing", requested=60)
    wait_for(
        lambda: ScrapeJob.objects.filter(pk=job.pk, processed__gte=6).exists(),
        timeout=60,
        message="the job to be under way",
    )

    worker.kill()

    job.refresh_from_db()
    assert job.status == "running"  # nobody is left to say otherwise...
    settings.SNAPCLASS_JOB_HEARTBEAT_TIMEOUT = 1
    time.sleep(1.5)
    assert scraping.scrape_jobs_reap_stale() == 1  # ...until the reaper does
    job.refresh_from_db()
    assert job.status == "failed" and "heartbeat" in job.message
    # Every stored image is whole: its row, its file and its thumbnail.
    images = list(Image.objects.filter(scrape_job=job))
    assert 0 < len(images) < 60
    on_disk = media_files(Path(settings.MEDIA_ROOT))
    rows = {i.file.name for i in images} | {i.thumbnail.name for i in images}
    assert rows <= on_disk
    assert on_disk == rows


def test_a_killed_job_is_resumed_without_duplicates(site, start_worker, settings):
    build_site(site, good=30, duplicates=0, broken=0, slow=0, latency=0.25)
    env = {"SNAPCLASS_FETCH_CONCURRENCY": "2", "SNAPCLASS_FETCH_PER_HOST": "2"}
    worker = start_worker("scrape", **env, **worker_env(site))
    label = label_get_or_create(name="camera", queries=["camera"])
    job = scraping.scrape_job_create(label=label, provider="bing", requested=30)
    wait_for(
        lambda: ScrapeJob.objects.filter(pk=job.pk, processed__gte=4).exists(),
        timeout=60,
    )
    worker.kill()
    ScrapeJob.objects.filter(pk=job.pk).update(
        heartbeat_at=job.created_at.replace(year=2000)
    )

    # The message is delivered again (as after a broker's visibility timeout).
    start_worker("scrape", **env, **worker_env(site))
    from datasets.tasks import scrape_job_execute

    scrape_job_execute.delay(job.pk)
    job = wait_for(
        lambda: ScrapeJob.objects.filter(pk=job.pk, status="succeeded").first(),
        timeout=90,
    )
    assert job.attempts == 2
    assert Image.objects.filter(scrape_job=job).count() == 30
    assert job.downloaded == 30 and job.duplicates == 0
