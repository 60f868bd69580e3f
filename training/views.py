from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from config.errors import DomainError
from config.permissions import can_view_jobs, can_view_run_images, page_perm_required
from datasets.labels import labels_active_elsewhere
from training import projects, runner, selectors
from training.forms import ProjectForm, TrainingRunForm
from training.models import Project, TrainingRun, Trigger


def run_list(request: HttpRequest) -> HttpResponse:
    runs = TrainingRun.objects.select_related("model_version")[:100]
    if request.GET.get("rows"):  # the table's rows, for the page's script
        return render(request, "training/_run_rows.html", {"runs": runs})
    allowed = request.user.has_perm("training.add_trainingrun")
    form = TrainingRunForm() if allowed else None
    previous = selectors.last_run()
    changes = selectors.dataset_changes_since(previous.created_at if previous else None)
    return render(
        request,
        "training/run_list.html",
        {"runs": runs, "form": form, "previous": previous, "changes": changes},
    )


@page_perm_required("training.add_trainingrun")
@require_POST
def run_start(request: HttpRequest) -> HttpResponse:
    form = TrainingRunForm(request.POST)
    if not form.is_valid():
        messages.error(request, f"Check the settings: {form.errors.as_text()}")
        return redirect("training:runs")
    try:
        run = runner.training_run_start(
            config=form.overrides(), user=request.user, trigger=Trigger.MANUAL
        )
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect("training:runs")
    messages.success(request, f"Run {run.pk} queued.")
    return redirect("training:run", pk=run.pk)


def run_detail(request: HttpRequest, pk: int) -> HttpResponse:
    run = get_object_or_404(TrainingRun.objects.select_related("model_version"), pk=pk)
    context = {
        "run": run,
        "version": getattr(run, "model_version", None),
        "notes": selectors.run_notes(
            run, getattr(getattr(run, "model_version", None), "decision", "")
        ),
        "epochs": selectors.epoch_rows(run),
        "best_epoch": selectors.best_epoch_name(run),
        "chart": selectors.loss_chart(run),
        "confusion": selectors.confusion_cells(run),
        "test_confusion": selectors.confusion_cells(
            run, run.test_metrics.get("confusion_matrix", [])
        ),
        # Per-image results name every image, deleted ones too.
        "top_losses": selectors.top_losses(run) if can_view_run_images(request) else [],
    }
    return render(request, "training/run_detail.html", context)


@page_perm_required("training.change_trainingrun")
@require_POST
def run_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    run = get_object_or_404(TrainingRun, pk=pk)
    if runner.training_run_cancel(run=run):
        messages.success(request, f"Run {run.pk} cancelled (or asked to stop).")
    else:
        messages.error(request, f"Run {run.pk} is not running.")
    return redirect("training:run", pk=run.pk)


@page_perm_required("datasets.add_scrapejob")
@page_perm_required("training.add_trainingrun")
@require_http_methods(["GET", "HEAD", "POST"])
def project_new(request: HttpRequest) -> HttpResponse:
    """Type class names; images are searched, then a model trains by itself."""
    form = ProjectForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            v = form.cleaned_data
            try:
                project = projects.project_create(
                    classes=v["specs"],
                    provider=v["provider"],
                    per_label=v["per_label"],
                    train=v["train"],
                    train_config=v["train_config"],
                    user=request.user,
                )
            except DomainError as exc:
                form.add_error(None, exc.message)
            else:
                return redirect("training:project", pk=project.pk)
        status = 400
    context = {
        "form": form,
        "recent": projects.projects_recent(),
        "elsewhere": labels_active_elsewhere([]),
    }
    return render(request, "training/project_new.html", context, status=status)


def project_detail(request: HttpRequest, pk: int) -> HttpResponse:
    # It shows the scrape jobs' queries: visible like the jobs page.
    if not can_view_jobs(request):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        raise PermissionDenied("Classifiers need the viewers or curators group.")
    project = get_object_or_404(Project.objects.select_related("run"), pk=pk)
    state = projects.project_state(project)
    slugs = [row.slug for row in state.classes]
    context = {
        "state": state,
        "project": project,
        "totals": projects.project_totals(state),
        "elsewhere": labels_active_elsewhere(slugs),
    }
    if request.GET.get("part"):  # the live part, for the page's script
        return render(request, "training/_project_state.html", context)
    return render(request, "training/project.html", context)
