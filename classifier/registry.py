"""The model registry: register a run's artifacts, promote, and the promotion gate.

Promotion flips one pointer (`is_current`) in one transaction; the predictor in
every web process notices within SNAPCLASS_PREDICTOR_CHECK_SECONDS.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
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
from training.ml import calibrate
from training.ml.artifact import ModelMeta
from training.ml.config import TrainResult

log = logging.getLogger(__name__)

_COMPARE_BATCH = 32
_ANY = object()


@dataclass(frozen=True)
class HeldOut:
    """The images two models are compared on: none of them trained on any.

    `items` are (file under MEDIA_ROOT, label, split) of the new run's validation
    and test images; `excluded` counts those left out because the current model
    trained on them; `current_training_known` is False when nothing says which
    images the current model trained on.
    """

    items: Sequence[tuple[str, str, str]] = ()
    excluded: int = 0
    current_training_known: bool = True


# Given the current model, the images to compare the new one with it on.
HeldOutFor = Callable[[ModelVersion], HeldOut]


def model_version_register(
    *,
    run: Any,
    artifacts_dir: Path,
    result: TrainResult,
    prefix: str | None = None,
) -> ModelVersion:
    """Record the artifacts a training run wrote as a new (not current) version.

    `artifacts_dir` is the local folder training wrote. In the local media folder
    the files are registered where they lie; otherwise (S3 storage) they are
    uploaded under `prefix` (default models/<folder name>). Names are stored
    with the sha256 of each file; local files are made read-only: a version's
    artifacts never change.
    """
    folder = Path(artifacts_dir)
    paths = {kind: folder / name for kind, name in artifacts.FILES.items()}
    contents = {}
    for kind, path in paths.items():
        try:
            contents[kind] = path.read_bytes()
        except OSError as exc:
            raise ArtifactMismatch(f"{path} cannot be read ({exc.strerror}).") from None
    hashes = {kind: artifacts.sha256_bytes(data) for kind, data in contents.items()}
    meta = ModelMeta.from_json(contents["meta"])
    if meta.weights_sha256 != hashes["weights"]:
        raise ArtifactMismatch(
            f"{paths['weights']} does not match the sha256 recorded in meta.json."
        )
    if list(result.label_names) != meta.label_names:
        raise ValueError("the run's label names differ from meta.json's")

    relative = media.store_files(paths, prefix=prefix or f"models/{folder.name}")
    version = ModelVersion.objects.create(
        run=run,
        label_names=meta.label_names,
        backbone=meta.architecture[:64],
        preprocessing=meta.preprocessing(),
        temperature=meta.temperature,
        uncertain_below=meta.uncertain_below,
        metrics={
            "error_rate": result.error_rate,
            "best_error_rate": result.best_error_rate,
            "valid_loss": result.valid_loss,
            "best_epoch": result.best_epoch,
            "per_class": list(result.per_class),
            "confusion_matrix": list(result.confusion_matrix),
            "test": result.test,
            "calibration": result.calibration,
            "onnx_max_abs_diff": meta.extra.get("onnx_max_abs_diff"),
        },
        error_rate=result.error_rate,
        valid_loss=result.valid_loss,
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


def model_version_after_training(
    version: ModelVersion, *, held_out_for: HeldOutFor
) -> ModelVersion:
    """The promotion gate, run when a training run has registered its version.

    The first model is promoted. Later ones, when SNAPCLASS_AUTO_PROMOTE is on, are
    compared with the current model on held-out images that neither trained on
    (ONNX Runtime for both, each with its own temperature) and promoted by
    `gate_decide`. The comparison and the decision, in words, are recorded either
    way.
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
        comparison = model_versions_compare(
            new=version, current=current, held_out=held_out_for(current)
        )
        promote, decision = gate_decide(version, current, comparison)
        if promote:
            artifacts.artifacts_verify(version)
            if _promote(version, expect=current.pk) is None:
                decision = (
                    "Not promoted: the current model changed meanwhile. "
                    + (decision.split(": ", 1)[-1])
                )
    ModelVersion.objects.filter(pk=version.pk).update(
        comparison=comparison, decision=decision
    )
    log.info("model v%s after training: %s", version.pk, decision)
    version.refresh_from_db()
    return version


@dataclass
class _Score:
    """One model's answers on the comparison images."""

    errors: int = 0
    loss: float = 0.0
    n: int = 0
    probs: list[np.ndarray] = field(default_factory=list)
    targets: list[int] = field(default_factory=list)

    def add(self, probs: np.ndarray, targets: list[int]) -> None:
        rows = np.arange(len(targets))
        self.errors += int((probs.argmax(axis=1) != np.array(targets)).sum())
        self.loss += float(-np.log(np.clip(probs[rows, targets], 1e-12, None)).sum())
        self.n += len(targets)
        self.probs.append(probs)
        self.targets.extend(targets)

    def summary(self, version: ModelVersion) -> dict[str, Any]:
        n = self.n
        ece = (
            calibrate.expected_calibration_error(
                np.concatenate(self.probs), np.array(self.targets)
            )
            if n
            else None
        )
        return {
            "version": version.pk,
            "error_rate": self.errors / n if n else None,
            "loss": self.loss / n if n else None,
            "ece": ece,
        }


def model_versions_compare(
    *, new: ModelVersion, current: ModelVersion, held_out: HeldOut
) -> dict[str, Any]:
    """Error rate, mean cross-entropy and calibration error of both versions on
    the held-out images whose label both know, and the new model's recall on the
    labels only it knows. Unreadable files are skipped."""
    threads = max(1, os.cpu_count() or 1)
    models = {"new": OnnxModel.from_version(new, threads=threads)}
    try:
        models["current"] = OnnxModel.from_version(current, threads=threads)
    except ArtifactMismatch as exc:
        # A broken current model is reported, not fixed behind anyone's back.
        return {"n_images": 0, "current_unreadable": exc.message}
    shared_labels = set(new.label_names) & set(current.label_names)
    new_labels = sorted(set(new.label_names) - set(current.label_names))
    scores = {"new": _Score(), "current": _Score()}
    only_new = _Score()
    by_split: dict[str, int] = {}
    skipped = 0
    items = list(held_out.items)
    for start in range(0, len(items), _COMPARE_BATCH):
        images, rows = [], []
        for file, label, split in items[start : start + _COMPARE_BATCH]:
            try:
                images.append(image_decode(media.media_read(file)))
            except (OSError, ImageRejected, ArtifactMismatch):
                skipped += 1
                continue
            rows.append((label, split))
        if not images:
            continue
        probs = {name: model.probabilities(images) for name, model in models.items()}
        shared = [i for i, (label, _) in enumerate(rows) if label in shared_labels]
        for i in shared:
            by_split[rows[i][1]] = by_split.get(rows[i][1], 0) + 1
        for name, model in models.items():
            if shared:
                targets = [model.label_names.index(rows[i][0]) for i in shared]
                scores[name].add(probs[name][shared], targets)
        extra = [i for i, (label, _) in enumerate(rows) if label not in shared_labels]
        if extra:
            targets = [models["new"].label_names.index(rows[i][0]) for i in extra]
            only_new.add(probs["new"][extra], targets)
    return {
        "n_images": scores["new"].n,
        "by_split": by_split,
        "skipped": skipped,
        "excluded_trained_by_current": held_out.excluded,
        "current_training_known": held_out.current_training_known,
        "shared_labels": sorted(shared_labels),
        "new_labels": new_labels,
        "new_label_images": only_new.n,
        "new_label_held_out_recall": (
            1 - only_new.errors / only_new.n if only_new.n else None
        ),
        "new": scores["new"].summary(new),
        "current": scores["current"].summary(current),
    }


def gate_decide(
    version: ModelVersion, current: ModelVersion, comparison: dict[str, Any]
) -> tuple[bool, str]:
    """Whether the new version replaces the current one, and why, in words.

    Same labels: its error is not higher, its loss is lower, and its calibration
    error is at most SNAPCLASS_PROMOTE_ECE_MARGIN worse. New labels: on the labels
    both know its error is at most SNAPCLASS_PROMOTE_NEW_LABEL_MARGIN higher, each
    new label reaches SNAPCLASS_PROMOTE_NEW_LABEL_MIN_RECALL on validation, and
    the calibration check holds.
    """
    cur_v = f"v{current.pk}"
    if "current_unreadable" in comparison:
        return False, (
            f"Not promoted: the current model {cur_v} cannot be loaded to compare "
            "with; promote by hand."
        )
    n = comparison["n_images"]
    if n == 0:
        return False, (
            f"Not promoted: no held-out images that neither model trained on; "
            f"{cur_v} stays current."
        )
    new, cur = comparison["new"], comparison["current"]
    splits = ", ".join(
        f"{count} {'validation' if split == 'valid' else split}"
        for split, count in sorted(comparison["by_split"].items())
    )
    where = f"on {n} held-out images ({splits}) that neither model trained on"
    if not comparison["current_training_known"]:
        where = (
            f"on {n} held-out images ({splits}); which images {cur_v} trained on is "
            "not recorded"
        )
    figures = (
        f"error {new['error_rate']:.3f} vs {cur['error_rate']:.3f}, "
        f"loss {new['loss']:.3f} vs {cur['loss']:.3f}, "
        f"calibration error {_fmt(new['ece'])} vs {_fmt(cur['ece'])}, {where}"
    )
    ece_margin = settings.SNAPCLASS_PROMOTE_ECE_MARGIN
    ece_ok = (
        new["ece"] is None
        or cur["ece"] is None
        or (new["ece"] <= cur["ece"] + ece_margin)
    )
    ece_why = (
        f"its calibration error is more than {ece_margin:g} worse" if not ece_ok else ""
    )
    new_labels = comparison["new_labels"]
    if not new_labels:
        better = new["error_rate"] <= cur["error_rate"] and new["loss"] < cur["loss"]
        if better and ece_ok:
            return True, f"Promoted over {cur_v}: {figures}."
        why = ece_why if better else "it is not better"
        return False, f"Kept {cur_v} ({why}): {figures}."

    margin = settings.SNAPCLASS_PROMOTE_NEW_LABEL_MARGIN
    min_recall = settings.SNAPCLASS_PROMOTE_NEW_LABEL_MIN_RECALL
    recall = {
        row["label"]: row["recall"]
        for row in version.metrics.get("per_class", [])
        if row.get("support")
    }
    weak = [label for label in new_labels if recall.get(label, 0.0) < min_recall]
    adds = ", ".join(
        f"'{label}' (validation recall {_fmt(recall.get(label))})"
        for label in new_labels
    )
    not_worse = new["error_rate"] <= cur["error_rate"] + margin
    shared = f"on the {len(comparison['shared_labels'])} labels both know: {figures}"
    if not weak and not_worse and ece_ok:
        return True, (
            f"Promoted over {cur_v}: it adds {adds}, and is not worse {shared} "
            f"(margin {margin:g})."
        )
    reasons = []
    if weak:
        reasons.append(
            f"{', '.join(repr(w) for w in weak)} below the minimum recall "
            f"{min_recall:g} on validation"
        )
    if not not_worse:
        reasons.append(f"more than {margin:g} worse on the labels both know")
    if not ece_ok:
        reasons.append(ece_why)
    return False, (
        f"Kept {cur_v}: the new model adds {adds} but is "
        f"{'; '.join(reasons)} ({shared})."
    )


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"
