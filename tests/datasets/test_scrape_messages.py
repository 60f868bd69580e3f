"""A scrape job says in words what happened, naming the provider it used."""

from __future__ import annotations

import socket

import pytest

from datasets import scraping
from datasets.models import ScrapeJob
from datasets.services import label_get_or_create
from tests.conftest import make_jpeg
from tests.datasets.scrape_site import JPEG, serve_bing
from tests.webserver import LocalServer

pytestmark = pytest.mark.django_db


@pytest.fixture
def label():
    return label_get_or_create(name="camera", queries=["photo camera"])


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_job(**kw) -> ScrapeJob:
    job = scraping.scrape_job_create(enqueue=False, **kw)
    claimed = scraping.scrape_job_claim(job.pk)
    assert claimed is not None
    return scraping.scrape_job_run(claimed)


def test_duckduckgo_without_a_connection_fails_saying_so(label, settings):
    # The only way out is a proxy nobody listens on: DuckDuckGo cannot be reached.
    settings.DDG_PROXY = f"http://127.0.0.1:{closed_port()}"

    job = run_job(label=label, provider="ddg", requested=5)

    assert job.status == "failed"
    assert job.message.startswith("No internet connection to DuckDuckGo (")
    assert "bing" not in job.message.lower()


def test_a_bing_compatible_endpoint_that_is_down_is_named(label, settings):
    port = closed_port()
    settings.BING_SEARCH_ENDPOINT = f"http://127.0.0.1:{port}/v7.0/images/search"
    settings.BING_SEARCH_KEY = "k"

    job = run_job(label=label, provider="bing", requested=5)

    assert job.status == "failed"
    assert job.message.startswith(
        f"No internet connection to the Bing-compatible search at 127.0.0.1:{port}"
    )


def test_urls_that_all_point_at_private_addresses_fail_the_job(label, settings):
    settings.SNAPCLASS_FETCH_ALLOW_PRIVATE_HOSTS = []
    with LocalServer() as server:
        urls = [
            server.add(f"/{i}.jpg", headers=JPEG, body=make_jpeg(i)) for i in range(11)
        ]

        job = run_job(label=label, provider="urls", urls=urls, requested=11)

    assert job.status == "failed"
    assert job.message == (
        "Nothing downloaded: all 11 URLs point at private addresses; "
        "allow them with SNAPCLASS_FETCH_ALLOW_PRIVATE_HOSTS."
    )
    assert job.reasons == {"private_address": 11}
    assert server.hits == {}  # refused before connecting


def test_a_job_with_some_404s_succeeds_and_its_page_tables_the_reasons(
    label, settings, admin_client, client
):
    settings.SNAPCLASS_FETCH_ALLOW_PRIVATE_HOSTS = ["127.0.0.1"]
    settings.BING_SEARCH_KEY = "test-key"
    with LocalServer() as server:
        settings.BING_SEARCH_ENDPOINT = server.url("/bing/v7.0/images/search")
        good = [
            server.add(f"/img/{i}.jpg", headers=JPEG, body=make_jpeg(i))
            for i in range(6)
        ]
        gone = [server.url(f"/gone/{i}.jpg") for i in range(3)]
        serve_bing(server, good + gone)

        job = run_job(label=label, provider="bing", requested=9)

    assert job.status == "succeeded"
    assert job.message == (
        "6 new images, 0 already in the dataset, 3 not usable (3 not found (HTTP 404))."
    )
    assert client.get(f"/scrape-jobs/{job.pk}/").status_code == 302  # sign in first
    page = admin_client.get(f"/scrape-jobs/{job.pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="reasons"' in html
    assert "not found (HTTP 404)" in html and "http_404" in html
    assert gone[0] in html  # a sample URL with its reason


def test_a_search_that_finds_nothing_fails(label, settings):
    settings.BING_SEARCH_KEY = "test-key"
    with LocalServer() as server:
        settings.BING_SEARCH_ENDPOINT = serve_bing(server, [])

        job = run_job(label=label, provider="bing", requested=5)

    assert job.status == "failed"
    assert "found no images for “photo camera”" in job.message


def test_images_all_already_in_the_dataset_still_succeed(label, settings):
    settings.SNAPCLASS_FETCH_ALLOW_PRIVATE_HOSTS = ["127.0.0.1"]
    with LocalServer() as server:
        urls = [server.add("/a.jpg", headers=JPEG, body=make_jpeg(1))]
        run_job(label=label, provider="urls", urls=urls, requested=1)

        job = run_job(label=label, provider="urls", urls=urls, requested=1)

    assert job.status == "succeeded"
    assert job.message == "0 new images, 1 already in the dataset, 0 not usable."
