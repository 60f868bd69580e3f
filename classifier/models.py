from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class ModelVersion(models.Model):
    """A trained model: immutable artifacts plus what is needed to serve them."""

    run = models.OneToOneField(
        "training.TrainingRun",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="model_version",
    )
    label_names = models.JSONField(default=list)
    backbone = models.CharField(max_length=64)
    preprocessing = models.JSONField(default=dict, help_text="from meta.json")
    metrics = models.JSONField(default=dict, blank=True)
    error_rate = models.FloatField(null=True, blank=True)
    valid_loss = models.FloatField(null=True, blank=True)
    # Calibration from meta.json: probabilities are softmax(logits / temperature);
    # answers below uncertain_below are "not sure".
    temperature = models.FloatField(default=1.0)
    uncertain_below = models.FloatField(null=True, blank=True)
    weights_path = models.CharField(max_length=255)
    weights_sha256 = models.CharField(max_length=64)
    meta_path = models.CharField(max_length=255)
    meta_sha256 = models.CharField(max_length=64)
    onnx_path = models.CharField(max_length=255)
    onnx_sha256 = models.CharField(max_length=64)
    is_current = models.BooleanField(default=False)
    comparison = models.JSONField(default=dict, blank=True)
    decision = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    promoted_at = models.DateTimeField(null=True, blank=True)
    promoted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_current"],
                condition=Q(is_current=True),
                name="modelversion_one_current",
            )
        ]

    def __str__(self) -> str:
        return f"Model v{self.pk}{' (current)' if self.is_current else ''}"

    @property
    def onnx_url(self) -> str:
        from django.core.files.storage import default_storage

        return default_storage.url(self.onnx_path)

    @property
    def image_size(self) -> int | None:
        return self.preprocessing.get("image_size")


VIEW_PERMS = frozenset(
    {
        "datasets.view_label",
        "datasets.view_image",
        "datasets.view_scrapejob",
        "training.view_trainingrun",
        "classifier.view_modelversion",
    }
)
CURATE_PERMS = frozenset(
    {
        "datasets.add_scrapejob",
        "datasets.change_scrapejob",
        "training.add_trainingrun",
        "training.change_trainingrun",
        "classifier.change_modelversion",
    }
)


class APIKey(models.Model):
    """A named secret another app sends to use the API; only its sha256 is kept.

    Its role says what it may do beyond predicting; a key is made with a role
    only by a user who holds that role's permissions.
    """

    class Role(models.TextChoices):
        PREDICT = "predict", "Predict only"
        VIEWER = "viewer", "Viewer: predict and read every image, job and run"
        CURATOR = "curator", "Curator: also start scrapes and runs, promote models"

    ROLE_PERMS = {
        Role.PREDICT: frozenset(),
        Role.VIEWER: VIEW_PERMS,
        Role.CURATOR: VIEW_PERMS | CURATE_PERMS,
    }

    name = models.CharField(max_length=100)
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.PREDICT)
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    hashed_key = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    def has_perm(self, perm: str) -> bool:
        """Like User.has_perm, from the role (config.permissions asks both)."""
        return self.is_active and perm in self.ROLE_PERMS.get(self.role, frozenset())


class PredictionLog(models.Model):
    """One answered prediction, kept only when SNAPCLASS_PREDICTION_LOG is on.

    No image is kept here: an image is stored only when the user sends feedback.
    """

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    model_version = models.ForeignKey(
        ModelVersion, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    label = models.CharField(max_length=64)
    confidence = models.FloatField(db_index=True)
    # Below the model's "not sure" threshold when it answered.
    uncertain = models.BooleanField(default=False, db_index=True)
    source = models.CharField(max_length=16, default="api")

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "logged prediction"

    def __str__(self) -> str:
        return f"{self.label} {self.confidence:.2f} (v{self.model_version_id})"


class Feedback(models.Model):
    """ "Wrong? It is ...": a corrected label and the image, awaiting a curator."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        ACCEPTED = "accepted", "Accepted"
        REJECTED = "rejected", "Rejected"

    image = models.ForeignKey(
        "datasets.Image", on_delete=models.CASCADE, related_name="feedback"
    )
    prediction = models.ForeignKey(
        PredictionLog, null=True, blank=True, on_delete=models.SET_NULL
    )
    model_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    predicted_label = models.CharField(max_length=64, blank=True)
    correct_label = models.ForeignKey(
        "datasets.Label", on_delete=models.PROTECT, related_name="+"
    )
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    # The sha256 of the upload page's signed token, when it came from there: a
    # token makes one feedback row, never more.
    token_sha256 = models.CharField(
        max_length=64, null=True, blank=True, unique=True, editable=False
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "feedback"
