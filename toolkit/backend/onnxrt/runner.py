"""ONNX Runtime runner: fp32, fp16 and int8 (Q/DQ) ONNX models behind the one Runner interface.

``runner.meta`` (label space, normalisation, input size) and ``runner.precision`` come from the
model's metadata_props, written by ``toolkit export``/``quantize``, so later commands need no flags.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx

from toolkit.backend.base import BaseLoader, BaseRunner, TensorSpec, resolve
from toolkit.backend.onnxrt.loader import LoadedSession, OnnxFromPath, SessionFromOnnx
from toolkit.checkpoint import ModelMeta

_NP_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64,
             "tensor(uint8)": np.uint8, "tensor(int8)": np.int8, "tensor(int64)": np.int64}


def describe_model(model: onnx.ModelProto, source: str = "model") -> tuple[ModelMeta | None, str, str, dict]:
    """(meta or None, precision, lowering, all toolkit props) of an ONNX model."""
    from toolkit.export.metadata import read_model_meta, read_props
    from toolkit.export.onnx_io import detect_lowering, detect_precision

    props = read_props(model)
    meta = read_model_meta(model, source)
    precision = props.get("precision") or detect_precision(model)
    lowering = props.get("lowering") or detect_lowering(model)
    return meta, precision, lowering, props


class OnnxrtRunner(BaseRunner):
    """Runs an InferenceSession made by a SessionFromOnnx loader (or a LoadedSession)."""

    backend = "onnxrt"

    def __init__(self, session: BaseLoader | LoadedSession, name: str | None = None,
                 meta: ModelMeta | None = None, precision: str | None = None) -> None:
        super().__init__(name)
        self._source = session
        self.meta = meta
        if precision:
            self.precision = precision
        self.loaded: LoadedSession | None = None
        self.providers: list[str] = []
        self.plugin_impl = "none"
        self.lowering = "unknown"
        self.props: dict[str, str] = {}  # the model's toolkit metadata_props (source_sha256, quant settings ...)

    def _activate_impl(self) -> None:
        loaded = resolve(self._source)
        self.loaded, self.providers, self.plugin_impl = loaded, loaded.providers, loaded.plugin_impl
        meta, precision, lowering, _ = describe_model(loaded.model, loaded.source)
        self.meta = self.meta or meta
        if self.precision == "fp32":
            self.precision = precision
        self.lowering = lowering

    def _deactivate_impl(self) -> None:
        self.loaded = None

    @property
    def on_cpu(self) -> bool:
        """The session's first provider is the CPU one (known after activate())."""
        return bool(self.providers) and self.providers[0] == "CPUExecutionProvider"

    def _input_specs_impl(self) -> list[TensorSpec]:
        assert self.loaded is not None
        specs = []
        for i in self.loaded.session.get_inputs():  # type: ignore[attr-defined]
            shape = tuple(d if isinstance(d, int) else None for d in i.shape)
            specs.append(TensorSpec(i.name, np.dtype(_NP_TYPES.get(i.type, np.float32)), shape))
        return specs

    def _infer_impl(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        assert self.loaded is not None
        session = self.loaded.session
        names = [o.name for o in session.get_outputs()]  # type: ignore[attr-defined]
        outs = session.run(names, {k: np.ascontiguousarray(v) for k, v in feed.items()})  # type: ignore[attr-defined]
        return {n: np.asarray(o, dtype=np.float32) for n, o in zip(names, outs, strict=True)}


def make_onnxrt_runner(path: str | Path, device: str = "cpu", threads: int | None = None,
                       plugin_impl: str = "auto", name: str | None = None) -> OnnxrtRunner:
    """Runner for an ONNX file; its metadata is read now, the session is made on activate()."""
    model = OnnxFromPath(path)()
    meta, precision, lowering, props = describe_model(model, str(path))
    runner = OnnxrtRunner(SessionFromOnnx(model, device=device, threads=threads, plugin_impl=plugin_impl,
                                          source=str(path)),
                          name=name or f"onnxrt:{Path(path).name}", meta=meta, precision=precision)
    runner.lowering, runner.props = lowering, props
    return runner
