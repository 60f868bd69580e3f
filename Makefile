# Snapclass: `make run` sets everything up and runs the app; `make test` runs the suite.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
# Integration tests run against these (see README); unit tests use SQLite in memory.
TEST_DATABASE_URL ?= $(or $(DATABASE_URL),postgres://postgres@127.0.0.1:5432/test)
TEST_REDIS_URL ?= $(or $(REDIS_URL),redis://127.0.0.1:6379/0)
PYTEST := $(BIN)/python -m pytest
# pytest exits 5 when a selection holds no test: that is not a failure here.
NO_TESTS_OK := || [ $$? -eq 5 ]

# manage.py, wsgi and celery default to production settings; every target here
# names the settings it runs with.
setup run bench gpu-check: export DJANGO_SETTINGS_MODULE = config.settings.local
test test-unit test-integration: export DJANGO_SETTINGS_MODULE = config.settings.test

.PHONY: help install setup run test test-unit test-integration bench gpu-check lint format clean

help:
	@echo "make run    set up (venv, deps, migrations, static, demo data) and run web + worker + beat"
	@echo "make test   set up what the tests need and run the whole suite"
	@echo "make bench  run the benchmarks, results in bench/results.json"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Development installs both sets; the Docker image only requirements.txt.
$(VENV)/.installed: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

static/vendor/ort/.copied: node_modules/.installed scripts/vendor_ort.sh
	sh scripts/vendor_ort.sh
	touch $@

install: $(VENV)/.installed static/vendor/ort/.copied

var:
	mkdir -p var/media var/broker/queue var/broker/control

setup: install var
	$(BIN)/python manage.py migrate --noinput -v0
	$(BIN)/python manage.py collectstatic --noinput -v0
	$(BIN)/python manage.py bootstrap

run: setup
	@echo "Snapclass on http://127.0.0.1:$(PORT)/ (admin at /admin/); Ctrl-C stops everything."
	PORT=$(PORT) $(BIN)/honcho start -f Procfile

test: install
	$(MAKE) --no-print-directory test-unit test-integration

test-unit:
	DATABASE_URL=sqlite://:memory: $(PYTEST) -m "not integration" $(PYTEST_ARGS) $(NO_TESTS_OK)

test-integration:
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) \
		CELERY_BROKER_URL=$(TEST_REDIS_URL) \
		$(PYTEST) -m integration $(PYTEST_ARGS) $(NO_TESTS_OK)

bench: install var
	$(BIN)/python -m bench

gpu-check: install
	$(BIN)/python -m training.ml.gpu_check

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format:
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf var static/vendor node_modules .pytest_cache
