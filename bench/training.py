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

from bench import Figure
from bench.common import ROOT, child_env, run_child, scratch

CONFIG = {"backbone": "efficientnet_lite0", "epochs": 2, "image_size": 160, "seed": 42}


def child(items_path: str) -> dict:
    """In the scratch database: import the demo, train with --wait, dump the items."""
    from bench.common import django_ready

    django_ready()
    from django.conf import settings

    from datasets.importing import import_images
    from training.models import RunImage

    import_images(settings.SNAPCLASS_DEMO_DIR)
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
    result = json.loads(out.stdout.strip().splitlines()[-1])
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
    base = json.loads(plain.stdout.strip().splitlines()[-1])
    config = ", ".join(f"{k}={v}" for k, v in CONFIG.items())
    return [
        Figure(
            name="training time, Snapclass run vs plain fastai",
            value=ours["seconds"],
            baseline=base["seconds"],
            unit="s",
            better="lower",
            target_ratio=1.15,
            notes=f"demo dataset, {config}, {ours['device']}",
        ),
        Figure(
            name="final error rate, Snapclass run vs plain fastai",
            value=ours["error_rate"],
            baseline=base["error_rate"],
            unit="error rate",
            better="lower",
            notes=(
                "same seed and split; difference "
                f"{ours['error_rate'] - base['error_rate']:+.3f} (target: within 0.03)"
            ),
        ),
    ]


if __name__ == "__main__":
    assert sys.argv[1] == "child"
    print(json.dumps(child(sys.argv[2])))
