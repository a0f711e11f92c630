"""Loaders for ONNX Runtime: a model (path, bytes or ModelProto) -> an InferenceSession.

``device`` picks the execution providers: ``cpu`` -> CPU; ``cuda`` -> CUDA (then CPU); ``tensorrt`` ->
TensorRT EP (then CUDA, CPU). Providers this onnxruntime build lacks are refused with the list it has,
rather than silently falling back to the CPU.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import onnx

from toolkit.core.description import ModelDescription, describe_model
from toolkit.core.loader import BaseLoader, resolve
from toolkit.errors import ToolkitError, UnknownNameError, suggest

log = logging.getLogger(__name__)

DEVICES = {
    "cpu": ["CPUExecutionProvider"],
    "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
    "tensorrt": ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
}
GRAPH_OPTS = ("auto", "all", "extended", "basic")


def ort_graph_optimization(precision: str, lowering: str, device: str, requested: str = "auto") -> str:
    """ONNX Runtime graph optimisation level; 'auto' picks what measured fastest on our CPU.

    INT8 with the maxunpool lowering on the CPU: 'extended'. 'all' adds the NHWC layout transform, which
    wraps MaxPool-with-indices and MaxUnpool (no NHWC or int8 kernels) in Transposes; that costs more
    than it saves. With the mask lowering 'all' wins (its plain MaxPool runs NHWC in uint8). Everything
    else: 'all'. Measurements in docs/BENCHMARKS.md.
    """
    if requested not in GRAPH_OPTS:
        raise UnknownNameError(f"--graph-opt {requested}: {suggest(requested, GRAPH_OPTS)}")
    if requested != "auto":
        return requested
    cpu = device.split(":")[0] == "cpu"
    return "extended" if precision == "int8" and lowering == "maxunpool" and cpu else "all"


ORT_INSTALL_HINT = "pip install 'segnet-toolkit[onnxruntime]' (or onnxruntime-gpu)"


def import_onnxruntime():
    """``onnxruntime``, or one line saying how to install it: the core install and the ``serve`` extra used to
    end in ModuleNotFoundError on an ONNX model (issue 25)."""
    try:
        import onnxruntime
    except ImportError as e:
        raise ToolkitError(f"ONNX models run on ONNX Runtime, which is not importable here ({e}); "
                           f"{ORT_INSTALL_HINT}") from None
    return onnxruntime


def providers_for(device: str) -> list[str]:
    """Execution providers for a device name ('cuda:0' counts as 'cuda'); refuses missing ones."""
    ort = import_onnxruntime()

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
    """A session plus what the runner reports about it (the model's description is read once, here)."""

    session: Any  # onnxruntime.InferenceSession (imported lazily, so not named here)
    model: onnx.ModelProto
    providers: list[str]
    plugin_impl: str = "none"
    source: str = "model"
    notes: dict = field(default_factory=dict)
    description: ModelDescription | None = None
    graph_optimization: str = "all"


class OnnxFromPath(BaseLoader[onnx.ModelProto]):
    """ModelProto from a file, with one clear error for a missing or non-ONNX file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def _call_impl(self) -> onnx.ModelProto:
        from toolkit.core.onnx_file import load_onnx

        return load_onnx(self.path)


class SessionFromOnnx(BaseLoader[LoadedSession]):
    """InferenceSession from a ModelProto, path or loader; plugin nodes run via ``custom_ops``.

    ``graph_optimization`` 'auto' is ``ort_graph_optimization``'s choice for the model's precision and
    lowering, known once the model is read."""

    def __init__(self, model: object, device: str = "cpu", threads: int | None = None,
                 plugin_impl: str = "auto", graph_optimization: str = "auto", source: str | None = None,
                 spin: bool = True) -> None:
        self.model, self.device, self.threads, self.spin = model, device, threads, spin
        self.plugin_impl, self.graph_optimization = plugin_impl, graph_optimization
        self.source = source or (str(model) if isinstance(model, str | Path) else "model")

    def _call_impl(self) -> LoadedSession:
        ort = import_onnxruntime()

        from toolkit.backend.onnxrt.custom_ops import custom_ops_library, prepare_plugin_model
        from toolkit.core.onnx_file import check_toolkit_io

        model = resolve(self.model)
        if isinstance(model, str | Path):
            model = OnnxFromPath(model)()
        elif isinstance(model, bytes):
            model = onnx.load_from_string(model)
        check_toolkit_io(model, self.source)
        described = describe_model(model, self.source)
        graph_opt = ort_graph_optimization(described.precision, described.lowering, self.device,
                                           self.graph_optimization)
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
        so.graph_optimization_level = levels[graph_opt]
        if impl == "pyop":
            so.register_custom_ops_library(custom_ops_library())
        providers = providers_for(self.device)
        try:
            session = ort.InferenceSession(runnable.SerializeToString(), so, providers=providers)
        except Exception as e:  # onnxruntime raises its own exception types (Fail, InvalidGraph, ...)
            first = next((ln for ln in str(e).splitlines() if ln.strip()), type(e).__name__)
            raise ToolkitError(f"{self.source}: ONNX Runtime cannot load the model: {first[:300]}") from None
        log.debug("session for %s on %s (plugin: %s)", self.source, session.get_providers(), impl)
        return LoadedSession(session, model, session.get_providers(), impl, self.source, description=described,
                             graph_optimization=graph_opt)


def session_from_onnx(model: object, device: str = "cpu", threads: int | None = None,
                      plugin_impl: str = "auto", graph_optimization: str = "auto") -> LoadedSession:
    """Function twin of SessionFromOnnx."""
    return SessionFromOnnx(model, device, threads, plugin_impl, graph_optimization)()
