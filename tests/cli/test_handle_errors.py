"""``handle_errors``: a reader that leaves a pipe early (``toolkit models | head``) ends the command quietly."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import typer

from toolkit.cli.common import handle_errors


def test_broken_pipe_exits_quietly(capsys: pytest.CaptureFixture[str]) -> None:
    @handle_errors
    def command() -> None:
        raise BrokenPipeError(32, "Broken pipe")

    saved = os.dup(1)
    try:
        with pytest.raises(typer.Exit) as done:
            command()
    finally:
        os.dup2(saved, 1)  # the handler pointed stdout at /dev/null
        os.close(saved)
    assert done.value.exit_code == 0 and capsys.readouterr().err == ""


def test_models_into_head_prints_no_error() -> None:
    """The real case end to end: the listing piped into `head -1` leaves stderr empty."""
    shell = f"'{sys.executable}' -m toolkit models | head -1"
    result = subprocess.run(["bash", "-o", "pipefail", "-c", shell], capture_output=True, text=True, timeout=120)
    assert result.stdout.startswith("name") and "error" not in result.stderr, result.stderr
    assert result.returncode == 0
