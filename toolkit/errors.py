"""Project exceptions: user-facing failures that the CLI turns into one clear line and an exit code."""

from __future__ import annotations


class ToolkitError(Exception):
    """Base for every error caused by user input or environment (never by a bug)."""

    exit_code = 2


class InputShapeError(ToolkitError, ValueError):
    """A tensor or image has a shape the model cannot take."""


class InvalidValueError(ToolkitError, ValueError):
    """A value read from the user (an option, a label image, a file's metadata) outside what it may be; still a
    ValueError, so code that catches ValueError keeps working."""


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


class PackageMismatchError(ToolkitError):
    """The package was built for another device, instruction set or torch version, or its sidecar is missing."""


class EngineBuildError(ToolkitError):
    """TensorRT refused the network or failed to build it."""


class PluginLibraryError(ToolkitError):
    """The plugin library is missing, cannot be built here, or does not load."""


class EngineMismatchError(ToolkitError):
    """The engine was built for another TensorRT version or GPU, or its sidecar is missing or stale."""


class PreflightError(CheckFailedError):
    """The graph would not build with TensorRT; the message lists every problem and its fix."""


class TensorRTMissingError(ToolkitError):
    """TensorRT (or the CUDA bindings it needs here) is not importable on this machine."""

    def __init__(self, message: str, cause: str = "", version: str = "") -> None:
        super().__init__(message)
        self.cause, self.version = cause, version  # for `toolkit info`: the import error's words, what imported


class TensorRTLibrariesMissingError(TensorRTMissingError):
    """The ``tensorrt`` Python bindings are installed, but libnvinfer & co. (the TensorRT libraries) are not found."""


class SourceError(ToolkitError):
    """A source cannot be opened (missing file, camera index absent, bad URL)."""


class SourceLostError(ToolkitError):
    """A live source stopped delivering frames and did not come back after the retries."""


def suggest(name: str, choices: list[str] | tuple[str, ...]) -> str:
    """Return 'did you mean X?' text for a typo, listing all choices otherwise."""
    import difflib

    close = difflib.get_close_matches(name, list(choices), n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    return f"valid choices: {', '.join(choices)}.{hint}"
