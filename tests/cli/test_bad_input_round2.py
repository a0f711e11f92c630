"""Bad input, round two (issue 25): what a newcomer's attempts still broke. Each test failed before its fix."""

from __future__ import annotations

import pytest

from tests.helpers.cli import one_line_error, runner
from toolkit.cli.app import app


@pytest.mark.parametrize(("args", "words"), [
    (["train", "--bogus"], "No such option: --bogus"),
    (["train", "--data", "synthetic", "--epochs", "abc"], "'--epochs'"),
    (["trian"], "No such command 'trian'. Did you mean 'train'?"),
    (["train"], "Missing option '--data'"),
    (["--bogus"], "No such option: --bogus"),
])
def test_parser_errors_are_one_error_line(args: list[str], words: str) -> None:
    line = one_line_error(args)
    assert words in line and "╭" not in line


@pytest.mark.parametrize(("args", "option"), [
    (["train", "--data", "synthetic", "--batch-size", "0"], "--batch-size"),
    (["train", "--data", "synthetic", "--width", "0"], "--width"),
    (["train", "--data", "synthetic", "--epochs", "0"], "--epochs"),
    (["train", "--data", "synthetic", "--lr", "0"], "--lr"),
    (["train", "--data", "synthetic", "--temperature", "-1"], "--temperature"),
    (["train", "--data", "synthetic", "--distill-weight", "1.5"], "--distill-weight"),
    (["eval", "--data", "synthetic", "--limit", "0"], "--limit"),
    (["infer", "-s", "x.mp4", "--max-frames", "0"], "--max-frames"),
    (["infer", "-s", "x.mp4", "--alpha", "2"], "--alpha"),
    (["infer", "-s", "x.mp4", "--threads", "0"], "--threads"),
    (["bench", "--iterations", "0"], "--iterations"),
    (["bench", "--input-shape", "64x3x360000x480000"], "--input-shape"),
    (["quantize", "m.onnx", "--precision", "int8", "--calib-size", "0", "-o", "o.onnx"], "--calib-size"),
    (["parity", "-c", "m.onnx", "--data", "synthetic", "--max-miou-drop", "-1"], "--max-miou-drop"),
    (["parity", "-c", "m.onnx", "--data", "synthetic", "--min-agreement", "-5"], "--min-agreement"),
    (["demo", "--frames", "0"], "--frames"),
    (["serve", "--http-port", "70000"], "--http-port"),
    (["export-triton", "m.onnx", "-o", "repo", "--instances", "0"], "--instances"),
    (["info", "--num-classes", "0"], "--num-classes"),
])
def test_numeric_options_refused_where_they_enter_naming_the_option(args: list[str], option: str) -> None:
    """Negative tolerances are usage errors (2), not failed checks (1); every message names its option."""
    assert option in one_line_error(args)


def test_label_id_beyond_the_class_count_is_one_line_for_eval_and_train(tmp_path) -> None:
    import cv2

    from toolkit.checkpoint import save_checkpoint
    from toolkit.core.dataset_info import load_classes_json
    from toolkit.core.meta import ModelMeta
    from toolkit.data import write_synthetic_camvid
    from toolkit.models import create_model

    root = write_synthetic_camvid(tmp_path / "data", {"train": 2, "val": 2}, size=(32, 48))
    info = load_classes_json(root / "classes.json")
    ckpt = save_checkpoint(tmp_path / "m.safetensors", create_model("segnet", num_classes=info.num_classes, width=4),
                           ModelMeta("segnet", 4, info, input_size=(32, 48)))
    lines = (root / "val.txt").read_text().split()
    label = root / lines[1]
    lab = cv2.imread(str(label), cv2.IMREAD_UNCHANGED)
    lab[:4, :4] = 50
    cv2.imwrite(str(label), lab)
    for args in (["eval", "-m", str(ckpt), "--data", str(root)],
                 ["train", "--data", str(root), "--width", "4", "--epochs", "1", "--crop", "32x48",
                  "--batch-size", "2", "--val-split", "val", "--output", str(tmp_path / "run"), "--no-progress"]):
        line = one_line_error(args)
        assert "label ids 50 (16 pixels)" in line and label.name in line, line


def test_capture_opens_on_an_opencv_4_without_cv2_utils_logging(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """OpenCV 4.x wheels (PyTriton's numpy<2 pin, JetPack) have cv2.setLogLevel but no cv2.utils.logging."""
    import types

    import cv2

    from toolkit.errors import ToolkitError
    from toolkit.video.sources import CaptureSource

    levels = [3]
    monkeypatch.setattr(cv2, "utils", types.SimpleNamespace())
    monkeypatch.setattr(cv2, "getLogLevel", lambda: levels[-1], raising=False)
    monkeypatch.setattr(cv2, "setLogLevel", levels.append, raising=False)
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\0" * 4096)
    with pytest.raises(ToolkitError, match="cannot open as a video file"):
        CaptureSource(str(bad)).open()
    assert levels == [3, 2, 3]  # errors only while opening, then put back


def test_ffmpeg_noise_and_the_model_line_stay_off_a_bad_source(tmp_path) -> None:
    """Through the real entry point: FFmpeg's 'moov atom not found' and the zoo model line used to come first."""
    import os
    import subprocess
    import sys

    bad = tmp_path / "bad.mp4"
    bad.write_bytes(os.urandom(5000))
    env = {k: v for k, v in os.environ.items() if k not in ("OPENCV_FFMPEG_LOGLEVEL", "OPENCV_LOG_LEVEL")}
    done = subprocess.run([sys.executable, "-m", "toolkit", "infer", "-s", str(bad), "-o", str(tmp_path / "o.mp4")],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [f"error: {bad}: cannot open as a video file (unreachable, wrong URL "
                                                "or a codec OpenCV's FFmpeg lacks)"], done.stderr


def test_infer_that_reads_no_frame_is_a_usage_error_and_leaves_no_folder(tmp_path, tiny) -> None:
    import json

    frames = tmp_path / "frames"
    frames.mkdir()
    for name in ("a.png", "b.png"):
        (frames / name).write_bytes(b"not a png")
    masks = tmp_path / "out" / "masks"
    result = runner.invoke(app, ["infer", "-s", str(frames), "-m", str(tiny[0]), "--masks", str(masks),
                                 "--json", str(tmp_path / "run.json"), "--no-progress"])
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines() == [
        f"error: --source {frames}: no frame was processed (all 2 images were unreadable); no video or masks were "
        "written"]
    assert not (tmp_path / "out").exists()
    assert json.loads((tmp_path / "run.json").read_text())["exit_code"] == 2


def test_onnx_model_without_onnxruntime_is_one_line_with_the_install(tmp_path_factory: pytest.TempPathFactory,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """`pip install '.[serve]'` had no onnxruntime: `toolkit serve --model m.onnx` ended in ModuleNotFoundError."""
    import sys
    from pathlib import Path

    import tomllib

    from tests.helpers.models import tiny_onnx

    model = tiny_onnx(tmp_path_factory, "mask")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime raises ImportError
    line = one_line_error(["bench", "-m", str(model), "--input-shape", "1x3x32x48", "-n", "1"])
    assert "ONNX Runtime, which is not importable here" in line and "segnet-toolkit[onnxruntime]" in line
    extras = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    assert any(r.startswith("onnxruntime>=") for r in extras["serve"])
