# One image for web, worker, gpu-worker and beat (see docker-compose.yml).
FROM node:20-bookworm-slim AS static
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error
COPY scripts/vendor_ort.sh scripts/vendor_ort.sh
RUN sh scripts/vendor_ort.sh

FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    DJANGO_SETTINGS_MODULE=config.settings.production
RUN apt-get update && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# Production packages only: test, lint and bench tools are in requirements-dev.txt.
COPY requirements.txt .
RUN pip install -r requirements.txt
COPY . .
COPY --from=static /app/static/vendor/ort static/vendor/ort
# collectstatic needs settings but no database or secrets of the real deployment:
# a throwaway key that exists only during this step.
RUN DJANGO_SECRET_KEY="$(python -c 'import secrets; print(secrets.token_urlsafe(50))')" \
    DJANGO_ALLOWED_HOSTS=localhost DATABASE_URL=sqlite:////tmp/build.sqlite3 \
    CELERY_BROKER_URL=memory:// REDIS_URL=redis://localhost:6379/0 \
    python manage.py collectstatic --noinput -v0
RUN useradd --create-home --uid 1000 snapclass && mkdir -p /data/media /data/import \
    && chown -R snapclass /data
USER snapclass
EXPOSE 8000
CMD ["gunicorn", "config.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3", "--threads", "2", "--timeout", "120"]
