"""`toolkit info` smoke tests through Typer's runner."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from toolkit.cli.app import app

runner = CliRunner()


def test_info_model_json() -> None:
    result = runner.invoke(app, ["info", "--model", "enhanced", "--width", "8", "--input-shape", "1x3x32x32",
                                 "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["model"]["params"] > 0 and report["model"]["flops"] == 2 * report["model"]["macs"]
    assert report["system"]["tensorrt"] in ("not installed",) or report["system"]["tensorrt"][0].isdigit()
    assert set(report["system"]["cpu_flags"]) >= {"avx512f", "amx_tile", "avx512_vnni"}


def test_info_text_and_errors() -> None:
    result = runner.invoke(app, ["info"])
    assert result.exit_code == 0 and "torch" in result.output
    result = runner.invoke(app, ["info", "--model", "enhancd"])
    assert result.exit_code == 2 and "Did you mean 'enhanced'" in result.output
    result = runner.invoke(app, ["info", "--model", "segnet", "--input-shape", "1x3x30x40"])
    assert result.exit_code == 2 and "pad to 32x40" in result.output
