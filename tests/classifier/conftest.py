from __future__ import annotations

import pytest
from django.core.cache import cache

from classifier.predictor import predictor_reset
from tests.classifier import trained as trained_models
from tests.webserver import local_server  # noqa: F401  (a fixture)


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
    settings.SNAPCLASS_PREDICT_URL_RATE = ""
    settings.SNAPCLASS_FEEDBACK_RATE = ""
    predictor_reset()
    cache.clear()
    yield
    predictor_reset()
