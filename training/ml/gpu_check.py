"""`make gpu-check`: one short CUDA training run with mixed precision.

Prints the device name, training images per second and seconds per epoch, and
exits non-zero if CUDA was not used. Generated images, so it needs no dataset.

    python -m training.ml.gpu_check [--images-per-label 96] [--epochs 2]
                                    [--num-workers N]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from training.ml import Item, TrainCallbacks, TrainConfig, train

COLOURS = [(200, 40, 40), (40, 180, 60), (40, 70, 210), (220, 200, 40)]


def make_items(root: Path, per_label: int, size: int = 256) -> list[Item]:
    rng = np.random.default_rng(0)
    items = []
    for n, colour in enumerate(COLOURS):
        label = f"class{n}"
        (root / label).mkdir(parents=True, exist_ok=True)
        for i in range(per_label):
            noise = rng.integers(0, 120, size=(8, 8, 3)) + np.array(colour) * 0.5
            img = Image.fromarray(noise.clip(0, 255).astype(np.uint8)).resize(
                (size, size), Image.BILINEAR
            )
            path = root / label / f"{i}.jpg"
            img.save(path, quality=90)
            items.append(Item(str(path), label, "valid" if i % 5 == 0 else "train"))
    return items


class Timer(TrainCallbacks):
    def __init__(self) -> None:
        self.epochs: list[dict[str, Any]] = []
        self.device = ""

    def on_start(self, *, device: str, n_epochs: int, n_batches: int) -> None:
        self.device = device

    def on_epoch_end(self, metrics: dict[str, Any]) -> None:
        self.epochs.append(metrics)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images-per-label", type=int, default=96)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument(
        "--num-workers",
        type=int,
        default=min(8, os.cpu_count() or 1),
        help="loader processes (default: min(8, CPUs))",
    )
    args = parser.parse_args(argv)

    import torch

    if not torch.cuda.is_available():
        print("gpu-check FAILED: CUDA is not available to torch", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        items = make_items(Path(tmp) / "data", args.images_per_label)
        config = TrainConfig(
            device="cuda",
            epochs=args.epochs,
            image_size=args.image_size,
            batch_size=args.batch_size,
            num_workers=args.num_workers,
        )
        timer = Timer()
        started = time.perf_counter()
        result = train(config, items, Path(tmp) / "out", timer)
        seconds = time.perf_counter() - started
    n_train = sum(1 for i in items if i.split == "train")
    epoch_seconds = [e["seconds"] for e in result.epochs if e.get("seconds")]
    report = {
        "device": result.device,
        "device_name": torch.cuda.get_device_name(0),
        "mixed_precision": "bf16" if torch.cuda.is_bf16_supported() else "fp16",
        "train_images": n_train,
        "num_workers": args.num_workers,
        "epochs": len(result.epochs),
        "seconds_per_epoch": [round(s, 3) for s in epoch_seconds],
        "images_per_second": round(n_train / min(epoch_seconds), 1)
        if epoch_seconds
        else None,
        "total_seconds": round(seconds, 2),
        "error_rate": result.error_rate,
    }
    print(json.dumps(report))
    if not result.device.startswith("cuda"):
        print("gpu-check FAILED: training did not run on CUDA", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
