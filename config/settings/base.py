"""Settings shared by every environment, read from environment variables.

Every value can be set in the environment or in a `.env` file at the project root
(see `.env.example`). The defaults are the embedded ones that `make run` uses:
SQLite, a filesystem Celery broker and media under `var/`.
"""

from __future__ import annotations

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(environ.Env().str("SNAPCLASS_VAR_DIR", default=str(BASE_DIR / "var")))

env = environ.Env()
if (BASE_DIR / ".env").is_file():
    env.read_env(str(BASE_DIR / ".env"), overwrite=False)


def env_ratio(name: str, default: float) -> float:
    value = env.float(name, default=default)
    if not 0.0 < value < 1.0:
        raise ImproperlyConfigured(f"{name} must be between 0 and 1, got {value}")
    return value


def env_positive(name: str, default: int) -> int:
    value = env.int(name, default=default)
    if value <= 0:
        raise ImproperlyConfigured(f"{name} must be a positive integer, got {value}")
    return value


def env_count(name: str, default: int) -> int:
    """A whole number that may be 0."""
    value = env.int(name, default=default)
    if value < 0:
        raise ImproperlyConfigured(f"{name} must be 0 or more, got {value}")
    return value


def cache_config(url: str) -> dict:
    """django-redis for a redis:// URL (shared by every process), else local memory.

    Redis errors are logged and ignored: a cache outage makes the throttles let
    requests through for a while instead of answering 500 to everyone.
    """
    if not url:
        return {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise ImproperlyConfigured(f"CACHE_URL must be a redis:// URL, got {url!r}")
    return {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": url,
        "KEY_PREFIX": "snapclass",
        "OPTIONS": {
            "SOCKET_CONNECT_TIMEOUT": 2,
            "SOCKET_TIMEOUT": 2,
            "IGNORE_EXCEPTIONS": True,
        },
    }


# --- Django core -----------------------------------------------------------------
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="")
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "datasets",
    "training",
    "classifier",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Before anything reads the body (CSRF, forms, DRF): refuse what is too big.
    "config.uploads.RequestBodyLimitMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web, worker and beat share one SQLite file in the embedded setup: wait for locks
    # instead of failing, and let readers work while a writer commits.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 30,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

_VALIDATORS = "django.contrib.auth.password_validation."
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": _VALIDATORS + "UserAttributeSimilarityValidator"},
    {"NAME": _VALIDATORS + "MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": _VALIDATORS + "CommonPasswordValidator"},
    {"NAME": _VALIDATORS + "NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(VAR_DIR / "static")))
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(VAR_DIR / "media")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
# Uploads: the many-images admin form and the API accept up to this many files/fields.
DATA_UPLOAD_MAX_NUMBER_FIELDS = 1000
DATA_UPLOAD_MAX_NUMBER_FILES = env_positive("SNAPCLASS_MAX_UPLOAD_FILES", 200)
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
# The largest body a request may send, checked on its Content-Length before it is
# read (config.uploads); upload paths have their own limits, from the file limits.
SNAPCLASS_MAX_REQUEST_BYTES = env_positive("SNAPCLASS_MAX_REQUEST_BYTES", 10 * 1024**2)
SNAPCLASS_PREDICT_MAX_REQUEST_BYTES = env_positive(
    "SNAPCLASS_PREDICT_MAX_REQUEST_BYTES", 64 * 1024**2
)

# --- Media storage: the local folder, or S3-compatible object storage ------------
# SNAPCLASS_STORAGE=s3 keeps images, thumbnails and model artifacts in a bucket,
# so that web and worker replicas on several hosts share them.
SNAPCLASS_STORAGE = env.str("SNAPCLASS_STORAGE", default="local")
if SNAPCLASS_STORAGE not in ("local", "s3"):
    raise ImproperlyConfigured("SNAPCLASS_STORAGE must be local or s3")
if SNAPCLASS_STORAGE == "s3":
    STORAGES["default"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env.str("SNAPCLASS_S3_BUCKET"),
            "endpoint_url": env.str("SNAPCLASS_S3_ENDPOINT_URL", default="") or None,
            "region_name": env.str("SNAPCLASS_S3_REGION", default="") or None,
            "access_key": env.str("SNAPCLASS_S3_ACCESS_KEY_ID", default="") or None,
            "secret_key": env.str("SNAPCLASS_S3_SECRET_ACCESS_KEY", default="") or None,
            "location": env.str("SNAPCLASS_S3_PREFIX", default=""),
            # Public media through the proxy or a CDN (e.g. "example.com/media");
            # without one, links are signed and expire.
            "custom_domain": env.str("SNAPCLASS_S3_CUSTOM_DOMAIN", default="") or None,
            "querystring_expire": 3600,
            "file_overwrite": False,
            "addressing_style": env.str(
                "SNAPCLASS_S3_ADDRESSING_STYLE", default="path"
            ),
            "signature_version": "s3v4",
        },
    }
# Local copies of stored images for training (content-named, so never stale).
SNAPCLASS_MEDIA_CACHE_DIR = Path(
    env.str("SNAPCLASS_MEDIA_CACHE_DIR", default=str(VAR_DIR / "cache" / "media"))
)
# Where operators put folders and ZIPs to import: never under the media tree.
SNAPCLASS_IMPORT_DIR = Path(
    env.str("SNAPCLASS_IMPORT_DIR", default=str(VAR_DIR / "import"))
)
# The sweep leaves files younger than this alone (an ingest may be committing).
SNAPCLASS_MEDIA_SWEEP_MIN_AGE = env_positive("SNAPCLASS_MEDIA_SWEEP_MIN_AGE", 3600)

LOGIN_URL = "admin:login"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# --- Celery ------------------------------------------------------------------------
BROKER_DIR = VAR_DIR / "broker"
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 6 * 3600}
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default=None)
CELERY_TASK_IGNORE_RESULT = CELERY_RESULT_BACKEND is None
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {
    "datasets.tasks.*": {"queue": "scrape"},
    "training.tasks.training_run_execute": {"queue": "train"},
}
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = False
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)

# --- Redis and the shared cache ------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/0")
# Throttle counters and login attempts live in this cache. Empty: a local-memory
# cache per process (`make run`); production points it at Redis so that every web
# process on every host counts against one budget.
CACHE_URL = env.str("CACHE_URL", default="")
CACHES = {"default": cache_config(CACHE_URL)}
DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = True

# How many reverse proxies in front of the app append to X-Forwarded-For (and set
# X-Forwarded-Proto). 0: the client is REMOTE_ADDR and those headers are ignored;
# 1 behind the compose file's Caddy. A client can put anything in the header, so
# only the entries the trusted proxies added are believed.
SNAPCLASS_TRUSTED_PROXIES = env_count("SNAPCLASS_TRUSTED_PROXIES", 0)

# --- Snapclass -------------------------------------------------------------------
SNAPCLASS_ADMIN_USERNAME = env.str("SNAPCLASS_ADMIN_USERNAME", default="admin")
SNAPCLASS_ADMIN_PASSWORD = env.str("SNAPCLASS_ADMIN_PASSWORD", default="")
# Production refuses to make the first admin with a generated (printed) password.
SNAPCLASS_ADMIN_PASSWORD_REQUIRED = False
SNAPCLASS_MAX_IMAGE_SIDE = env_positive("SNAPCLASS_MAX_IMAGE_SIDE", 512)
SNAPCLASS_THUMB_SIDE = env_positive("SNAPCLASS_THUMB_SIDE", 160)
SNAPCLASS_MIN_IMAGE_SIDE = env_positive("SNAPCLASS_MIN_IMAGE_SIDE", 32)
SNAPCLASS_MAX_IMAGE_PIXELS = env_positive("SNAPCLASS_MAX_IMAGE_PIXELS", 40_000_000)
SNAPCLASS_MAX_FILE_BYTES = env_positive("SNAPCLASS_MAX_FILE_BYTES", 15 * 1024 * 1024)
SNAPCLASS_NEAR_DUPLICATE_DISTANCE = env.int(
    "SNAPCLASS_NEAR_DUPLICATE_DISTANCE", default=4
)
SNAPCLASS_IMPORT_MAX_FILES = env_positive("SNAPCLASS_IMPORT_MAX_FILES", 50_000)
SNAPCLASS_IMPORT_MAX_BYTES = env_positive(
    "SNAPCLASS_IMPORT_MAX_BYTES", 2 * 1024 * 1024 * 1024
)
SNAPCLASS_DEMO_DIR = BASE_DIR / "datasets" / "demo" / "images"
SNAPCLASS_EXAMPLE_LABELS = {
    "woman": ["woman portrait", "woman face photo"],
    "man": ["man portrait", "man face photo"],
    "camera": ["photo camera", "digital camera"],
    "TV": ["television set", "flat screen tv"],
}

REST_FRAMEWORK = {
    # drf-spectacular's, plus the error answers of every operation.
    "DEFAULT_SCHEMA_CLASS": "config.schema.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "classifier.auth.APIKeyAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticatedOrReadOnly",
    ],
    "EXCEPTION_HANDLER": "config.api.exception_handler",
    "NUM_PROXIES": SNAPCLASS_TRUSTED_PROXIES,
    # Size-bounded JSON (and no 500 on deeply nested input) for every endpoint.
    "DEFAULT_PARSER_CLASSES": [
        "config.parsers.SafeJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Snapclass API",
    "DESCRIPTION": "Web image search, curation, fine-tuning and prediction.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Request bodies get their own components, so uploads are typed as binary files.
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI and Redoc from the sidecar package's static files: the docs work
    # offline and load nothing from a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "ImageStatusEnum": "datasets.models.ImageStatus",
        "JobStatusEnum": "datasets.models.JobStatus",
    },
}
# The embedded setup serves the public media itself (images, thumbnails, ONNX
# models; never staging files); production leaves that to the reverse proxy.
SNAPCLASS_SERVE_MEDIA = env.bool("SNAPCLASS_SERVE_MEDIA", default=True)
WHITENOISE_MIMETYPES = {".mjs": "text/javascript", ".wasm": "application/wasm"}

# --- Scraping: search providers and the safe downloader ---------------------------
SNAPCLASS_SEARCH_PROVIDER = env.str("SNAPCLASS_SEARCH_PROVIDER", default="ddg")
SERPAPI_KEY = env.str("SERPAPI_KEY", default="")
SERPAPI_ENDPOINT = env.str(
    "SERPAPI_ENDPOINT", default="https://serpapi.com/search.json"
)
BING_SEARCH_KEY = env.str("BING_SEARCH_KEY", default="")
BING_SEARCH_ENDPOINT = env.str(
    "BING_SEARCH_ENDPOINT", default="https://api.bing.microsoft.com/v7.0/images/search"
)
DDG_SAFESEARCH = env.str("DDG_SAFESEARCH", default="moderate")
# For networks that reach the web only through a proxy (http://, socks5://).
DDG_PROXY = env.str("DDG_PROXY", default="")
SNAPCLASS_FETCH_CONCURRENCY = env_positive("SNAPCLASS_FETCH_CONCURRENCY", 16)
SNAPCLASS_FETCH_PER_HOST = env_positive("SNAPCLASS_FETCH_PER_HOST", 4)
SNAPCLASS_FETCH_MAX_BYTES = env_positive("SNAPCLASS_FETCH_MAX_BYTES", 15 * 1024 * 1024)
SNAPCLASS_FETCH_DEADLINE = env.float("SNAPCLASS_FETCH_DEADLINE", default=20.0)
SNAPCLASS_FETCH_MAX_REDIRECTS = env.int("SNAPCLASS_FETCH_MAX_REDIRECTS", default=5)
# Hosts that may resolve to private addresses (a local image server, tests). Empty
# by default: the downloader refuses loopback, private and link-local addresses.
SNAPCLASS_FETCH_ALLOW_PRIVATE_HOSTS = env.list(
    "SNAPCLASS_FETCH_ALLOW_PRIVATE_HOSTS", default=[]
)
SNAPCLASS_SCRAPE_MAX_IMAGES = env_positive("SNAPCLASS_SCRAPE_MAX_IMAGES", 1000)
SNAPCLASS_SCRAPE_TIME_LIMIT = env_positive("SNAPCLASS_SCRAPE_TIME_LIMIT", 30 * 60)
# A job whose worker stopped sending heartbeats this long ago is marked failed.
SNAPCLASS_JOB_HEARTBEAT_TIMEOUT = env_positive("SNAPCLASS_JOB_HEARTBEAT_TIMEOUT", 300)
# A job or run still `queued` after this long (its message lost: the broker was
# down at commit) is queued again; after twice as long it fails with a message.
SNAPCLASS_JOB_QUEUED_TIMEOUT = env_positive("SNAPCLASS_JOB_QUEUED_TIMEOUT", 600)

# --- Training ------------------------------------------------------------------------
SNAPCLASS_TRAIN_TIME_LIMIT = env_positive("SNAPCLASS_TRAIN_TIME_LIMIT", 6 * 3600)
SNAPCLASS_MIN_IMAGES_PER_LABEL = env_positive("SNAPCLASS_MIN_IMAGES_PER_LABEL", 5)
SNAPCLASS_WEIGHTS_DIR = env.str("SNAPCLASS_WEIGHTS_DIR", default="") or None
SNAPCLASS_TRAIN_DEFAULTS = {
    "backbone": env.str("SNAPCLASS_TRAIN_BACKBONE", default="efficientnet_lite0"),
    "epochs": env.int("SNAPCLASS_TRAIN_EPOCHS", default=4),
    "image_size": env.int("SNAPCLASS_TRAIN_IMAGE_SIZE", default=224),
    "batch_size": env.int("SNAPCLASS_TRAIN_BATCH_SIZE", default=32),
    # Loader processes that decode and resize images beside the GPU. A prefork
    # worker child cannot start them (it decodes in-process instead): set this
    # on a worker run with --pool=solo, like the compose file's gpu-worker.
    "num_workers": env.int("SNAPCLASS_TRAIN_NUM_WORKERS", default=0),
}

# --- Beat: the one schedule (django-celery-beat copies it into the database, where the
# admin can edit it) ------------------------------------------------------------------
SNAPCLASS_RETRAIN_CRONTAB = env.str("SNAPCLASS_RETRAIN_CRONTAB", default="0 3 * * *")
# Retrain on schedule only when at least this many images were added, relabelled or
# deleted since the last run.
SNAPCLASS_RETRAIN_MIN_CHANGES = env.int("SNAPCLASS_RETRAIN_MIN_CHANGES", default=20)


def _crontab(spec: str):
    from celery.schedules import crontab

    try:
        minute, hour, day_of_month, month_of_year, day_of_week = spec.split()
    except ValueError as exc:
        raise ImproperlyConfigured(f"A crontab has five fields, got {spec!r}") from exc
    return crontab(minute, hour, day_of_week, day_of_month, month_of_year)


CELERY_BEAT_SCHEDULE = {
    "reap-stale-jobs": {"task": "training.tasks.jobs_reap_stale", "schedule": 60.0},
    "sweep-orphan-media": {
        "task": "datasets.tasks.media_sweep",
        "schedule": _crontab(
            env.str("SNAPCLASS_MEDIA_SWEEP_CRONTAB", default="30 4 * * *")
        ),
    },
    "scheduled-retraining": {
        "task": "training.tasks.training_retrain_scheduled",
        "schedule": _crontab(SNAPCLASS_RETRAIN_CRONTAB),
    },
}

# --- Classifier ----------------------------------------------------------------------
# A finished run's model replaces the current one only when it does at least as well
# on held-out images that neither trained on (classifier.registry.gate_decide).
SNAPCLASS_AUTO_PROMOTE = env.bool("SNAPCLASS_AUTO_PROMOTE", default=True)
# ... and when its expected calibration error is at most this much worse.
SNAPCLASS_PROMOTE_ECE_MARGIN = env.float("SNAPCLASS_PROMOTE_ECE_MARGIN", default=0.05)
# A model that adds labels may be this much worse on the labels both models know,
# and each new label needs this recall on validation.
SNAPCLASS_PROMOTE_NEW_LABEL_MARGIN = env.float(
    "SNAPCLASS_PROMOTE_NEW_LABEL_MARGIN", default=0.02
)
SNAPCLASS_PROMOTE_NEW_LABEL_MIN_RECALL = env.float(
    "SNAPCLASS_PROMOTE_NEW_LABEL_MIN_RECALL", default=0.5
)
# Answers below this calibrated probability are marked "not sure"; empty: each
# model's own threshold, chosen on validation (TrainConfig.confidence_target).
SNAPCLASS_UNCERTAIN_BELOW = env.float("SNAPCLASS_UNCERTAIN_BELOW", default=None)
# Each web process asks the database which model is current at most this often, so a
# promotion reaches every process within this many seconds, without a restart.
SNAPCLASS_PREDICTOR_CHECK_SECONDS = env.float(
    "SNAPCLASS_PREDICTOR_CHECK_SECONDS", default=2.0
)
# ONNX Runtime threads per process: web workers x threads should not exceed the cores.
SNAPCLASS_PREDICT_THREADS = env_positive("SNAPCLASS_PREDICT_THREADS", 1)
SNAPCLASS_PREDICT_MAX_IMAGES = env_positive("SNAPCLASS_PREDICT_MAX_IMAGES", 16)
SNAPCLASS_ALLOW_ANONYMOUS_PREDICT = env.bool(
    "SNAPCLASS_ALLOW_ANONYMOUS_PREDICT", default=True
)


def env_rate(name: str, default: str) -> str:
    """A DRF-style rate such as "60/min", or "" for none."""
    value = env.str(name, default=default).strip()
    count, _, period = value.partition("/")
    if value and not (
        count.isdigit() and int(count) > 0 and period[:1] in tuple("smhd")
    ):
        raise ImproperlyConfigured(f"{name} must look like 60/min or be empty")
    return value


# Predictions per client (API key, else user, else IP), e.g. "60/min"; empty: no limit.
# The counters live in Django's cache: configure a shared cache (Redis) when several
# web processes must share one budget.
SNAPCLASS_PREDICT_RATE = env_rate("SNAPCLASS_PREDICT_RATE", "60/min")
# Predictions by URL hold a web thread while they download: their own budget and a
# short deadline. They never use SNAPCLASS_FETCH_ALLOW_PRIVATE_HOSTS (scraping's);
# this list, empty by default, exists for closed test networks only.
SNAPCLASS_PREDICT_URL_RATE = env_rate("SNAPCLASS_PREDICT_URL_RATE", "10/min")
SNAPCLASS_PREDICT_URL_DEADLINE = env.float(
    "SNAPCLASS_PREDICT_URL_DEADLINE", default=5.0
)
SNAPCLASS_PREDICT_URL_ALLOW_PRIVATE_HOSTS = env.list(
    "SNAPCLASS_PREDICT_URL_ALLOW_PRIVATE_HOSTS", default=[]
)
# Corrections ("Wrong? It is ...") per client, API and page together.
SNAPCLASS_FEEDBACK_RATE = env_rate("SNAPCLASS_FEEDBACK_RATE", "10/min")
# Failed sign-ins per client address and per user name.
SNAPCLASS_LOGIN_RATE = env_rate("SNAPCLASS_LOGIN_RATE", "10/h")

# --- Who sees what ----------------------------------------------------------------
# What anonymous clients and predict-only keys see of the images: "active" (the
# active images of active labels, never feedback uploads) or "none".
SNAPCLASS_PUBLIC_IMAGES = env.str("SNAPCLASS_PUBLIC_IMAGES", default="active")
if SNAPCLASS_PUBLIC_IMAGES not in ("active", "none"):
    raise ImproperlyConfigured("SNAPCLASS_PUBLIC_IMAGES must be active or none")
# Scrape jobs and runs' per-image results (pages and API) for everyone, not only
# viewers, curators and their keys.
SNAPCLASS_PUBLIC_DASHBOARD = env.bool("SNAPCLASS_PUBLIC_DASHBOARD", default=False)

# --- Feedback and the prediction log ------------------------------------------------
# Off by default for privacy: when on, every answered prediction is logged (time,
# model version, label, confidence; never the image) for the uncertainty queue.
SNAPCLASS_PREDICTION_LOG = env.bool("SNAPCLASS_PREDICTION_LOG", default=False)
SNAPCLASS_REVIEW_QUEUE_DAYS = env_positive("SNAPCLASS_REVIEW_QUEUE_DAYS", 14)
