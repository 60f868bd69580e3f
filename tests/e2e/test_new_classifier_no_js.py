"""The new-classifier page works without JavaScript (the flow itself, with a
worker, is in test_new_classifier.py)."""

from __future__ import annotations

import pytest

from datasets.models import Label, ScrapeJob

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_form_posts_and_the_progress_page_refreshes_itself(
    live_server, browser, django_user_model, settings
):
    settings.SNAPCLASS_SEARCH_PROVIDER = "ddg"
    django_user_model.objects.create_superuser("root", "", "a-long-password")
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(live_server.url + "/admin/login/?next=/classifiers/new/")
        page.fill("#id_username", "root")
        page.fill("#id_password", "a-long-password")
        with page.expect_navigation():
            page.click("input[type=submit]")
        assert page.is_visible("textarea[name=urls]")  # no script to hide it

        page.fill("textarea[name=classes]", "Flat TV\nradio")
        page.fill("input[name=per_label]", "20")
        with page.expect_navigation():
            page.click("#create-button")

        assert "/classifiers/" in page.url
        rows = page.locator("#class-progress tr[data-class]")
        assert (
            rows.count() == 2 and rows.nth(0).get_attribute("data-class") == "flat-tv"
        )
        assert "Collecting images" in page.inner_text("#project-headline")
        assert page.locator("noscript").count() >= 1  # it reloads itself
        assert sorted(Label.objects.values_list("slug", flat=True)) == [
            "flat-tv",
            "radio",
        ]
        assert ScrapeJob.objects.filter(provider="ddg", requested=20).count() == 2

        page.goto(live_server.url + "/classifiers/new/")
        page.fill("textarea[name=classes]", "TV\ntv")
        page.click("#create-button")
        assert "would both be the label “tv”" in page.inner_text("#form-errors")
    finally:
        context.close()
