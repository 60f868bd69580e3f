from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings

from classifier import predictor
from classifier.registry import model_version_promote
from datasets.imaging import decode_image
from datasets.services import image_decode
from tests.datasets.badfiles import good_files

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


def _post(client, data: bytes, name: str = "image.jpg"):
    upload = io.BytesIO(data)
    upload.name = name
    return client.post("/api/v1/predict/", {"image": upload})


@pytest.mark.parametrize("name", ["two", "three"])
def test_api_probabilities_equal_the_trained_models_own_on_validation_images(
    client, install_model, trained, name
):
    import torch

    from training.ml import load_model
    from training.ml.preprocess import preprocess

    model = trained(name)
    version = install_model(name, promote=True)
    net, meta = load_model(model.artifacts / "meta.json")
    learner_rows = {row["path"]: row for row in model.result.per_image}
    assert model.valid_items

    for item in model.valid_items:
        data = Path(item.path).read_bytes()
        response = _post(client, data, Path(item.path).name)

        assert response.status_code == 200, response.json()
        body = response.json()
        assert body["model_version"] == version.pk
        got = {p["label"]: p["probability"] for p in body["probabilities"]}
        # The fastai learner's own answer for this validation image, from training.
        learner = learner_rows[item.path]
        assert body["label"] == learner["predicted"]
        assert body["confidence"] == pytest.approx(learner["confidence"], abs=1e-4)
        # And the torch model rebuilt from the safetensors weights, calibrated.
        x = torch.from_numpy(preprocess(decode_image(data), meta))
        with torch.inference_mode():
            expected = torch.softmax(net(x) / meta["temperature"], dim=1)[0].numpy()
        for i, label in enumerate(meta["label_names"]):
            assert got[label] == pytest.approx(float(expected[i]), abs=1e-4)


def test_api_probabilities_are_softmax_of_the_logits_over_the_temperature(
    client, install_model, trained
):
    import onnxruntime

    from training.ml.preprocess import preprocess

    model = trained("three")
    version = install_model("three", promote=True)
    meta = json.loads((model.artifacts / "meta.json").read_text())
    assert version.temperature == meta["temperature"] != 1.0
    session = onnxruntime.InferenceSession(
        str(model.artifacts / "model.onnx"), providers=["CPUExecutionProvider"]
    )
    for item in model.valid_items[:6]:
        data = Path(item.path).read_bytes()
        x = preprocess(decode_image(data), meta)
        (logits,) = session.run(None, {"input": x})
        z = logits[0].astype(np.float64) / meta["temperature"]
        expected = np.exp(z - z.max()) / np.exp(z - z.max()).sum()

        body = _post(client, data, Path(item.path).name).json()

        got = {p["label"]: p["probability"] for p in body["probabilities"]}
        for i, label in enumerate(meta["label_names"]):
            assert got[label] == pytest.approx(float(expected[i]), abs=1e-6)


def test_an_answer_below_the_threshold_is_marked_uncertain(
    client, install_model, settings, jpeg_bytes
):
    version = install_model("two", promote=True)
    assert version.uncertain_below is not None
    body = _post(client, jpeg_bytes(1)).json()
    assert body["uncertain"] == (body["confidence"] < version.uncertain_below)

    settings.SNAPCLASS_UNCERTAIN_BELOW = 1.0  # the setting overrides the model's
    assert _post(client, jpeg_bytes(1)).json()["uncertain"] is True
    settings.SNAPCLASS_UNCERTAIN_BELOW = 0.0
    assert _post(client, jpeg_bytes(1)).json()["uncertain"] is False


def test_the_predictor_swaps_to_a_promoted_version_within_the_check_interval(
    client, install_model, settings, jpeg_bytes
):
    settings.SNAPCLASS_PREDICTOR_CHECK_SECONDS = 0.5
    old = install_model("two", promote=True)
    new = install_model("three")
    assert _post(client, jpeg_bytes(1)).json()["model_version"] == old.pk

    model_version_promote(version=new)
    time.sleep(0.5)

    response = _post(client, jpeg_bytes(1))
    assert response.json()["model_version"] == new.pk
    assert [p["label"] for p in response.json()["probabilities"]] != []
    assert predictor.current_model().version_id == new.pk


def test_the_predictor_loads_each_version_once_per_process(install_model):
    install_model("two", promote=True)

    first = predictor.current_model()
    second = predictor.current_model()

    assert first is second
    assert first.session.get_session_options().intra_op_num_threads == 1


def test_the_predictor_uses_the_configured_thread_count(install_model, settings):
    settings.SNAPCLASS_PREDICT_THREADS = 2
    install_model("two", promote=True)

    model = predictor.current_model()

    assert model.session.get_session_options().intra_op_num_threads == 2


def test_a_tampered_current_model_is_refused_with_503(
    client, install_model, jpeg_bytes
):
    version = install_model("two", promote=True)
    path = Path(settings.MEDIA_ROOT) / version.onnx_path
    os.chmod(path, 0o644)
    path.write_bytes(path.read_bytes() + b"\x00")

    response = _post(client, jpeg_bytes(1))

    assert response.status_code == 503
    assert response.json()["code"] == "model_unavailable"
    assert "sha256" in response.json()["detail"]


@pytest.mark.parametrize("name", sorted(good_files()))
def test_every_accepted_kind_of_image_is_predicted(client, install_model, name):
    install_model("two", promote=True)

    response = _post(client, good_files()[name], name)

    assert response.status_code == 200, response.json()
    total = sum(p["probability"] for p in response.json()["probabilities"])
    assert total == pytest.approx(1.0, abs=1e-6)


def test_exif_orientation_is_applied_before_predicting(install_model):
    from tests.datasets.badfiles import exif_oriented_jpeg, jpeg, quadrants

    install_model("three", promote=True)
    model = predictor.current_model()
    upright = model.predict([image_decode(jpeg(quadrants((96, 48))))])
    rotated = exif_oriented_jpeg(6, (96, 48))  # stored sideways, tagged to rotate

    sideways = model.predict([image_decode(rotated)])

    assert image_decode(rotated).size == (48, 96)
    assert sideways[0].label in model.label_names
    assert upright[0].model_version == sideways[0].model_version


def test_a_web_process_predicts_without_importing_torch(trained, tmp_path):
    model = trained("two")
    media = tmp_path / "media"
    shutil.copytree(model.artifacts, media / "models" / "m")
    image = Path(model.valid_items[0].path)
    script = textwrap.dedent(
        """
        import json, sys
        from pathlib import Path
        import django
        django.setup()
        from django.core.management import call_command
        call_command("migrate", verbosity=0)
        import config.wsgi  # the whole web stack, URLs included
        from django.test import Client
        from django.urls import get_resolver
        get_resolver().url_patterns
        from classifier.registry import model_version_promote, model_version_register
        from training.ml import TrainResult
        folder, image = Path(sys.argv[1]), sys.argv[2]
        meta = json.loads((folder / "meta.json").read_text())
        result = TrainResult(
            status="succeeded", device="cpu", seconds=0.0, epochs=[],
            best_epoch=None, label_names=meta["label_names"],
        )
        version = model_version_register(
            run=None, artifacts_dir=folder, result=result
        )
        model_version_promote(version=version)
        with open(image, "rb") as f:
            response = Client(SERVER_NAME="localhost").post(
                "/api/v1/predict/", {"image": f}
            )
        heavy = [m for m in sys.modules if m.split(".")[0] in ("torch", "fastai")]
        print(json.dumps({
            "status": response.status_code,
            "body": response.content.decode(),
            "torch": sorted(heavy),
        }))
        """
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "MEDIA_ROOT": str(media),
        "PYTHONPATH": str(ROOT),
    }

    out = subprocess.run(
        [sys.executable, "-c", script, str(media / "models" / "m"), str(image)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["status"] == 200, report
    assert json.loads(report["body"])["label"] in ("blue", "red")
    assert report["torch"] == []


def test_softmax_of_the_session_matches_numpy(install_model):
    install_model("two", promote=True)
    model = predictor.current_model()
    image = decode_image(good_files()["jpeg"])

    logits = model.logits([image])
    probs = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()

    assert model.predict([image])[0].confidence == pytest.approx(probs.max(), abs=1e-6)
