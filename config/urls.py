from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django.views.static import serve
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

admin.site.site_header = "Snapclass"
admin.site.site_title = "Snapclass admin"
admin.site.index_title = "Datasets, training runs and models"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path(
        "api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"
    ),
    path("api/v1/", include("config.api_urls")),
    path("", include("datasets.urls")),
    path("", include("training.urls")),
    path("", include("classifier.urls")),
]


def media(request, path: str):
    # MEDIA_ROOT is read per request (tests and deployments may change it).
    return serve(request, path, document_root=settings.MEDIA_ROOT)


if settings.DEBUG or settings.SNAPCLASS_SERVE_MEDIA:
    # The embedded setup serves media itself; production may put a web server in front.
    urlpatterns.append(path(f"{settings.MEDIA_URL.strip('/')}/<path:path>", media))
