"""`toolkit export --opset N` writes opset N or refuses (issue 25): an opset beyond what the installed onnx knows
used to be written as opset 18 while the command printed the value asked for."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
from typer.testing import CliRunner

from tests.helpers.models import tiny_checkpoint
from toolkit.cli.app import app
from toolkit.export.onnx_export import MIN_OPSET, max_opset, written_opset

runner = CliRunner()


@pytest.mark.parametrize("offset", [-1, 1])
def test_an_opset_the_exporter_cannot_write_is_a_usage_error_naming_the_range(
        offset: int, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    opset = MIN_OPSET - 1 if offset < 0 else max_opset() + 1
    out = tmp_path / "m.onnx"
    result = runner.invoke(app, ["export", "-m", str(tiny_checkpoint(tmp_path_factory)), "-o", str(out),
                                 "--opset", str(opset), "--no-verify"])
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines() == [
        f"error: --opset {opset}: this exporter writes opsets {MIN_OPSET} to {max_opset()} (the newest the "
        f"installed onnx {onnx.__version__} knows); pass one of them, e.g. --opset 18"]
    assert list(tmp_path.iterdir()) == []


def test_the_opset_asked_for_is_the_one_written_and_printed(tmp_path: Path,
                                                             tmp_path_factory: pytest.TempPathFactory) -> None:
    opset = MIN_OPSET + 1
    out = tmp_path / "m.onnx"
    result = runner.invoke(app, ["export", "-m", str(tiny_checkpoint(tmp_path_factory)), "-o", str(out),
                                 "--opset", str(opset), "--no-verify"])
    assert result.exit_code == 0, result.output
    assert written_opset(onnx.load(str(out))) == opset and f"opset {opset}," in result.output


def test_an_exporter_that_writes_another_opset_is_refused(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Where torch's exporter falls back (here: told the range reaches past onnx's newest opset, the real
    exporter writes 18), the written opset is checked and nothing is written."""
    import toolkit.export.onnx_export as onnx_export

    beyond = max_opset() + 1
    monkeypatch.setattr(onnx_export, "max_opset", lambda: beyond)
    out = tmp_path / "m.onnx"
    result = runner.invoke(app, ["export", "-m", str(tiny_checkpoint(tmp_path_factory)), "-o", str(out),
                                 "--opset", str(beyond), "--no-verify"])
    assert result.exit_code == 2, result.output
    assert f"error: --opset {beyond}: the exporter produced opset 18 instead" in result.output
    assert list(tmp_path.iterdir()) == []
