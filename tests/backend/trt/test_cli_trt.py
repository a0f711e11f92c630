"""`toolkit build-engine` and `toolkit build-plugin` through Typer's runner, on machines without TensorRT."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.helpers import onnx_graphs as g
from toolkit.backend.trt import plugin_lib as pl
from toolkit.cli.app import app

runner = CliRunner()


@pytest.fixture(autouse=True)
def _no_plugin_library(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests must not pick up a library someone built in build/engines/."""
    monkeypatch.delenv(pl.ENV_PLUGIN_LIB, raising=False)
    monkeypatch.setattr(pl, "default_library_candidates", lambda: [])


def test_help_has_examples() -> None:
    for cmd in ("build-engine", "build-plugin"):
        result = runner.invoke(app, [cmd, "--help"])
        assert result.exit_code == 0 and "Examples:" in result.output and f"toolkit {cmd}" in result.output


def test_dry_run_plans_without_tensorrt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # as on a machine without TensorRT
    onnx_path = g.save(g.clean(), tmp_path / "m.onnx")
    result = runner.invoke(app, ["build-engine", str(onnx_path), "--shapes", "1x3x64x96:1x3x64x96:2x3x128x192",
                                 "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "preflight m.onnx:" in result.output and "precision fp32: ok" in result.output
    assert f"plan: {tmp_path / 'm.engine'} (fp32, strongly typed)" in result.output
    assert "profile 1x3x64x96:1x3x64x96:2x3x128x192" in result.output
    assert not (tmp_path / "m.engine").exists()


def test_dry_run_profile_from_metadata(tmp_path: Path) -> None:
    onnx_path = g.save(g.clean(meta=g.META), tmp_path / "m.onnx")
    result = runner.invoke(app, ["build-engine", str(onnx_path), "-o", str(tmp_path / "m.plan"), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "profile 1x3x64x96:1x3x64x96:1x3x64x96" in result.output  # toolkit.input_size 64x96, batch 1


def test_no_tensorrt_is_one_line_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    onnx_path = g.save(g.clean(), tmp_path / "m.onnx")
    result = runner.invoke(app, ["build-engine", str(onnx_path), "--shapes", "1x3x64x96"])
    assert result.exit_code == 2
    err = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(err) == 1 and "TensorRT is not installed" in err[0] and "docs/TENSORRT.md" in err[0]
    assert "Traceback" not in result.output


def test_preflight_failures_exit_1(tmp_path: Path) -> None:
    result = runner.invoke(app, ["build-engine", str(g.save(g.maxunpool(), tmp_path / "m.onnx")), "--dry-run"])
    assert result.exit_code == 1 and "--unpool mask" in result.output and "Traceback" not in result.output
    result = runner.invoke(app, ["build-engine", str(g.save(g.plugin(), tmp_path / "p.onnx")), "--dry-run"])
    assert result.exit_code == 1 and "toolkit build-plugin" in result.output


def test_plugin_graph_with_library(tmp_path: Path) -> None:
    lib = tmp_path / pl.LIBRARY_NAME
    lib.write_bytes(b"\x7fELF")
    onnx_path = g.save(g.plugin(), tmp_path / "p.onnx")
    result = runner.invoke(app, ["build-engine", str(onnx_path), "--plugin", str(lib), "--shapes", "1x3x64x96",
                                 "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "1 plugin node(s)" in result.output and f"plugin {lib}" in result.output


@pytest.mark.parametrize("args,fragment", [
    (["-o", "model.onnx2"], "engine files end in .engine or .plan"),
    (["--shapes", "1x3x361x480"], "use 1x3x368x480"),
    (["--plugin", "/nonexistent/lib.so"], "no such file"),
    (["--opt-level", "9", "--shapes", "1x3x64x96"], "--opt-level"),
])
def test_usage_errors_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], fragment: str) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("toolkit.backend.trt.compat.import_tensorrt", lambda: object())  # reach the loader checks
    onnx_path = g.save(g.clean(), tmp_path / "m.onnx")
    result = runner.invoke(app, ["build-engine", str(onnx_path), *args])
    assert result.exit_code == 2, result.output
    assert fragment in result.output and "Traceback" not in result.output


def test_missing_onnx_exit_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["build-engine", str(tmp_path / "nope.onnx"), "--dry-run"])
    assert result.exit_code == 2 and "ONNX file not found" in result.output


def test_build_plugin_without_tensorrt_headers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pl, "check_build_tools", lambda env=None: ("cmake", Path("/usr/local/cuda/bin/nvcc")))
    monkeypatch.setattr(pl, "_pip_tensorrt_dirs", lambda: [])
    monkeypatch.setattr(pl, "STANDARD_TRT_ROOTS", (str(tmp_path / "usr"),))
    monkeypatch.setattr(pl, "STANDARD_INCLUDE_DIRS", ())
    monkeypatch.delenv("TENSORRT_ROOT", raising=False)
    result = runner.invoke(app, ["build-plugin", "--build-dir", str(tmp_path / "b")])
    assert result.exit_code == 2
    err = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(err) == 1 and "TensorRT headers (NvInfer.h) not found" in err[0] and "--tensorrt-root" in err[0]


def test_build_plugin_without_cmake(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pl.shutil, "which", lambda name: None)
    result = runner.invoke(app, ["build-plugin"])
    assert result.exit_code == 2 and "error: cmake not found" in result.output


def test_progress_bars_open_and_close(capsys: pytest.CaptureFixture[str]) -> None:
    from toolkit.cli.build_engine import _progress_bars

    progress, close = _progress_bars()
    for phase, step, total in [("Building engine", 0, 3), ("Tactic search", 0, 2), ("Tactic search", 2, 2),
                               ("Tactic search", 2, 2), ("Tactic search", 0, 5), ("Building engine", 2, 3)]:
        progress(phase, step, total)  # a finished phase's name may start again (TensorRT reuses names)
    close()
    err = capsys.readouterr().err
    assert "Building engine" in err and "Tactic search" in err and "0/5" in err
