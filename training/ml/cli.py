"""python -m training.ml train DATA_DIR --out OUT: train on a labelled folder."""

from __future__ import annotations

import argparse
import dataclasses
import json
import signal
import sys
from collections.abc import Sequence
from typing import Any

from training.ml.backbones import BackboneUnavailable
from training.ml.config import (
    TrainCallbacks,
    TrainConfig,
    field_choices,
    field_kind,
)


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """A flag per TrainConfig field, from its metadata (bench/plain_fastai.py too)."""
    for f in dataclasses.fields(TrainConfig):
        flags = [f"--{f.name.replace('_', '-')}"]
        if f.name == "base_lr":
            flags.append("--lr")  # the notebook's name for it
        parser.add_argument(
            *flags,
            dest=f.name,
            type=field_kind(f),
            default=f.default,
            choices=field_choices(f),
            help=config_help(f),
        )


def config_help(f: dataclasses.Field) -> str:
    """A field's help text with its bounds."""
    low, high = f.metadata.get("min"), f.metadata.get("max")
    bounds = f" ({low}..{high})" if low is not None and high is not None else ""
    return f.metadata.get("help", "") + bounds


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    return TrainConfig.from_dict(
        {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)}
    )


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
            args.data_dir,
            valid_pct=config.valid_pct,
            test_pct=config.test_pct,
            seed=config.seed,
        )
        n_valid = sum(item.split == "valid" for item in items)
        n_test = sum(item.split == "test" for item in items)
        n_train = len(items) - n_valid - n_test
        print(
            f"{len(items)} images, {n_train} train / {n_valid} valid / {n_test} test",
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
            "test",
            "calibration",
            "notes",
            "artifacts",
        )
    }
    summary.update(n_train=n_train, n_valid=n_valid, n_test=n_test)
    print(json.dumps(summary), flush=True)
    return 0 if result.status == "succeeded" else 130
