"""The cleaner: a finished run's images by loss, with keep / relabel / delete."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse


def cleaner(request: HttpRequest, pk: int) -> HttpResponse:  # pragma: no cover - stub
    raise Http404("The cleaner is not built yet.")
