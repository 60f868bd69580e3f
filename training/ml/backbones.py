"""The backbones a training run can start from, in one registry.

Each entry builds the body of a fastai vision model (everything before the
pooling head). Pretrained weights come only from files already on disk: nothing
here downloads. torch is imported only when a body is built.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
HALF = (0.5, 0.5, 0.5)


class BackboneUnavailable(RuntimeError):
    """The backbone's pretrained weights are not on this machine."""


@dataclass(frozen=True)
class Backbone:
    """How to build one backbone's body, split it for fine-tuning, and feed it."""

    name: str
    description: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    # build(pretrained, weights_dir) -> body; pretrained=False reads no file.
    build: Callable[..., nn.Module]
    # fastai's create_body cut: an index, or a function of the built model.
    cut: int | Callable[[nn.Module], nn.Module]
    # splitter(whole model) -> parameter groups for freezing and discriminative LR.
    splitter: Callable[[nn.Module], Any]
    weights_file: str | None = None
    test_only: bool = False
    # Keep the body's BatchNorm layers on their pretrained running statistics
    # while fine-tuning (see fit.BodyBatchNormStats).
    frozen_bn_stats: bool = False

    def arch(self, weights_dir: str | None = None) -> Callable[..., nn.Module]:
        """An ``arch(pretrained=...)`` callable for fastai's vision_learner."""
        return partial(self.build, weights_dir=weights_dir)

    def weights_path(self, weights_dir: str | None = None) -> Path | None:
        """The local weights file, if this backbone needs one.

        Raises BackboneUnavailable when it is missing, so callers can check early.
        """
        if self.weights_file is None:
            return None
        return find_weights(self.weights_file, weights_dir)


def _whole(model: nn.Module) -> nn.Module:
    return model


def _three_groups(model: nn.Module) -> list[list[Any]]:
    """Early body, late body, head: the groups fine_tune spreads its LR over."""
    from fastai.torch_core import params

    body = model[0]
    half = len(body) // 2
    return [params(body[:half]), params(body[half:]), params(model[1:])]


def _two_groups(model: nn.Module) -> list[list[Any]]:
    from fastai.torch_core import params

    return [params(model[0]), params(model[1:])]


def _resnet_groups(model: nn.Module) -> list[list[Any]]:
    # The split fastai itself uses for torchvision resnets.
    from fastai.torch_core import params

    return [params(model[0][:6]), params(model[0][6:]), params(model[1:])]


def find_weights(filename: str, weights_dir: str | None) -> Path:
    """The first of weights_dir/filename and the torch hub cache's checkpoint."""
    places = ([Path(weights_dir)] if weights_dir else []) + [hub_checkpoints_dir()]
    for place in places:
        if (place / filename).is_file():
            return place / filename
    where = f"weights_dir ({weights_dir})" if weights_dir else "a weights_dir"
    raise BackboneUnavailable(
        f"Pretrained weights file {filename} not found. Put {filename} in "
        f"{where} or in the torch hub cache {hub_checkpoints_dir()}; "
        "Snapclass never downloads weights."
    )


def hub_checkpoints_dir() -> Path:
    """torch's own cache of downloaded checkpoints (honours TORCH_HOME)."""
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints"


def _efficientnet_lite0(
    pretrained: bool = True, weights_dir: str | None = None
) -> nn.Module:
    from training.ml import nets

    return nets.efficientnet_lite0(pretrained)


def _tiny_cnn(pretrained: bool = True, weights_dir: str | None = None) -> nn.Module:
    from training.ml import nets

    return nets.tiny_cnn()


def _resnet(
    name: str, pretrained: bool = True, weights_dir: str | None = None
) -> nn.Module:
    from training.ml import nets

    path = find_weights(_RESNET_FILES[name], weights_dir) if pretrained else None
    return nets.torchvision_resnet(name, path)


# Official torchvision file names (the DEFAULT weights of each model), so that a
# file downloaded elsewhere with torchvision can be dropped in as it is.
_RESNET_FILES = {
    "resnet18": "resnet18-f37072fd.pth",
    "resnet34": "resnet34-b627a593.pth",
    "resnet50": "resnet50-11ad3fa6.pth",
}


def _resnet_backbone(name: str) -> Backbone:
    filename = _RESNET_FILES[name]
    return Backbone(
        name=name,
        description=f"torchvision {name}, ImageNet weights from {filename}",
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        build=partial(_resnet, name),
        cut=-2,
        splitter=_resnet_groups,
        weights_file=filename,
    )


BACKBONES: dict[str, Backbone] = {
    "efficientnet_lite0": Backbone(
        name="efficientnet_lite0",
        description="EfficientNet-Lite0, ImageNet weights shipped in a pip package",
        mean=HALF,
        std=HALF,
        build=_efficientnet_lite0,
        cut=_whole,
        splitter=_three_groups,
        # The port's BatchNorm momentum is 0.01: over the few dozen steps of a
        # small run the running statistics stay ~80% ImageNet's, so a network
        # trained on batch statistics was validated on others. Measured on the
        # demo set over 3 seeds: validation loss 1.11 -> 0.74, error 0.42 -> 0.29.
        frozen_bn_stats=True,
    ),
    **{name: _resnet_backbone(name) for name in _RESNET_FILES},
    "tiny_cnn": Backbone(
        name="tiny_cnn",
        description="Three random conv layers: for fast tests only, never pretrained",
        mean=HALF,
        std=HALF,
        build=_tiny_cnn,
        cut=_whole,
        splitter=_two_groups,
        test_only=True,
    ),
}


def get_backbone(name: str) -> Backbone:
    try:
        return BACKBONES[name]
    except KeyError:
        known = ", ".join(sorted(BACKBONES))
        raise ValueError(f"Unknown backbone {name!r}; known: {known}") from None
