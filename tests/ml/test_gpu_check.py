from __future__ import annotations

import pytest
import torch

from training.ml import gpu_check


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_gpu_check_fails_without_cuda(capsys):
    assert gpu_check.main([]) == 1
    assert "CUDA is not available" in capsys.readouterr().err


def test_gpu_check_makes_a_balanced_labelled_dataset(tmp_path):
    items = gpu_check.make_items(tmp_path, per_label=10, size=64)
    assert len(items) == 40
    assert {i.label for i in items} == {"class0", "class1", "class2", "class3"}
    assert sum(i.split == "valid" for i in items) == 8
