from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from classifier import feedback
from classifier.models import Feedback, PredictionLog
from datasets.admin import thumbnail_tag


@admin.register(Feedback)
class FeedbackAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "thumb",
        "predicted_label",
        "model_confidence",
        "correct_label",
        "status",
        "model_version",
        "user",
        "created_at",
    ]
    list_filter = ["status", "correct_label"]
    list_select_related = [
        "image",
        "correct_label",
        "model_version",
        "user",
        "prediction",
    ]
    readonly_fields = [f.name for f in Feedback._meta.fields]
    actions = ["accept", "reject"]

    def get_ordering(self, request: HttpRequest) -> list:
        return feedback.feedback_queue_ordering()

    @admin.display(description="Model's confidence")
    def model_confidence(self, obj: Feedback) -> str:
        if obj.prediction is None:
            return "—"
        sure = "not sure" if obj.prediction.uncertain else "sure"
        return f"{obj.prediction.confidence:.2f} ({sure})"

    @admin.display(description="Image")
    def thumb(self, obj: Feedback) -> str:
        return thumbnail_tag(obj.image)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return request.user.is_superuser

    def has_curate_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("datasets.change_image")

    @admin.action(
        description="Accept: add to the dataset with the corrected label",
        permissions=["curate"],
    )
    def accept(self, request: HttpRequest, queryset) -> None:
        n = feedback.feedback_accept(feedback=queryset, user=request.user)
        self.message_user(request, f"{n} feedback item(s) accepted.")

    @admin.action(
        description="Reject: delete the image (restorable)", permissions=["curate"]
    )
    def reject(self, request: HttpRequest, queryset) -> None:
        n = feedback.feedback_reject(feedback=queryset, user=request.user)
        self.message_user(request, f"{n} feedback item(s) rejected.")


@admin.register(PredictionLog)
class PredictionLogAdmin(admin.ModelAdmin):
    """With SNAPCLASS_PREDICTION_LOG on: sort by confidence for uncertainty sampling."""

    list_display = [
        "created_at",
        "label",
        "confidence",
        "uncertain",
        "model_version",
        "source",
    ]
    list_filter = ["uncertain", "label", "model_version", "source"]
    ordering = ["-uncertain", "confidence", "-created_at"]
    readonly_fields = [f.name for f in PredictionLog._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False
