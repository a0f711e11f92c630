"""Project exceptions: user-facing failures that the CLI turns into one clear line and an exit code."""

from __future__ import annotations


class ToolkitError(Exception):
    """Base for every error caused by user input or environment (never by a bug)."""

    exit_code = 2


class InputShapeError(ToolkitError, ValueError):
    """A tensor or image has a shape the model cannot take."""


class RequestTooLargeError(InputShapeError):
    """A served request over one of the server's size limits (frame, request or logits size)."""


class CheckpointError(ToolkitError):
    """A checkpoint file is missing, truncated, inconsistent or of an unknown architecture."""


class DatasetError(ToolkitError):
    """A dataset folder, list file or sample is missing or unreadable."""


class UnknownNameError(ToolkitError, KeyError):
    """A name (model, loss, lowering ...) is not one of the valid choices."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class CheckFailedError(ToolkitError):
    """A check ran and failed (parity tolerance, preflight): exit code 1, not a usage error."""

    exit_code = 1


class WriteError(ToolkitError):
    """An output could not be written (read-only folder, full disk, file size limit): exit code 3, so a
    script can tell "the disk is full" from "the model failed its check" (1) and "bad arguments" (2)."""

    exit_code = 3


class OutputIsInputError(ToolkitError):
    """An output path resolves to one of the command's inputs (same name, symlink or hard link)."""


class DeviceError(ToolkitError):
    """A --device this PyTorch or ONNX Runtime build cannot use (no CUDA, unknown name, index out of range)."""


def suggest(name: str, choices: list[str] | tuple[str, ...]) -> str:
    """Return 'did you mean X?' text for a typo, listing all choices otherwise."""
    import difflib

    close = difflib.get_close_matches(name, list(choices), n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    return f"valid choices: {', '.join(choices)}.{hint}"
