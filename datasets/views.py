from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from config.errors import DomainError
from config.permissions import can_view_jobs, page_perm_required
from datasets import labels as label_services
from datasets import scraping
from datasets.forms import LabelCreateForm, LabelEditForm, LabelScrapeForm
from datasets.models import Label, ScrapeJob
from datasets.selectors import label_list_with_counts, scrape_job_reasons


def dataset_summary(request: HttpRequest) -> HttpResponse:
    can_edit = request.user.has_perm("datasets.change_label")
    can_scrape = request.user.has_perm("datasets.add_scrapejob")
    rows = [
        (
            label,
            LabelEditForm(label=label) if can_edit else None,
            LabelScrapeForm(prefix=f"scrape-{label.pk}") if can_scrape else None,
        )
        for label in label_list_with_counts()
    ]
    context = {
        "rows": rows,
        "can_edit": can_edit,
        "can_scrape": can_scrape,
        "create_form": LabelCreateForm()
        if request.user.has_perm("datasets.add_label")
        else None,
    }
    return render(request, "datasets/summary.html", context)


@page_perm_required("datasets.add_label")
@require_POST
def label_create(request: HttpRequest) -> HttpResponse:
    form = LabelCreateForm(request.POST)
    if form.is_valid():
        try:
            label = label_services.label_create(
                name=form.cleaned_data["name"], queries=form.cleaned_data["queries"]
            )
        except DomainError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, f"Label “{label.name}” ({label.slug}) added.")
    else:
        messages.error(request, form.errors.as_text())
    return redirect("datasets:summary")


@page_perm_required("datasets.change_label")
@require_POST
def label_edit(request: HttpRequest, pk: int) -> HttpResponse:
    label = get_object_or_404(Label, pk=pk)
    form = LabelEditForm(request.POST, label=label)
    if form.is_valid():
        try:
            label = label_services.label_update(
                label=label,
                name=form.cleaned_data["name"],
                queries=form.cleaned_data["queries"],
                is_active=form.cleaned_data["is_active"],
            )
        except DomainError as exc:
            messages.error(request, exc.message)
        else:
            state = "active" if label.is_active else "inactive (left out of training)"
            messages.success(request, f"Label “{label.name}” saved; it is {state}.")
    else:
        messages.error(request, form.errors.as_text())
    return redirect("datasets:summary")


@page_perm_required("datasets.add_scrapejob")
@require_POST
def label_scrape(request: HttpRequest, pk: int) -> HttpResponse:
    label = get_object_or_404(Label, pk=pk)
    form = LabelScrapeForm(request.POST, prefix=f"scrape-{pk}")
    if not form.is_valid():
        messages.error(request, form.errors.as_text())
        return redirect("datasets:summary")
    v = form.cleaned_data
    try:
        jobs = scraping.scrape_jobs_create_for_label(
            label=label,
            requested=v["count"],
            provider=v["provider"],
            urls=v["urls"],
            user=request.user,
        )
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect("datasets:summary")
    messages.success(
        request,
        f"{len(jobs)} scrape job{'s' if len(jobs) != 1 else ''} queued for "
        f"“{label.name}” with {scraping.provider_title(v['provider'])}.",
    )
    return redirect("datasets:scrape-jobs")


def scrape_job_list(request: HttpRequest) -> HttpResponse:
    """Jobs with their queries: viewers and curators (or everyone, by a setting)."""
    if (refused := _jobs_refused(request)) is not None:
        return refused
    jobs = list(ScrapeJob.objects.select_related("label")[:100])
    # ?rows=1: only the table's rows, for the page's script to swap in.
    template = (
        "datasets/_scrape_job_rows.html"
        if request.GET.get("rows")
        else "datasets/scrape_jobs.html"
    )
    active = any(not job.is_finished for job in jobs)
    return render(request, template, {"jobs": jobs, "active": active})


def scrape_job_detail(request: HttpRequest, pk: int) -> HttpResponse:
    if (refused := _jobs_refused(request)) is not None:
        return refused
    job = get_object_or_404(ScrapeJob.objects.select_related("label"), pk=pk)
    context = {
        "job": job,
        "provider_title": scraping.provider_title(job.provider),
        "reasons": scrape_job_reasons(job),
    }
    return render(request, "datasets/scrape_job.html", context)


def _jobs_refused(request: HttpRequest) -> HttpResponse | None:
    if can_view_jobs(request):
        return None
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    raise PermissionDenied("Scrape jobs need the viewers or curators group.")
