"""Reads for the run pages: the chart, the heat map and the top losses."""

from __future__ import annotations

import math
from typing import Any

from django.db.models import Count

from training.epochs import epoch_name
from training.models import RunImage, TrainingRun


def _nice_top(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 x 10^k at or above `value`: round axis ends."""
    if value <= 0:
        return 1.0
    exponent = math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        top = step * 10**exponent
        if top >= value - 1e-12:
            return float(top)
    return float(10 ** (exponent + 1))  # pragma: no cover


def loss_chart(run: TrainingRun, width: int = 640, height: int = 260) -> dict[str, Any]:
    """Polylines (SVG coordinates) for train loss, valid loss and error rate, with
    the axes' ticks: epochs named as everywhere else, values from 0 to a round top.
    """
    epochs = list(run.epochs.all())
    left, right, top_pad, bottom = 52, 16, 28, 42
    plot_w, plot_h = width - left - right, height - top_pad - bottom
    series: dict[str, list[str]] = {
        "train_loss": [],
        "valid_loss": [],
        "error_rate": [],
    }
    values = [
        getattr(e, key) for e in epochs for key in series if getattr(e, key) is not None
    ]
    top = _nice_top(max(values, default=1.0))
    n = len(epochs)
    freeze = run_freeze_epochs(run)

    def x_of(i: int) -> float:
        return left + (plot_w * (i / (n - 1)) if n > 1 else plot_w / 2)

    def y_of(value: float) -> float:
        return top_pad + plot_h - plot_h * (value / top)

    for i, e in enumerate(epochs):
        for key in series:
            value = getattr(e, key)
            if value is not None:
                series[key].append(f"{x_of(i):.1f},{y_of(value):.1f}")
    # Five steps of 0.2, 1 or 0.5 (for tops 1, 5, 2.5) or four of 0.5 (for 2).
    steps = 4 if f"{top:e}".startswith("2.0") else 5
    y_ticks = [
        {"y": round(y_of(top * k / steps), 1), "label": f"{top * k / steps:g}"}
        for k in range(steps + 1)
    ]
    x_ticks = [
        {"x": round(x_of(i), 1), "label": epoch_name(e.epoch, freeze)}
        for i, e in enumerate(epochs)
    ]
    return {
        "width": width,
        "height": height,
        "top": top,
        "left": left,
        "right": width - right,
        "plot_top": top_pad,
        "bottom": top_pad + plot_h,
        "x_ticks": x_ticks,
        "y_ticks": y_ticks,
        "lines": {key: " ".join(points) for key, points in series.items()},
        "epochs": n,
    }


def epoch_rows(run: TrainingRun) -> list[dict[str, Any]]:
    """The run's epochs as the page shows them: named, with the best one marked."""
    freeze = run_freeze_epochs(run)
    return [
        {
            "name": epoch_name(e.epoch, freeze),
            "metric": e,
            "best": e.epoch == run.best_epoch,
        }
        for e in run.epochs.all()
    ]


def best_epoch_name(run: TrainingRun) -> str | None:
    if run.best_epoch is None:
        return None
    return epoch_name(run.best_epoch, run_freeze_epochs(run))


def run_freeze_epochs(run: TrainingRun) -> int:
    """The run's warm-up epochs (TrainConfig's default when its config lacks it)."""
    value = (run.config or {}).get("freeze_epochs", 1)
    return value if isinstance(value, int) and value >= 0 else 1


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


def run_notes(run: TrainingRun, decision: str = "") -> str:
    """The run's message without the promotion decision, which the page shows
    once, beside the model version."""
    message = (run.message or "").strip()
    if decision and message.endswith(decision):
        message = message[: -len(decision)].strip()
    return message
