"""A reader that closes stdout early (``toolkit parity ... | head -1``) is no failure of ours (issue 25).

Without this, the first write after the reader left raised BrokenPipeError: Rich's console turns that into
``SystemExit(1)`` and every command stopped where it printed, before writing the ``--json``/``--report``
files it was asked for. ``guard_stdout()`` (called once by the console entry point) wraps ``sys.stdout`` so
that a broken pipe points file descriptor 1 at /dev/null and the write is dropped: the command runs to its
end, writes its files, and exits with the code it would have had anyway (0 on success), with no error line
and no "Exception ignored" when the interpreter flushes stdout at exit.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Any, TextIO


def _to_devnull(stream: TextIO) -> None:
    with contextlib.suppress(OSError, ValueError):  # a stream with no file descriptor has nothing to redirect
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, stream.fileno())
        os.close(null)


class ClosedPipeSafe:
    """A text stream wrapper: writes and flushes after the reader closed the pipe are dropped."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self.reader_left = False

    def _left(self) -> None:
        self.reader_left = True
        _to_devnull(self._stream)

    def write(self, text: str) -> int:
        if not self.reader_left:
            try:
                return self._stream.write(text)
            except BrokenPipeError:
                self._left()
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        if self.reader_left:
            with contextlib.suppress(OSError, ValueError):
                self._stream.flush()  # what the buffer still held goes to /dev/null now
            return
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._left()
            with contextlib.suppress(OSError, ValueError):
                self._stream.flush()

    def __getattr__(self, name: str) -> Any:  # encoding, isatty, fileno, buffer ...: the real stream's
        return getattr(self._stream, name)


def guard_stdout() -> ClosedPipeSafe:
    """Wrap ``sys.stdout`` once; returns the wrapper."""
    if not isinstance(sys.stdout, ClosedPipeSafe):
        sys.stdout = ClosedPipeSafe(sys.stdout)  # type: ignore[assignment]
    return sys.stdout  # type: ignore[return-value]
