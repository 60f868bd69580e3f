"""Production: everything from the environment, secure by default.

The entry points (manage.py, wsgi, asgi, celery) use these settings unless
DJANGO_SETTINGS_MODULE says otherwise, and they refuse to start without a real
secret key, the allowed host names, a database, a broker and Redis.
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import BASE_DIR, SNAPCLASS_TRUSTED_PROXIES, cache_config, env

# Keys that ship in this repository (or look like a placeholder) are public.
_KNOWN_KEYS = {
    "local-only-insecure-key-do-not-use-in-production",
    "test-only-key",
}
_PLACEHOLDERS = ("change-me", "changeme", "django-insecure", "insecure", "secret")


def _example_key() -> str:
    example = BASE_DIR / ".env.example"
    if not example.is_file():
        return ""
    for line in example.read_text().splitlines():
        if line.startswith("DJANGO_SECRET_KEY="):
            return line.split("=", 1)[1].strip()
    return ""


def secret_key_check(key: str) -> str:
    """The key, or ImproperlyConfigured when it is missing, short or public."""
    hint = (
        "Set DJANGO_SECRET_KEY to a long random value, e.g. the output of "
        "python -c 'import secrets; print(secrets.token_urlsafe(50))'."
    )
    if not key:
        raise ImproperlyConfigured(f"DJANGO_SECRET_KEY is not set. {hint}")
    lowered = key.lower()
    if (
        key in _KNOWN_KEYS
        or key == _example_key()
        or any(word in lowered for word in _PLACEHOLDERS)
    ):
        raise ImproperlyConfigured(
            f"DJANGO_SECRET_KEY is a placeholder or a published key. {hint}"
        )
    # Django's own check (security.W009) asks for this much.
    if len(key) < 50 or len(set(key)) < 5:
        raise ImproperlyConfigured(
            f"DJANGO_SECRET_KEY must have at least 50 characters, 5 distinct. {hint}"
        )
    return key


def allowed_hosts_check(hosts: list[str]) -> list[str]:
    hosts = [h.strip() for h in hosts if h.strip()]
    if not hosts:
        raise ImproperlyConfigured(
            "DJANGO_ALLOWED_HOSTS is not set: name the host names the site answers "
            "to, comma separated (e.g. snapclass.example.com)."
        )
    if "*" in hosts:
        raise ImproperlyConfigured("DJANGO_ALLOWED_HOSTS must not contain '*'.")
    return hosts


DEBUG = False
SECRET_KEY = secret_key_check(env.str("DJANGO_SECRET_KEY", default=""))
ALLOWED_HOSTS = allowed_hosts_check(env.list("DJANGO_ALLOWED_HOSTS", default=[]))
DATABASES = {"default": env.db("DATABASE_URL")}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
# A kept connection is checked before use: after a database restart the next
# request reconnects instead of failing.
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL")
REDIS_URL = env.str("REDIS_URL")
# Every web process on every host must share the throttle counters.
CACHE_URL = env.str("CACHE_URL", default=REDIS_URL)
CACHES = {"default": cache_config(CACHE_URL)}
if CACHES["default"]["BACKEND"].endswith("LocMemCache"):
    raise ImproperlyConfigured("Production needs a Redis cache: set CACHE_URL.")

# The reverse proxy serves the public media; Django never serves /media/ here.
SNAPCLASS_SERVE_MEDIA = env.bool("SNAPCLASS_SERVE_MEDIA", default=False)
# The first admin's password comes from the environment, never from a log.
SNAPCLASS_ADMIN_PASSWORD_REQUIRED = True

if SNAPCLASS_TRUSTED_PROXIES:
    # Only a proxy we trust may say the client used HTTPS.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 30)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool(
    "DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True
)
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=True)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
