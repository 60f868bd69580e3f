"""The embedded setup of `make run`: debug on, SQLite, filesystem broker."""

from __future__ import annotations

from .base import *  # noqa: F403
from .base import env

DEBUG = env.bool("DJANGO_DEBUG", default=True)
SECRET_KEY = env.str(
    "DJANGO_SECRET_KEY", default="local-only-insecure-key-do-not-use-in-production"
)
