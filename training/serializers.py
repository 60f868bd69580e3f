from __future__ import annotations

from rest_framework import serializers

from training.interfaces import TrainingRunCreateSerializer  # noqa: F401
from training.models import EpochMetric, RunImage, TrainingRun


class EpochMetricSerializer(serializers.ModelSerializer):
    class Meta:
        model = EpochMetric
        fields = ["epoch", *EpochMetric.RECORDED]


class TrainingRunSerializer(serializers.ModelSerializer):
    model_version = serializers.SerializerMethodField()

    class Meta:
        model = TrainingRun
        fields = [
            "id",
            "status",
            "trigger",
            "config",
            "progress",
            "progress_text",
            "device",
            "message",
            "image_count",
            "valid_count",
            "test_count",
            "error_rate",
            "test_error_rate",
            "best_error_rate",
            "valid_loss",
            "best_epoch",
            "seconds",
            "model_version",
            "created_at",
            "started_at",
            "finished_at",
        ]

    def get_model_version(self, run: TrainingRun) -> int | None:
        version = getattr(run, "model_version", None)
        return version.pk if version else None


class TrainingRunDetailSerializer(TrainingRunSerializer):
    epochs = EpochMetricSerializer(many=True, read_only=True)

    class Meta(TrainingRunSerializer.Meta):
        fields = [
            *TrainingRunSerializer.Meta.fields,
            "label_names",
            "confusion_matrix",
            "per_class",
            "test_metrics",
            "calibration",
            "epochs",
        ]


class RunImageSerializer(serializers.ModelSerializer):
    class Meta:
        model = RunImage
        fields = ["image", "label_name", "split", "loss", "predicted", "confidence"]
