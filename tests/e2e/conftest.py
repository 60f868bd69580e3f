"""Chromium through Playwright: Debian's chromium, never `playwright install`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.core.cache import cache

from classifier.predictor import predictor_reset
from tests.classifier import trained as trained_models

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def pytest_collection_modifyitems(config, items):
    if CHROMIUM.exists():
        return
    if os.environ.get("CI"):
        raise pytest.UsageError(
            f"{CHROMIUM} is missing and CI is set: install Debian's chromium package."
        )
    skip = pytest.mark.skip(reason=f"{CHROMIUM} is missing (apt-get install chromium)")
    for item in items:
        if f"{os.sep}e2e{os.sep}" in str(item.fspath):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop running in this thread, which
    # makes Django refuse the test's own (synchronous) database calls.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
            )
            yield browser
            browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


class ConsoleLog:
    """Console errors and uncaught page errors seen by one page."""

    def __init__(self, page) -> None:
        self.errors: list[str] = []
        page.on(
            "console",
            lambda msg: self.errors.append(msg.text) if msg.type == "error" else None,
        )
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))


@pytest.fixture
def open_page(browser):
    """open_page(url, javascript=True) -> (page, console log); closed after the test."""
    contexts = []

    def open_(url: str, *, javascript: bool = True):
        context = browser.new_context(java_script_enabled=javascript)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(60_000)
        log = ConsoleLog(page)
        page.goto(url)
        return page, log

    yield open_
    for context in contexts:
        context.close()


@pytest.fixture
def site(live_server, settings, transactional_db, trained):
    """The live server with a current model; site.install(name) adds another."""
    settings.ROOT_URLCONF = "tests.classifier.urls"  # /media/ from this test's root
    settings.SNAPCLASS_PREDICT_RATE = ""
    predictor_reset()
    cache.clear()

    class Site:
        url = live_server.url

        @staticmethod
        def install(name: str, **kwargs):
            return trained_models.install(trained(name), **kwargs)

    yield Site
    predictor_reset()
