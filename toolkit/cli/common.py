"""Shared CLI plumbing: one-line errors with exit codes, help epilogs, shape parsing."""

from __future__ import annotations

import contextlib
import functools
import logging
import signal
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, ParamSpec, TypeVar, overload

import typer

from toolkit.errors import InputShapeError, ToolkitError, WriteError

if TYPE_CHECKING:
    from pathlib import Path

    from toolkit.zoo import ResolvedModel

P = ParamSpec("P")
R = TypeVar("R")

log = logging.getLogger(__name__)


INTERRUPTED_EXIT_CODE = 130  # Ctrl-C and SIGTERM alike: the shell's code for SIGINT
OTHER_FAILURE_EXIT_CODE = 2  # a run stopped by an error that is no ToolkitError nor OSError (a video stage's)


def exit_code(failure: BaseException | None = None, interrupted: bool = False) -> int:
    """The one map from what happened to the exit status (README's table): 0 ok; a ToolkitError its own
    code (2 usage, 1 failed check, 3 I/O); any other OSError 3, like a WriteError; Ctrl-C 130; any other
    error that ended a run (``RunSummary.failure``) 2. The library reports the outcome, the CLI exits."""
    if failure is None:
        return INTERRUPTED_EXIT_CODE if interrupted else 0
    if isinstance(failure, ToolkitError):
        return failure.exit_code
    if isinstance(failure, KeyboardInterrupt):
        return INTERRUPTED_EXIT_CODE
    if isinstance(failure, OSError):
        return WriteError.exit_code
    return OTHER_FAILURE_EXIT_CODE


def print_error(message: str) -> None:
    """'error: <message>' on stderr, the one line every failing command ends with."""
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)


def report_error(e: ToolkitError) -> int:
    """Print 'error: <message>' on stderr; returns the error's exit code (2 usage, 1 check, 3 I/O)."""
    print_error(str(e))
    return exit_code(e)


def _raise_interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """While the block runs, SIGTERM (``docker stop``, systemd, ``timeout``) raises ``KeyboardInterrupt("SIGTERM")``
    in the main thread, where Ctrl-C's SIGINT raises it, so it takes Ctrl-C's path in every command: outputs
    closed and complete, training state kept, exit 130 (issue 25). The previous handler is put back afterwards.
    A handler set inside the block wins while it is set (``serve`` drains and exits 0 on SIGTERM). A SIGTERM
    the parent process ignores stays ignored; off the main thread (no signal handlers there) nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)
    if previous == signal.SIG_IGN:
        yield
        return
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


def handle_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn a ToolkitError into 'error: <message>' on stderr and its exit code (2 usage, 1 check, 3 I/O);
    an OSError that no library call turned into a ToolkitError is still one line, with the I/O exit code.
    Ctrl-C and SIGTERM (:func:`sigterm_as_interrupt`) are an interruption: 'interrupted', exit 130."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            with sigterm_as_interrupt():
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
            print_error(f"I/O error: {where}{e.strerror or e}{code}")
            log.debug("I/O error", exc_info=e)
            raise typer.Exit(exit_code(e)) from None
        except KeyboardInterrupt as e:
            typer.secho(f"interrupted ({e})" if str(e) else "interrupted", err=True)  # "(SIGTERM)"; Ctrl-C: bare
            raise typer.Exit(exit_code(e)) from None

    return wrapper


def command_line(ctx: typer.Context) -> str:
    """The command as typed when run as ``toolkit``; under another entry (tests, ``python -m``) the parsed
    options that differ from their defaults, so a report always says what produced it. The one place that
    reads ``sys.argv``: library code gets the text (``ParityReport.command``, ``DemoOptions.command``)."""
    import shlex
    import sys
    from pathlib import Path

    if Path(sys.argv[0]).name == "toolkit":
        return shlex.join(["toolkit", *sys.argv[1:]])
    args = ["toolkit", ctx.info_name or ctx.command.name or ""]
    for param in ctx.command.params:
        value = ctx.params.get(param.name or "")
        if value is None or value == param.default or getattr(param, "param_type_name", "") != "option":
            continue
        flag = param.opts[0]
        if isinstance(value, bool):
            args.append(flag if value else (param.secondary_opts or [flag])[0])
        else:
            args += [a for v in (value if isinstance(value, (list, tuple)) else [value]) for a in (flag, str(v))]
    return shlex.join(args)


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


@overload
def one_model(positional: Path | None, option: Path | None) -> Path | None: ...


@overload
def one_model(positional: str | Path | None, option: str | Path | None) -> str | Path | None: ...


def one_model(positional: str | Path | None, option: str | Path | None) -> str | Path | None:
    """The model given positionally (the old spelling) or with ``--model``; both and different is an error."""
    if positional is not None and option is not None and str(positional) != str(option):
        raise ToolkitError(f"two models given ('{positional}' and --model '{option}'): pass one")
    return option if option is not None else positional


def pick_model(positional: str | Path | None, option: str | Path | None, device: str | None = "cpu",
               quiet: bool = False) -> ResolvedModel:
    """Resolve a command's model argument (positional or ``--model``: a zoo name, file or triton:// URL;
    none = the zoo default for ``device``) and, for a zoo model, say on stderr which one runs and why."""
    from toolkit.zoo import resolve_model

    resolved = resolve_model(one_model(positional, option), device)
    if not quiet and resolved.name is not None:  # a file the user named needs no explanation
        typer.secho(f"model: {resolved.describe()}", err=True, fg=typer.colors.BRIGHT_BLACK)
    return resolved
