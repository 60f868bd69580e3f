"""The cleaner: a finished run's images by loss, with keep / relabel / delete.

Changes go to the dataset through `datasets.services` (recorded as ImageChange
rows); the run's RunImage snapshot is never touched. The page works as plain
form posts; static/training/cleaner.js posts the same forms with fetch.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import F, OuterRef, QuerySet, Subquery
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from datasets.duplicates import image_keep
from datasets.duplicates_views import (
    ImageIdsField,
    curator_required,
    form_error_text,
    input_error,
    safe_next,
    wants_json,
)
from datasets.models import Image, ImageChange, Label
from datasets.services import image_delete, image_relabel, image_restore
from training.models import RunImage, TrainingRun

PAGE_SIZE = 48
ACTIONS = {
    "keep": "kept",
    "relabel": "relabelled",
    "delete": "deleted",
    "restore": "restored",
}
HANDLED = {**ACTIONS, "review": "reviewed"}


class CleanerFilterForm(forms.Form):
    actual = forms.ChoiceField(required=False)
    predicted = forms.ChoiceField(required=False)
    split = forms.ChoiceField(
        required=False, choices=[("", "train and valid"), *RunImage.Split.choices]
    )
    pending = forms.BooleanField(
        required=False, label="Hide images changed since the run"
    )

    def __init__(self, *args: Any, run: TrainingRun, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        rows = RunImage.objects.filter(run=run).order_by()
        actual = sorted(rows.values_list("label_name", flat=True).distinct())
        predicted = sorted(
            rows.exclude(predicted="").values_list("predicted", flat=True).distinct()
        )
        self.fields["actual"].choices = [("", "any")] + [(n, n) for n in actual]
        self.fields["predicted"].choices = [("", "any")] + [(n, n) for n in predicted]

    def filter(self, queryset: QuerySet[RunImage]) -> QuerySet[RunImage]:
        data = self.cleaned_data
        if data.get("actual"):
            queryset = queryset.filter(label_name=data["actual"])
        if data.get("predicted"):
            queryset = queryset.filter(predicted=data["predicted"])
        if data.get("split"):
            queryset = queryset.filter(split=data["split"])
        if data.get("pending"):
            queryset = queryset.filter(last_action__isnull=True)
        return queryset


class CleanerActionForm(forms.Form):
    action = forms.ChoiceField(choices=[(a, a) for a in ACTIONS])
    image = ImageIdsField(error_messages={"required": "Select at least one image."})
    label = forms.ModelChoiceField(
        queryset=Label.objects.all(),
        required=False,
        error_messages={"invalid_choice": "That label does not exist."},
    )

    def __init__(self, *args: Any, run: TrainingRun, **kwargs: Any) -> None:
        self.run = run
        super().__init__(*args, **kwargs)

    def clean_image(self) -> list[int]:
        ids = self.cleaned_data["image"]
        in_run = set(
            RunImage.objects.filter(run=self.run, image_id__in=ids).values_list(
                "image_id", flat=True
            )
        )
        outside = [pk for pk in ids if pk not in in_run]
        if outside:
            raise forms.ValidationError(
                f"Not images of run {self.run.pk}: {', '.join(map(str, outside[:20]))}."
            )
        return ids

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("action") == "relabel" and not data.get("label"):
            if "label" not in self.errors:
                raise forms.ValidationError("Choose the label to relabel to.")
        return data


def _changes_since(run: TrainingRun) -> QuerySet[ImageChange]:
    since = run.started_at or run.created_at
    return ImageChange.objects.filter(
        image_id=OuterRef("image_id"), created_at__gte=since
    ).order_by("-created_at", "-id")


def cleaner_rows(run: TrainingRun) -> QuerySet[RunImage]:
    """The run's images, highest loss first, with each image's latest curation."""
    return (
        RunImage.objects.filter(run=run)
        .select_related("image__label")
        .annotate(last_action=Subquery(_changes_since(run).values("action")[:1]))
        .order_by(F("loss").desc(nulls_last=True), "pk")
    )


def _apply(action: str, images: list[Image], label: Label | None, user: Any) -> int:
    if action == "keep":
        return image_keep(images=images, user=user)
    if action == "relabel":
        assert label is not None
        return image_relabel(images=images, label=label, user=user)
    if action == "delete":
        return image_delete(images=images, user=user)
    return image_restore(images=images, user=user)


def _image_state(image: Image, action: str) -> dict[str, Any]:
    return {
        "id": image.pk,
        "label": image.label.name if image.label else None,
        "label_id": image.label_id,
        "status": image.status,
        "status_display": image.get_status_display(),
        "handled": ACTIONS[action],
    }


@curator_required
@require_http_methods(["GET", "POST"])
def cleaner(request: HttpRequest, pk: int) -> HttpResponse:
    """The grid (GET) and the keep / relabel / delete / restore actions (POST)."""
    run = get_object_or_404(TrainingRun, pk=pk)
    if request.method == "POST":
        return _cleaner_post(request, run)

    filters = CleanerFilterForm(request.GET, run=run)
    if not filters.is_valid():
        return input_error(
            request,
            form_error_text(filters),
            back=reverse("training:cleaner", args=[run.pk]),
        )
    rows = (
        filters.filter(cleaner_rows(run))
        if run.is_finished
        else RunImage.objects.none()
    )
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    page.object_list = list(page.object_list)
    for row in page.object_list:
        row.handled = HANDLED.get(row.last_action, row.last_action or "")
    query = request.GET.copy()
    query.pop("page", None)
    labels = list(Label.objects.order_by("name").values("pk", "name"))
    context = {
        "run": run,
        "filters": filters,
        "page": page,
        "query": query.urlencode(),
        "labels": labels,
        "shortcut_labels": labels[:9],
        "next": request.get_full_path(),
    }
    return render(request, "training/cleaner.html", context)


def _cleaner_post(request: HttpRequest, run: TrainingRun) -> HttpResponse:
    back = safe_next(request, reverse("training:cleaner", args=[run.pk]))
    if not run.is_finished:
        return input_error(
            request,
            f"Run {run.pk} is {run.status}; clean its images once it has finished.",
            code="run_not_finished",
            status=409,
            back=back,
        )
    form = CleanerActionForm(request.POST, run=run)
    if not form.is_valid():
        return input_error(request, form_error_text(form), back=back)
    action = form.cleaned_data["action"]
    label = form.cleaned_data.get("label")
    images = list(Image.objects.filter(pk__in=form.cleaned_data["image"]))
    changed = _apply(action, images, label, request.user)

    where = f" to {label.name}" if action == "relabel" else ""
    text = f"{changed} of {len(images)} image(s) {ACTIONS[action]}{where}."
    if wants_json(request):
        fresh = Image.objects.select_related("label").filter(
            pk__in=[i.pk for i in images]
        )
        return JsonResponse(
            {
                "detail": text,
                "action": action,
                "changed": changed,
                "images": [_image_state(i, action) for i in fresh.order_by("pk")],
            }
        )
    messages.success(request, text)
    return redirect(back)
