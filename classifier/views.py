from __future__ import annotations

import base64
import hashlib
import io
import logging
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core import signing
from django.core.exceptions import RequestDataTooBig, TooManyFilesSent
from django.http import HttpRequest, HttpResponse
from django.http.multipartparser import MultiPartParserError
from django.shortcuts import get_object_or_404, redirect, render
from django.templatetags.static import static
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST
from PIL import Image as PILImage
from rest_framework.exceptions import Throttled

from classifier import feedback, services
from classifier.errors import ArtifactMismatch
from classifier.forms import PredictForm
from classifier.models import ModelVersion
from classifier.predictor import uncertain_threshold
from classifier.registry import model_version_promote
from classifier.selectors import model_version_current, model_version_list
from classifier.throttling import (
    FeedbackRateThrottle,
    PredictRateThrottle,
    predict_spend,
)
from config.api import error_response_data
from config.errors import DomainError
from config.permissions import page_perm_required
from datasets.imaging import ImageRejected, fit_long_side
from datasets.models import Label
from datasets.services import image_decode

log = logging.getLogger(__name__)

PREVIEW_SIDE = 320
# The no-JavaScript feedback form carries the image it is about, signed so that
# only an image this page predicted can come back, for this long.
FEEDBACK_SALT = "classifier.feedback-image"
FEEDBACK_MAX_AGE_S = 3600


def error_messages() -> dict[str, str]:
    """What each error code means, in words; the page's script gets the same."""
    allowed = "JPEG, PNG, WEBP, GIF or BMP"
    return {
        "empty": "This file is empty",
        "not_an_image": "This file is not an image we can read",
        "unsupported_format": f"This image format is not supported; use {allowed}",
        "corrupt": "This image file is damaged and cannot be read",
        "truncated": "This image file is incomplete (it was cut off)",
        "too_small": (
            "This image is too small: each side must be at least "
            f"{settings.SNAPCLASS_MIN_IMAGE_SIDE} pixels"
        ),
        "too_large": "This image is too large (too many pixels or bytes)",
        "missing_image": "Choose, drop or paste an image first",
        "no_model": "No model has been trained yet",
        "model_unavailable": "The current model cannot be loaded right now",
        "throttled": "Too many predictions in a short time; wait a little and retry",
        "network": "The server could not be reached",
        "browser_decode": "Your browser cannot read this file as an image",
        "unknown_label": "There is no such label",
        "feedback_expired": (
            "This answer is too old to correct; predict the image again first"
        ),
        "feedback_used": (
            "This answer was already corrected; predict the image again first"
        ),
    }


def error_text(code: str, detail: str = "") -> str:
    words = error_messages().get(code) or detail or "Something went wrong"
    return f"{words} (code {code})"


def cross_origin_isolated(
    view: Callable[..., HttpResponse],
) -> Callable[..., HttpResponse]:
    """Send the headers that let WebAssembly use threads (SharedArrayBuffer).

    Everything the page loads must then be same-origin (or CORP-marked): the ORT
    files are static files and the model is served from /media/.
    """

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = view(request, *args, **kwargs)
        response["Cross-Origin-Opener-Policy"] = "same-origin"
        response["Cross-Origin-Embedder-Policy"] = "require-corp"
        return response

    return wrapped


def _static_or_none(path: str) -> str | None:
    try:
        return static(path)
    except ValueError:  # not collected (manifest storage): browser mode is off
        return None


def page_config(version: ModelVersion | None) -> dict[str, Any]:
    """What the page's script needs, rendered with json_script."""
    model = None
    if version is not None:
        model = {
            "version": version.pk,
            "label_names": version.label_names,
            "onnx_url": version.onnx_url,
            "onnx_sha256": version.onnx_sha256,
            **version.preprocessing,
            "temperature": version.temperature,
            "uncertain_below": uncertain_threshold(version.uncertain_below),
        }
    return {
        "model": model,
        "predict_url": reverse("api-predict"),
        "feedback_url": reverse("api-feedback"),
        "min_side": settings.SNAPCLASS_MIN_IMAGE_SIDE,
        "max_side": settings.SNAPCLASS_MAX_IMAGE_SIDE,
        "max_pixels": settings.SNAPCLASS_MAX_IMAGE_PIXELS,
        "max_file_bytes": settings.SNAPCLASS_MAX_FILE_BYTES,
        "ort": {
            "wasm": _static_or_none("vendor/ort/ort.wasm.min.js"),
            "all": _static_or_none("vendor/ort/ort.min.js"),
            "base": settings.STATIC_URL + "vendor/ort/",
        },
        "errors": error_messages(),
    }


@cross_origin_isolated
@require_http_methods(["GET", "HEAD", "POST"])
def predict_page(request: HttpRequest) -> HttpResponse:
    """Upload a photo and see what the model thinks; works without JavaScript."""
    context = page_context()
    status = 200
    if request.method == "POST":
        status = _predict_posted(request, context)
    return render(request, "classifier/predict.html", context, status=status)


def page_context(error: str | None = None) -> dict[str, Any]:
    version = model_version_current()
    return {
        "version": version,
        "config": page_config(version),
        "form": PredictForm(),
        "result": None,
        "error": error,
        "preview": None,
        "feedback_labels": feedback_labels(version),
        "feedback_image": "",
    }


def feedback_labels(version: ModelVersion | None) -> list[Label]:
    """What "Wrong? It is ..." offers: the labels the serving model knows (other
    classes are named in the "another class" field)."""
    if version is None:
        return []
    return list(
        Label.objects.filter(name__in=version.label_names, is_active=True).order_by(
            "name"
        )
    )


def _predict_posted(request: HttpRequest, context: dict[str, Any]) -> int:
    # The budget first: a client that has none left is refused before its upload
    # is parsed (the body-limit middleware already bounded it to one file).
    throttle = PredictRateThrottle()
    if not throttle.allow_request(request, None):
        return _throttled(context, throttle.wait())
    try:
        form = PredictForm(request.POST, request.FILES)
        files = request.FILES.getlist("image")
    except (RequestDataTooBig, TooManyFilesSent, MultiPartParserError) as exc:
        status, body = error_response_data(exc) or (400, {"code": "bad_request"})
        context["error"] = error_text(body["code"], body.get("detail", ""))
        return status
    context["form"] = form
    if not form.is_valid() or not files:
        context["error"] = error_text("missing_image")
        return 400
    try:
        predict_spend(request, 1)
    except Throttled as exc:
        return _throttled(context, exc.wait)
    try:
        image = image_decode(files[0].read())
        prediction = services.decoded_predict(image=image)
    except (DomainError, ImageRejected) as exc:
        status, body = error_response_data(exc)
        context["error"] = error_text(body["code"], body["detail"])
        return status
    context["result"] = feedback.prediction_answers([prediction], source="page")[0]
    context["preview"] = _preview(image)
    version = context["version"]
    image_size = version.preprocessing.get("image_size") if version else None
    context["feedback_image"] = _feedback_token(image, image_size or PREVIEW_SIDE)
    return 200


def _throttled(context: dict[str, Any], wait: float | None) -> int:
    context["error"] = error_text("throttled") + (
        f"; retry in {int(wait) + 1} s" if wait else ""
    )
    return 429


def _jpeg(image: Any, quality: int) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def _preview(image: PILImage.Image) -> str:
    """A small JPEG data URL of the upload: the page shows it, nothing is stored."""
    small = fit_long_side(image, PREVIEW_SIDE)
    return "data:image/jpeg;base64," + base64.b64encode(_jpeg(small, 85)).decode()


def _feedback_token(image: PILImage.Image, image_size: int) -> str:
    """The predicted image, shrunk like the page's script does, signed for the form.

    Nothing is stored until the user says the answer was wrong.
    """
    target = max(image_size, settings.SNAPCLASS_MIN_IMAGE_SIDE)
    k = target / min(image.size)
    if k < 1:
        size = (max(1, round(image.width * k)), max(1, round(image.height * k)))
        image = image.resize(size, PILImage.Resampling.BICUBIC)  # like the canvas
    encoded = base64.b64encode(_jpeg(image, 92)).decode()
    return signing.dumps(encoded, salt=FEEDBACK_SALT, compress=False)


@cross_origin_isolated
@require_POST
def feedback_page(request: HttpRequest) -> HttpResponse:
    """ "Wrong? It is ..." without JavaScript: the form the result page carries.

    Rate-limited like the API's feedback, and each signed token makes one row.
    """
    throttle = FeedbackRateThrottle()
    if not throttle.allow_request(request, None):
        context = page_context()
        _throttled(context, throttle.wait())
        return render(request, "classifier/predict.html", context, status=429)
    token = request.POST.get("image", "")
    try:
        encoded = signing.loads(token, salt=FEEDBACK_SALT, max_age=FEEDBACK_MAX_AGE_S)
        data = base64.b64decode(encoded, validate=True)
    except (signing.BadSignature, ValueError, TypeError):
        return _page_error(request, "feedback_expired", status=400)
    try:
        item = feedback.feedback_submit(
            token_sha256=hashlib.sha256(token.encode()).hexdigest(),
            data=data,
            correct_label=feedback.feedback_label(
                label=request.POST.get("label", ""),
                new_label=request.POST.get("new_label", "")[:64],
            ),
            predicted_label=request.POST.get("predicted_label", "")[:64],
            model_version_id=_positive_int(request.POST.get("model_version")),
            prediction_id=_positive_int(request.POST.get("prediction")),
            user=request.user,
        )
    except (DomainError, ImageRejected) as exc:
        status, body = error_response_data(exc)
        return _page_error(request, body["code"], body["detail"], status=status)
    name = item.correct_label.name
    messages.success(
        request, f"Thank you: the image was sent for review as \u201c{name}\u201d."
    )
    return redirect("classifier:predict")


def _positive_int(value: str | None) -> int | None:
    """A database id from a form field, or None for anything else."""
    if not value or not value.isascii() or not value.isdigit():
        return None
    number = int(value[:12])
    return number if 0 < number < 2**31 else None


def _page_error(request: HttpRequest, code: str, detail: str = "", *, status: int):
    context = page_context(error=error_text(code, detail))
    return render(request, "classifier/predict.html", context, status=status)


def model_list(request: HttpRequest) -> HttpResponse:
    """The registry: every version with its metrics; staff can promote."""
    versions = list(model_version_list()[:200])
    return render(request, "classifier/models.html", {"versions": versions})


@page_perm_required("classifier.change_modelversion")
@require_POST
def model_promote(request: HttpRequest, pk: int) -> HttpResponse:
    version = get_object_or_404(ModelVersion, pk=pk)
    try:
        model_version_promote(version=version, user=request.user)
    except ArtifactMismatch as exc:
        messages.error(request, f"Model v{pk} was not promoted: {exc.message}")
    else:
        messages.success(request, f"Model v{pk} is now the current model.")
    return redirect("classifier:models")
