from __future__ import annotations

from django.urls import include, path

urlpatterns = [
    path("", include("datasets.api_urls")),
    path("", include("training.api_urls")),
    path("", include("classifier.api_urls")),
]
