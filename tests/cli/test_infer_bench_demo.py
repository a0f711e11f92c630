"""`toolkit infer`, `toolkit bench` and `toolkit demo` smoke tests through Typer's runner (tiny models)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import cv2
import pytest
from typer.testing import CliRunner

from toolkit.cli.app import app

runner = CliRunner()
HW = (64, 96)  # the frame size of the `tiny` fixture (tests/cli/conftest.py)


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
    assert s["temporal"]["pairs"] == 4 and 0 <= s["temporal"]["flip_rate"] <= 100 and "flicker: " in result.output
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


def test_demo_runs_every_step_on_a_tiny_model(tiny: tuple[Path, Path], tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    ckpt, _ = tiny
    out = tmp_path / "demo"
    calls = _spy_on_the_commands_library_functions(monkeypatch)
    result = runner.invoke(app, ["demo", "-m", str(ckpt), "--output", str(out), "--synthetic", "--frames", "4",
                                 "--parity-frames", "2", "--calib-images", "2", "--iterations", "2"])
    assert result.exit_code == 0, result.output
    # issue 27: the demo's steps are the commands' library functions, the comparison toolkit parity's own
    assert calls == {"export_file": 1, "quantize_file": 3, "compare_with_provenance": 2, "infer_video": 1}
    parity_json = json.loads((out / "parity.json").read_text())
    assert all(c["source_matches"] is True for c in parity_json["candidates"])  # toolkit parity's provenance
    assert "--synthetic" in parity_json["command"]  # the command line the CLI built and passed in
    report = json.loads((out / "report.json").read_text())
    assert [s["name"] for s in report["steps"]] == ["sample clip", "export ONNX", "FP16", "INT8", "parity", "flicker",
                                                    "speed", "parity report", "video"]
    assert all(s["status"] == "ok" for s in report["steps"]), report["steps"]
    names = [c["name"] for c in report["candidates"]]
    assert names == ["pytorch fp32", "onnxrt fp32", "onnxrt fp16", "onnxrt int8-cpu", "onnxrt int8-trt"]
    for c in report["candidates"]:
        assert c["parity"]["labels"] == "ground truth" and c["speed"]["throughput_fps"] > 0
        assert 0 <= c["parity"]["miou"] <= 100 and 0 <= c["parity"]["pixel_agreement"] <= 100
    assert report["candidates"][1]["parity"]["pixel_agreement"] > 99.0  # same fp32 network, another runtime
    assert report["candidates"][1]["parity"]["min_pixel_agreement"] == 99.9  # toolkit.compare's fp32 tolerance
    assert report["chosen"] in names and report["video"]["frames"] == 4
    cap = cv2.VideoCapture(str(out / "demo.mp4"))
    assert cap.get(cv2.CAP_PROP_FRAME_COUNT) == 4
    parity_md, speed_md = (out / "parity.md").read_text(), (out / "speed.md").read_text()
    assert "| onnxrt int8-cpu | int8 |" in parity_md and "| onnxrt int8-trt | int8 |" in parity_md
    assert "int8-trt: symmetric int8 Q/DQ, the form `toolkit build-engine` takes" in parity_md
    chosen = next(c for c in report["candidates"] if c["name"] == report["chosen"])
    assert chosen["parity"]["passed"]
    assert "x vs pytorch fp32" in speed_md and "int8-cpu: uint8 activations" in speed_md
    # issue 16 item 9: the TensorRT form passes build-engine's preflight, the CPU (uint8) form does not
    ok = runner.invoke(app, ["build-engine", str(out / "model_int8_trt.onnx"), "--dry-run"])
    assert ok.exit_code == 0, ok.output
    assert runner.invoke(app, ["build-engine", str(out / "model_int8_cpu.onnx"), "--dry-run"]).exit_code != 0
    # like with like: the video's end-to-end rate against the model alone with as many streams as workers
    video = next(s for s in report["steps"] if s["name"] == "video")
    assert "with 1 worker = " in video["detail"] and "of the model alone at 1 stream" in video["detail"]
    assert report["video"]["workers"] == 1 and report["video"]["model_fps"] > 0
    page = (out / "parity_report.html").read_text(encoding="utf-8")
    assert "onnxrt int8-cpu" in page and "Speed" in page and "Lowest-agreement frames" in page
    drift = json.loads((out / "parity.json").read_text())["candidates"][2]["drift"]
    assert drift["pixels"] == drift["changed_pixels"] + round(drift["pixels"] * report["candidates"][3]["parity"][
        "pixel_agreement"] / 100)
    # issue 26: each precision's flip rate on the clip's consecutive frames, in report.json, flicker.md and the page
    for c in report["candidates"][1:]:
        t = c["temporal"]
        assert t["frames"] == 4 and t["pairs"] == 3 and t["excess_flip_rate"] == pytest.approx(
            t["flip_rate"] - t["reference_flip_rate"])
    assert report["candidates"][0]["temporal"] == {}  # the reference itself
    assert "| onnxrt:model_int8_cpu.onnx |" in (out / "flicker.md").read_text()
    assert "Flicker over time" in page
    _demo_files_carry_the_clis_provenance(out)


def _spy_on_the_commands_library_functions(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Count the calls of the library functions behind export, quantize, parity and infer."""
    import toolkit.compare
    import toolkit.export
    import toolkit.quant
    import toolkit.video

    calls: dict[str, int] = {}
    for module, name in ((toolkit.export, "export_file"), (toolkit.quant, "quantize_file"),
                         (toolkit.compare, "compare_with_provenance"), (toolkit.video, "infer_video")):
        real = getattr(module, name)

        def spy(*args: object, _real: Callable[..., object] = real, _name: str = name, **kwargs: object) -> object:
            calls[_name] = calls.get(_name, 0) + 1
            return _real(*args, **kwargs)

        monkeypatch.setattr(module, name, spy)
    return calls


def _demo_files_carry_the_clis_provenance(out: Path) -> None:
    """Issue 17: the demo's quantized files are made by quantize_file, like `toolkit quantize`'s, so they
    name their parent (it used to write the precision alone); the same command gives the same metadata."""
    from toolkit.core.metadata import read_props
    from toolkit.core.onnx_file import load_onnx, model_sha256

    parent = model_sha256(load_onnx(out / "model_fp32.onnx"))
    fp16 = read_props(load_onnx(out / "model_fp16.onnx"))
    assert fp16["precision"] == "fp16" and fp16["parent_onnx_sha256"] == parent and fp16["arch"] == "segnet"
    for target, file in (("cpu", "model_int8_cpu.onnx"), ("tensorrt", "model_int8_trt.onnx")):
        props = read_props(load_onnx(out / file))
        assert props["parent_onnx_sha256"] == parent and props["quant_target"] == target
        assert (props["precision"], props["calib_method"], props["calib_images"], props["calib_data_split"]) == \
            ("int8", "percentile 99.99", "2", "synthetic")
    cli = out / "cli_fp16.onnx"
    assert runner.invoke(app, ["quantize", "-m", str(out / "model_fp32.onnx"), "--precision", "fp16",
                               "-o", str(cli)]).exit_code == 0
    assert read_props(load_onnx(cli)) == fp16


def test_bench_shape_not_multiple_of_8_is_one_line_for_every_backend(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    """Issue 16 item 7: ONNX Runtime used to print a 60-line traceback; now the same line as PyTorch, before
    any model is loaded (the .onnx and .engine files here would not even load)."""
    ckpt, _ = tiny
    for model in (ckpt, tmp_path / "m.onnx", tmp_path / "m.engine"):
        if model != ckpt:
            model.write_bytes(b"not loaded: the shape is refused first")
        result = runner.invoke(app, ["bench", "-m", str(model), "--shape", "1x3x361x480", "-n", "1"])
        assert result.exit_code == 2, result.output
        assert result.output.strip() == ("error: --input-shape 1x3x361x480: H and W must be multiples of 8; "
                                         "pad to 1x3x368x480"), result.output


def test_image_folder_names_masks_and_lists_unreadable_images(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    """Issue 16 item 8: masks named after their inputs, unreadable images named (first few, then a count)."""
    import numpy as np

    ckpt, _ = tiny
    folder = tmp_path / "frames"
    folder.mkdir()
    for name in ("b_street.png", "a_alley.jpg"):
        cv2.imwrite(str(folder / name), np.full((*HW, 3), 90, np.uint8))
    for i in range(7):
        (folder / f"c_broken{i}.png").write_bytes(b"not an image")
    report = tmp_path / "run.json"
    result = runner.invoke(app, ["infer", "-m", str(ckpt), "-s", str(folder), "--masks", str(tmp_path / "m"),
                                 "--json", str(report), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["a_alley.png", "b_street.png"]
    shown = ", ".join(str(folder / f"c_broken{i}.png") for i in range(5))
    assert f"unreadable: {shown} and 2 more" in result.output
    s = json.loads(report.read_text())
    assert s["unreadable"] == 7 and s["unreadable_names"] == [str(folder / f"c_broken{i}.png") for i in range(7)]


def test_ctrl_c_in_infer_exits_130_with_a_playable_file(tiny: tuple[Path, Path], tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 16 item 10: Ctrl-C (here at the third frame's write, in the main thread where SIGINT lands)
    closes the outputs as before, and the exit code is 130 instead of 0."""
    from toolkit.video.sinks import VideoFileSink

    ckpt, clip = tiny
    real_write = VideoFileSink.write

    def write(self: VideoFileSink, frame, mask, index: int) -> None:
        if self.frames == 2:
            raise KeyboardInterrupt
        real_write(self, frame, mask, index)

    monkeypatch.setattr(VideoFileSink, "write", write)
    out, report = tmp_path / "out.mp4", tmp_path / "run.json"
    result = runner.invoke(app, ["infer", "-m", str(ckpt), "-s", str(clip), "-o", str(out), "--json", str(report),
                                 "--no-progress", "--workers", "1"])
    assert result.exit_code == 130, result.output
    assert "stopped by interrupted (Ctrl-C)" in result.output and f"wrote {out}" in result.output
    s = json.loads(report.read_text())
    assert s["exit_code"] == 130 and s["frames"] == 2
    cap = cv2.VideoCapture(str(out))
    assert cap.get(cv2.CAP_PROP_FRAME_COUNT) == 2
