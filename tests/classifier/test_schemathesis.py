"""Property-based requests generated from /api/schema/: no operation answers 5xx."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from config.wsgi import application

pytestmark = pytest.mark.django_db

# Loading the schema makes no database query, so it can happen at collection.
schema = schemathesis.openapi.from_wsgi("/api/schema/", application)


@pytest.fixture
def current_model(install_model, settings):
    # A generated URL may name a real host: fail fast instead of waiting 20 s.
    settings.SNAPCLASS_FETCH_DEADLINE = 1.0
    return install_model("two", promote=True)


@schema.parametrize()
@hypothesis_settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_no_api_operation_answers_with_a_server_error(case, current_model):
    response = case.call()

    assert response.status_code < 500, (
        f"{case.method} {case.formatted_path} -> {response.status_code}: "
        f"{response.text[:500]}"
    )
    if response.status_code >= 400 and case.path.startswith(
        ("/api/v1/predict", "/api/v1/models")
    ):
        body = response.json()
        assert isinstance(body["detail"], str) and isinstance(body["code"], str)
