"""`toolkit build-engine` and `toolkit info` tell "bindings present, libraries missing" from "no TensorRT".

The ImportError below is the one the real tensorrt-cu12-bindings 10.13 wheel raises without libnvinfer
(seen in test_real_api.py, which checks it against the real wheels); here a stand-in package raises
it so the CLI path is tested on every machine.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.helpers import onnx_graphs as g
from toolkit.cli.app import app

runner = CliRunner()
MISSING = "libnvinfer.so.10: cannot open shared object file: No such file or directory"


@pytest.fixture
def bindings_without_libraries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = tmp_path / "site" / "tensorrt"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(f"raise ImportError({MISSING!r})\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.delitem(sys.modules, "tensorrt", raising=False)


def test_build_engine_says_libraries_missing(tmp_path: Path, bindings_without_libraries: None) -> None:
    onnx_path = g.save(g.clean(), tmp_path / "m.onnx")
    result = runner.invoke(app, ["build-engine", str(onnx_path), "--shapes", "1x3x64x96"])
    assert result.exit_code == 2, result.output
    err = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(err) == 1, result.output
    assert "bindings are present but its libraries are missing" in err[0] and MISSING in err[0]
    assert "not installed" not in err[0] and "Traceback" not in result.output


def test_info_says_libraries_missing(bindings_without_libraries: None) -> None:
    result = runner.invoke(app, ["info"])
    assert result.exit_code == 0, result.output
    (line,) = [x for x in result.output.splitlines() if x.startswith("tensorrt")]
    assert "bindings present, libraries missing: " + MISSING in line


def test_info_without_tensorrt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    result = runner.invoke(app, ["info"])
    (line,) = [x for x in result.output.splitlines() if x.startswith("tensorrt")]
    assert line.split() == ["tensorrt", "not", "installed"]


def test_info_names_a_too_old_tensorrt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "tensorrt").mkdir()
    (tmp_path / "tensorrt" / "__init__.py").write_text("__version__ = '8.6.1.6'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "tensorrt", raising=False)
    from toolkit.backend.trt.compat import tensorrt_status

    assert tensorrt_status() == "8.6.1.6 (too old: this toolkit needs TensorRT >= 10)"
