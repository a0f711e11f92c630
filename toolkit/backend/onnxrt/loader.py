"""Loaders for ONNX Runtime: a model (path, bytes or ModelProto) -> an InferenceSession.

``device`` picks the execution providers: ``cpu`` -> CPU; ``cuda`` -> CUDA (then CPU); ``tensorrt`` ->
TensorRT EP (then CUDA, CPU). Providers this onnxruntime build lacks are refused with the list it has,
rather than silently falling back to the CPU.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import onnx

from toolkit.backend.base import BaseLoader, resolve
from toolkit.errors import ToolkitError, UnknownNameError, suggest

log = logging.getLogger(__name__)

DEVICES = {
    "cpu": ["CPUExecutionProvider"],
    "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
    "tensorrt": ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
}


def providers_for(device: str) -> list[str]:
    """Execution providers for a device name ('cuda:0' counts as 'cuda'); refuses missing ones."""
    import onnxruntime as ort

    base = device.split(":")[0]
    if base not in DEVICES:
        raise UnknownNameError(f"unknown ONNX Runtime device '{device}': {suggest(base, list(DEVICES))}")
    available = ort.get_available_providers()
    wanted = DEVICES[base]
    if wanted[0] not in available:
        raise ToolkitError(f"device '{device}' needs {wanted[0]}, which this onnxruntime build lacks "
                           f"(available: {', '.join(available)}); install onnxruntime-gpu or use --device cpu")
    return [p for p in wanted if p in available]


@dataclass
class LoadedSession:
    """A session plus what the runner reports about it."""

    session: object
    model: onnx.ModelProto
    providers: list[str]
    plugin_impl: str = "none"
    source: str = "model"
    notes: dict = field(default_factory=dict)


class OnnxFromPath(BaseLoader[onnx.ModelProto]):
    """ModelProto from a file, with one clear error for a missing or non-ONNX file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def _call_impl(self) -> onnx.ModelProto:
        from toolkit.export.onnx_io import load_onnx

        return load_onnx(self.path)


class SessionFromOnnx(BaseLoader[LoadedSession]):
    """InferenceSession from a ModelProto, path or loader; plugin nodes run via ``custom_ops``."""

    def __init__(self, model: object, device: str = "cpu", threads: int | None = None,
                 plugin_impl: str = "auto", graph_optimization: str = "all", source: str | None = None,
                 spin: bool = True) -> None:
        self.model, self.device, self.threads, self.spin = model, device, threads, spin
        self.plugin_impl, self.graph_optimization = plugin_impl, graph_optimization
        self.source = source or (str(model) if isinstance(model, str | Path) else "model")

    def _call_impl(self) -> LoadedSession:
        import onnxruntime as ort

        from toolkit.backend.onnxrt.custom_ops import custom_ops_library, prepare_plugin_model

        model = resolve(self.model)
        if isinstance(model, str | Path):
            model = OnnxFromPath(model)()
        elif isinstance(model, bytes):
            model = onnx.load_from_string(model)
        runnable, impl = prepare_plugin_model(model, self.plugin_impl)
        so = ort.SessionOptions()
        so.log_severity_level = 3
        if self.threads:
            so.intra_op_num_threads = int(self.threads)
        if not self.spin:  # idle intra-op threads sleep instead of busy-waiting between ops
            so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        level = ort.GraphOptimizationLevel
        levels = {"all": level.ORT_ENABLE_ALL, "extended": level.ORT_ENABLE_EXTENDED, "basic": level.ORT_ENABLE_BASIC,
                  "none": level.ORT_DISABLE_ALL}
        so.graph_optimization_level = levels[self.graph_optimization]
        if impl == "pyop":
            so.register_custom_ops_library(custom_ops_library())
        providers = providers_for(self.device)
        try:
            session = ort.InferenceSession(runnable.SerializeToString(), so, providers=providers)
        except Exception as e:  # onnxruntime raises its own exception types (Fail, InvalidGraph, ...)
            first = next((ln for ln in str(e).splitlines() if ln.strip()), type(e).__name__)
            raise ToolkitError(f"{self.source}: ONNX Runtime cannot load the model: {first[:300]}") from None
        log.debug("session for %s on %s (plugin: %s)", self.source, session.get_providers(), impl)
        return LoadedSession(session, model, session.get_providers(), impl, self.source)


def session_from_onnx(model: object, device: str = "cpu", threads: int | None = None,
                      plugin_impl: str = "auto") -> LoadedSession:
    """Function twin of SessionFromOnnx."""
    return SessionFromOnnx(model, device, threads, plugin_impl)()
