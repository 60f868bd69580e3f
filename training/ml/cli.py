"""python -m training.ml train DATA_DIR --out OUT: train on a labelled folder."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from collections.abc import Sequence
from typing import Any

from training.ml.backbones import BACKBONES, BackboneUnavailable
from training.ml.config import RESIZE_METHODS, TrainCallbacks, TrainConfig


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """The TrainConfig flags, shared with bench/plain_fastai.py."""
    d = TrainConfig()
    parser.add_argument("--backbone", default=d.backbone, choices=sorted(BACKBONES))
    parser.add_argument("--epochs", type=int, default=d.epochs)
    parser.add_argument("--freeze-epochs", type=int, default=d.freeze_epochs)
    parser.add_argument("--lr", type=float, default=d.base_lr, dest="base_lr")
    parser.add_argument("--image-size", type=int, default=d.image_size)
    parser.add_argument("--valid-pct", type=float, default=d.valid_pct)
    parser.add_argument("--seed", type=int, default=d.seed)
    parser.add_argument("--batch-size", type=int, default=d.batch_size)
    parser.add_argument("--device", default=d.device, choices=["auto", "cpu", "cuda"])
    parser.add_argument("--num-workers", type=int, default=d.num_workers)
    parser.add_argument("--weights-dir", default=d.weights_dir)
    parser.add_argument(
        "--resize-method", default=d.resize_method, choices=RESIZE_METHODS
    )


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    fields = TrainConfig().to_dict()
    return TrainConfig.from_dict({k: getattr(args, k) for k in fields})


class PrintProgress(TrainCallbacks):
    """Progress lines on stderr; Ctrl-C asks the run to stop after this batch."""

    def __init__(self) -> None:
        self.stop = False
        self.n_epochs = 0

    def request_stop(self, signum: int, frame: Any) -> None:
        if self.stop:  # a second Ctrl-C stops at once
            raise KeyboardInterrupt
        self.stop = True
        print("stopping after this batch (Ctrl-C again to abort)", file=sys.stderr)

    def on_start(self, *, device: str, n_epochs: int, n_batches: int) -> None:
        self.n_epochs = n_epochs
        print(
            f"training on {device}: {n_epochs} epochs x {n_batches} batches",
            file=sys.stderr,
            flush=True,
        )

    def on_epoch_end(self, metrics: dict[str, Any]) -> None:
        shown = " ".join(
            f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}"
            for k, v in metrics.items()
            if k not in ("epoch", "phase")
        )
        print(
            f"epoch {metrics['epoch'] + 1}/{self.n_epochs} ({metrics['phase']}) "
            f"{shown}",
            file=sys.stderr,
            flush=True,
        )

    def should_cancel(self) -> bool:
        return self.stop


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.ml")
    commands = parser.add_subparsers(dest="command", required=True)
    train_cmd = commands.add_parser(
        "train", help="fine-tune on DATA_DIR/<label>/.../<image> folders"
    )
    train_cmd.add_argument("data_dir")
    train_cmd.add_argument("--out", required=True, help="folder for the artifacts")
    add_config_arguments(train_cmd)
    args = parser.parse_args(argv)

    from training.ml import train
    from training.ml.folders import folder_items

    try:
        config = config_from_args(args)
        items = folder_items(
            args.data_dir, valid_pct=config.valid_pct, seed=config.seed
        )
        n_valid = sum(item.split == "valid" for item in items)
        print(
            f"{len(items)} images, {len(items) - n_valid} train / {n_valid} valid",
            file=sys.stderr,
            flush=True,
        )
        progress = PrintProgress()
        previous = signal.signal(signal.SIGINT, progress.request_stop)
        try:
            result = train(config, items, args.out, progress)
        finally:
            signal.signal(signal.SIGINT, previous)
    except (ValueError, BackboneUnavailable) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    summary = {
        key: getattr(result, key)
        for key in (
            "status",
            "device",
            "seconds",
            "best_epoch",
            "error_rate",
            "best_error_rate",
            "valid_loss",
            "label_names",
            "confusion_matrix",
            "artifacts",
        )
    }
    summary["n_train"], summary["n_valid"] = len(items) - n_valid, n_valid
    print(json.dumps(summary), flush=True)
    return 0 if result.status == "succeeded" else 130
