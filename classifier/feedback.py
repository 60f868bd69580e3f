"""Feedback on predictions and the prediction log (issue: the improvement loop)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from classifier.models import Feedback, ModelVersion, PredictionLog
from config.errors import DomainError
from datasets.models import ImageStatus, Label, ReviewReason, SourceKind
from datasets.services import (
    DuplicateImage,
    InvalidLabel,
    image_delete,
    image_ingest,
    image_mark_reviewed,
    image_relabel,
    label_get_or_create,
)


class InvalidFeedback(DomainError):
    code = "invalid_feedback"


def prediction_log(
    *,
    version_id: int | None,
    label: str,
    confidence: float,
    uncertain: bool = False,
    source: str = "api",
) -> PredictionLog | None:
    """Record an answered prediction when the log is on; None when it is off."""
    if not settings.SNAPCLASS_PREDICTION_LOG:
        return None
    return PredictionLog.objects.create(
        model_version_id=version_id,
        label=label[:64],
        confidence=confidence,
        uncertain=uncertain,
        source=source,
    )


def label_lookup(value: Any) -> Label:
    value = str(value or "").strip()
    label = (
        Label.objects.filter(slug__iexact=value).first()
        or Label.objects.filter(name__iexact=value).first()
        or (Label.objects.filter(pk=int(value)).first() if value.isdigit() else None)
    )
    if label is None:
        raise InvalidFeedback(f"There is no label {value!r}.", code="unknown_label")
    return label


def feedback_label(*, label: Any = "", new_label: str = "") -> Label:
    """The label a correction names: an existing label (slug, name or id), or
    "another class" by name, created inactive so that nothing trains on it or
    offers it until a curator activates it."""
    if str(label or "").strip():
        return label_lookup(label)
    name = str(new_label or "").strip()
    if not name:
        raise InvalidFeedback(
            "Choose the correct label, or name another class.", code="unknown_label"
        )
    try:
        return label_get_or_create(name=name, is_active=False)
    except InvalidLabel as exc:
        raise InvalidFeedback(exc.message, code="invalid_label") from None


@transaction.atomic
def feedback_submit(
    *,
    data: bytes,
    correct_label: Label,
    prediction_id: int | None = None,
    predicted_label: str = "",
    model_version_id: int | None = None,
    user: Any = None,
    token_sha256: str | None = None,
) -> Feedback:
    """Store the image (source `feedback`, status `review`) with both labels.

    `token_sha256` (the upload page's signed token) is single-use: a second
    feedback with it raises InvalidFeedback and stores nothing.
    """
    if token_sha256 is not None and _token_used(token_sha256):
        raise InvalidFeedback(
            "This answer was already corrected; predict the image again to send "
            "another correction.",
            code="feedback_used",
        )
    prediction = None
    if prediction_id is not None:
        prediction = PredictionLog.objects.filter(pk=prediction_id).first()
        if prediction is None:
            raise InvalidFeedback(
                f"There is no logged prediction {prediction_id}.",
                code="unknown_prediction",
            )
        predicted_label = prediction.label
        model_version_id = prediction.model_version_id
    if (
        model_version_id is not None
        and not ModelVersion.objects.filter(pk=model_version_id).exists()
    ):
        model_version_id = None
    try:
        image = image_ingest(
            data=data,
            label=correct_label,
            source_kind=SourceKind.FEEDBACK,
            status=ImageStatus.REVIEW,
            review_reason=ReviewReason.FEEDBACK,
            user=user,
        )
    except DuplicateImage as exc:  # already known: the feedback still counts
        image = exc.existing
    try:
        with transaction.atomic():
            return Feedback.objects.create(
                image=image,
                prediction=prediction,
                model_version_id=model_version_id,
                predicted_label=predicted_label[:64],
                correct_label=correct_label,
                user=user if getattr(user, "pk", None) else None,
                token_sha256=token_sha256,
            )
    except IntegrityError:  # the same token, posted twice at once
        if token_sha256 is not None and _token_used(token_sha256):
            raise InvalidFeedback(
                "This answer was already corrected.", code="feedback_used"
            ) from None
        raise


def _token_used(token_sha256: str) -> bool:
    return Feedback.objects.filter(token_sha256=token_sha256).exists()


@transaction.atomic
def feedback_accept(*, feedback: QuerySet[Feedback], user: Any = None) -> int:
    """The image joins the dataset under the corrected label."""
    items = list(
        feedback.filter(status=Feedback.Status.PENDING).select_related("image")
    )
    for item in items:
        if item.image.label_id != item.correct_label_id:
            image_relabel(images=[item.image], label=item.correct_label, user=user)
    image_mark_reviewed(images=[i.image for i in items], user=user)
    return Feedback.objects.filter(pk__in=[i.pk for i in items]).update(
        status=Feedback.Status.ACCEPTED
    )


@transaction.atomic
def feedback_reject(*, feedback: QuerySet[Feedback], user: Any = None) -> int:
    items = list(
        feedback.filter(status=Feedback.Status.PENDING).select_related("image")
    )
    image_delete(
        images=[i.image for i in items if i.image.source_kind == SourceKind.FEEDBACK],
        user=user,
    )
    return Feedback.objects.filter(pk__in=[i.pk for i in items]).update(
        status=Feedback.Status.REJECTED
    )


def review_queue(limit: int = 100) -> QuerySet[PredictionLog]:
    """The least confident recent predictions, "not sure" ones first: what the
    model does not know yet."""
    since = timezone.now() - timedelta(days=settings.SNAPCLASS_REVIEW_QUEUE_DAYS)
    return (
        PredictionLog.objects.filter(created_at__gte=since)
        .select_related("model_version")
        .order_by("-uncertain", "confidence", "-created_at")[:limit]
    )


def feedback_queue_ordering() -> list[Any]:
    """Pending feedback on answers the model was not sure of comes first, then
    the least confident, then the newest."""
    return [
        F("prediction__uncertain").desc(nulls_last=True),
        F("prediction__confidence").asc(nulls_last=True),
        "-created_at",
    ]


def prediction_answers(predictions, *, source: str = "api") -> list[dict[str, Any]]:
    """Predictions as API answers; with the log on, each carries its prediction_id."""
    answers = []
    for prediction in predictions:
        answer = prediction.as_dict()
        logged = prediction_log(
            version_id=prediction.model_version,
            label=prediction.label,
            confidence=prediction.confidence,
            uncertain=prediction.uncertain,
            source=source,
        )
        if logged is not None:
            answer["prediction_id"] = logged.pk
        answers.append(answer)
    return answers
