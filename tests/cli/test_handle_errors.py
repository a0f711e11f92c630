"""``handle_errors``: a reader that leaves a pipe early (``toolkit models | head``) ends the command quietly;
``exit_code``: the one map from what happened to the exit status."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import typer

from toolkit.cli.common import exit_code, handle_errors
from toolkit.errors import CheckFailedError, ToolkitError, WriteError


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


def test_one_function_maps_outcomes_to_exit_codes() -> None:
    """Issue 27: the video pipeline used to pick exit codes and cli/common.py mirrored WriteError's 3; now the
    library reports the error, and this function alone (README's table) turns it into the status."""
    assert exit_code() == 0 and exit_code(None, interrupted=True) == 130
    assert exit_code(ToolkitError("bad input")) == 2 and exit_code(CheckFailedError("parity")) == 1
    assert exit_code(WriteError("disk full")) == exit_code(OSError(28, "No space left on device")) == \
        WriteError.exit_code
    assert exit_code(KeyboardInterrupt()) == 130 and exit_code(RuntimeError("a stage broke")) == 2


def test_handle_errors_exits_with_the_mapped_code(capsys: pytest.CaptureFixture[str]) -> None:
    @handle_errors
    def command() -> None:
        raise FileNotFoundError(2, "No such file or directory", "/nowhere/x")

    with pytest.raises(typer.Exit) as done:
        command()
    assert done.value.exit_code == WriteError.exit_code
    assert capsys.readouterr().err.strip() == "error: I/O error: /nowhere/x: No such file or directory (ENOENT)"
