"""schemathesis against a live server with a current model: every check, its
examples, coverage and fuzzing phases, writes signed in as a superuser; 0 failures.

The schema is the contract: an answer it does not document, a body that does not
match it, a schema-valid request refused or an invalid one accepted all fail here.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import SESSION_KEY, get_user_model
from django.contrib.sessions.backends.db import SessionStore
from django.utils.crypto import get_random_string

from datasets.labels import ClassSpec
from datasets.scraping import scrape_job_create
from datasets.services import image_ingest, label_get_or_create
from tests.conftest import make_jpeg
from training.projects import project_create

pytestmark = pytest.mark.django_db(transaction=True)
CONFIG = Path(__file__).with_name("schemathesis.toml")


def signed_in_headers() -> list[str]:
    """A superuser's session cookie and a CSRF token, as curl-style headers."""
    user = get_user_model().objects.create_superuser("fuzzer", "", "pw")
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
    session["_auth_user_hash"] = user.get_session_auth_hash()
    session.save()
    csrf = get_random_string(32)
    cookies = (
        f"{django_settings.SESSION_COOKIE_NAME}={session.session_key}; "
        f"{django_settings.CSRF_COOKIE_NAME}={csrf}"
    )
    return ["-H", f"Cookie: {cookies}", "-H", f"X-CSRFToken: {csrf}"]


def test_schemathesis_finds_no_failure(live_server, install_model, settings, tmp_path):
    # A generated URL may name a real host: fail fast instead of waiting 20 s.
    settings.SNAPCLASS_FETCH_DEADLINE = 1.0
    version = install_model("two", promote=True)
    label = label_get_or_create(name="camera")
    image = image_ingest(data=make_jpeg(1), label=label, source_kind="upload")
    job = scrape_job_create(label=label, provider="ddg", enqueue=False)
    project = project_create(classes=[ClassSpec("TV")], provider="ddg", enqueue=False)
    # Real identifiers, so that the operations on one object reach their logic.
    config = tmp_path / "schemathesis.toml"
    config.write_text(
        CONFIG.read_text()
        + f"""
[[operations]]
include-path-regex = "^/api/v1/models/"
parameters = {{ "path.id" = {version.pk} }}

[[operations]]
include-path-regex = "^/api/v1/labels/"
parameters = {{ "path.slug" = "{label.slug}" }}

[[operations]]
include-path-regex = "^/api/v1/training-runs/"
parameters = {{ "path.id" = {version.run_id} }}

[[operations]]
include-path-regex = "^/api/v1/images/"
parameters = {{ "path.id" = {image.pk} }}

[[operations]]
include-path-regex = "^/api/v1/scrape-jobs/"
parameters = {{ "path.id" = {job.pk} }}

[[operations]]
include-path-regex = "^/api/v1/projects/"
parameters = {{ "path.id" = {project.pk} }}
"""
    )

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "--config-file",
            str(config),
            "run",
            f"{live_server.url}/api/schema/",
            *signed_in_headers(),
            "--report",
            "junit",
            "--report-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=tmp_path,
    )

    (tmp_path / "schemathesis.txt").write_text(result.stdout + result.stderr)
    output = result.stdout[-20_000:] + result.stderr[-5_000:]
    assert result.returncode == 0, output
    counts = re.search(r"(\d+) generated, (\d+) passed", output)
    assert counts and counts[1] == counts[2] and int(counts[1]) > 500, output
    assert "✅ Coverage" in output and "✅ Fuzzing" in output, output
