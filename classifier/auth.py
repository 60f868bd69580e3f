"""API keys for other apps: `Authorization: Api-Key <key>` or `X-Api-Key: <key>`."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import BasePermission

from classifier.models import APIKey
from classifier.services import api_key_check

KEYWORD = "Api-Key"


class APIKeyAuthentication(BaseAuthentication):
    """Sets request.auth to the APIKey; the user stays anonymous.

    A key may predict (even when anonymous prediction is off) and holds the
    permissions of its role (config.permissions.has_perm asks it): a curator key
    may start scrapes and runs and promote models, a predict-only key may not.
    """

    def authenticate(self, request):
        raw = _raw_key(request)
        if raw is None:
            return None
        key = api_key_check(raw=raw)
        if key is None:
            raise exceptions.AuthenticationFailed(
                "Invalid API key.", code="invalid_key"
            )
        if key.revoked_at is not None:
            raise exceptions.AuthenticationFailed(
                "This API key has been revoked.", code="revoked_key"
            )
        return AnonymousUser(), key

    def authenticate_header(self, request) -> str:
        return KEYWORD


def _raw_key(request) -> str | None:
    header = get_authorization_header(request).split()
    if header and header[0].lower() == KEYWORD.lower().encode():
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(
                "Send the key as `Authorization: Api-Key <key>`.", code="invalid_key"
            )
        try:
            return header[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed(
                "Invalid API key.", code="invalid_key"
            ) from None
    value = request.META.get("HTTP_X_API_KEY")
    if value is not None:
        value = value.strip()
        if not value or not value.isascii():
            raise exceptions.AuthenticationFailed(
                "Invalid API key.", code="invalid_key"
            )
        return value
    return None


class CanPredict(BasePermission):
    """API keys and signed-in users; anonymous clients when the setting allows."""

    message = "Predictions need an API key (Authorization: Api-Key <key>)."

    def has_permission(self, request, view) -> bool:
        return bool(
            isinstance(request.auth, APIKey)
            or (request.user and request.user.is_authenticated)
            or settings.SNAPCLASS_ALLOW_ANONYMOUS_PREDICT
        )
