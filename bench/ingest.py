"""Import of 500 generated ~800x600 JPEGs vs the same decode-and-resize in Pillow.

Each side runs in a fresh child process (so peak memory is its own); the timed part
is the loop alone, not interpreter or Django start-up.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from bench import Figure
from bench.common import child_env, django_ready, peak_rss_mb, run_child, scratch

N_IMAGES = 500
LABELS = ("woman", "man", "camera", "TV")


def generate(folder: Path) -> list[Path]:
    """Photo-like JPEGs: smooth gradients plus noise, ~800x600, distinct content."""
    if folder.exists() and len(list(folder.rglob("*.jpg"))) == N_IMAGES:
        return sorted(folder.rglob("*.jpg"))
    shutil.rmtree(folder, ignore_errors=True)
    rng = np.random.default_rng(0)
    paths = []
    yy, xx = np.mgrid[0:600, 0:800]
    for i in range(N_IMAGES):
        label_dir = folder / LABELS[i % len(LABELS)]
        label_dir.mkdir(parents=True, exist_ok=True)
        base = rng.integers(0, 256, size=(4, 5, 3)).astype(np.float32)
        img = np.asarray(
            Image.fromarray(base.astype(np.uint8)).resize((800, 600), Image.BILINEAR),
            dtype=np.float32,
        )
        img += 30 * np.sin((xx * (i % 7 + 1) + yy * (i % 5 + 1)) / 40.0)[..., None]
        img += rng.normal(0, 12, img.shape)
        out = label_dir / f"{i:04d}.jpg"
        Image.fromarray(img.clip(0, 255).astype(np.uint8)).save(out, quality=88)
        paths.append(out)
    return paths


def child_baseline(folder: str) -> dict:
    paths = sorted(Path(folder).rglob("*.jpg"))
    started = time.perf_counter()
    for path in paths:
        with Image.open(path) as img:
            img = img.convert("RGB")
            img.thumbnail((512, 512))
    seconds = time.perf_counter() - started
    return {"n": len(paths), "seconds": seconds, "peak_rss_mb": peak_rss_mb()}


def child_import(folder: str) -> dict:
    django_ready()
    from datasets.importing import import_images

    started = time.perf_counter()
    report = import_images(folder)
    seconds = time.perf_counter() - started
    assert report.imported == N_IMAGES, report.as_dict()
    return {"n": report.imported, "seconds": seconds, "peak_rss_mb": peak_rss_mb()}


def run() -> list[Figure]:
    work = scratch("ingest")
    images = work / "images"
    generate(images)
    figures = []
    base = run_child("bench.ingest", "baseline", str(images), env=child_env(work))
    db_dir = work / "run"
    shutil.rmtree(db_dir, ignore_errors=True)
    db_dir.mkdir()
    ours = run_child("bench.ingest", "import", str(images), env=child_env(db_dir))
    figures.append(
        Figure(
            name="import rate (500 JPEGs ~800x600)",
            value=ours["n"] / ours["seconds"],
            baseline=base["n"] / base["seconds"],
            unit="images/s",
            better="higher",
            target_ratio=0.7,
            notes="baseline: Image.open + convert('RGB') + thumbnail(512) in a loop",
        )
    )
    figures.append(
        Figure(
            name="import peak memory",
            value=ours["peak_rss_mb"],
            baseline=base["peak_rss_mb"],
            unit="MB RSS",
            better="lower",
            notes="whole child process, Django and the ORM included",
        )
    )
    shutil.rmtree(db_dir, ignore_errors=True)
    return figures


if __name__ == "__main__":
    mode, folder = sys.argv[1], sys.argv[2]
    result = child_baseline(folder) if mode == "baseline" else child_import(folder)
    print(json.dumps(result))
