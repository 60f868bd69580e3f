from __future__ import annotations

from django.conf import settings
from rest_framework import serializers

from config.fields import StrictJSONSerializer
from training.interfaces import TrainingRunCreateSerializer
from training.models import EpochMetric, RunImage, TrainingRun


class EpochMetricSerializer(serializers.ModelSerializer):
    epoch = serializers.IntegerField(
        help_text="Position across both phases, from 0 (the warm-up first)."
    )
    name = serializers.SerializerMethodField(
        help_text='As the pages show it: "warm-up", then 1..N (the epochs asked for).'
    )

    class Meta:
        model = EpochMetric
        fields = ["epoch", "name", *EpochMetric.RECORDED]

    def get_name(self, metric: EpochMetric) -> str:
        from training.epochs import epoch_name
        from training.selectors import run_freeze_epochs

        return epoch_name(metric.epoch, run_freeze_epochs(metric.run))


class TrainingRunSerializer(serializers.ModelSerializer):
    model_version = serializers.SerializerMethodField()
    best_epoch_name = serializers.SerializerMethodField(
        help_text='The best epoch as the pages name it ("warm-up", 1..N); '
        "`best_epoch` is its position from 0."
    )

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
            "best_epoch_name",
            "seconds",
            "model_version",
            "created_at",
            "started_at",
            "finished_at",
        ]

    def get_best_epoch_name(self, run: TrainingRun) -> str | None:
        from training.selectors import best_epoch_name

        return best_epoch_name(run)

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


class ClassInputSerializer(StrictJSONSerializer):
    """One class: its name, and optionally its search queries or image URLs."""

    name = serializers.RegexField(
        r"[A-Za-z0-9]",
        max_length=64,
        help_text="Becomes a label; its slug is derived (Latin letters or digits "
        "needed). An existing label with the same slug is reused.",
    )
    queries = serializers.ListField(
        child=serializers.RegexField(r"\S", max_length=255),
        required=False,
        max_length=20,
        help_text="Search queries; default: the name itself.",
    )
    urls = serializers.ListField(
        child=serializers.URLField(max_length=2000),
        required=False,
        max_length=1000,
        help_text="Image URLs, for the `urls` provider (at most `per_label` are used).",
    )


class ProjectCreateSerializer(StrictJSONSerializer):
    """A classifier from words: the classes, where to search, and whether to train."""

    classes = serializers.ListField(
        child=ClassInputSerializer(), min_length=1, max_length=100
    )
    provider = serializers.ChoiceField(
        choices=["ddg", "serpapi", "bing", "urls"],
        required=False,
        help_text="Default: SNAPCLASS_SEARCH_PROVIDER.",
    )
    per_label = serializers.IntegerField(
        min_value=1,
        max_value=settings.SNAPCLASS_SCRAPE_MAX_IMAGES,
        default=150,
        help_text="Images per class.",
    )
    train = serializers.BooleanField(
        default=True, help_text="Start a training run when the images are in."
    )
    training = TrainingRunCreateSerializer(
        required=False, help_text="Training settings; default: the server's."
    )


class ClassProgressSerializer(serializers.Serializer):
    name = serializers.CharField()
    slug = serializers.CharField()
    status = serializers.CharField()
    progress = serializers.FloatField()
    requested = serializers.IntegerField()
    found = serializers.IntegerField()
    downloaded = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    not_usable = serializers.IntegerField()
    active_images = serializers.IntegerField()
    scrape_jobs = serializers.SerializerMethodField()
    messages = serializers.ListField(child=serializers.CharField())

    def get_scrape_jobs(self, row) -> list[int]:
        return [job.pk for job in row.jobs]


class ProjectSerializer(serializers.Serializer):
    """A project as its state: stage, headline, per-class progress, run, model."""

    id = serializers.IntegerField(source="project.pk")
    name = serializers.CharField(source="project.name")
    stage = serializers.ChoiceField(
        choices=["scraping", "training", "ready", "failed"],
        help_text="ready: the run's model is current (or, without training, the "
        "images are in).",
    )
    headline = serializers.CharField(help_text="The stage in words.")
    provider = serializers.CharField(source="project.provider")
    per_label = serializers.IntegerField(source="project.per_label")
    train = serializers.BooleanField(source="project.train")
    notes = serializers.ListField(child=serializers.CharField(), source="project.notes")
    classes = ClassProgressSerializer(many=True)
    training_run = serializers.SerializerMethodField()
    model_version = serializers.SerializerMethodField()
    model_is_current = serializers.BooleanField(source="is_current")
    created_at = serializers.DateTimeField(source="project.created_at")

    def get_training_run(self, state) -> int | None:
        return state.run.pk if state.run else None

    def get_model_version(self, state) -> int | None:
        return state.model_version.pk if state.model_version else None
