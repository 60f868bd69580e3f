from __future__ import annotations

from django.conf import settings
from django.db import models

from datasets.models import Image, JobStatus, Label


class Trigger(models.TextChoices):
    MANUAL = "manual", "Manual"
    API = "api", "API"
    SCHEDULE = "schedule", "Schedule"
    AUTO = "auto", "Automatic"


class TrainingRun(models.Model):
    status = models.CharField(
        max_length=16,
        choices=JobStatus.choices,
        default=JobStatus.QUEUED,
        db_index=True,
    )
    config = models.JSONField(
        default=dict, help_text="training.ml.TrainConfig as a dict"
    )
    trigger = models.CharField(
        max_length=16, choices=Trigger.choices, default=Trigger.MANUAL
    )
    progress = models.FloatField(default=0.0)
    progress_text = models.CharField(max_length=255, blank=True)
    device = models.CharField(max_length=255, blank=True)
    message = models.TextField(blank=True)
    cancel_requested = models.BooleanField(default=False)
    label_names = models.JSONField(default=list, blank=True)
    confusion_matrix = models.JSONField(default=list, blank=True)
    per_class = models.JSONField(default=list, blank=True)
    error_rate = models.FloatField(null=True, blank=True)
    best_error_rate = models.FloatField(null=True, blank=True)
    valid_loss = models.FloatField(null=True, blank=True)
    best_epoch = models.IntegerField(null=True, blank=True)
    seconds = models.FloatField(null=True, blank=True)
    image_count = models.PositiveIntegerField(default=0)
    valid_count = models.PositiveIntegerField(default=0)
    test_count = models.PositiveIntegerField(default=0)
    # The kept model on the test split, which nothing was chosen on: n, error_rate,
    # loss, ece, confusion_matrix, per_class (training.ml.evaluate.split_metrics).
    test_error_rate = models.FloatField(null=True, blank=True)
    test_metrics = models.JSONField(default=dict, blank=True)
    # temperature, uncertain_below and the calibration error before / after.
    calibration = models.JSONField(default=dict, blank=True)
    artifacts_dir = models.CharField(max_length=255, blank=True)
    worker = models.CharField(max_length=255, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    # "active" while queued or running, NULL after: the unique constraint below is
    # the lock that keeps two runs from ever overlapping.
    slot = models.CharField(max_length=8, null=True, blank=True, default="active")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["slot"], name="trainingrun_one_active")
        ]

    def __str__(self) -> str:
        return f"Run {self.pk} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in {
            JobStatus.SUCCEEDED,
            JobStatus.FAILED,
            JobStatus.CANCELLED,
        }


class EpochMetric(models.Model):
    run = models.ForeignKey(
        TrainingRun, on_delete=models.CASCADE, related_name="epochs"
    )
    epoch = models.PositiveIntegerField()
    phase = models.CharField(max_length=16, blank=True)
    train_loss = models.FloatField(null=True)
    valid_loss = models.FloatField(null=True)
    error_rate = models.FloatField(null=True)
    accuracy = models.FloatField(null=True)
    seconds = models.FloatField(null=True)

    # What one epoch records, as the ML core reports it (besides its number).
    RECORDED = (
        "phase",
        "train_loss",
        "valid_loss",
        "error_rate",
        "accuracy",
        "seconds",
    )

    class Meta:
        ordering = ["run", "epoch"]
        constraints = [
            models.UniqueConstraint(
                fields=["run", "epoch"], name="epochmetric_unique_epoch"
            )
        ]


class RunImage(models.Model):
    """The snapshot of one image in a run: which file, which label, which split."""

    class Split(models.TextChoices):
        TRAIN = "train", "Train"
        VALID = "valid", "Valid"
        TEST = "test", "Test"

    run = models.ForeignKey(
        TrainingRun, on_delete=models.CASCADE, related_name="images"
    )
    image = models.ForeignKey(
        Image, null=True, on_delete=models.SET_NULL, related_name="run_images"
    )
    label = models.ForeignKey(
        Label, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    label_name = models.CharField(max_length=64)
    file = models.CharField(max_length=255)
    split = models.CharField(max_length=8, choices=Split.choices)
    loss = models.FloatField(null=True)
    predicted = models.CharField(max_length=64, blank=True)
    confidence = models.FloatField(null=True)

    class Meta:
        ordering = ["run", "-loss"]
        indexes = [
            models.Index(fields=["run", "split"]),
            models.Index(fields=["run", "loss"]),
        ]


class Project(models.Model):
    """A classifier asked for in words: its labels, their scrape jobs, and the run
    that starts by itself once the images are in (the new-classifier page)."""

    class Status(models.TextChoices):
        SCRAPING = "scraping", "Collecting images"
        TRAINING = "training", "Training"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    name = models.CharField(max_length=255, blank=True)
    labels = models.ManyToManyField(Label, related_name="projects")
    scrape_jobs = models.ManyToManyField("datasets.ScrapeJob", related_name="projects")
    provider = models.CharField(max_length=32)
    per_label = models.PositiveIntegerField()
    train = models.BooleanField(
        default=True, help_text="Start a training run when the images are in."
    )
    train_config = models.JSONField(default=dict, blank=True)
    run = models.ForeignKey(
        TrainingRun,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="projects",
    )
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.SCRAPING, db_index=True
    )
    message = models.TextField(blank=True)
    notes = models.JSONField(
        default=list, blank=True, help_text="What happened to each class name."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Project {self.pk}: {self.name}"
