"""The model registry: register a run's artifacts, promote, and the promotion gate.

Promotion flips one pointer (`is_current`) in one transaction; the predictor in
every web process notices within SNAPCLASS_PREDICTOR_CHECK_SECONDS.
"""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from classifier import artifacts
from classifier.errors import ArtifactMismatch
from classifier.models import ModelVersion
from classifier.predictor import OnnxModel
from classifier.selectors import model_version_current
from datasets import media
from datasets.imaging import ImageRejected
from datasets.services import image_decode
from training.models import RunImage

log = logging.getLogger(__name__)

META_FORMAT = "snapclass-model/1"
PREPROCESSING_FIELDS = (
    "image_size",
    "resize_method",
    "mean",
    "std",
    "input_name",
    "output_name",
)
# The loss charged for an image whose label the current model does not know:
# cross-entropy at probability 1e-7 (a true log(0) would be infinite).
MISSING_LABEL_LOSS = -math.log(1e-7)
_COMPARE_BATCH = 32
_ANY = object()


def model_version_register(
    *, run: Any, artifacts_dir: Path, result: Any, prefix: str | None = None
) -> ModelVersion:
    """Record the artifacts a training run wrote as a new (not current) version.

    `artifacts_dir` is the local folder training wrote. In the local media folder
    the files are registered where they lie; otherwise (S3 storage) they are
    uploaded under `prefix` (default models/<folder name>). Names are stored
    with the sha256 of each file; local files are made read-only: a version's
    artifacts never change.
    """
    folder = Path(artifacts_dir)
    paths = {
        "weights": folder / artifacts.WEIGHTS_FILE,
        "meta": folder / artifacts.META_FILE,
        "onnx": folder / artifacts.ONNX_FILE,
    }
    contents = {}
    for kind, path in paths.items():
        try:
            contents[kind] = path.read_bytes()
        except OSError as exc:
            raise ArtifactMismatch(f"{path} cannot be read ({exc.strerror}).") from None
    hashes = {kind: artifacts.sha256_bytes(data) for kind, data in contents.items()}
    meta = json.loads(contents["meta"])
    if meta.get("format") != META_FORMAT:
        raise ValueError(f"{paths['meta']} is not a {META_FORMAT} file")
    if meta.get("weights_sha256") != hashes["weights"]:
        raise ArtifactMismatch(
            f"{paths['weights']} does not match the sha256 recorded in meta.json."
        )
    label_names = list(getattr(result, "label_names", None) or meta["label_names"])
    if label_names != list(meta["label_names"]):
        raise ValueError("the run's label names differ from meta.json's")
    missing = [k for k in PREPROCESSING_FIELDS[:4] if k not in meta]
    if missing:
        raise ValueError(f"meta.json lacks {', '.join(missing)}")

    relative = media.store_files(paths, prefix=prefix or f"models/{folder.name}")
    error_rate = getattr(result, "error_rate", None)
    valid_loss = getattr(result, "valid_loss", None)
    version = ModelVersion.objects.create(
        run=run,
        label_names=label_names,
        backbone=str(meta.get("architecture", ""))[:64],
        preprocessing={k: meta[k] for k in PREPROCESSING_FIELDS if k in meta},
        metrics={
            "error_rate": error_rate,
            "best_error_rate": getattr(result, "best_error_rate", None),
            "valid_loss": valid_loss,
            "best_epoch": getattr(result, "best_epoch", None),
            "per_class": list(getattr(result, "per_class", None) or []),
            "confusion_matrix": list(getattr(result, "confusion_matrix", None) or []),
            "onnx_max_abs_diff": meta.get("onnx_max_abs_diff"),
        },
        error_rate=error_rate,
        valid_loss=valid_loss,
        weights_path=relative["weights"],
        weights_sha256=hashes["weights"],
        meta_path=relative["meta"],
        meta_sha256=hashes["meta"],
        onnx_path=relative["onnx"],
        onnx_sha256=hashes["onnx"],
    )
    for path in paths.values() if media.is_local() else ():
        try:
            path.chmod(0o444)
        except OSError:  # pragma: no cover - some storages ignore modes
            log.warning("could not make %s read-only", path)
    log.info("registered model v%s from run %s", version.pk, getattr(run, "pk", None))
    return version


def model_version_promote(*, version: ModelVersion, user: Any = None) -> ModelVersion:
    """Make `version` the current model; promoting an older version is a rollback.

    Refuses (ArtifactMismatch) when a file is missing or altered.
    """
    artifacts.artifacts_verify(version)
    promoted = _promote(version, user=user)
    assert promoted is not None
    return promoted


def _promote(
    version: ModelVersion, *, user: Any = None, expect: Any = _ANY
) -> ModelVersion | None:
    """Flip the pointer; with `expect` (a version id or None), only if it is current."""
    with transaction.atomic():
        target = ModelVersion.objects.select_for_update().get(pk=version.pk)
        current = list(
            ModelVersion.objects.select_for_update()
            .filter(is_current=True)
            .values_list("pk", flat=True)
        )
        if expect is not _ANY and current != ([] if expect is None else [expect]):
            return None
        if target.is_current:
            return target
        ModelVersion.objects.filter(pk__in=current).update(is_current=False)
        _mark_current(target, user=user)
    target.refresh_from_db()
    log.info(
        "model v%s is now current (was %s), by %s",
        target.pk,
        ", ".join(f"v{pk}" for pk in current) or "none",
        getattr(user, "username", None) or "the system",
    )
    return target


def _mark_current(version: ModelVersion, *, user: Any) -> None:
    ModelVersion.objects.filter(pk=version.pk).update(
        is_current=True,
        promoted_at=timezone.now(),
        promoted_by=user if getattr(user, "pk", None) else None,
    )


def model_version_after_training(version: ModelVersion) -> ModelVersion:
    """The promotion gate, run when a training run has registered its version.

    The first model is promoted. Later ones, when SNAPCLASS_AUTO_PROMOTE is on, are
    compared with the current model on the new run's validation images (ONNX
    Runtime for both) and promoted only if their error rate is not higher and
    their loss is lower. The comparison and the decision are recorded either way.
    """
    version.refresh_from_db()
    current = model_version_current()
    comparison: dict[str, Any] = {}
    if version.is_current:
        decision = "Already the current model."
    elif current is None:
        artifacts.artifacts_verify(version)
        promoted = _promote(version, expect=None)
        decision = (
            "Promoted: the first model."
            if promoted
            else "Not promoted: another model became current meanwhile."
        )
    elif not settings.SNAPCLASS_AUTO_PROMOTE:
        decision = (
            f"Not promoted: automatic promotion is off; v{current.pk} stays current."
        )
    else:
        comparison = model_versions_compare(new=version, current=current)
        decision = _decide(version, current, comparison)
    ModelVersion.objects.filter(pk=version.pk).update(
        comparison=comparison, decision=decision[:255]
    )
    log.info("model v%s after training: %s %s", version.pk, decision, comparison)
    version.refresh_from_db()
    return version


def _decide(
    version: ModelVersion, current: ModelVersion, comparison: dict[str, Any]
) -> str:
    n = comparison["n_images"]
    if "current_unreadable" in comparison:
        return (
            f"Not promoted: the current model v{current.pk} cannot be loaded "
            "to compare with; promote by hand."
        )
    if n == 0:
        return f"Not promoted: no validation images to compare on; v{current.pk} stays."
    new, cur = comparison["new"], comparison["current"]
    summary = (
        f"error {new['error_rate']:.4f} vs {cur['error_rate']:.4f}, "
        f"loss {new['valid_loss']:.4f} vs {cur['valid_loss']:.4f} on {n} images"
    )
    if new["error_rate"] <= cur["error_rate"] and new["valid_loss"] < cur["valid_loss"]:
        artifacts.artifacts_verify(version)
        if _promote(version, expect=current.pk) is None:
            return f"Not promoted: the current model changed meanwhile ({summary})."
        return f"Promoted over v{current.pk}: {summary}."
    return f"Kept v{current.pk}: {summary}."


def model_versions_compare(
    *, new: ModelVersion, current: ModelVersion
) -> dict[str, Any]:
    """Error rate and mean cross-entropy of both versions on `new`'s validation set.

    Labels are matched by name; on an image whose label the current model lacks,
    it counts as wrong with loss MISSING_LABEL_LOSS. Unreadable files are skipped.
    """
    rows = list(
        RunImage.objects.filter(run_id=new.run_id, split=RunImage.Split.VALID)
        .order_by("pk")
        .values_list("file", "label_name")
    )
    threads = max(1, os.cpu_count() or 1)
    models = {"new": OnnxModel.from_version(new, threads=threads)}
    try:
        models["current"] = OnnxModel.from_version(current, threads=threads)
    except ArtifactMismatch as exc:
        # A broken current model is reported, not fixed behind anyone's back.
        return {"n_images": 0, "current_unreadable": exc.message}
    totals = {name: {"errors": 0, "loss": 0.0} for name in models}
    n = skipped = 0
    for start in range(0, len(rows), _COMPARE_BATCH):
        images, labels = [], []
        for file, label in rows[start : start + _COMPARE_BATCH]:
            try:
                images.append(image_decode(media.media_read(file)))
            except (OSError, ImageRejected, ArtifactMismatch):
                skipped += 1
                continue
            labels.append(label)
        if not images:
            continue
        n += len(images)
        for name, model in models.items():
            errors, loss = _score(model, images, labels)
            totals[name]["errors"] += errors
            totals[name]["loss"] += loss

    def summary(name: str, version: ModelVersion) -> dict[str, Any]:
        return {
            "version": version.pk,
            "error_rate": totals[name]["errors"] / n if n else None,
            "valid_loss": totals[name]["loss"] / n if n else None,
        }

    labels_seen = {label for _, label in rows}
    return {
        "n_images": n,
        "skipped": skipped,
        "new": summary("new", new),
        "current": {
            **summary("current", current),
            "missing_labels": sorted(labels_seen - set(current.label_names)),
        },
    }


def _score(model: OnnxModel, images: list, labels: list[str]) -> tuple[int, float]:
    """(wrong answers, summed cross-entropy) of one model on one batch."""
    logits = model.logits(images).astype(np.float64)
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    predicted = logits.argmax(axis=1)
    index = {name: i for i, name in enumerate(model.label_names)}
    errors, loss = 0, 0.0
    for row, label in enumerate(labels):
        target = index.get(label)
        if target is None:
            errors += 1
            loss += MISSING_LABEL_LOSS
            continue
        errors += int(predicted[row] != target)
        loss += float(-log_probs[row, target])
    return errors, loss
