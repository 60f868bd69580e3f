"""The jobs and runs pages add rows started elsewhere, and long text wraps."""

from __future__ import annotations

import pytest

from datasets import scraping
from datasets.services import label_get_or_create
from training.models import TrainingRun

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_job_started_elsewhere_appears_and_its_long_message_wraps(
    live_server, open_page, settings
):
    settings.SNAPCLASS_PUBLIC_DASHBOARD = True  # jobs readable without signing in
    label = label_get_or_create(name="camera")
    page, console = open_page(live_server.url + "/scrape-jobs/")
    page.set_viewport_size({"width": 1000, "height": 800})
    assert page.locator("#jobs tbody tr[data-job]").count() == 0

    job = scraping.scrape_job_create(label=label, provider="ddg", enqueue=False)
    page.wait_for_selector(f"#jobs tr[data-job='{job.pk}']", timeout=20_000)
    long = "No internet connection to DuckDuckGo (" + "x" * 400 + ")."
    scraping.ScrapeJob.objects.filter(pk=job.pk).update(status="failed", message=long)
    page.wait_for_selector(f"#jobs tr[data-job='{job.pk}'] .status.failed")

    assert long in page.inner_text(f"#jobs tr[data-job='{job.pk}']")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 1000, f"the page is {width}px wide"
    assert console.errors == []


def test_a_run_started_elsewhere_appears_on_the_runs_page(live_server, open_page):
    page, console = open_page(live_server.url + "/runs/")
    assert "manage.py" not in page.inner_text("#runs")

    run = TrainingRun.objects.create(config={"backbone": "resnet18", "epochs": 2})

    page.wait_for_selector(f"#runs tr[data-run='{run.pk}']", timeout=20_000)
    assert "queued" in page.inner_text(f"#runs tr[data-run='{run.pk}']")
    assert console.errors == []
