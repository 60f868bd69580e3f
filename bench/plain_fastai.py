"""Baseline: the plain fastai notebook a practitioner would write.

Same items, split, model and hyper-parameters as ``python -m training.ml train``:
fine_tune, then what the notebook reads afterwards (the confusion matrix, and
every image's loss for the top losses and the cleaner, as fastai's
ImageClassifierCleaner computes them) and the weights saved. No callbacks, ONNX
export or database. Prints one JSON line {"seconds", "error_rate", ...}: seconds
runs from the DataBlock to the end of fine_tune (the span train() reports as
TrainResult.seconds); error_rate is the final epoch's. Compare it with the last
row of the run's epochs: train() keeps the best epoch by validation loss, which
may be an earlier one.

    python bench/plain_fastai.py datasets/demo/images [--epochs 4 ...]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import fastai.callback.fp16  # noqa: E402, F401
import fastai.callback.progress  # noqa: E402, F401
import fastai.callback.schedule  # noqa: E402, F401
import torch  # noqa: E402
from fastai.data.block import CategoryBlock, DataBlock  # noqa: E402
from fastai.data.transforms import FuncSplitter  # noqa: E402
from fastai.interpret import ClassificationInterpretation  # noqa: E402
from fastai.learner import Learner  # noqa: E402
from fastai.metrics import accuracy, error_rate  # noqa: E402
from fastai.torch_core import set_seed  # noqa: E402
from fastai.vision.augment import Resize, ResizeMethod, aug_transforms  # noqa: E402
from fastai.vision.data import ImageBlock, Normalize  # noqa: E402

from training.ml import Item  # noqa: E402
from training.ml.backbones import get_backbone  # noqa: E402
from training.ml.cli import add_config_arguments, config_from_args  # noqa: E402
from training.ml.fit import BodyBatchNormStats, resolve_device  # noqa: E402
from training.ml.folders import folder_items  # noqa: E402
from training.ml.nets import create_model  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", nargs="?")
    parser.add_argument(
        "--items-json", help="[[path, label, split], ...] instead of a folder"
    )
    add_config_arguments(parser)
    args = parser.parse_args()
    config = config_from_args(args)
    if args.items_json:
        rows = json.loads(Path(args.items_json).read_text())
        items = [Item(path, label, split) for path, label, split in rows]
    elif args.data_dir:
        items = folder_items(
            args.data_dir, valid_pct=config.valid_pct, seed=config.seed
        )
    else:
        parser.error("give DATA_DIR or --items-json")
    backbone = get_backbone(config.backbone)
    n_train = sum(item.split == "train" for item in items)

    started = time.perf_counter()
    set_seed(config.seed, reproducible=True)
    dblock = DataBlock(
        blocks=(ImageBlock, CategoryBlock(vocab=sorted({i.label for i in items}))),
        get_x=lambda item: item.path,
        get_y=lambda item: item.label,
        splitter=FuncSplitter(lambda item: item.split == "valid"),
        item_tfms=Resize(
            config.image_size,
            method={"squish": ResizeMethod.Squish, "crop": ResizeMethod.Crop}[
                config.resize_method
            ],
        ),
        batch_tfms=[
            *aug_transforms(),
            Normalize.from_stats(backbone.mean, backbone.std, cuda=False),
        ],
    )
    dls = dblock.dataloaders(
        items,
        bs=max(2, min(config.batch_size, n_train)),
        num_workers=config.num_workers,
        device=resolve_device(config.device),
    )
    model = create_model(
        backbone, len(dls.vocab), pretrained=True, weights_dir=config.weights_dir
    )
    learn = Learner(
        dls, model, splitter=backbone.splitter, metrics=[error_rate, accuracy]
    )
    if backbone.frozen_bn_stats:  # the same recipe: see training/ml/backbones.py
        learn.add_cb(BodyBatchNormStats())
    learn.freeze()
    if dls.device.type == "cuda":
        learn.to_bf16() if torch.cuda.is_bf16_supported() else learn.to_fp16()
    lr = {} if config.base_lr is None else {"base_lr": config.base_lr}
    with learn.no_bar(), learn.no_logging():
        learn.fine_tune(config.epochs, freeze_epochs=config.freeze_epochs, **lr)
    seconds = time.perf_counter() - started
    # The Recorder holds the last fit only: the unfrozen epochs.
    unfrozen = [
        {"valid_loss": float(row[1]), "error_rate": float(row[2])}
        for row in learn.recorder.values
    ]
    # What the notebook reads next (get_preds resets the Recorder: after it).
    with learn.no_bar():
        interp = ClassificationInterpretation.from_learner(learn)
        interp.confusion_matrix()
        for ds_idx in (0, 1):  # every image's loss, as the cleaner shows them
            learn.get_preds(ds_idx=ds_idx, with_loss=True)
    with tempfile.TemporaryDirectory() as out:
        torch.save(learn.model.state_dict(), Path(out) / "weights.pth")
    print(
        json.dumps(
            {
                "seconds": round(seconds, 3),
                "error_rate": unfrozen[-1]["error_rate"],
                "unfrozen_epochs": unfrozen,
            }
        )
    )


if __name__ == "__main__":
    main()
