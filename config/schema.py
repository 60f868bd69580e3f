"""OpenAPI that tells the truth about errors: every operation lists the statuses it
can answer with, each with the `{detail, code}` body of config.api's handler."""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser
from django.test import RequestFactory
from drf_spectacular import openapi
from drf_spectacular.utils import OpenApiResponse
from rest_framework.request import Request

# Why each status happens, as the schema says it.
ERROR_WORDS = {
    400: "Bad input: `detail` says what is wrong (and `errors` per field).",
    401: "A missing, bad or revoked API key.",
    403: "Not allowed: sign in (or send an API key) with the rights this needs; an "
    "invalid API key on an endpoint that also takes sessions.",
    404: "No such object, or a page number past the end.",
    409: "Conflicts with the current state (an active run, a changed model file, an "
    "existing label).",
    413: "The request body or file is too large.",
    415: "An unsupported Content-Type, or a file that is not an image we accept.",
    429: "Too many requests: wait and retry.",
    503: "No current model (or it cannot be loaded).",
}


class AutoSchema(openapi.AutoSchema):
    """drf-spectacular's schema, plus the error answers each operation can give.

    Statuses a view documents itself (with @extend_schema) are kept; these are added
    from what the view is: its authentication, throttles, body and parameters.
    """

    def get_auth(self):
        """The view's schemes, and `{}` (none needed) when its permissions let an
        anonymous client through: asked of the permissions themselves, so custom
        ones are described as they behave."""
        auths = super().get_auth()
        if {} not in auths and self._anonymous_allowed():
            auths.append({})
        return auths

    def _anonymous_allowed(self) -> bool:
        request = Request(RequestFactory().generic(self.method, self.path))
        request.user, request.auth = AnonymousUser(), None
        try:
            return all(
                permission.has_permission(request, self.view)
                for permission in self.view.get_permissions()
            )
        except Exception:  # a permission that needs more than a bare request
            return False

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        from classifier.serializers import ErrorSerializer

        for status in sorted(self.error_statuses()):
            code = str(status)
            if code not in responses:
                responses[code] = self._get_response_for_code(
                    OpenApiResponse(ErrorSerializer, description=ERROR_WORDS[status]),
                    code,
                    direction=direction,
                )
        return responses

    def error_statuses(self) -> set[int]:
        view = self.view
        statuses = {403}  # an invalid API key, or permissions
        authenticators = list(getattr(view, "authentication_classes", ()))
        if authenticators and authenticators[0]().authenticate_header(None):
            statuses.add(401)  # the first authenticator challenges: 401, not 403
        has_body = self.method in ("POST", "PUT", "PATCH") and (
            self.get_request_serializer() is not None
        )
        if has_body:
            statuses |= {400, 413, 415}
        if "{" in self.path:
            statuses.add(404)
        if self.method == "GET" and self._is_list_view() and self._get_paginator():
            statuses.add(404)  # ?page= past the end
        filters = self._get_filter_parameters() or self.get_override_parameters()
        if self.method == "GET" and filters:
            statuses.add(400)  # a filter value outside its choices
        if getattr(view, "throttle_classes", ()):
            statuses.add(429)
        return statuses
