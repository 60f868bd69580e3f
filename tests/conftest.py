from __future__ import annotations

import io
import os

import numpy as np
import pytest
from PIL import Image as PILImage


def pytest_collection_modifyitems(config, items):
    # Anything under tests/integration needs PostgreSQL, Redis or a worker.
    for item in items:
        if f"{os.sep}integration{os.sep}" in str(item.fspath):
            item.add_marker(pytest.mark.integration)
        if f"{os.sep}e2e{os.sep}" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Rate-limit counters (a local-memory cache in tests) start empty."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture(autouse=True)
def _media_root(tmp_path, settings):
    """Every test writes media into its own temporary folder."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def make_jpeg(pattern: int = 0, size=(320, 240), *, fmt: str = "JPEG") -> bytes:
    """A valid image; each `pattern` gives a different picture (and perceptual hash)."""
    rng = np.random.default_rng(pattern)
    blocks = rng.integers(0, 256, size=(6, 8, 3), dtype=np.uint8)
    img = PILImage.fromarray(blocks, "RGB").resize(size, PILImage.NEAREST)
    out = io.BytesIO()
    img.save(out, fmt)
    return out.getvalue()


@pytest.fixture
def jpeg_bytes():
    return make_jpeg


@pytest.fixture(scope="session")
def trained(request, tmp_path_factory):
    """name -> TrainedModel, trained on first use and cached across sessions."""
    cache = getattr(request.config, "cache", None)  # None with -p no:cacheprovider
    if cache is not None:
        cache_dir = cache.mkdir("snapclass-trained-models")
    else:
        cache_dir = tmp_path_factory.mktemp("snapclass-trained-models")
    from tests.classifier import trained as trained_models  # torch: load lazily

    models: dict = {}

    def get(name: str):
        if name not in models:
            models[name] = trained_models.train_cached(cache_dir, name)
        return models[name]

    return get


def _group_member(django_user_model, username: str, group: str):
    from django.contrib.auth.models import Group

    user = django_user_model.objects.create_user(
        username=username, password="pw-" + username, is_staff=True
    )
    user.groups.add(Group.objects.get(name=group))
    return user


@pytest.fixture
def viewer(django_user_model):
    """A staff user in the read-only `viewers` group."""
    return _group_member(django_user_model, "vera-viewer", "viewers")


@pytest.fixture
def curator(django_user_model):
    """A staff user in the `curators` group."""
    return _group_member(django_user_model, "cora-curator", "curators")


def ensure_groups() -> None:
    """The `curators` and `viewers` groups as the migrations make them.

    Transactional tests flush every table after each test, data migrations' rows
    included; tests that need the groups there call this.
    """
    import importlib

    from django.apps import apps
    from django.db import connection

    for module in (
        "datasets.migrations.0002_groups",
        "classifier.migrations.0004_apikey_role_feedback_token_curator_perms",
    ):
        migration = importlib.import_module(module)
        creator = getattr(migration, "create_groups", None) or migration.grant
        creator(apps, connection.schema_editor())
