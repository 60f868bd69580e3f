from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from training.ml.backbones import BACKBONES
from training.ml.data import check_items, make_dataloaders
from training.ml.preprocess import preprocess

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("method", ["squish", "crop"])
@pytest.mark.parametrize("backbone", ["efficientnet_lite0", "resnet18"])
def test_preprocess_equals_fastais_validation_pipeline(
    items, tiny_config, method, backbone
):
    # Odd sizes and non-square sources exercise fastai's crop arithmetic.
    config = tiny_config(image_size=45, resize_method=method, backbone=backbone)
    spec = BACKBONES[backbone]
    dls = make_dataloaders(config, items, spec, check_items(items), torch.device("cpu"))
    expected = torch.cat([xb for xb, _ in dls.valid]).numpy()
    meta = {
        "image_size": 45,
        "resize_method": method,
        "mean": list(spec.mean),
        "std": list(spec.std),
    }

    got = np.concatenate(
        [
            preprocess(Image.open(item.path), meta)
            for item in items
            if item.split == "valid"
        ]
    )

    assert got.shape == expected.shape == (len(got), 3, 45, 45)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)


def test_preprocess_needs_neither_torch_nor_fastai():
    code = (
        "import sys\n"
        "from PIL import Image\n"
        "from training.ml.preprocess import preprocess\n"
        "meta = {'image_size': 8, 'resize_method': 'crop',"
        " 'mean': [0.5] * 3, 'std': [0.5] * 3}\n"
        "x = preprocess(Image.new('RGB', (20, 10), 'white'), meta)\n"
        "assert x.shape == (1, 3, 8, 8) and x.dtype.name == 'float32'\n"
        "heavy = {'torch', 'fastai', 'django'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def test_preprocess_refuses_an_unknown_resize_method():
    meta = {"image_size": 8, "resize_method": "pad", "mean": [0] * 3, "std": [1] * 3}
    with pytest.raises(ValueError, match="pad"):
        preprocess(Image.new("RGB", (10, 10)), meta)
