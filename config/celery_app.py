from __future__ import annotations

import os

from celery import Celery

# Production unless told otherwise: `make run`, `make test`, the Procfile and the
# benches name their settings explicitly.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")

app = Celery("snapclass")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
