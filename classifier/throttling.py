"""Rate limits per API key, else per user, else per client address.

Predictions count images, not requests: a request with 16 images spends 16. The
budget is checked before the body is parsed (an exhausted client is refused
without reading its upload) and spent once the images are counted.
"""

from __future__ import annotations

from django.conf import settings
from rest_framework import exceptions
from rest_framework.throttling import BaseThrottle

from classifier.models import APIKey
from config.clients import RateLimit, Verdict, client_ip


def client_ident(request) -> str:
    auth = getattr(request, "auth", None)
    user = getattr(request, "user", None)
    if isinstance(auth, APIKey):
        return f"key:{auth.pk}"
    if user is not None and user.is_authenticated:
        return f"user:{user.pk}"
    return f"ip:{client_ip(request)}"


def predict_limit() -> RateLimit:
    return RateLimit("predict", settings.SNAPCLASS_PREDICT_RATE)


def predict_url_limit() -> RateLimit:
    return RateLimit("predict-url", settings.SNAPCLASS_PREDICT_URL_RATE)


def feedback_limit() -> RateLimit:
    return RateLimit("feedback", settings.SNAPCLASS_FEEDBACK_RATE)


class _Throttle(BaseThrottle):
    """A DRF throttle over a RateLimit; works on plain Django requests too."""

    spend = True

    def limit(self) -> RateLimit:
        raise NotImplementedError

    def allow_request(self, request, view) -> bool:
        limit = self.limit()
        ident = client_ident(request)
        self.verdict = limit.hit(ident) if self.spend else limit.peek(ident)
        return self.verdict.allowed

    def wait(self) -> float | None:
        return self.verdict.wait or None


class PredictRateThrottle(_Throttle):
    """SNAPCLASS_PREDICT_RATE images per client ("" is off); checks, spends none.

    The view spends one unit per image with `predict_spend` once it has counted
    them.
    """

    spend = False

    def limit(self) -> RateLimit:
        return predict_limit()


class FeedbackRateThrottle(_Throttle):
    """SNAPCLASS_FEEDBACK_RATE corrections per client."""

    def limit(self) -> RateLimit:
        return feedback_limit()


def predict_spend(request, images: int, *, url: bool = False) -> None:
    """Spend `images` of the client's budget, or raise Throttled.

    A prediction by URL also spends from SNAPCLASS_PREDICT_URL_RATE: each one
    holds a web thread while the image downloads.
    """
    ident = client_ident(request)
    if url:
        _raise_unless(predict_url_limit().hit(ident))
    _raise_unless(predict_limit().hit(ident, images))


def _raise_unless(verdict: Verdict) -> None:
    if not verdict.allowed:
        raise exceptions.Throttled(wait=verdict.wait)
