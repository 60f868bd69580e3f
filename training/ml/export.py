"""Model artifacts: safetensors weights, meta.json and ONNX; rebuilding from them.

A model is never pickled: the architecture is rebuilt from meta.json and the
weights are read from safetensors after their sha256 has been checked.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import fastai
import safetensors.torch
import torch
from torch import nn

from training.ml.artifact import (  # noqa: F401  (re-exported for callers)
    FORMAT,
    INPUT_NAME,
    META_FILE,
    ONNX_FILE,
    OUTPUT_NAME,
    WEIGHTS_FILE,
    ModelMeta,
)
from training.ml.backbones import get_backbone
from training.ml.nets import create_model

log = logging.getLogger(__name__)


def build_model(architecture: str, num_classes: int) -> nn.Module:
    """The training model's structure (body + fastai head), randomly initialised."""
    return create_model(get_backbone(architecture), num_classes, pretrained=False)


def save_weights(model: nn.Module, path: Path) -> str:
    """Write the state_dict as safetensors and return the file's sha256."""
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    safetensors.torch.save_file(state, str(path), metadata={"format": "pt"})
    path.chmod(0o644)  # written private; readable like the other artifacts
    return sha256_file(path)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def export_onnx(model: nn.Module, path: Path, image_size: int) -> dict[str, Any]:
    """Export logits with a dynamic batch; returns how it was exported.

    The dynamo exporter at opset 18 gives the clean graph the browser runs best;
    the TorchScript exporter at opset 17 is the fallback if dynamo fails.
    """
    model = model.eval()
    # Batch 2: a batch of 1 would let torch.export specialise the dimension.
    example = torch.zeros(2, 3, image_size, image_size)
    quiet = contextlib.redirect_stdout(io.StringIO())
    try:
        with quiet, torch.no_grad():
            torch.onnx.export(
                model,
                (example,),
                str(path),
                dynamo=True,
                opset_version=18,
                external_data=False,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=4096)},),
            )
        return {"onnx_exporter": "dynamo", "onnx_opset": 18}
    except Exception:
        log.warning("dynamo ONNX export failed; using the TorchScript exporter")
        path.unlink(missing_ok=True)
    with quiet, torch.no_grad():
        torch.onnx.export(
            model,
            (example,),
            str(path),
            dynamo=False,
            opset_version=17,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
        )
    return {"onnx_exporter": "torchscript", "onnx_opset": 17}


def onnx_logits(path: Path) -> Callable[[torch.Tensor], torch.Tensor]:
    """The ONNX model's logits through ONNX Runtime on the CPU."""
    import onnxruntime

    session = onnxruntime.InferenceSession(
        str(path), providers=["CPUExecutionProvider"]
    )

    def logits(x: torch.Tensor) -> torch.Tensor:
        (out,) = session.run([OUTPUT_NAME], {INPUT_NAME: x.cpu().numpy()})
        return torch.from_numpy(out)

    return logits


def onnx_max_abs_diff(
    model: nn.Module, onnx: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor
) -> float:
    """Largest logit difference between torch and ONNX Runtime on x (CPU)."""
    with torch.inference_mode():
        expected = model.eval()(x).float()
    return float((onnx(x) - expected).abs().max())


def make_meta(
    *,
    architecture: str,
    label_names: list[str],
    image_size: int,
    resize_method: str,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    weights_sha256: str,
    extra: dict[str, Any],
    temperature: float = 1.0,
    uncertain_below: float | None = None,
) -> ModelMeta:
    return ModelMeta(
        architecture=architecture,
        label_names=list(label_names),
        image_size=image_size,
        resize_method=resize_method,
        mean=list(mean),
        std=list(std),
        weights_sha256=weights_sha256,
        temperature=temperature,
        uncertain_below=uncertain_below,
        extra={
            "output": "logits",  # consumers apply softmax(logits / temperature)
            "torch_version": torch.__version__,
            "fastai_version": fastai.__version__,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            **extra,
        },
    )


def artifact_files() -> dict[str, str]:
    """Artifact kind -> file name, as the registry records them."""
    from training.ml.artifact import FILES

    return dict(FILES)


def write_meta(meta: ModelMeta, path: Path) -> None:
    path.write_text(meta.to_json())


def load_model(meta_path: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model from meta.json and its safetensors weights (eval mode).

    Raises ValueError when the metadata is not ours or the weights' sha256
    differs from the one recorded.
    """
    meta_path = Path(meta_path)
    meta = ModelMeta.from_json(meta_path.read_bytes())
    # Hash the very bytes that get loaded, so the check cannot be raced.
    data = (meta_path.parent / meta.weights_file).read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != meta.weights_sha256:
        raise ValueError(
            f"sha256 of {meta.weights_file} is {digest}, meta.json says "
            f"{meta.weights_sha256}"
        )
    model = build_model(meta.architecture, meta.num_classes)
    model.load_state_dict(safetensors.torch.load(data), strict=True)
    return model.eval(), meta.to_dict()
