"""Bad input, round two (issue 25): what a newcomer's attempts still broke. Each test failed before its fix."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from toolkit.cli.app import app

runner = CliRunner()


def _one_line(args: list[str], code: int = 2) -> str:
    result = runner.invoke(app, args)
    lines = result.output.strip().splitlines()
    assert result.exit_code == code, result.output
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


@pytest.mark.parametrize(("args", "words"), [
    (["train", "--bogus"], "No such option: --bogus"),
    (["train", "--data", "synthetic", "--epochs", "abc"], "'--epochs'"),
    (["trian"], "No such command 'trian'. Did you mean 'train'?"),
    (["train"], "Missing option '--data'"),
    (["--bogus"], "No such option: --bogus"),
])
def test_parser_errors_are_one_error_line(args: list[str], words: str) -> None:
    line = _one_line(args)
    assert words in line and "╭" not in line
