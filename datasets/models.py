from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class Label(models.Model):
    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=64, unique=True)
    queries = models.JSONField(
        default=list, blank=True, help_text="Search queries, one per list item."
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class SourceKind(models.TextChoices):
    SEARCH = "search", "Web search"
    URL = "url", "URL"
    UPLOAD = "upload", "Upload"
    IMPORT = "import", "Import"
    FEEDBACK = "feedback", "Prediction feedback"


class ImageStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    REVIEW = "review", "Needs review"
    DELETED = "deleted", "Deleted"


class ReviewReason(models.TextChoices):
    """Why an image waits for review instead of being trained on."""

    CONFLICT = "conflict", "Looks like an image of another label"
    DELETED_LOOKALIKE = "deleted", "Looks like an image a curator deleted"
    FEEDBACK = "feedback", "Prediction feedback"
    FLAGGED = "flagged", "Flagged by a curator"


class Image(models.Model):
    label = models.ForeignKey(
        Label, null=True, blank=True, on_delete=models.PROTECT, related_name="images"
    )
    file = models.FileField(upload_to="images/", max_length=255)
    thumbnail = models.FileField(upload_to="thumbs/", max_length=255)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64, unique=True)
    phash = models.CharField(max_length=16, db_index=True)
    source_kind = models.CharField(max_length=16, choices=SourceKind.choices)
    source_url = models.TextField(blank=True)
    page_url = models.TextField(blank=True)
    provider = models.CharField(max_length=32, blank=True)
    query = models.CharField(max_length=255, blank=True)
    license = models.CharField(max_length=255, blank=True)
    original_name = models.CharField(max_length=255, blank=True)
    status = models.CharField(
        max_length=16, choices=ImageStatus.choices, default=ImageStatus.ACTIVE
    )
    status_changed_at = models.DateTimeField(null=True, blank=True)
    status_changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    review_reason = models.CharField(
        max_length=16, choices=ReviewReason.choices, blank=True
    )
    near_duplicate_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Near duplicates share one group (the sha256 of its first image): a group is
    # trained on, validated on or tested on as a whole, and keeps its side across
    # runs (training.ml.split).
    group_key = models.CharField(max_length=64, db_index=True)
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    scrape_job = models.ForeignKey(
        "ScrapeJob",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="images",
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["label", "status"])]

    def __str__(self) -> str:
        return f"Image {self.pk} ({self.label or 'unlabelled'})"


class ImageChange(models.Model):
    """What a curator did to an image and when; the cleaner and runs page read it."""

    class Action(models.TextChoices):
        RELABEL = "relabel", "Relabel"
        DELETE = "delete", "Delete"
        RESTORE = "restore", "Restore"
        REVIEW = "review", "Mark reviewed"
        KEEP = "keep", "Keep"
        FLAG = "flag", "Send to review"

    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="changes")
    action = models.CharField(max_length=16, choices=Action.choices)
    old_label = models.ForeignKey(
        Label, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    new_label = models.ForeignKey(
        Label, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    old_status = models.CharField(max_length=16, blank=True)
    new_status = models.CharField(max_length=16, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(
                    action__in=[
                        "relabel",
                        "delete",
                        "restore",
                        "review",
                        "keep",
                        "flag",
                    ]
                ),
                name="imagechange_action_valid",
            )
        ]


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class ScrapeJob(models.Model):
    """One search-and-download job for one label: a row with a status machine."""

    label = models.ForeignKey(
        Label, on_delete=models.PROTECT, related_name="scrape_jobs"
    )
    provider = models.CharField(max_length=32, default="ddg")
    query = models.CharField(max_length=255)
    license = models.CharField(max_length=32, blank=True)
    urls = models.JSONField(
        default=list, blank=True, help_text="For the urls provider."
    )
    requested = models.PositiveIntegerField(default=150)
    status = models.CharField(
        max_length=16,
        choices=JobStatus.choices,
        default=JobStatus.QUEUED,
        db_index=True,
    )
    found = models.PositiveIntegerField(default=0)
    downloaded = models.PositiveIntegerField(default=0)
    duplicates = models.PositiveIntegerField(default=0)
    # Of the downloaded: near duplicates that joined a group of the same label, and
    # near duplicates of another label's images (waiting for review).
    grouped = models.PositiveIntegerField(default=0)
    conflicts = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    processed = models.PositiveIntegerField(default=0)
    reasons = models.JSONField(
        default=dict, blank=True, help_text="Reason code -> count."
    )
    reason_samples = models.JSONField(default=list, blank=True)
    message = models.TextField(blank=True)
    cancel_requested = models.BooleanField(default=False)
    attempts = models.PositiveIntegerField(default=0)
    worker = models.CharField(max_length=255, blank=True)
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

    def __str__(self) -> str:
        return f"Scrape {self.pk}: {self.label} ({self.provider})"

    @property
    def progress(self) -> float:
        total = self.found or self.requested
        return min(1.0, self.processed / total) if total else 0.0

    @property
    def is_finished(self) -> bool:
        return self.status in {
            JobStatus.SUCCEEDED,
            JobStatus.FAILED,
            JobStatus.CANCELLED,
        }
