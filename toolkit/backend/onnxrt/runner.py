"""ONNX Runtime runner: fp32, fp16 and int8 (Q/DQ) ONNX models behind the one Runner interface.

``runner.meta`` (label space, normalisation, input size), ``precision`` and ``lowering`` come from the
model's metadata_props, written by ``toolkit export``/``quantize``, so later commands need no flags.
They are read once, on activate(), by the session loader. Make one with ``toolkit.backend.make_runner``.
"""

from __future__ import annotations

import numpy as np

from toolkit.backend.base import BaseRunner, TensorSpec
from toolkit.backend.onnxrt.loader import LoadedSession
from toolkit.core.description import ModelDescription, describe_model
from toolkit.core.loader import BaseLoader, resolve

_NP_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64,
             "tensor(uint8)": np.uint8, "tensor(int8)": np.int8, "tensor(int64)": np.int64}

__all__ = ["OnnxrtRunner"]


class OnnxrtRunner(BaseRunner):
    """Runs an InferenceSession made by a SessionFromOnnx loader (or a LoadedSession)."""

    backend = "onnxrt"
    thread_safe = True  # InferenceSession.run may be called concurrently

    def __init__(self, session: BaseLoader | LoadedSession, name: str | None = None, source: str = "") -> None:
        super().__init__(name, source)
        self._source = session
        self.loaded: LoadedSession | None = None
        self.providers: list[str] = []
        self.plugin_impl = "none"

    def _activate_impl(self) -> ModelDescription:
        loaded = resolve(self._source)
        self.loaded, self.providers, self.plugin_impl = loaded, loaded.providers, loaded.plugin_impl
        return loaded.description or describe_model(loaded.model, loaded.source)

    def _graph_optimization(self) -> str:
        return self.loaded.graph_optimization if self.loaded is not None else ""

    def _deactivate_impl(self) -> None:
        self.loaded = None

    @property
    def on_cpu(self) -> bool:
        """The session's first provider is the CPU one (known after activate())."""
        return bool(self.providers) and self.providers[0] == "CPUExecutionProvider"

    def _input_specs_impl(self) -> list[TensorSpec]:
        assert self.loaded is not None
        specs = []
        for i in self.loaded.session.get_inputs():
            shape = tuple(d if isinstance(d, int) else None for d in i.shape)
            specs.append(TensorSpec(i.name, np.dtype(_NP_TYPES.get(i.type, np.float32)), shape))
        return specs

    def _infer_impl(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        assert self.loaded is not None
        session = self.loaded.session
        names = [o.name for o in session.get_outputs()]
        outs = session.run(names, {k: np.ascontiguousarray(v) for k, v in feed.items()})
        return {n: np.asarray(o, dtype=np.float32) for n, o in zip(names, outs, strict=True)}
