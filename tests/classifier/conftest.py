from __future__ import annotations

import pytest
from django.core.cache import cache

from classifier.predictor import predictor_reset
from tests.classifier import trained as trained_models
from tests.webserver import local_server  # noqa: F401  (a fixture)


@pytest.fixture(scope="session")
def trained(request, tmp_path_factory):
    """name -> TrainedModel, trained on first use and cached across sessions."""
    cache = getattr(request.config, "cache", None)  # None with -p no:cacheprovider
    if cache is not None:
        cache_dir = cache.mkdir("snapclass-trained-models")
    else:
        cache_dir = tmp_path_factory.mktemp("snapclass-trained-models")
    models: dict = {}

    def get(name: str):
        if name not in models:
            models[name] = trained_models.train_cached(cache_dir, name)
        return models[name]

    return get


@pytest.fixture
def install_model(db, trained):
    """install_model("two", promote=True) -> a registered ModelVersion."""

    def install(name: str, **kwargs):
        return trained_models.install(trained(name), **kwargs)

    return install


@pytest.fixture(autouse=True)
def _fresh_predictor(settings):
    """Each test starts with no model loaded, no rate-limit history, no limit."""
    settings.SNAPCLASS_PREDICT_RATE = ""
    predictor_reset()
    cache.clear()
    yield
    predictor_reset()
