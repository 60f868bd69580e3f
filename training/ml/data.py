"""fastai DataLoaders for a list of Items."""

from __future__ import annotations

import logging
import multiprocessing
from collections.abc import Sequence

import torch
from fastai.data.block import CategoryBlock, DataBlock
from fastai.data.core import DataLoaders
from fastai.data.transforms import FuncSplitter
from fastai.vision.augment import Resize, ResizeMethod, aug_transforms
from fastai.vision.data import ImageBlock, Normalize

from training.ml.backbones import Backbone
from training.ml.config import Item, TrainConfig

logger = logging.getLogger(__name__)

RESIZE_METHODS = {"squish": ResizeMethod.Squish, "crop": ResizeMethod.Crop}


def check_items(items: Sequence[Item]) -> list[str]:
    """Validate the items of a run and return the sorted label names."""
    if not items:
        raise ValueError("No items to train on")
    bad = {item.split for item in items} - {"train", "valid", "test"}
    if bad:
        raise ValueError(
            f"Item split must be 'train', 'valid' or 'test', got {sorted(bad)}"
        )
    labels = sorted({item.label for item in items})
    if len(labels) < 2:
        raise ValueError("Need at least two labels to train a classifier")
    n_train = sum(item.split == "train" for item in items)
    if n_train < 2:
        raise ValueError("Need at least two training items")
    if not any(item.split == "valid" for item in items):
        raise ValueError("Need at least one validation item")
    return labels


def train_batch_size(config: TrainConfig, items: Sequence[Item]) -> int:
    """The batch size, lowered for tiny sets so an epoch has at least one batch.

    The training loader drops its last incomplete batch (a batch of one breaks
    BatchNorm), so a batch larger than the training set would never run.
    """
    n_train = sum(item.split == "train" for item in items)
    return max(2, min(config.batch_size, n_train))


def loader_workers(requested: int) -> int:
    """How many loader processes this process may start: a daemonic process (a
    Celery prefork child) may start none, so it decodes in the main process."""
    if requested and multiprocessing.current_process().daemon:
        logger.warning(
            "num_workers=%d ignored: this process is daemonic (a prefork worker "
            "child) and cannot start loader processes; run the training worker "
            "with --pool=solo to use them",
            requested,
        )
        return 0
    return requested


def _item_path(item: Item) -> str:
    return item.path


def _item_label(item: Item) -> str:
    return item.label


def _is_valid(item: Item) -> bool:
    return item.split == "valid"


def make_datablock(
    config: TrainConfig, backbone: Backbone, label_names: Sequence[str]
) -> DataBlock:
    return DataBlock(
        blocks=(ImageBlock, CategoryBlock(vocab=list(label_names))),
        get_x=_item_path,
        get_y=_item_label,
        splitter=FuncSplitter(_is_valid),
        item_tfms=Resize(
            config.image_size, method=RESIZE_METHODS[config.resize_method]
        ),
        batch_tfms=[
            *aug_transforms(),
            Normalize.from_stats(backbone.mean, backbone.std, cuda=False),
        ],
    )


def make_dataloaders(
    config: TrainConfig,
    items: Sequence[Item],
    backbone: Backbone,
    label_names: Sequence[str],
    device: torch.device,
) -> DataLoaders:
    return make_datablock(config, backbone, label_names).dataloaders(
        list(items),
        bs=train_batch_size(config, items),
        num_workers=loader_workers(config.num_workers),
        device=device,
    )
