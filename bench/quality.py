"""Model quality: Snapclass's defaults beside the seed notebook's recipe, on the same
held-out subjects.

    python -m bench quality            # all data sets
    python -m bench.quality emoji      # one, printing its figures

For each data set (bench/quality_data.py builds `emoji` and `icons`; `demo` is the
bundled demo set with 20% of its subjects moved to a test folder):

* Snapclass: a scratch database, `manage.py import_images train/`, then
  `manage.py train --wait` with the default settings; the model that is current
  afterwards answers every test image through the predictor (ONNX Runtime, the
  same decoding as the API, its calibrated probabilities).
* The plain recipe: bench/plain_recipe.py on the same train/ folder
  (ImageDataLoaders, RandomSplitter(0.2, 42), Resize, aug_transforms,
  fine_tune(4)), scored on the same test images.

Test images are whole subjects that neither saw. Also reported: the expected
calibration error of Snapclass's answers with and without its temperature.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench import Figure
from bench.common import ROOT, WORK, child_env, run_child, scratch

DATASETS = ("demo", "emoji", "icons")
# Error-rate targets against the plain recipe (lower is better).
TARGETS = {"demo": 1.0, "emoji": 0.9, "icons": 0.9}
DEMO_TEST_FRACTION = 0.2


def demo_split(out: Path) -> Path:
    """The demo set with 20% of each label's subjects (an icon or emoji, drawn up to
    twice: <source>-<icon>-<n>) moved to test/."""
    from django.conf import settings

    folder = out / "demo"
    if (folder / "manifest.json").is_file():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    counts = {"train": 0, "test": 0}
    for label_dir in sorted(Path(settings.SNAPCLASS_DEMO_DIR).iterdir()):
        files = sorted(p for p in label_dir.iterdir() if p.is_file())
        subjects = sorted({p.stem.rsplit("-", 1)[0] for p in files})
        ranked = sorted(
            subjects, key=lambda s: hashlib.sha256(f"demo|{s}".encode()).hexdigest()
        )
        test = set(ranked[: round(DEMO_TEST_FRACTION * len(ranked))])
        for path in files:
            side = "test" if path.stem.rsplit("-", 1)[0] in test else "train"
            target = folder / side / label_dir.name
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, target / path.name)
            counts[side] += 1
    (folder / "manifest.json").write_text(json.dumps({"images": counts}) + "\n")
    return folder


def test_images(test_dir: Path) -> list[tuple[Path, str]]:
    return sorted(
        (path, label_dir.name)
        for label_dir in sorted(test_dir.iterdir())
        if label_dir.is_dir()
        for path in label_dir.iterdir()
        if path.is_file()
    )


def child(train_dir: str, test_dir: str) -> dict:
    """In a scratch database: import, train with the defaults, score the test set."""
    from bench.common import django_ready

    django_ready()
    import numpy as np
    from django.core.management import call_command

    from classifier.models import ModelVersion
    from classifier.predictor import OnnxModel
    from datasets.services import image_decode
    from training.ml import calibrate
    from training.models import TrainingRun

    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "manage.py", "import_images", train_dir],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    imported = json.loads(out.stdout.strip().splitlines()[-1])
    import_seconds = time.perf_counter() - started
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "manage.py", "train", "--wait"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    train_seconds = time.perf_counter() - started
    if out.returncode != 0:
        raise RuntimeError(f"train failed:\n{out.stdout[-3000:]}{out.stderr[-3000:]}")
    trained = json.loads(out.stdout.strip().splitlines()[-1])
    call_command("check")  # the database connection is still usable
    run = TrainingRun.objects.get(pk=trained["run"])
    version = ModelVersion.objects.get(is_current=True)
    model = OnnxModel.from_version(version, threads=2)
    temperature = float(version.preprocessing.get("temperature", 1.0))
    index = {name: i for i, name in enumerate(version.label_names)}
    logits, targets = [], []
    images = test_images(Path(test_dir))
    for start in range(0, len(images), 32):
        batch = images[start : start + 32]
        logits.append(model.logits([image_decode(p.read_bytes()) for p, _ in batch]))
        targets.extend(index[label] for _, label in batch)
    logits_np = np.concatenate(logits).astype(np.float64)
    targets_np = np.array(targets)
    raw = calibrate.softmax(logits_np)
    calibrated = calibrate.softmax(logits_np, temperature)
    epochs = list(run.epochs.order_by("epoch").values("epoch", "phase", "error_rate"))
    return {
        "import": imported,
        "import_seconds": round(import_seconds, 1),
        "train_seconds": round(train_seconds, 1),
        "run": {
            "image_count": run.image_count,
            "valid_count": run.valid_count,
            "valid_error_rate": run.error_rate,
            "best_epoch": run.best_epoch,
            "epochs": epochs,
            "message": run.message,
            "test": getattr(run, "test_metrics", None),
        },
        "model_version": version.pk,
        "temperature": temperature,
        "n_test": len(targets),
        "test_error_rate": float((raw.argmax(1) != targets_np).mean()),
        "test_loss": calibrate.nll(logits_np, targets_np, temperature),
        "ece_raw": calibrate.expected_calibration_error(raw, targets_np),
        "ece_calibrated": calibrate.expected_calibration_error(calibrated, targets_np),
    }


def measure(name: str) -> dict:
    """Both recipes on one data set; the raw numbers."""
    from bench.quality_data import build

    base = WORK / "quality"
    if name == "demo":
        folder = demo_split(base)
    else:
        build(base, [name])
        folder = base / name
    train_dir, test_dir = folder / "train", folder / "test"
    work = scratch(f"quality-{name}")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    ours = run_child(
        "bench.quality", "child", str(train_dir), str(test_dir), env=child_env(work)
    )
    out = subprocess.run(
        [sys.executable, "bench/plain_recipe.py", str(train_dir), str(test_dir)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    plain = json.loads(out.stdout.strip().splitlines()[-1])
    from training.ml import calibrate

    plain["ece"] = calibrate.expected_calibration_error(
        plain.pop("test_probs"), plain.pop("test_targets")
    )
    return {"name": name, "snapclass": ours, "plain": plain}


def figures(result: dict) -> list[Figure]:
    name, ours, plain = result["name"], result["snapclass"], result["plain"]
    run = ours["run"]
    return [
        Figure(
            name=f"held-out test error on {name}, Snapclass defaults vs plain recipe",
            value=ours["test_error_rate"],
            baseline=plain["test_error_rate"],
            unit="error rate",
            better="lower",
            target_ratio=TARGETS[name],
            notes=(
                f"{ours['n_test']} test images of held-out subjects; Snapclass "
                f"trained on {run['image_count'] - run['valid_count']} of "
                f"{ours['import'].get('imported')} imported ({run['valid_count']} "
                f"held out inside the run), best epoch {run['best_epoch']}, "
                f"{ours['train_seconds']:.0f} s; plain: {plain['n_train']} train / "
                f"{plain['n_valid']} valid, {plain['seconds']:.0f} s"
            ),
        ),
        Figure(
            name=f"expected calibration error on {name}, with vs without temperature",
            value=ours["ece_calibrated"],
            baseline=ours["ece_raw"],
            unit="ECE",
            better="lower",
            notes=(
                f"T = {ours['temperature']:.3f} fitted on validation; target ECE "
                f"after <= 0.05: {'ok' if ours['ece_calibrated'] <= 0.05 else 'MISSED'}"
                f"; plain recipe's ECE {plain['ece']:.3f}"
            ),
        ),
    ]


def run() -> list[Figure]:
    results = [measure(name) for name in DATASETS]
    (WORK / "quality-results.json").write_text(json.dumps(results, indent=2) + "\n")
    return [fig for result in results for fig in figures(result)]


if __name__ == "__main__":
    if sys.argv[1] == "child":
        print(json.dumps(child(sys.argv[2], sys.argv[3])))
    else:
        import os

        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
        import django

        django.setup()
        for name in sys.argv[1:]:
            result = measure(name)
            print(json.dumps(result))
            for fig in figures(result):
                print(f"{fig.name}: {fig.value:.4f} vs {fig.baseline:.4f}", fig.notes)
