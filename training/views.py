from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from config.errors import DomainError
from config.permissions import can_view_run_images, page_perm_required
from training import runner, selectors
from training.forms import TrainingRunForm
from training.models import TrainingRun, Trigger


def run_list(request: HttpRequest) -> HttpResponse:
    runs = TrainingRun.objects.select_related("model_version")[:100]
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
        "epochs": run.epochs.all(),
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
