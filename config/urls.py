from __future__ import annotations

import re

from django.conf import settings
from django.contrib import admin
from django.http import Http404, HttpResponsePermanentRedirect
from django.templatetags.static import static
from django.urls import include, path
from django.views.static import serve
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from config.login import login

admin.site.site_header = "Snapclass"
admin.site.site_title = "Snapclass admin"
admin.site.index_title = "Datasets, training runs and models"
admin.site.login = login


def favicon(request):
    # static() is asked per request: the manifest may be collected after import.
    return HttpResponsePermanentRedirect(static("img/favicon.svg"))


urlpatterns = [
    path("admin/", admin.site.urls),
    # Browsers ask for /favicon.ico on pages that name none (JSON, media).
    path("favicon.ico", favicon),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path(
        "api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"
    ),
    path("api/v1/", include("config.api_urls")),
    path("", include("datasets.urls")),
    path("", include("training.urls")),
    path("", include("classifier.urls")),
]


# The media anyone may fetch, as the reverse proxy serves them (deploy/Caddyfile):
# images, thumbnails and ONNX models; never weights, staging files or imports.
PUBLIC_MEDIA = re.compile(r"^(images|thumbs)/[^/]+/[^/]+$|^models/[^/]+/model\.onnx$")


def media(request, path: str):
    if not PUBLIC_MEDIA.match(path):
        raise Http404("Not public media.")
    # MEDIA_ROOT is read per request (tests and deployments may change it).
    return serve(request, path, document_root=settings.MEDIA_ROOT)


if settings.SNAPCLASS_SERVE_MEDIA:
    # The embedded setup serves public media itself; production leaves that to the
    # reverse proxy.
    urlpatterns.append(path(f"{settings.MEDIA_URL.strip('/')}/<path:path>", media))


def not_found(request, exception=None):
    """The API answers JSON even for a path no route matches; pages answer HTML."""
    if request.path.startswith("/api/"):
        from django.http import JsonResponse

        body = {
            "detail": "No API endpoint or object at this path.",
            "code": "not_found",
        }
        return JsonResponse(body, status=404)
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)


handler404 = not_found
