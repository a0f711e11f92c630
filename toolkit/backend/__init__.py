"""Inference backends behind one Runner interface, and ``make_runner`` to pick one from a model path.

Each backend lives in its own sub-package (``base``, ``torch``, ``onnxrt``, ``trt``) with a
``loader.py`` and a ``runner.py``; heavy libraries are imported only when a backend is used.
"""

from __future__ import annotations

from pathlib import Path

from toolkit.backend.base import BaseRunner
from toolkit.errors import ToolkitError

MODEL_SUFFIXES = {".safetensors": "torch", ".onnx": "onnxrt", ".engine": "trt", ".plan": "trt"}


def is_triton_url(model: str | Path | None) -> bool:
    """``triton://host:port/model`` (also as a Path, which collapses it to ``triton:/host:port/model``)."""
    return model is not None and str(model).lower().startswith("triton:/")


def backend_for(model: str | Path | None) -> str:
    """Backend name for a model path by its suffix; None (embedded default) is PyTorch."""
    if model is None:
        return "torch"
    if is_triton_url(model):
        return "triton"
    suffix = Path(model).suffix.lower()
    if suffix not in MODEL_SUFFIXES:
        raise ToolkitError(f"{model}: unknown model file type '{suffix}'; expected one of "
                           f"{', '.join(MODEL_SUFFIXES)}")
    return MODEL_SUFFIXES[suffix]


def make_runner(model: str | Path | None = None, device: str = "cpu", **kwargs: object) -> BaseRunner:
    """A runner for a checkpoint, ONNX file or TensorRT engine (inactive; use it in a ``with``)."""
    if is_triton_url(model):  # a served model, not a file
        from toolkit.backend.triton.runner import make_triton_runner

        return make_triton_runner(str(model), **kwargs)  # type: ignore[arg-type]
    backend = backend_for(model)
    if model is not None and not Path(model).is_file():
        raise ToolkitError(f"{model}: model file not found")
    if backend == "torch":
        from toolkit.backend.torch.loader import LoadCheckpoint
        from toolkit.backend.torch.runner import TorchRunner

        return TorchRunner(LoadCheckpoint(model), device=device, name=f"torch:{Path(model or 'default').name}")
    if backend == "onnxrt":
        from toolkit.backend.onnxrt.runner import make_onnxrt_runner

        return make_onnxrt_runner(model, device=device, **kwargs)  # type: ignore[arg-type]
    from toolkit.backend.trt.runner import make_trt_runner

    return make_trt_runner(model, **kwargs)  # type: ignore[arg-type]
