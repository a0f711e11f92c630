"""Hand-built float graphs and a few 8x8 calibration images for the fast quantization unit tests (tests/quant/).

The exported tiny SegNet (tests/helpers/models.py) takes seconds to build in every pytest process; these take
milliseconds, so a mutation run can afford them once per mutant."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnx
from onnx import helper, numpy_helper

from tests.helpers import onnx_graphs
from toolkit.quant import ImageFeeds

MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)


def two_conv(seed: int = 0, meta: dict | None = None) -> onnx.ModelProto:
    """input -> Conv(w1, b1) -> Relu -> Conv(w2, b2) -> logits (5 classes)."""
    rng = np.random.default_rng(seed)
    arrays = {"w1": rng.standard_normal((4, 3, 3, 3)), "b1": rng.standard_normal(4),
              "w2": rng.standard_normal((5, 4, 1, 1)), "b2": rng.standard_normal(5)}
    nodes = [helper.make_node("Conv", ["input", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1], name="conv1"),
             helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
             helper.make_node("Conv", ["r1", "w2", "b2"], ["logits"], name="conv2")]
    inits = [numpy_helper.from_array(a.astype(np.float32), n) for n, a in arrays.items()]
    return onnx_graphs._model(nodes, inits, ["N", 5, "H", "W"], meta=meta)


def images(folder: Path, n: int = 3, size: tuple[int, int] = (8, 8), seed: int = 0) -> list[Path]:
    """``n`` random RGB PNGs; the first is all black and white extremes so the input range is exactly [-2, 2]."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        img = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
        if i == 0:
            img[0, 0], img[0, 1] = 0, 255
        path = folder / f"{i}.png"
        cv2.imwrite(str(path), img)
        paths.append(path)
    return paths


def feeds(folder: Path, n: int = 3) -> ImageFeeds:
    return ImageFeeds(images(folder, n), MEAN, STD, None)


def inits(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    return {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
