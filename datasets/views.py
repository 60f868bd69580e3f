from __future__ import annotations

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from config.permissions import can_view_jobs
from datasets.models import ScrapeJob
from datasets.selectors import label_list_with_counts


def dataset_summary(request: HttpRequest) -> HttpResponse:
    return render(
        request, "datasets/summary.html", {"labels": label_list_with_counts()}
    )


def scrape_job_list(request: HttpRequest) -> HttpResponse:
    """Jobs with their queries: viewers and curators (or everyone, by a setting)."""
    if not can_view_jobs(request):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        raise PermissionDenied("Scrape jobs need the viewers or curators group.")
    jobs = ScrapeJob.objects.select_related("label")[:100]
    return render(request, "datasets/scrape_jobs.html", {"jobs": jobs})
