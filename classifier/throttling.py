"""The prediction rate limit, per API key, else per user, else per IP address."""

from __future__ import annotations

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle

from classifier.models import APIKey


class PredictRateThrottle(SimpleRateThrottle):
    """SNAPCLASS_PREDICT_RATE (e.g. "60/min"), read on every request; "" is off.

    Works on DRF requests and on plain Django ones (the upload page's form post).
    """

    scope = "predict"

    def get_rate(self) -> str | None:
        return settings.SNAPCLASS_PREDICT_RATE or None

    def get_cache_key(self, request, view) -> str:
        auth = getattr(request, "auth", None)
        user = getattr(request, "user", None)
        if isinstance(auth, APIKey):
            ident = f"key:{auth.pk}"
        elif user is not None and user.is_authenticated:
            ident = f"user:{user.pk}"
        else:
            ident = f"ip:{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}
