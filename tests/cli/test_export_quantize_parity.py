"""`toolkit export`, `quantize` and `parity` through Typer's runner: one smoke test each and the bad
inputs the issue lists (each one clear line, no traceback, non-zero exit)."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest
from typer.testing import CliRunner

from tests.helpers.models import tiny_checkpoint, tiny_onnx
from toolkit.cli.app import app
from toolkit.core.metadata import read_props

runner = CliRunner()


def _ok(args: list[str]) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return result.output


def _fails(args: list[str], code: int, message: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == code, result.output
    assert message in result.output and "Traceback" not in result.output
    assert result.output.strip().startswith("error:") or "error:" in result.output.splitlines()[-1]


@pytest.fixture(scope="module")
def mask(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_onnx(tmp_path_factory, "mask")


def test_export_plugin(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    out = tmp_path / "plugin.onnx"
    text = _ok(["export", str(tiny_checkpoint(tmp_path_factory)), "-o", str(out), "--unpool", "plugin"])
    assert "verified in ONNX Runtime" in text and "argmax agreement 100.000 %" in text
    assert read_props(onnx.load(str(out)))["lowering"] == "plugin"


def test_export_bad_input(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    ckpt = str(tiny_checkpoint(tmp_path_factory))
    _fails(["export", ckpt, "-o", str(tmp_path / "a.onnx"), "--unpool", "masc"], 2, "Did you mean 'mask'")
    _fails(["export", ckpt, "-o", str(tmp_path / "a.onnx"), "--dynamic", "batchh,hw"], 2, "Did you mean 'batch'")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"garbage")
    _fails(["export", str(bad), "-o", str(tmp_path / "a.onnx")], 2, "not a valid safetensors checkpoint")


def test_quantize_fp16_and_int8(mask: Path, synthetic_dir: Path, tmp_path: Path) -> None:
    f16 = tmp_path / "fp16.onnx"
    _ok(["quantize", str(mask), "--precision", "fp16", "-o", str(f16)])
    props = read_props(onnx.load(str(f16)))
    assert props["precision"] == "fp16" and props["classes"] == read_props(onnx.load(str(mask)))["classes"]
    i8 = tmp_path / "int8.onnx"
    args = ["quantize", str(mask), "--precision", "int8", "--calib-data", str(synthetic_dir), "--calib-size", "3",
            "--cache-dir", str(tmp_path / "cache"), "-o", str(i8)]
    assert "calibrated" in _ok(args)
    assert "cache hit" in _ok(args)
    props = read_props(onnx.load(str(i8)))
    assert props["precision"] == "int8" and props["quant_target"] == "tensorrt" and props["calib_images"] == "3"


def test_quantize_bad_input(mask: Path, synthetic_dir: Path, tmp_path: Path) -> None:
    out = str(tmp_path / "q.onnx")
    not_onnx = tmp_path / "model.onnx"
    not_onnx.write_text("hello")
    _fails(["quantize", str(not_onnx), "--precision", "fp16", "-o", out], 2, "not an ONNX model")
    _fails(["quantize", str(mask), "--precision", "int4", "-o", out], 2, "valid choices: fp16, int8")
    _fails(["quantize", str(mask), "--precision", "fp16", "--calib-data", str(synthetic_dir), "-o", out], 2,
           "only apply to --precision int8")
    _fails(["quantize", str(mask), "--precision", "int8", "-o", out], 2, "needs --calib-data")
    empty = tmp_path / "empty"
    empty.mkdir()
    _fails(["quantize", str(mask), "--precision", "int8", "--calib-data", str(empty), "-o", out], 2,
           "no calibration images")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "x.png").write_bytes(b"not a png")
    _fails(["quantize", str(mask), "--precision", "int8", "--calib-data", str(broken), "--cache-dir",
            str(tmp_path / "c"), "-o", out], 2, "x.png: not a readable image")


def test_model_without_metadata_needs_flags(mask: Path, synthetic_dir: Path, tmp_path: Path) -> None:
    model = onnx.load(str(mask))
    del model.metadata_props[:]
    bare = tmp_path / "bare.onnx"
    onnx.save(model, str(bare))
    base = ["quantize", str(bare), "--precision", "int8", "--calib-data", str(synthetic_dir), "--calib-size", "2",
            "--cache-dir", str(tmp_path / "c"), "-o", str(tmp_path / "q.onnx")]
    _fails(base, 2, "has no toolkit metadata; pass --mean")
    _ok([*base, "--mean", "0.4,0.4,0.4", "--std", "0.3,0.3,0.3", "--input-size", "64x96"])
    assert read_props(onnx.load(str(tmp_path / "q.onnx")))["precision"] == "int8"


def test_parity_cli(mask: Path, synthetic_dir: Path, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    ckpt = str(tiny_checkpoint(tmp_path_factory))
    out = tmp_path / "p.json"
    text = _ok(["parity", "--reference", ckpt, "-c", str(mask), "--data", str(synthetic_dir), "--json", str(out)])
    assert "pass" in text
    report = json.loads(out.read_text())
    assert report["passed"] and report["candidates"][0]["pixel_agreement"] == 100.0
    bare_model = onnx.load(str(mask))
    del bare_model.metadata_props[:]  # no toolkit metadata: judged with the reference's label space
    bare = tmp_path / "bare.onnx"
    onnx.save(bare_model, str(bare))
    assert "pass" in _ok(["parity", "--reference", ckpt, "-c", str(bare), "--data", str(synthetic_dir), "--limit", "1"])
    _fails(["parity", "--reference", ckpt, "-c", str(mask), "--data", str(synthetic_dir), "--min-agreement",
            "100.5"], 1, "parity failed")
    model = onnx.load(str(mask))
    for p in model.metadata_props:
        if p.key == "toolkit.classes":
            p.value = json.dumps(["a", "b", "c", "d", "e", "f"])
    other = tmp_path / "other.onnx"
    onnx.save(model, str(other))
    _fails(["parity", "--reference", ckpt, "-c", str(other), "--data", str(synthetic_dir)], 2, "classes")
    not_onnx = tmp_path / "n.onnx"
    not_onnx.write_bytes(b"\x00\x01")
    _fails(["parity", "--reference", ckpt, "-c", str(not_onnx), "--data", str(synthetic_dir)], 2, "not an ONNX model")


def test_ctrl_c_during_export_is_an_interruption(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 16 item 10: the exporter re-raises a Ctrl-C inside its own error type, which was reported as
    "ONNX export failed" with a cut-off message; now it is an interruption (exit 130) and nothing is written."""
    import torch

    def interrupted_export(*args: object, **kwargs: object) -> None:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as e:
            raise RuntimeError("Failed to export the model with torch.export. This is step 1/3 of") from e

    monkeypatch.setattr(torch.onnx, "export", interrupted_export)
    out = tmp_path / "a.onnx"
    result = runner.invoke(app, ["export", str(tiny_checkpoint(tmp_path_factory)), "-o", str(out)])
    assert result.exit_code == 130, result.output
    assert "interrupted" in result.output and "export failed" not in result.output
    assert not out.exists()
