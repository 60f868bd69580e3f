"""The API docs work offline: Swagger UI comes from our own static files."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_api_docs_load_with_every_outside_request_blocked(live_server, browser):
    context = browser.new_context()
    outside: list[str] = []

    def only_local(route):
        host = urlsplit(route.request.url).hostname
        if host in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    context.route("**/*", only_local)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(live_server.url + "/api/docs/")
        page.wait_for_selector(".swagger-ui .info .title", timeout=30_000)
        page.wait_for_selector(".opblock-summary-path", timeout=30_000)

        assert "Snapclass API" in page.inner_text(".swagger-ui .info .title")
        paths = page.locator(".opblock-summary-path").all_inner_texts()
        assert "/api/v1/projects/" in paths and "/api/v1/predict/" in paths
        assert outside == []
        assert errors == []
    finally:
        context.close()
