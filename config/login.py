"""Sign-in attempts are rate-limited per client address and per user name.

Only failures count (SNAPCLASS_LOGIN_RATE, in the shared cache): a locked-out
client gets a 429 page without its password being checked.
"""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from config.clients import RateLimit, client_ip


def _limits(request: HttpRequest) -> list[tuple[RateLimit, str]]:
    rate = settings.SNAPCLASS_LOGIN_RATE
    username = (request.POST.get("username") or "").strip().lower()
    name = hashlib.sha256(username.encode("utf-8", "replace")).hexdigest()[:32]
    return [
        (RateLimit("login-ip", rate), client_ip(request)),
        (RateLimit("login-user", rate), name),
    ]


def login(request: HttpRequest, extra_context=None) -> HttpResponse:
    """admin.site.login, refused while this client or user name is locked out."""
    if request.method != "POST":
        return admin.site.__class__.login(admin.site, request, extra_context)
    limits = _limits(request)
    for limit, ident in limits:
        verdict = limit.peek(ident)
        if not verdict.allowed:
            return _locked(request, verdict.wait)
    response = admin.site.__class__.login(admin.site, request, extra_context)
    failed = not request.user.is_authenticated
    if failed:
        for limit, ident in limits:
            limit.hit(ident)
    return response


def _locked(request: HttpRequest, wait: float) -> HttpResponse:
    context = {
        **admin.site.each_context(request),
        "title": "Too many sign-in attempts",
        "wait": int(wait) + 1,
    }
    response = TemplateResponse(request, "admin/login_locked.html", context, status=429)
    response["Retry-After"] = str(int(wait) + 1)
    return response
