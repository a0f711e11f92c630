"""Shared CLI plumbing: one-line errors with exit codes, help epilogs, shape parsing."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import typer

from toolkit.errors import InputShapeError, ToolkitError

P = ParamSpec("P")
R = TypeVar("R")

log = logging.getLogger(__name__)


IO_EXIT_CODE = 3  # = toolkit.errors.WriteError.exit_code


def report_error(e: ToolkitError) -> int:
    """Print 'error: <message>' on stderr; returns the error's exit code (2 usage, 1 check, 3 I/O)."""
    typer.secho(f"error: {e}", err=True, fg=typer.colors.RED)
    return e.exit_code


def handle_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn a ToolkitError into 'error: <message>' on stderr and its exit code (2 usage, 1 check, 3 I/O);
    an OSError that no library call turned into a ToolkitError is still one line, with the I/O exit code."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except ToolkitError as e:
            raise typer.Exit(report_error(e)) from None
        except BrokenPipeError:  # the reader left (`toolkit models | head`): not our failure, nothing to say
            import contextlib
            import os
            import sys

            # no second EPIPE when the interpreter flushes stdout at exit (a captured stdout has no file)
            with contextlib.suppress(OSError, ValueError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(0) from None
        except OSError as e:
            import errno

            where = f"{e.filename}: " if e.filename else ""
            code = f" ({errno.errorcode[e.errno]})" if e.errno in errno.errorcode else ""
            typer.secho(f"error: I/O error: {where}{e.strerror or e}{code}", err=True, fg=typer.colors.RED)
            log.debug("I/O error", exc_info=e)
            raise typer.Exit(IO_EXIT_CODE) from None
        except KeyboardInterrupt:
            typer.secho("interrupted", err=True)
            raise typer.Exit(130) from None

    return wrapper


def examples(*lines: str) -> str:
    """Help epilog listing copy-pasteable examples (Typer keeps the line breaks with \\b)."""
    return "\b\nExamples:\n" + "\n".join(f"  {line}" for line in lines)


def parse_shape(text: str) -> tuple[int, ...]:
    """'1x3x360x480' -> (1, 3, 360, 480); a clear error otherwise."""
    try:
        dims = tuple(int(v) for v in text.lower().split("x"))
    except ValueError:
        raise InputShapeError(f"shape '{text}': expected integers joined by 'x', e.g. 1x3x360x480") from None
    if not dims or any(d <= 0 for d in dims):
        raise InputShapeError(f"shape '{text}': every dimension must be positive")
    return dims


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(message)s")


def one_model(positional: object | None, option: object | None) -> object | None:
    """The model given positionally (the old spelling) or with ``--model``; both and different is an error."""
    if positional is not None and option is not None and str(positional) != str(option):
        raise ToolkitError(f"two models given ('{positional}' and --model '{option}'): pass one")
    return option if option is not None else positional


def pick_model(positional: str | None, option: str | None, device: str | None = "cpu", quiet: bool = False):
    """Resolve a command's model argument (positional or ``--model``: a zoo name, file or triton:// URL;
    none = the zoo default for ``device``) and, for a zoo model, say on stderr which one runs and why."""
    from toolkit.zoo import resolve_model

    resolved = resolve_model(one_model(positional, option), device)  # type: ignore[arg-type]
    if not quiet and resolved.name is not None:  # a file the user named needs no explanation
        typer.secho(f"model: {resolved.describe()}", err=True, fg=typer.colors.BRIGHT_BLACK)
    return resolved
