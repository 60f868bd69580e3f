"""S3-compatible media (SNAPCLASS_STORAGE=s3) against a real S3 server (moto's
standalone server, started here on 127.0.0.1): images, thumbnails, scraping
(whose staging fast path falls back), training artifacts, prediction, the sweep."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import uuid

import pytest
from django.core.files.storage import default_storage

from classifier.models import ModelVersion
from classifier.predictor import predictor_reset
from datasets import media, scraping
from datasets.models import Image
from datasets.services import image_ingest, label_get_or_create
from datasets.staging import Staging
from datasets.sweep import media_sweep
from tests.conftest import make_jpeg
from tests.datasets.scrape_site import build_site
from tests.servers import ROOT, S3Server
from tests.training.conftest import TINY, small_dataset  # noqa: F401 (fixture)
from tests.webserver import LocalServer
from training import runner


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    server = S3Server(tmp_path_factory.mktemp("s3"))
    yield server
    server.stop()


@pytest.fixture
def bucket(s3, settings, tmp_path):
    name = f"snapclass-{uuid.uuid4().hex[:12]}"
    s3.bucket(name)
    settings.STORAGES = s3.storages(name)
    settings.SNAPCLASS_MEDIA_CACHE_DIR = tmp_path / "cache" / "media"
    assert not media.is_local()
    predictor_reset()
    yield name
    predictor_reset()


def test_images_and_thumbnails_are_stored_in_the_bucket(s3, bucket, db):
    label = label_get_or_create(name="camera")

    image = image_ingest(data=make_jpeg(1), label=label, source_kind="upload")

    assert s3.keys(bucket) == {image.file.name, image.thumbnail.name}
    assert media.media_read(image.file.name)[:2] == b"\xff\xd8"
    assert image.file.url.startswith(s3.url)  # a signed link to the bucket


def test_a_rolled_back_ingest_leaves_no_object(s3, bucket, transactional_db):
    from django.db import transaction

    label = label_get_or_create(name="camera")
    with pytest.raises(RuntimeError), transaction.atomic():
        image_ingest(data=make_jpeg(2), label=label, source_kind="upload")
        raise RuntimeError

    assert s3.keys(bucket) == set()


def test_a_scrape_job_stores_through_the_bucket_without_staging(
    s3, bucket, db, settings
):
    with LocalServer() as site:
        build_site(site, good=12, duplicates=2, broken=2, slow=0)
        settings.BING_SEARCH_ENDPOINT = site.url("/bing/v7.0/images/search")
        settings.BING_SEARCH_KEY = "test-key"
        settings.SNAPCLASS_FETCH_ALLOW_PRIVATE_HOSTS = ["127.0.0.1"]
        assert Staging.open("scrape-1") is None  # the fast path steps aside
        label = label_get_or_create(name="camera", queries=["camera"])
        job = scraping.scrape_job_create(
            label=label, provider="bing", requested=16, enqueue=False
        )

        job = scraping.scrape_job_run(scraping.scrape_job_claim(job.pk))

    assert job.status == "succeeded", job.message
    assert job.downloaded == 12 and job.duplicates == 2
    images = Image.objects.filter(scrape_job=job)
    stored = {i.file.name for i in images} | {i.thumbnail.name for i in images}
    assert s3.keys(bucket) == stored
    assert not any(key.startswith(".staging") for key in s3.keys(bucket))


def test_a_run_trains_from_the_bucket_and_serves_its_model_from_it(
    s3,
    bucket,
    small_dataset,  # noqa: F811
    client,
    settings,
):
    run = runner.training_run_start(config=TINY, enqueue=False)

    run = runner.training_run_execute(runner.training_run_claim(run.pk))

    assert run.status == "succeeded", run.message
    version = ModelVersion.objects.get(run=run)
    assert version.is_current
    keys = s3.keys(bucket)
    for name in (version.weights_path, version.meta_path, version.onnx_path):
        assert name.startswith(f"models/run-{run.pk}/") and name in keys
    # Training read local copies, downloaded once into the media cache.
    assert any(settings.SNAPCLASS_MEDIA_CACHE_DIR.rglob("*.jpg"))
    photo = io.BytesIO(small_dataset[0].file.open("rb").read())
    photo.name = "photo.jpg"
    answer = client.post("/api/v1/predict/", {"image": photo})
    assert answer.status_code == 200, answer.content
    assert answer.json()["model_version"] == version.pk
    current = client.get("/api/v1/models/current/").json()
    assert current["onnx_url"].startswith(s3.url)


def test_the_sweep_removes_orphan_objects(s3, bucket, db):
    label = label_get_or_create(name="camera")
    image = image_ingest(data=make_jpeg(3), label=label, source_kind="upload")
    default_storage.save("images/ff/" + "f" * 64 + ".jpg", io.BytesIO(b"orphan"))

    report = media_sweep(min_age=0)

    assert report.removed == ["images/ff/" + "f" * 64 + ".jpg"]
    assert s3.keys(bucket) == {image.file.name, image.thumbnail.name}


def test_the_settings_select_s3_from_the_environment(s3, postgres, tmp_path):
    bucket = s3.bucket(f"snapclass-{uuid.uuid4().hex[:12]}")
    folder = tmp_path / "import" / "camera"
    folder.mkdir(parents=True)
    (folder / "a.jpg").write_bytes(make_jpeg(7))
    env = {
        **os.environ,
        **s3.env(bucket),
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
    }
    code = (
        "import django; django.setup();"
        "from django.core.files.storage import default_storage as s;"
        "print(type(s._wrapped if hasattr(s, '_wrapped') else s).__name__);"
        "print(s.save('images/aa/x.jpg', __import__('io').BytesIO(b'x')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "images/aa/x.jpg" in out.stdout
    assert s3.keys(bucket) == {"images/aa/x.jpg"}
