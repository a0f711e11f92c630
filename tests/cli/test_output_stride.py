"""A stride-16 model (``enhanced_s2``) end to end through the CLI: train on synthetic data, export, quantize,
infer a clip, eval, bench, each reading the model's output stride from its file (issue 22 section 3).

The frames are 40x56: multiples of 8 but not of 16, so every step must pad to 48x64 (or refuse a shape
that is not a multiple of 16) by the model's stride, not by the shared 8.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from toolkit.cli.app import app
from toolkit.core.metadata import read_model_meta
from toolkit.core.onnx_file import load_onnx

runner = CliRunner()
HW = (40, 56)
TRAIN = ["--arch", "enhanced_s2", "--width", "4", "--size", "40x56", "--batch-size", "2", "--epochs", "1",
         "--threads", "1", "--no-progress"]


@pytest.fixture(scope="module")
def s2_run(synthetic_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(checkpoint, mask ONNX) of one tiny enhanced_s2 training run and its export."""
    out = tmp_path_factory.mktemp("s2")
    result = runner.invoke(app, ["train", "--data", str(synthetic_dir), "-o", str(out / "run"), "--crop", "32x48",
                                 *TRAIN])
    assert result.exit_code == 0, result.output
    ckpt = out / "run" / "last.safetensors"
    onnx_path = out / "s2.onnx"
    result = runner.invoke(app, ["export", str(ckpt), "-o", str(onnx_path), "--unpool", "mask"])
    assert result.exit_code == 0, result.output
    return ckpt, onnx_path


def test_train_refuses_a_crop_that_is_not_a_multiple_of_16(synthetic_dir: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", "--data", str(synthetic_dir), "-o", str(tmp_path / "r"), "--crop", "40x48",
                                 *TRAIN])
    assert result.exit_code == 2, result.output
    assert "--crop 40x48: H and W must be multiples of 16, the model's output stride (e.g. 32x48)" in result.output


def test_the_stride_travels_with_the_files(s2_run: tuple[Path, Path]) -> None:
    from toolkit.checkpoint import read_checkpoint

    ckpt, onnx_path = s2_run
    assert read_checkpoint(ckpt)[1].output_stride == 16
    meta = read_model_meta(load_onnx(onnx_path))
    assert meta is not None and meta.output_stride == 16 and meta.input_size == HW


def test_eval_and_infer_pad_to_16(s2_run: tuple[Path, Path], synthetic_dir: Path, tmp_path: Path) -> None:
    from toolkit.video.sample import make_sample_clip

    ckpt, onnx_path = s2_run
    for model in (ckpt, onnx_path):
        result = runner.invoke(app, ["eval", str(model), "--data", str(synthetic_dir), "--json",
                                     str(tmp_path / f"{model.suffix[1:]}.json")])
        assert result.exit_code == 0, result.output
    a, b = (json.loads((tmp_path / f"{s}.json").read_text())["miou"] for s in ("safetensors", "onnx"))
    assert abs(a - b) < 1e-6  # PyTorch and ONNX Runtime score the same padded frames
    clip = make_sample_clip(tmp_path / "clip.mp4", frames=3, size=HW, use_camvid=False)
    report = tmp_path / "infer.json"
    result = runner.invoke(app, ["infer", "-m", str(onnx_path), "-s", str(clip.path), "-o", str(tmp_path / "o.mp4"),
                                 "--json", str(report), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert json.loads(report.read_text())["frames"] == 3


def test_bench_refuses_a_shape_of_the_wrong_multiple(s2_run: tuple[Path, Path]) -> None:
    _, onnx_path = s2_run
    result = runner.invoke(app, ["bench", "-m", str(onnx_path), "--shape", "1x3x40x56", "-n", "1"])
    assert result.exit_code == 2, result.output
    assert "H and W must be multiples of 16; pad to 1x3x48x64" in result.output
    result = runner.invoke(app, ["bench", "-m", str(onnx_path), "--shape", "1x3x48x64", "-n", "1", "--threads", "1"])
    assert result.exit_code == 0, result.output


def test_int8_calibrates_at_the_models_stride(s2_run: tuple[Path, Path], synthetic_dir: Path,
                                              tmp_path: Path) -> None:
    _, onnx_path = s2_run
    out = tmp_path / "s2_int8.onnx"
    result = runner.invoke(app, ["quantize", str(onnx_path), "-o", str(out), "--precision", "int8", "--calib-data",
                                 str(synthetic_dir), "--calib-split", "train", "--calib-size", "2", "--target", "cpu",
                                 "--no-cache"])
    assert result.exit_code == 0, result.output
    meta = read_model_meta(load_onnx(out))
    assert meta is not None and meta.output_stride == 16
