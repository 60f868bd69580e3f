"""Every curl example of the README's API section, run as written against a live
server: the README is read here, so the examples and this test cannot drift.

Only what a reader substitutes is substituted: the server's address, the
example.com image (a local server: the network is closed), the ids of a run and a
model that exist, and $SNAPCLASS_KEY (a curator key, from the environment).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from classifier.services import api_key_create
from datasets.models import ScrapeJob
from datasets.services import image_ingest, label_get_or_create
from tests.conftest import make_jpeg
from tests.training.conftest import COLOURS, coloured_image
from training.models import TrainingRun

ROOT = Path(__file__).resolve().parents[2]
README_HOST = "http://127.0.0.1:8000"

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed"),
]


def readme_api_commands() -> list[str]:
    """The curl commands of the first sh block of "## The REST API" with a curl."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## The REST API", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.S)
    commands = []
    for block in blocks:
        joined = block.replace("\\\n", " ")
        commands += [
            " ".join(line.split())
            for line in joined.splitlines()
            if line.startswith("curl ")
        ]
    return commands


def test_the_readme_has_the_api_examples_this_test_runs():
    commands = readme_api_commands()
    text = " ".join(commands)
    assert len(commands) >= 14
    for needle in (
        "/api/v1/predict/",
        "/api/v1/feedback/",
        '-d \'{"label": "camera", "max": 150}\'',
        "/api/v1/training-runs/",
        "/promote/",
        "Api-Key $SNAPCLASS_KEY",
    ):
        assert needle in text, needle
    assert " -u " not in text  # Basic auth is not offered


def test_every_readme_api_example_works_against_a_live_server(
    live_server, install_model, local_server, settings, tmp_path
):
    settings.SNAPCLASS_PREDICT_URL_ALLOW_PRIVATE_HOSTS = ["127.0.0.1"]
    for n, (name, colour) in enumerate(COLOURS.items()):
        label = label_get_or_create(name=name)
        for i in range(5):
            image_ingest(
                data=coloured_image(colour, 300 + n * 10 + i),
                label=label,
                source_kind="upload",
            )
    for name in ("camera", "tv"):
        label_get_or_create(name=name)
    current = install_model("two", promote=True)
    older = install_model("two")
    run = TrainingRun.objects.exclude(model_version=None).get(model_version=current)
    _, key = api_key_create(name="readme", role="curator")
    (tmp_path / "cat.jpg").write_bytes(make_jpeg(1))
    (tmp_path / "a.jpg").write_bytes(make_jpeg(2))
    (tmp_path / "b.png").write_bytes(make_jpeg(3, fmt="PNG"))
    image_url = local_server.add(
        "/tv.jpg", body=make_jpeg(4), headers={"Content-Type": "image/jpeg"}
    )

    answers = []
    for command in readme_api_commands():
        runnable = (
            command.replace(README_HOST, live_server.url)
            .replace("https://example.com/tv.jpg", image_url)
            .replace("/training-runs/1/", f"/training-runs/{run.pk}/")
            .replace("/models/3/", f"/models/{older.pk}/")
        )
        out = subprocess.run(
            runnable + " -w '\\n%{http_code}'",
            shell=True,
            cwd=tmp_path,
            env={**os.environ, "SNAPCLASS_KEY": key},
            capture_output=True,
            text=True,
            timeout=120,
        )
        body, _, status = out.stdout.rpartition("\n")
        assert out.returncode == 0, (command, out.stderr)
        assert status.startswith("2"), (command, status, body)
        answers.append((command, json.loads(body)))

    by_path = {}
    for command, body in answers:
        by_path.setdefault(command.split()[-1].rsplit("8000", 1)[-1], []).append(body)
    assert by_path["/api/v1/predict/"][0]["label"] in ("red", "blue")
    assert len(by_path["/api/v1/predict/"][1]["results"]) == 2
    assert ScrapeJob.objects.filter(label__slug="camera", requested=150).exists()
    assert TrainingRun.objects.filter(status="queued", trigger="api").exists()
    older.refresh_from_db()
    assert older.is_current
