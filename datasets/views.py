from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from datasets.models import ScrapeJob
from datasets.selectors import label_list_with_counts


def dataset_summary(request: HttpRequest) -> HttpResponse:
    return render(
        request, "datasets/summary.html", {"labels": label_list_with_counts()}
    )


def scrape_job_list(request: HttpRequest) -> HttpResponse:
    jobs = ScrapeJob.objects.select_related("label")[:100]
    return render(request, "datasets/scrape_jobs.html", {"jobs": jobs})
