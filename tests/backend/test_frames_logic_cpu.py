"""The device path's logic (``TorchRunner._frame_fn``: uint8 frame -> resize -> normalise -> model -> bilinear
resize to the frame -> argmax) run on the CPU in fp32 against the host path (``toolkit.evaluate``): equal class
maps, with and without the resize back to the frame's size. The GPU tests (tests/backend/test_torch_cuda.py)
add only fp16 and the CUDA transport on top of this."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.helpers.cpu_frames import CpuFramesRunner
from toolkit.backend.torch.loader import LoadCheckpoint
from toolkit.data.synthetic import make_scene
from toolkit.evaluate import predict_logits, preprocess
from toolkit.video.ops import argmax_classes
from toolkit.zoo import resolve_model_path

MODEL = "enhanced-w16-kd"  # 180x240, the model of the GPU tests


@pytest.fixture(scope="module")
def runner():
    with CpuFramesRunner(LoadCheckpoint(Path(resolve_model_path(MODEL)))) as r:
        yield r


# 240x320: a 4/3 area shrink (the serve handler's GPU test); 360x480: 2x2; 300x400: 5/3
@pytest.mark.parametrize("frame_hw", [(240, 320), (360, 480), (300, 400)])
def test_class_map_at_the_frame_size_equals_the_host_path(runner: CpuFramesRunner, frame_hw: tuple[int, int]) -> None:
    meta = runner.meta
    for i in range(2 if frame_hw == (240, 320) else 1):  # the 240x320 pair is the GPU test's
        image = make_scene(i, size=frame_hw)[0]
        got = runner.infer_frame(image, at_frame_size=True)
        want = predict_logits(runner, image, meta.dataset.mean, meta.dataset.std, meta.input_size).argmax(0)
        assert got.dtype == np.uint8 and got.shape == frame_hw
        # exact: same fp32 model, equal inputs (frames.frame_to_input rounds as OpenCV does), and PyTorch's
        # bilinear resize of the logits within 4e-6 of OpenCV's (no argmax flips on these frames). An
        # align_corners=True resize agrees on 98.9-99.2 % only, a preprocessing a level off on 98.7-99.0 %.
        assert np.array_equal(got, want), f"{(got == want).mean():.4%} of pixels agree"


def test_class_map_at_the_model_size_equals_the_host_argmax(runner: CpuFramesRunner) -> None:
    meta = runner.meta
    h, w = meta.input_size
    image = make_scene(3, size=(240, 320))[0]
    got = runner.infer_frame(image)
    pre = preprocess(image, meta.dataset.mean, meta.dataset.std, meta.input_size)
    (logits,) = runner.infer({"input": pre.tensor}).values()
    assert got.shape == (h, w) and runner.frame_calls[-1] == ((240, 320, 3), None)
    assert np.array_equal(got, argmax_classes(logits[0, :, :h, :w]))
