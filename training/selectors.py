"""Reads for the run pages: the chart, the heat map and the top losses."""

from __future__ import annotations

from typing import Any

from django.db.models import Count

from training.models import RunImage, TrainingRun


def loss_chart(run: TrainingRun, width: int = 560, height: int = 220) -> dict[str, Any]:
    """Polylines (SVG coordinates) for train loss, valid loss and error rate."""
    epochs = list(run.epochs.all())
    pad = 30
    series = {"train_loss": [], "valid_loss": [], "error_rate": []}
    values = [
        getattr(e, key) for e in epochs for key in series if getattr(e, key) is not None
    ]
    top = max(values, default=1.0) or 1.0
    n = max(1, len(epochs) - 1)
    for i, e in enumerate(epochs):
        x = pad + (width - 2 * pad) * (i / n if len(epochs) > 1 else 0.5)
        for key in series:
            value = getattr(e, key)
            if value is not None:
                y = height - pad - (height - 2 * pad) * (value / top)
                series[key].append(f"{x:.1f},{y:.1f}")
    return {
        "width": width,
        "height": height,
        "top": top,
        "lines": {key: " ".join(points) for key, points in series.items()},
        "epochs": len(epochs),
    }


def confusion_cells(
    run: TrainingRun, matrix: list[list[int]] | None = None
) -> list[dict[str, Any]]:
    """Rows of a confusion matrix (the run's validation one unless given) with a
    shade per cell (its share of the row)."""
    rows = []
    matrix = run.confusion_matrix if matrix is None else matrix
    for i, (name, row) in enumerate(zip(run.label_names, matrix, strict=False)):
        total = sum(row)
        cells = [
            {"count": n, "shade": round(n / total, 3) if total else 0, "diag": i == j}
            for j, n in enumerate(row)
        ]
        rows.append({"label": name, "cells": cells, "total": total})
    return rows


def top_losses(run: TrainingRun, limit: int = 24):
    return (
        RunImage.objects.filter(run=run, loss__isnull=False)
        .select_related("image")
        .order_by("-loss", "pk")[:limit]
    )


def last_run(statuses=("succeeded",)) -> TrainingRun | None:
    return (
        TrainingRun.objects.filter(status__in=statuses).order_by("-created_at").first()
    )


def dataset_changes_since(when) -> dict[str, Any]:
    """Images added, relabelled and deleted per label since `when` (None: ever)."""
    from datasets.models import Image, ImageChange

    images = Image.objects.exclude(label__isnull=True)
    changes = ImageChange.objects.all()
    if when is not None:
        images = images.filter(created_at__gt=when)
        changes = changes.filter(created_at__gt=when)
    per_label: dict[str, dict[str, int]] = {}

    def bump(label: str | None, key: str, n: int) -> None:
        row = per_label.setdefault(
            label or "(none)", {"added": 0, "relabelled": 0, "deleted": 0}
        )
        row[key] += n

    for name, n in images.values_list("label__name").annotate(n=Count("pk")):
        bump(name, "added", n)
    relabels = changes.filter(action="relabel").values_list("new_label__name")
    for name, n in relabels.annotate(n=Count("pk")):
        bump(name, "relabelled", n)
    deletes = changes.filter(action="delete").values_list("old_label__name")
    for name, n in deletes.annotate(n=Count("pk")):
        bump(name, "deleted", n)
    total = sum(sum(row.values()) for row in per_label.values())
    return {"since": when, "total": total, "per_label": dict(sorted(per_label.items()))}
