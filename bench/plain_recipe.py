"""The seed notebook's recipe, as a practitioner writes it, scored on held-out images.

    python bench/plain_recipe.py TRAIN_DIR TEST_DIR [--epochs 4 --image-size 224]

`ImageDataLoaders.from_folder` on TRAIN_DIR (`<label>/<image>`) with fastai's
`RandomSplitter(0.2, seed)`, `Resize`, `aug_transforms`, then `fine_tune(4)` with
fastai's defaults, and `get_preds` on every image of TEST_DIR. The backbone is the
one Snapclass trains by default (EfficientNet-Lite0, whose ImageNet weights come
inside a pip package; torchvision's resnet18 weights are not on this machine),
fed with its own normalisation statistics; `vision_learner` cannot cut this body
itself, so the learner is assembled exactly as vision_learner would
(create_vision_model's body + head, frozen body, the backbone's parameter groups).
Nothing of Snapclass's own recipe is added. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import fastai.callback.schedule  # noqa: E402, F401
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from fastai.data.transforms import get_image_files  # noqa: E402
from fastai.learner import Learner  # noqa: E402
from fastai.metrics import error_rate  # noqa: E402
from fastai.torch_core import set_seed  # noqa: E402
from fastai.vision.augment import Resize, aug_transforms  # noqa: E402
from fastai.vision.data import ImageDataLoaders, Normalize  # noqa: E402

from training.ml.backbones import get_backbone  # noqa: E402
from training.ml.nets import create_model  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("train_dir", type=Path)
    parser.add_argument("test_dir", type=Path)
    parser.add_argument("--backbone", default="efficientnet_lite0")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    backbone = get_backbone(args.backbone)

    started = time.perf_counter()
    set_seed(args.seed, reproducible=True)
    dls = ImageDataLoaders.from_folder(
        args.train_dir,
        valid_pct=0.2,
        seed=args.seed,
        item_tfms=Resize(args.image_size),
        batch_tfms=[
            *aug_transforms(),
            Normalize.from_stats(backbone.mean, backbone.std),
        ],
        bs=args.batch_size,
        device=torch.device("cpu"),
    )
    model = create_model(backbone, len(dls.vocab), pretrained=True)
    learn = Learner(dls, model, splitter=backbone.splitter, metrics=error_rate)
    learn.freeze()
    with learn.no_bar(), learn.no_logging():
        learn.fine_tune(args.epochs)
    seconds = time.perf_counter() - started
    valid_error_rate = float(learn.recorder.values[-1][2])  # get_preds resets it

    files = get_image_files(args.test_dir)
    test_dl = learn.dls.test_dl(files, with_labels=True)
    with learn.no_bar():
        probs, targets = learn.get_preds(dl=test_dl)
    logits = torch.log(probs.clamp_min(1e-12))
    print(
        json.dumps(
            {
                "seconds": round(seconds, 1),
                "n_train": len(dls.train_ds),
                "n_valid": len(dls.valid_ds),
                "n_test": len(files),
                "labels": list(dls.vocab),
                "valid_error_rate": valid_error_rate,
                "test_error_rate": float((probs.argmax(1) != targets).float().mean()),
                "test_loss": float(F.nll_loss(logits, targets)),
                "test_probs": probs.tolist(),
                "test_targets": targets.tolist(),
            }
        )
    )


if __name__ == "__main__":
    main()
