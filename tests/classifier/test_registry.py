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
    model_version_after_training,
    model_version_promote,
    model_version_register,
)
from classifier.selectors import model_version_current

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

    version = model_version_after_training(version)

    assert version.is_current
    assert version.promoted_at is not None
    assert version.decision == "Promoted: the first model."
    assert model_version_current() == version


def test_better_model_is_promoted_and_the_comparison_recorded(install_model):
    current = install_model("two", promote=True)
    new = install_model("three")

    new = model_version_after_training(new)

    current.refresh_from_db()
    assert new.is_current and not current.is_current
    assert new.decision.startswith(f"Promoted over v{current.pk}")
    comparison = new.comparison
    assert comparison["n_images"] == new.run.images.filter(split="valid").count() > 0
    assert comparison["current"]["version"] == current.pk
    # The current model has no "green": those images count as wrong for it.
    assert comparison["current"]["missing_labels"] == ["green"]
    assert comparison["current"]["error_rate"] >= 1 / 3
    assert comparison["new"]["valid_loss"] < comparison["current"]["valid_loss"]
    assert comparison["new"]["error_rate"] <= comparison["current"]["error_rate"]


def test_model_that_does_not_lower_the_loss_is_kept_out(install_model):
    current = install_model("two", promote=True)
    same = install_model("two")  # identical weights: same error, same loss

    same = model_version_after_training(same)

    current.refresh_from_db()
    assert current.is_current and not same.is_current
    assert same.decision.startswith(f"Kept v{current.pk}")
    assert same.comparison["new"]["valid_loss"] == pytest.approx(
        same.comparison["current"]["valid_loss"]
    )


def test_auto_promote_off_keeps_the_current_model(install_model, settings):
    settings.SNAPCLASS_AUTO_PROMOTE = False
    current = install_model("two", promote=True)
    better = install_model("three")

    better = model_version_after_training(better)

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

    new = model_version_after_training(new)

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
