"""Checks of option values that a Typer ``min=``/``max=`` cannot express: open intervals, memory (issue 25).

Every message names the option, what was received and what is expected, so the user can fix the command.
"""

from __future__ import annotations

import os

from toolkit.errors import ToolkitError

GIB = 1024**3


def positive(option: str, value: float | None) -> None:
    """``value`` > 0 (a learning rate, a temperature): 0 would train nothing or divide by zero."""
    if value is not None and not value > 0:
        raise ToolkitError(f"{option} {value}: expected a value above 0")


def available_memory() -> int | None:
    """Bytes this process could still allocate (MemAvailable on Linux), None where the OS does not say."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def input_fits(option: str, text: str, dims: tuple[int, ...], bytes_per_value: int = 4) -> None:
    """Refuse an input tensor that alone exceeds the memory left, before any model loads (the model's own
    activations need several times more, so this only catches what can never run)."""
    need = bytes_per_value
    for d in dims:
        need *= d
    have = available_memory()
    if have is not None and need > have:
        raise ToolkitError(f"{option} {text}: the input alone needs {need / GIB:.1f} GiB and this machine has "
                           f"{have / GIB:.1f} GiB available; use a smaller shape")


def out_of_memory(option: str, text: str, error: BaseException) -> ToolkitError:
    """The one line for an allocation that failed while running at the shape ``option`` asked for."""
    return ToolkitError(f"{option} {text}: out of memory while running at this shape "
                        f"({type(error).__name__}); use a smaller shape or batch")
