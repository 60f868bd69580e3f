"""How the default training recipe was chosen: variants of TrainConfig, each trained
by the ML core on the quality data sets and scored on their held-out subjects.

    python -m bench.recipes [--dataset emoji --dataset icons] [--variant NAME ...]

Each variant trains with `training.ml.train` on `train/` (split by near-duplicate
group exactly as a run does: 20% validation, 10% test) and is scored on `test/`
(whole subjects the run never saw) through its exported ONNX model with its
calibrated probabilities. Results go to bench/work/recipes.json (one row per
dataset and variant, kept across invocations) and a table on stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import WORK

# Overrides of TrainConfig's defaults (the "default" variant is the defaults).
VARIANTS: dict[str, dict] = {
    "default": {},
    "lr-1e-3": {"base_lr": 1e-3},
    "lr-4e-3": {"base_lr": 4e-3},
    "lr-8e-3": {"base_lr": 8e-3},
    "freeze-3": {"freeze_epochs": 3},
    "head-only-5": {"freeze_epochs": 5, "epochs": 0},
    "epochs-8": {"epochs": 8},
    "size-160": {"image_size": 160},
    "size-288": {"image_size": 288},
    "crop": {"resize_method": "crop"},
    "smooth-0.1": {"label_smoothing": 0.1},
    "bn-train": {"body_bn": "train"},
}
RESULTS = WORK / "recipes.json"


def score(result, test_dir: Path) -> dict:
    """Error, loss and calibration error of a run's model on every test image."""
    import onnxruntime
    from PIL import Image

    from training.ml import calibrate
    from training.ml.preprocess import preprocess

    meta = json.loads(Path(result.artifacts["meta"]).read_text())
    session = onnxruntime.InferenceSession(
        result.artifacts["onnx"], providers=["CPUExecutionProvider"]
    )
    files = sorted(p for p in test_dir.glob("*/*") if p.is_file())
    index = {name: i for i, name in enumerate(meta["label_names"])}
    logits = []
    for start in range(0, len(files), 32):
        x = np.concatenate(
            [
                preprocess(Image.open(p).convert("RGB"), meta)
                for p in files[start : start + 32]
            ]
        )
        logits.append(session.run(None, {meta["input_name"]: x})[0])
    z = np.concatenate(logits).astype(np.float64)
    targets = np.array([index[p.parent.name] for p in files])
    probs = calibrate.softmax(z, meta["temperature"])
    return {
        "n_test": len(files),
        "test_error_rate": float((probs.argmax(1) != targets).mean()),
        "test_loss": calibrate.nll(z, targets, meta["temperature"]),
        "test_ece_raw": calibrate.expected_calibration_error(
            calibrate.softmax(z), targets
        ),
        "test_ece": calibrate.expected_calibration_error(probs, targets),
    }


def run_variant(dataset: str, name: str) -> dict:
    from bench.quality import demo_split
    from bench.quality_data import build
    from training.ml import TrainConfig, train
    from training.ml.folders import folder_items

    base = WORK / "quality"
    if dataset == "demo":
        folder = demo_split(base)
    else:
        build(base, [dataset])
        folder = base / dataset
    config = TrainConfig(**{**VARIANTS[name], "device": "cpu"})
    items = folder_items(
        folder / "train",
        valid_pct=config.valid_pct,
        test_pct=config.test_pct,
        seed=config.seed,
    )
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        result = train(config, items, out)
        scores = score(result, folder / "test")
    return {
        "dataset": dataset,
        "variant": name,
        "config": VARIANTS[name],
        "seconds": round(time.perf_counter() - started, 1),
        "valid_error_rate": result.error_rate,
        "split_test_error_rate": (result.test or {}).get("error_rate"),
        "best_epoch": result.best_epoch,
        "epochs": [
            (r["phase"], round(r["valid_loss"], 4), round(r["error_rate"], 4))
            for r in result.epochs
        ],
        "temperature": result.calibration.get("temperature"),
        **scores,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--dataset", action="append", choices=["demo", "emoji", "icons"]
    )
    parser.add_argument("--variant", action="append", choices=sorted(VARIANTS))
    args = parser.parse_args(argv)
    import django

    django.setup()  # demo_split reads the demo folder from the settings
    rows = json.loads(RESULTS.read_text()) if RESULTS.exists() else []
    for dataset in args.dataset or ["emoji", "icons"]:
        for name in args.variant or list(VARIANTS):
            row = run_variant(dataset, name)
            rows = [
                r for r in rows if (r["dataset"], r["variant"]) != (dataset, name)
            ] + [row]
            RESULTS.write_text(json.dumps(rows, indent=2) + "\n")
            print(
                f"{dataset:6} {name:12} test error {row['test_error_rate']:.3f} "
                f"(ECE {row['test_ece']:.3f}, raw {row['test_ece_raw']:.3f}), "
                f"valid {row['valid_error_rate']:.3f}, best epoch "
                f"{row['best_epoch']}, {row['seconds']:.0f} s",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    import os

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    sys.exit(main())
