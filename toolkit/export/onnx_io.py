"""Reading, checking, simplifying and writing ONNX files, with one clear error for a bad file."""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from pathlib import Path

import onnx

from toolkit.checkpoint import atomic_write
from toolkit.errors import ToolkitError
from toolkit.export.lowering import GROUP_TAG, register_plugin_schema
from toolkit.models.unpool import PLUGIN_OP_TYPE

log = logging.getLogger(__name__)


def load_onnx(path: str | Path) -> onnx.ModelProto:
    """The model in ``path``; a missing, empty, non-ONNX or truncated file is one ToolkitError line."""
    path = Path(path)
    if not path.is_file():
        raise ToolkitError(f"{path}: ONNX file not found")
    try:
        model = onnx.load(str(path))
    except Exception as e:  # protobuf raises DecodeError, onnx raises others; all mean "not ONNX"
        raise ToolkitError(f"{path}: not an ONNX model ({type(e).__name__}); expected a file written by "
                           "toolkit export or another ONNX exporter") from None
    if not model.graph.node:
        raise ToolkitError(f"{path}: not an ONNX model (no graph nodes); expected a file written by toolkit export")
    return model


def model_bytes(model: onnx.ModelProto) -> bytes:
    return model.SerializeToString(deterministic=True)


def model_sha256(model: onnx.ModelProto) -> str:
    return hashlib.sha256(model_bytes(model)).hexdigest()


def save_onnx(model: onnx.ModelProto, path: str | Path) -> Path:
    """Write atomically (a killed process leaves no half-written model)."""
    data = model_bytes(model)
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


def check_model(model: onnx.ModelProto, what: str = "model") -> onnx.ModelProto:
    """onnx.checker (full) and strict shape inference; returns the model with inferred value_info."""
    register_plugin_schema()
    try:
        onnx.checker.check_model(model, full_check=False)
        inferred = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True, data_prop=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as e:
        raise ToolkitError(f"{what}: ONNX check failed: {str(e).splitlines()[0]}") from None
    _dedupe_value_info(inferred)
    return inferred


def _dedupe_value_info(model: onnx.ModelProto) -> None:
    seen, keep = set(), []
    for v in model.graph.value_info:
        if v.name not in seen:
            seen.add(v.name)
            keep.append(v)
    del model.graph.value_info[:]
    model.graph.value_info.extend(keep)


def simplify(model: onnx.ModelProto) -> onnx.ModelProto:
    """onnxslim: constant folding, dead-node removal, fusions; keeps metadata and custom nodes."""
    import onnxslim

    props = list(model.metadata_props)
    slim = onnxslim.slim(model)
    if slim is None:  # onnxslim returns None when it cannot process; keep the input
        log.warning("onnxslim could not simplify the model; keeping it as exported")
        return model
    del slim.metadata_props[:]
    slim.metadata_props.extend(props)
    _dedupe_value_info(slim)
    return slim


def op_counts(model: onnx.ModelProto) -> Counter:
    """How many nodes of each op type (custom domains as ``domain::Op``)."""
    return Counter(f"{n.domain}::{n.op_type}" if n.domain not in ("", "ai.onnx") else n.op_type
                   for n in model.graph.node)


def detect_lowering(model: onnx.ModelProto) -> str:
    """maxunpool / mask / plugin / unknown, from the graph itself."""
    ops = {n.op_type for n in model.graph.node}
    if PLUGIN_OP_TYPE in ops:
        return "plugin"
    if "MaxUnpool" in ops or "ScatterND" in ops or "ScatterElements" in ops:
        return "maxunpool"
    if any(GROUP_TAG in n.name for n in model.graph.node):
        return "mask"
    return "unknown"


def detect_precision(model: onnx.ModelProto) -> str:
    """int8 if the graph holds Q/DQ nodes, fp16 if it holds fp16 weights, else fp32."""
    ops = {n.op_type for n in model.graph.node}
    if "QuantizeLinear" in ops or "DequantizeLinear" in ops:
        return "int8"
    if any(t.data_type == onnx.TensorProto.FLOAT16 for t in model.graph.initializer):
        return "fp16"
    return "fp32"
