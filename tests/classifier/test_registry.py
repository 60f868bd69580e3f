from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, transaction

from classifier import registry
from classifier.errors import ArtifactMismatch
from classifier.models import ModelVersion
from classifier.registry import (
    gate_decide,
    model_version_promote,
    model_version_register,
)
from classifier.selectors import model_version_current
from tests.classifier.trained import after_training

pytestmark = pytest.mark.django_db


def _tamper(version: ModelVersion, kind: str = "onnx") -> Path:
    path = Path(settings.MEDIA_ROOT) / getattr(version, f"{kind}_path")
    os.chmod(path, 0o644)
    with open(path, "ab") as f:
        f.write(b"\x00")
    return path


def test_register_stores_relative_paths_hashes_preprocessing_and_metrics(
    install_model, trained
):
    version = install_model("three")

    model = trained("three")
    assert version.onnx_path.startswith("models/three-")
    assert version.onnx_path.endswith("/model.onnx")
    for kind in ("weights", "meta", "onnx"):
        path = Path(settings.MEDIA_ROOT) / getattr(version, f"{kind}_path")
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        assert getattr(version, f"{kind}_sha256") == digest
        assert not os.access(path, os.W_OK) or os.geteuid() == 0
        assert path.stat().st_mode & 0o222 == 0  # read-only: artifacts never change
    assert version.label_names == ["blue", "green", "red"]
    assert version.backbone == "tiny_cnn"
    assert version.preprocessing["image_size"] == 40
    assert version.preprocessing["resize_method"] == "crop"
    assert len(version.preprocessing["mean"]) == 3
    assert version.error_rate == model.result.error_rate
    assert version.metrics["per_class"][0]["label"] == "blue"
    assert version.is_current is False


def test_register_stores_artifacts_written_outside_the_media_folder(trained, settings):
    # As with S3 storage: training writes locally, the registry uploads.
    model = trained("two")

    version = model_version_register(
        run=None, artifacts_dir=model.artifacts, result=model.result, prefix="models/x"
    )

    assert version.onnx_path == "models/x/model.onnx"
    stored = Path(settings.MEDIA_ROOT) / version.onnx_path
    assert stored.read_bytes() == (Path(model.artifacts) / "model.onnx").read_bytes()
    registry.artifacts.artifacts_verify(version)


def test_first_model_is_promoted_after_training(install_model):
    version = install_model("two")

    version = after_training(version)

    assert version.is_current
    assert version.promoted_at is not None
    assert version.decision == "Promoted: the first model."
    assert model_version_current() == version


def test_a_model_with_a_new_label_is_promoted_when_not_worse_on_the_shared_ones(
    install_model,
):
    current = install_model("two", promote=True)
    new = install_model("three")

    new = after_training(new)

    current.refresh_from_db()
    assert new.is_current and not current.is_current
    assert new.decision.startswith(f"Promoted over v{current.pk}: it adds 'green'")
    assert "on the 2 labels both know" in new.decision
    comparison = new.comparison
    assert comparison["new_labels"] == ["green"]
    assert comparison["shared_labels"] == ["blue", "red"]
    shared_valid = new.run.images.filter(split="valid", label_name__in=["blue", "red"])
    assert comparison["n_images"] == shared_valid.count() > 0
    assert comparison["by_split"] == {"valid": comparison["n_images"]}
    assert (
        comparison["new_label_images"]
        == new.run.images.filter(split="valid", label_name="green").count()
    )
    assert comparison["current"]["version"] == current.pk
    assert comparison["new"]["error_rate"] <= comparison["current"]["error_rate"] + 0.02


def test_model_that_does_not_lower_the_loss_is_kept_out(install_model):
    current = install_model("two", promote=True)
    same = install_model("two")  # identical weights: same error, same loss

    same = after_training(same)

    current.refresh_from_db()
    assert current.is_current and not same.is_current
    assert same.decision.startswith(f"Kept v{current.pk} (it is not better)")
    assert "that neither model trained on" in same.decision
    assert same.comparison["new"]["loss"] == pytest.approx(
        same.comparison["current"]["loss"]
    )


def test_auto_promote_off_keeps_the_current_model(install_model, settings):
    settings.SNAPCLASS_AUTO_PROMOTE = False
    current = install_model("two", promote=True)
    better = install_model("three")

    better = after_training(better)

    current.refresh_from_db()
    assert current.is_current and not better.is_current
    assert "automatic promotion is off" in better.decision


def test_rollback_is_promoting_an_older_version(install_model, admin_user):
    old = install_model("two", promote=True)
    new = install_model("three", promote=True)

    model_version_promote(version=old, user=admin_user)

    old.refresh_from_db()
    new.refresh_from_db()
    assert old.is_current and not new.is_current
    assert old.promoted_by == admin_user
    assert ModelVersion.objects.filter(is_current=True).count() == 1


def test_a_failed_promotion_leaves_the_previous_model_current(
    install_model, monkeypatch
):
    old = install_model("two", promote=True)
    new = install_model("three")

    def fail(*args, **kwargs):
        raise RuntimeError("database went away")

    # The one fault we cannot cause for real: the flip failing half way.
    monkeypatch.setattr(registry, "_mark_current", fail)
    with pytest.raises(RuntimeError):
        model_version_promote(version=new)

    assert model_version_current() == old
    new.refresh_from_db()
    assert not new.is_current


def test_the_database_allows_only_one_current_model(install_model):
    install_model("two", promote=True)
    other = install_model("three")

    with pytest.raises(IntegrityError), transaction.atomic():
        ModelVersion.objects.filter(pk=other.pk).update(is_current=True)


def test_promotion_refuses_a_tampered_artifact(install_model):
    old = install_model("two", promote=True)
    new = install_model("three")
    _tamper(new, "weights")

    with pytest.raises(ArtifactMismatch, match="sha256"):
        model_version_promote(version=new)

    assert model_version_current() == old


def test_a_broken_current_model_is_reported_not_replaced(install_model):
    current = install_model("two", promote=True)
    _tamper(current, "onnx")
    new = install_model("three")

    new = after_training(new)

    assert model_version_current() == current
    assert "cannot be loaded" in new.decision
    assert "sha256" in new.comparison["current_unreadable"]


def test_promote_command_switches_the_current_model(install_model, capsys):
    old = install_model("two", promote=True)
    new = install_model("three")

    call_command("promote", str(new.pk))

    assert model_version_current() == new
    assert f"Model v{new.pk} is now current (was v{old.pk})" in capsys.readouterr().out


def test_promote_command_refuses_an_unknown_id(db):
    with pytest.raises(CommandError, match="no model version 999"):
        call_command("promote", "999")


def _comparison(new: dict, current: dict, **extra) -> dict:
    return {
        "n_images": 50,
        "by_split": {"valid": 30, "test": 20},
        "current_training_known": True,
        "shared_labels": ["a", "b"],
        "new_labels": [],
        "new": {"version": 2, **new},
        "current": {"version": 1, **current},
        **extra,
    }


def test_the_gate_refuses_a_better_model_whose_calibration_is_far_worse(settings):
    settings.SNAPCLASS_PROMOTE_ECE_MARGIN = 0.05
    new, current = ModelVersion(pk=2), ModelVersion(pk=1)
    figures = {"error_rate": 0.1, "loss": 0.3}

    ok, why = gate_decide(
        new,
        current,
        _comparison(
            {**figures, "ece": 0.20}, {"error_rate": 0.2, "loss": 0.5, "ece": 0.04}
        ),
    )
    assert not ok
    assert why.startswith("Kept v1 (its calibration error is more than 0.05 worse)")
    assert "on 50 held-out images (20 test, 30 validation)" in why

    ok, why = gate_decide(
        new,
        current,
        _comparison(
            {**figures, "ece": 0.08}, {"error_rate": 0.2, "loss": 0.5, "ece": 0.04}
        ),
    )
    assert ok and why.startswith("Promoted over v1: error 0.100 vs 0.200")


def test_the_gate_wants_each_new_label_to_reach_the_minimum_recall(settings):
    settings.SNAPCLASS_PROMOTE_NEW_LABEL_MIN_RECALL = 0.5
    new = ModelVersion(
        pk=2,
        metrics={
            "per_class": [
                {"label": "a", "recall": 0.9, "support": 10},
                {"label": "b", "recall": 0.9, "support": 10},
                {"label": "c", "recall": 0.3, "support": 10},
            ]
        },
    )
    figures = {"error_rate": 0.1, "loss": 0.3, "ece": 0.05}

    ok, why = gate_decide(
        new, ModelVersion(pk=1), _comparison(figures, figures, new_labels=["c"])
    )

    assert not ok
    assert "adds 'c' (validation recall 0.300)" in why
    assert "'c' below the minimum recall 0.5 on validation" in why


def test_the_gate_says_when_it_has_nothing_to_compare_on():
    ok, why = gate_decide(
        ModelVersion(pk=2),
        ModelVersion(pk=1),
        {"n_images": 0, "by_split": {}, "new_labels": []},
    )
    assert not ok and "no held-out images that neither model trained on" in why
