"""One place that turns domain exceptions into JSON HTTP errors."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import (
    PermissionDenied,
    RequestDataTooBig,
    SuspiciousOperation,
    TooManyFieldsSent,
    TooManyFilesSent,
    ValidationError,
)
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from config.errors import DomainError
from config.uploads import TooManyUploads
from datasets.fetch import FetchError
from datasets.imaging import ImageRejected

# Image rejection and download codes whose HTTP status is not a plain 400.
_STATUS_BY_CODE = {
    "too_large": status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
    "unsupported_format": status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
    "not_an_image": status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
}


def error_response_data(exc: BaseException) -> tuple[int, dict[str, str]] | None:
    """(status, {"detail", "code"}) for our domain and input errors, else None.

    Shared by the API's exception handler and the HTML pages that show errors.
    """
    if isinstance(exc, DomainError):
        return exc.http_status, {"detail": exc.message, "code": exc.code}
    if isinstance(exc, ImageRejected):
        status_code = _STATUS_BY_CODE.get(exc.code, status.HTTP_400_BAD_REQUEST)
        return status_code, {"detail": exc.message, "code": exc.code}
    if isinstance(exc, FetchError):
        status_code = _STATUS_BY_CODE.get(exc.code, status.HTTP_400_BAD_REQUEST)
        detail = f"Could not download the image: {exc.message}"
        return status_code, {"detail": detail, "code": exc.code}
    if isinstance(exc, RequestDataTooBig):
        return status.HTTP_413_REQUEST_ENTITY_TOO_LARGE, {
            "detail": "The request body is too large.",
            "code": "too_large",
        }
    if isinstance(exc, TooManyUploads):
        return status.HTTP_400_BAD_REQUEST, {
            "detail": str(exc),
            "code": "too_many_images",
        }
    if isinstance(exc, TooManyFilesSent):
        return status.HTTP_400_BAD_REQUEST, {
            "detail": "The request has too many files.",
            "code": "too_many_files",
        }
    if isinstance(exc, TooManyFieldsSent):
        return status.HTTP_400_BAD_REQUEST, {
            "detail": "The request has too many fields.",
            "code": "too_many_fields",
        }
    if isinstance(exc, SuspiciousOperation):
        return status.HTTP_400_BAD_REQUEST, {
            "detail": "Bad request.",
            "code": "bad_request",
        }
    return None


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    mapped = error_response_data(exc)
    if mapped is not None:
        return Response(mapped[1], status=mapped[0])
    if isinstance(exc, ValidationError):
        exc = exceptions.ValidationError(detail=exc.messages)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    data = response.data
    if isinstance(exc, exceptions.APIException):
        if isinstance(data, dict) and "detail" in data:
            code = getattr(data["detail"], "code", None) or exc.default_code
            data = {"detail": str(data["detail"]), "code": str(code)}
        else:
            data = {
                "detail": "Invalid input.",
                "code": "invalid",
                "errors": data,
            }
    elif isinstance(exc, (Http404, PermissionDenied)):
        data = {"detail": str(exc) or "Not found.", "code": "not_found"}
    response.data = data
    if response.status_code == status.HTTP_429_TOO_MANY_REQUESTS:
        response.data["code"] = "throttled"
    return response
