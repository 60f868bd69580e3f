"""The browser's port of Pillow's resampling gives Pillow's pixels exactly."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from datasets.imaging import fit_long_side
from training.ml.preprocess import preprocess

ROOT = Path(__file__).resolve().parents[2]
RESAMPLE_JS = ROOT / "classifier" / "static" / "classifier" / "resample.js"
NODE = shutil.which("node")

pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed")

RUNNER = """
const R = require(process.argv[1]);
const fs = require("fs");
const jobs = JSON.parse(fs.readFileSync(0, "utf8"));
const out = jobs.map((job) => {
  const image = {
    width: job.width,
    height: job.height,
    data: Uint8ClampedArray.from(Buffer.from(job.data, "base64")),
  };
  if (job.meta) {
    const x = R.preprocess(image, job.meta, job.max_side);
    return Buffer.from(x.buffer).toString("base64");
  }
  const done = R.resize(image, job.out[0], job.out[1], job.filter, job.gap);
  return Buffer.from(done.data).toString("base64");
});
process.stdout.write(JSON.stringify(out));
"""


def run_js(jobs: list[dict]) -> list[bytes]:
    import base64

    for job in jobs:
        job["data"] = base64.b64encode(job.pop("pixels").tobytes()).decode()
    out = subprocess.run(
        [NODE, "-e", RUNNER, str(RESAMPLE_JS)],
        input=json.dumps(jobs),
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return [base64.b64decode(item) for item in json.loads(out.stdout)]


def random_pixels(width: int, height: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    pixels[: height // 2] //= 3
    return pixels


# Pillow's exact pixels: one axis, both growing, or one growing and one shrinking.
RESIZES = [
    ((300, 200), (64, 64), "bilinear", None),
    ((100, 20), (64, 64), "bilinear", None),
    ((33, 517), (224, 224), "bilinear", None),
    ((1100, 70), (512, 33), "bilinear", 2.0),
    ((3000, 90), (512, 15), "bilinear", 2.0),
    ((77, 241), (48, 48), "bilinear", None),
    ((49, 171), (268, 258), "bilinear", None),
    ((288, 15), (55, 212), "bilinear", None),
    ((1100, 70), (512, 33), "bicubic", 2.0),
    ((40, 40), (80, 80), "bicubic", None),
    ((64, 64), (64, 64), "bilinear", None),
]


def test_resizes_equal_pillows():
    filters = {
        "bilinear": Image.Resampling.BILINEAR,
        "bicubic": Image.Resampling.BICUBIC,
    }
    jobs, expected = [], []
    for i, (size, out, name, gap) in enumerate(RESIZES):
        pixels = random_pixels(*size, seed=i)
        image = Image.fromarray(pixels).resize(out, filters[name], reducing_gap=gap)
        expected.append(np.asarray(image).tobytes())
        jobs.append(
            {"width": size[0], "height": size[1], "pixels": pixels, "out": out}
            | {"filter": name, "gap": gap}
        )

    for case, got, want in zip(RESIZES, run_js(jobs), expected, strict=True):
        assert got == want, case


def test_resizes_that_shrink_both_axes_are_within_one_level_of_pillows():
    """Pillow 13 picks the pass order itself there; see horizontalFirst()."""
    sizes = [((2049, 1537), (512, 384)), ((157, 101), (119, 57)), ((99, 99), (73, 55))]
    jobs, expected = [], []
    for i, (size, out) in enumerate(sizes):
        pixels = random_pixels(*size, seed=50 + i)
        image = Image.fromarray(pixels).resize(
            out, Image.Resampling.BILINEAR, reducing_gap=2.0
        )
        expected.append(np.asarray(image))
        jobs.append(
            {"width": size[0], "height": size[1], "pixels": pixels, "out": out}
            | {"filter": "bilinear", "gap": 2.0}
        )

    for case, got, want in zip(sizes, run_js(jobs), expected, strict=True):
        got = np.frombuffer(got, dtype=np.uint8).reshape(want.shape)
        assert np.abs(got.astype(int) - want.astype(int)).max() <= 1, case


@pytest.mark.parametrize("method", ["squish", "crop"])
def test_preprocessing_equals_the_servers(method):
    meta = {
        "image_size": 48,
        "resize_method": method,
        "mean": [0.485, 0.456, 0.406],
        "std": [0.229, 0.224, 0.225],
    }
    sizes = [(300, 200), (77, 241), (1100, 70), (48, 48), (2000, 1500)]
    jobs, expected = [], []
    for i, size in enumerate(sizes):
        pixels = random_pixels(*size, seed=100 + i)
        image = fit_long_side(Image.fromarray(pixels), 512)
        expected.append(preprocess(image, meta).reshape(-1))
        jobs.append(
            {"width": size[0], "height": size[1], "pixels": pixels}
            | {"meta": meta, "max_side": 512}
        )

    for size, got, want in zip(sizes, run_js(jobs), expected, strict=True):
        diff = np.abs(np.frombuffer(got, dtype=np.float32) - want).max()
        assert diff < 1e-6, (size, diff)
