"""``toolkit/cli/logs.py``: third-party log noise filtered once, where the CLI sets up logging (issue 27)."""

from __future__ import annotations

import logging
import os

import pytest

from toolkit.cli.logs import TORCH_LOGS_QUIET, ThirdPartyNoise, setup_logging


def record(name: str, level: int) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, "message", None, None)


def test_noise_filter_drops_third_party_lines_below_error_and_keeps_ours() -> None:
    noise = ThirdPartyNoise()
    assert not noise.filter(record("root", logging.WARNING))  # onnxruntime.quantization's advice
    assert not noise.filter(record("onnx_ir.passes.common", logging.INFO))  # the exporter's passes
    assert not noise.filter(record("onnxscript", logging.WARNING))
    assert noise.filter(record("toolkit.quant.int8", logging.INFO))  # ours stay
    assert noise.filter(record("root", logging.ERROR)) and noise.filter(record("onnxscript", logging.ERROR))


def test_setup_logging_filters_the_root_handlers_and_leaves_the_users_variables(
        monkeypatch: pytest.MonkeyPatch) -> None:
    root = logging.getLogger()
    handler = logging.NullHandler()
    monkeypatch.setattr(root, "handlers", [handler])  # basicConfig adds none to a root that has one
    monkeypatch.delenv("TORCH_LOGS", raising=False)  # the three variables are restored after the test
    monkeypatch.delenv("OPENCV_FFMPEG_LOGLEVEL", raising=False)
    monkeypatch.setenv("OPENCV_LOG_LEVEL", "DEBUG")
    monkeypatch.setattr(root, "level", root.level)  # restored after the test
    setup_logging()
    setup_logging()  # twice: still one filter
    assert [type(f) for f in handler.filters] == [ThirdPartyNoise]
    assert os.environ["TORCH_LOGS"] == TORCH_LOGS_QUIET and os.environ["OPENCV_LOG_LEVEL"] == "DEBUG"
