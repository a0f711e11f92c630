"""Pre/post-processing geometry and runner-based evaluation on synthetic data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from toolkit.backend import backend_for, make_runner
from toolkit.backend.torch.runner import TorchRunner
from toolkit.checkpoint import save_checkpoint
from toolkit.core.meta import ModelMeta
from toolkit.data import CamVid, synthetic_info
from toolkit.errors import InputShapeError, ToolkitError
from toolkit.evaluate import evaluate_split, postprocess_logits, predict_logits, preprocess
from toolkit.metrics import ConfusionMatrix
from toolkit.models import create_model


def test_preprocess_pads_and_postprocess_crops() -> None:
    img = np.zeros((30, 45, 3), np.uint8)
    pre = preprocess(img, (0, 0, 0), (1, 1, 1))
    assert pre.tensor.shape == (1, 3, 32, 48) and pre.valid_hw == (30, 45)
    logits = np.random.default_rng(0).normal(size=(1, 4, 32, 48)).astype(np.float32)
    out = postprocess_logits(logits, pre)
    assert out.shape == (4, 30, 45) and np.array_equal(out, logits[0, :, :30, :45])
    pre = preprocess(np.zeros((60, 90, 3), np.uint8), (0, 0, 0), (1, 1, 1), input_size=(32, 48))
    assert pre.tensor.shape == (1, 3, 32, 48)
    assert postprocess_logits(logits, pre).shape == (4, 60, 90)


def test_runner_checks_inputs() -> None:
    runner = TorchRunner(create_model("segnet", num_classes=3, width=4))
    with pytest.raises(ToolkitError, match="not active"):
        runner.infer({"input": np.zeros((1, 3, 8, 8), np.float32)})
    with runner:
        with pytest.raises(InputShapeError, match="dtype float64"):
            runner.infer({"input": np.zeros((1, 3, 8, 8))})
        with pytest.raises(InputShapeError, match="expects inputs"):
            runner.infer({"x": np.zeros((1, 3, 8, 8), np.float32)})
        with pytest.raises(InputShapeError, match="expected \\?x3"):
            runner.infer({"input": np.zeros((1, 4, 8, 8), np.float32)})
        out = runner.infer({"input": np.zeros((2, 3, 16, 8), np.float32)})
        assert out["logits"].shape == (2, 3, 16, 8) and runner.last_inference_time is not None


def test_evaluate_split_matches_direct_argmax(synthetic_dir: Path, tmp_path: Path) -> None:
    info = synthetic_info()
    torch.manual_seed(0)
    model = create_model("enhanced", num_classes=info.num_classes, width=4).eval()
    path = save_checkpoint(tmp_path / "m.safetensors", model, ModelMeta("enhanced", 4, info, (64, 96)))
    ds = CamVid(synthetic_dir, "val")
    with make_runner(path) as runner:
        (cm,) = evaluate_split([runner], ds)  # each runner's own meta: normalisation, input size
        scores = cm.scores()
        image, _ = ds.load(0)
        lg = predict_logits(runner, image, info.mean, info.std)
        # the same matrix, frame by frame: argmax of the logits at each label's resolution, void ignored
        direct = ConfusionMatrix(info.num_classes, info.ignore_index)
        for i in range(len(ds)):
            im, label = ds.load(i)
            direct.update(predict_logits(runner, im, info.mean, info.std).argmax(0), label)
    assert np.array_equal(cm.matrix, direct.matrix) and cm.matrix.sum() == direct.matrix.sum() > 0
    assert scores.miou == pytest.approx(direct.scores().miou) and scores.num_pixels == direct.scores().num_pixels
    with torch.no_grad():
        x = torch.from_numpy(preprocess(image, info.mean, info.std).tensor)
        assert np.array_equal(lg, model(x)[0].numpy())


def test_backend_dispatch(tmp_path: Path) -> None:
    assert backend_for("a.onnx") == "onnxrt" and backend_for("a.engine") == "trt" and backend_for(None) == "torch"
    with pytest.raises(ToolkitError, match="unknown model file type"):
        backend_for("a.pt")
    with pytest.raises(ToolkitError, match="model file not found"):
        make_runner(tmp_path / "x.onnx")
