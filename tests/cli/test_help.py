"""Every command's --help reads cleanly: no text swallowed by Rich's markup (a "[default: ...]" in a help
string is taken for a markup tag and dropped, leaving "Calibration cache folder .")."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from toolkit.cli.app import app

runner = CliRunner()
COMMANDS = ["info", "train", "eval", "export", "quantize", "parity", "build-plugin", "build-engine", "infer",
            "bench", "serve", "export-triton", "demo"]


@pytest.mark.parametrize("command", COMMANDS)
def test_help_has_no_swallowed_text(command: str) -> None:
    result = runner.invoke(app, [command, "--help"], env={"COLUMNS": "400", "TERMINAL_WIDTH": "400"})
    assert result.exit_code == 0, result.output
    stray = [line.strip(" │") for line in result.output.splitlines() if re.search(r"\S \.(\s|$)", line)]
    assert not stray, stray


def test_defaults_written_in_help_are_shown() -> None:
    def text(command: str) -> str:  # Click wraps help at 78 columns however wide the terminal: read it unwrapped
        out = runner.invoke(app, [command, "--help"], env={"COLUMNS": "400", "TERMINAL_WIDTH": "400"}).output
        return " ".join(out.split())

    assert "~/.cache/segnet-toolkit/calibration or $TOOLKIT_CACHE" in text("quantize")
    assert "fp32 99.9, fp16 99, int8 98" in text("parity")
