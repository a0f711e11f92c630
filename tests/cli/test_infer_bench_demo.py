"""`toolkit infer`, `toolkit bench` and `toolkit demo` smoke tests through Typer's runner (tiny models)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest
import torch
from typer.testing import CliRunner

from toolkit.checkpoint import ModelMeta, save_checkpoint
from toolkit.cli.app import app
from toolkit.data import synthetic_info
from toolkit.models import create_model
from toolkit.video.sample import make_sample_clip

runner = CliRunner()
HW = (64, 96)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(checkpoint, clip): a width-4 SegNet on 3 synthetic classes and a 5-frame panning clip, 64x96."""
    root = tmp_path_factory.mktemp("cli_video")
    torch.manual_seed(0)
    ckpt = save_checkpoint(root / "tiny.safetensors", create_model("segnet", num_classes=3, width=4),
                           ModelMeta("segnet", 4, synthetic_info(3), input_size=HW))
    clip = make_sample_clip(root / "clip.mp4", frames=5, size=HW, use_camvid=False)
    return ckpt, clip.path


def test_infer_file_writes_video_and_summary(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    ckpt, clip = tiny
    out, report = tmp_path / "out.mp4", tmp_path / "run.json"
    result = runner.invoke(app, ["infer", "-m", str(ckpt), "-s", str(clip), "-o", str(out), "--json", str(report),
                                 "--side-by-side", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "5 frames (0 dropped, 0 unreadable" in result.output and "p95 ms" in result.output
    s = json.loads(report.read_text())
    assert s["frames"] == 5 and s["fps"] > 0 and set(s["stages"]) == {"capture", "preprocess", "infer", "overlay",
                                                                        "write"}
    cap = cv2.VideoCapture(str(out))
    assert cap.get(cv2.CAP_PROP_FRAME_COUNT) == 5 and cap.get(cv2.CAP_PROP_FRAME_WIDTH) == 2 * HW[1]


def test_infer_bad_inputs_one_line(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    ckpt, clip = tiny
    result = runner.invoke(app, ["infer", "-m", str(ckpt), "-s", "63"])
    assert result.exit_code == 2 and "camera index 63 could not be opened" in result.output
    result = runner.invoke(app, ["infer", "-m", str(ckpt), "-s", str(clip), "-o", str(tmp_path / "x.gif")])
    assert result.exit_code == 2 and "unsupported video type '.gif'" in result.output
    result = runner.invoke(app, ["infer", "-m", str(ckpt), "-s", str(clip), "--show"])
    assert result.exit_code == 2 and "--show needs an OpenCV build with a GUI" in result.output


def test_bench_two_models_compare_json(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    ckpt, _ = tiny
    report = tmp_path / "bench.json"
    result = runner.invoke(app, ["bench", "-m", str(ckpt), "-m", str(ckpt), "--shape", "1x3x64x96", "-n", "4",
                                 "--warmup", "1", "--compare", "--threads", "1", "--json", str(report)])
    assert result.exit_code == 0, result.output
    assert "p99 ms" in result.output and "x vs torch:tiny.safetensors" in result.output
    data = json.loads(report.read_text())
    first, second = data["results"]
    assert first["iterations"] == second["iterations"] == 4 and first["ratio"] is None and second["ratio"] > 0
    lat = first["latency_ms"]
    assert 0 < lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"]
    result = runner.invoke(app, ["bench", "-m", str(ckpt), "--shape", "1x3x64x96", "-n", "4", "--streams", "2",
                                 "--rounds", "1", "--json", str(report)])
    assert result.exit_code == 0, result.output
    (only,) = json.loads(report.read_text())["results"]
    assert only["streams"] == 2 and only["iterations"] == 4 and only["throughput_fps"] > 0
    result = runner.invoke(app, ["bench", "-m", str(ckpt), "--shape", "1x3x65x96", "-n", "1"])
    assert result.exit_code == 2 and "multiple" in result.output


def test_demo_runs_every_step_on_a_tiny_model(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    ckpt, _ = tiny
    out = tmp_path / "demo"
    result = runner.invoke(app, ["demo", "-m", str(ckpt), "--out", str(out), "--synthetic", "--frames", "4",
                                 "--parity-frames", "2", "--calib-images", "2", "--iterations", "2"])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert [s["name"] for s in report["steps"]] == ["sample clip", "export ONNX", "FP16", "INT8", "parity", "speed",
                                                    "parity report", "video"]
    assert all(s["status"] == "ok" for s in report["steps"]), report["steps"]
    names = [c["name"] for c in report["candidates"]]
    assert names == ["pytorch fp32", "onnxrt fp32", "onnxrt fp16", "onnxrt int8"]
    for c in report["candidates"]:
        assert c["parity"]["labels"] == "ground truth" and c["speed"]["throughput_fps"] > 0
        assert 0 <= c["parity"]["miou"] <= 100 and 0 <= c["parity"]["pixel_agreement"] <= 100
    assert report["candidates"][1]["parity"]["pixel_agreement"] > 99.0  # same fp32 network, another runtime
    assert report["candidates"][1]["parity"]["min_pixel_agreement"] == 99.9  # toolkit.compare's fp32 tolerance
    assert report["chosen"] in names and report["video"]["frames"] == 4
    cap = cv2.VideoCapture(str(out / "demo.mp4"))
    assert cap.get(cv2.CAP_PROP_FRAME_COUNT) == 4
    assert "| onnxrt int8 | int8 |" in (out / "parity.md").read_text()
    chosen = next(c for c in report["candidates"] if c["name"] == report["chosen"])
    assert chosen["parity"]["passed"]
    assert "x vs pytorch fp32" in (out / "speed.md").read_text()
    page = (out / "parity_report.html").read_text(encoding="utf-8")
    assert "onnxrt int8" in page and "Speed" in page and "Lowest-agreement frames" in page
    drift = json.loads((out / "parity.json").read_text())["candidates"][2]["drift"]
    assert drift["pixels"] == drift["changed_pixels"] + round(drift["pixels"] * report["candidates"][3]["parity"][
        "pixel_agreement"] / 100)
