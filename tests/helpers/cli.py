"""Running a toolkit command in process and holding it to the README's rule for bad input."""

from __future__ import annotations

from typer.testing import CliRunner

from toolkit.cli.app import app

runner = CliRunner()


def one_line_error(args: list[str], code: int = 2) -> str:
    """Run ``toolkit ARGS``; it must exit ``code`` with exactly one non-blank output line, ``error: ...``
    (progress-bar lines aside), which is returned."""
    result = runner.invoke(app, args)
    lines = [line for line in result.output.splitlines() if line.strip() and "%|" not in line]  # progress bars
    assert result.exit_code == code, result.output
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]
