"""Training overhead: a Snapclass run (`manage.py train --wait`) beside the plain
fastai script a practitioner would write, on the same items, split and config.

The demo dataset is imported into a scratch database; the run's own snapshot (file,
label, split) is handed to the plain script, so both train on exactly the same data.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time

from bench import Figure
from bench.common import ROOT, child_env, run_child, scratch

# The run `make run` users start first: the defaults (4 epochs at 224 px, one frozen).
CONFIG = {"backbone": "efficientnet_lite0", "epochs": 4, "image_size": 224, "seed": 42}


def child(items_path: str) -> dict:
    """In the scratch database: import the demo, train with --wait, dump the items."""
    from bench.common import django_ready

    django_ready()
    from django.conf import settings

    from datasets.importing import import_images
    from training.models import RunImage, TrainingRun

    import_images(settings.SNAPCLASS_DEMO_DIR)
    started = time.perf_counter()
    out = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "train",
            "--wait",
            *(f"--{k.replace('_', '-')}={v}" for k, v in CONFIG.items()),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    wall = time.perf_counter() - started
    result = json.loads(out.stdout.strip().splitlines()[-1])
    run = TrainingRun.objects.get(pk=result["run"])
    last = run.epochs.order_by("epoch").last()
    result.update(wall=wall, last_error_rate=last.error_rate)
    rows = RunImage.objects.filter(run_id=result["run"]).order_by("pk")
    items = [[str(settings.MEDIA_ROOT / r.file), r.label_name, r.split] for r in rows]
    with open(items_path, "w") as fh:
        json.dump(items, fh)
    return result


def run() -> list[Figure]:
    work = scratch("training")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    items = work / "items.json"
    env = child_env(work)
    ours = run_child("bench.training", "child", str(items), env=env)
    assert ours["status"] == "succeeded", ours
    started = time.perf_counter()
    plain = subprocess.run(
        [
            sys.executable,
            "bench/plain_fastai.py",
            "--items-json",
            str(items),
            *(f"--{k.replace('_', '-')}={v}" for k, v in CONFIG.items()),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    plain_wall = time.perf_counter() - started
    base = json.loads(plain.stdout.strip().splitlines()[-1])
    config = ", ".join(f"{k}={v}" for k, v in CONFIG.items())
    n_valid = sum(split == "valid" for _, _, split in json.loads(items.read_text()))
    return [
        Figure(
            name="training time, Snapclass run vs plain fastai",
            value=ours["wall"],
            baseline=plain_wall,
            unit="s",
            better="lower",
            target_ratio=1.15,
            notes=(
                f"demo dataset, {config}, {ours['device']}; each command from start "
                "to exit: `manage.py train --wait` (snapshot, fine_tune, evaluation, "
                "safetensors + ONNX export and check, registry, promotion gate) vs "
                "the plain notebook (fine_tune, confusion matrix, every image's "
                "loss, weights saved)"
            ),
        ),
        Figure(
            name="final error rate, Snapclass run vs plain fastai",
            value=ours["last_error_rate"],
            baseline=base["error_rate"],
            unit="error rate",
            better="lower",
            notes=(
                "last epoch of each, same seed and split; difference "
                f"{ours['last_error_rate'] - base['error_rate']:+.3f} (target: "
                f"within 0.03, i.e. one of the {n_valid} validation images); the run "
                f"keeps its best epoch: {ours['error_rate']:.3f}"
            ),
        ),
    ]


if __name__ == "__main__":
    assert sys.argv[1] == "child"
    print(json.dumps(child(sys.argv[2])))
