"""One place that turns domain exceptions into JSON HTTP errors."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from config.errors import DomainError


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DomainError):
        return Response(
            {"detail": exc.message, "code": exc.code}, status=exc.http_status
        )
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
