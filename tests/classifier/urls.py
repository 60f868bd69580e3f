"""config.urls, with /media/ served from the MEDIA_ROOT of the moment.

config.urls binds MEDIA_ROOT when it is imported; tests give every test its own
MEDIA_ROOT, so pages that fetch model files use this URLconf.
"""

from __future__ import annotations

from django.conf import settings
from django.urls import path
from django.views.static import serve

from config.urls import urlpatterns as project_urlpatterns


def media(request, path):
    return serve(request, path, document_root=settings.MEDIA_ROOT)


urlpatterns = [path("media/<path:path>", media), *project_urlpatterns]
