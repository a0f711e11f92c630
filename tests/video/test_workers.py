"""``toolkit infer``'s workers/threads defaults (toolkit/video/workers.py)."""

from __future__ import annotations

import pytest

from toolkit.errors import ToolkitError
from toolkit.video.workers import workers_threads


def test_files_get_two_single_threaded_workers_on_a_multicore_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: 4)
    assert workers_threads(0, None, live=False, model="m.onnx", device="cpu") == (2, 2)
    assert workers_threads(0, None, live=True, model="m.onnx", device="cpu") == (1, None)  # latency first
    assert workers_threads(0, None, live=False, model="m.engine", device="cpu") == (1, None)  # one TensorRT context
    assert workers_threads(0, None, live=False, model="m.onnx", device="cuda:0") == (1, None)
    # PyTorch on CUDA: two callers, so one's host work overlaps the other's GPU work; CPU threads left alone
    assert workers_threads(0, None, live=False, model="m.safetensors", device="cuda") == (2, None)
    assert workers_threads(0, None, live=True, model="m.safetensors", device="cuda") == (1, None)
    assert workers_threads(3, 1, live=False, model="m.onnx", device="cpu") == (3, 1)  # explicit values stay
    with pytest.raises(ToolkitError, match="--workers -1: expected 0"):
        workers_threads(-1, None, live=False, model="m.onnx", device="cpu")
