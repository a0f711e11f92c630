"""Logging for the command line, set up once where ``toolkit`` starts (issue 27 item 4).

Library code logs through its own module loggers and leaves the rest of the process alone; the noise other
libraries make is filtered here, once, for the whole run:

- the ONNX exporter's pass-by-pass lines (onnxscript, onnx_ir, onnxslim: INFO through the root handler) and
  what other libraries log through the root logger itself (onnxruntime.quantization's advice on every
  ``quantize_static``) are dropped below ERROR by a filter on the handler this module installs;
- torch's own loggers have their own handlers and are reset when torch is imported, so their level is set
  the way torch documents: ``TORCH_LOGS`` (``-onnx``: torch.onnx at ERROR), read when torch first loads;
- FFmpeg's and OpenCV's native logs: ``OPENCV_FFMPEG_LOGLEVEL``/``OPENCV_LOG_LEVEL``, read when OpenCV first
  opens a video.

A variable the user set is left as it is, so ``TORCH_LOGS=+onnx toolkit export ...`` shows everything.
"""

from __future__ import annotations

import logging
import os

AV_LOG_QUIET = -8  # FFmpeg's av_log level that prints nothing
# loggers that propagate to the root handler: the dynamo exporter's optimisation passes
EXPORTER_LOGGERS = ("onnxscript", "onnx_ir", "onnxslim")
# torch.onnx's own handler: "torchvision is not installed. Skipping torchvision::nms" and the like
TORCH_LOGS_QUIET = "-onnx"


class ThirdPartyNoise(logging.Filter):
    """Below ERROR, drop the exporter's pass-by-pass lines and anything logged through the root logger
    (the toolkit logs through ``toolkit.*`` loggers only; onnxruntime.quantization uses the root one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR:
            return True
        return not (record.name == "root" or record.name.split(".", 1)[0] in EXPORTER_LOGGERS)


def setup_logging(verbose: bool = False) -> None:
    """Messages only, INFO (DEBUG with ``verbose``), third-party noise filtered; call once, at the start."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(message)s")
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, ThirdPartyNoise) for f in handler.filters):
            handler.addFilter(ThirdPartyNoise())
    os.environ.setdefault("TORCH_LOGS", TORCH_LOGS_QUIET)
    quiet_native_logs()


def quiet_native_logs() -> None:
    """FFmpeg silent and OpenCV at errors only, for this process, unless the user set them; before OpenCV
    first opens a video (FFmpeg's level is read then)."""
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", str(AV_LOG_QUIET))
    os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
