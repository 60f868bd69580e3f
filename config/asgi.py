from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

# Production unless told otherwise: `make run`, `make test`, the Procfile and the
# benches name their settings explicitly.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")
application = get_asgi_application()
