from __future__ import annotations

import math
import random
import time
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import torch
from PIL import Image

from training.ml import load_model
from training.ml.backbones import BACKBONES
from training.ml.folders import folder_items
from training.ml.nets import create_model
from training.ml.pipeline import run_training
from training.ml.preprocess import preprocess

DEMO = Path(__file__).resolve().parents[2] / "datasets" / "demo" / "images"
PER_LABEL = 24  # keeps the run around a minute on two CPU cores


@pytest.fixture
def real_items(tmp_path, draw_image):
    """Part of the bundled demo images, or generated ones where it is absent."""
    root = tmp_path / "images"
    if DEMO.is_dir():
        for label_dir in sorted(p for p in DEMO.iterdir() if p.is_dir()):
            (root / label_dir.name).mkdir(parents=True)
            for path in sorted(label_dir.iterdir())[:PER_LABEL]:
                (root / label_dir.name / path.name).symlink_to(path)
    else:
        rnd = random.Random(0)
        for label in ("red", "green", "blue"):
            (root / label).mkdir(parents=True)
            for i in range(PER_LABEL):
                draw_image(label, rnd).save(root / label / f"{i}.png")
    return folder_items(root, valid_pct=0.2, seed=0)


@pytest.mark.slow
def test_efficientnet_lite0_fine_tunes_and_exports_an_agreeing_onnx(
    real_items, tmp_path, tiny_config
):
    config = tiny_config(
        backbone="efficientnet_lite0",
        image_size=128,
        epochs=1,
        freeze_epochs=0,
        batch_size=32,
        base_lr=None,
    )
    started = time.perf_counter()

    outcome = run_training(config, real_items, tmp_path / "model")

    seconds = time.perf_counter() - started
    result = outcome.result
    print(f"efficientnet_lite0, {len(real_items)} images: {seconds:.1f}s")
    assert result.status == "succeeded"
    assert all(math.isfinite(v) for v in result.epochs[0].values() if v != "unfrozen")
    valid = [item for item in real_items if item.split == "valid"]
    assert np.array(result.confusion_matrix).sum() == len(valid)

    expected, _ = outcome.learner.get_preds(dl=outcome.learner.dls.valid)
    model, meta = load_model(result.artifacts["meta"])
    x = np.concatenate([preprocess(Image.open(i.path), meta) for i in valid])
    with torch.no_grad():
        reloaded = torch.softmax(model(torch.from_numpy(x)), dim=1).numpy()
    session = onnxruntime.InferenceSession(
        result.artifacts["onnx"], providers=["CPUExecutionProvider"]
    )
    (logits,) = session.run(["logits"], {"input": x})
    onnx_probs = torch.softmax(torch.from_numpy(logits), dim=1).numpy()

    assert meta["onnx_exporter"] == "dynamo"
    np.testing.assert_allclose(reloaded, expected.numpy(), atol=1e-5)
    np.testing.assert_allclose(onnx_probs, expected.numpy(), atol=1e-4)

    # The body's BatchNorm kept its ImageNet statistics; the head's learned its own.
    fresh = create_model(BACKBONES["efficientnet_lite0"], 4, pretrained=True)
    trained = outcome.learner.model
    body = [(k, v) for k, v in trained[0].state_dict().items() if "running_" in k]
    assert body and all(torch.equal(v.cpu(), fresh[0].state_dict()[k]) for k, v in body)
    head = [(k, v) for k, v in trained[1].state_dict().items() if "running_" in k]
    assert head and not all(
        torch.equal(v.cpu(), fresh[1].state_dict()[k]) for k, v in head
    )
