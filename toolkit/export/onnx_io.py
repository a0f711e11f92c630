"""Checking and simplifying exported ONNX graphs (reading, writing and describing them:
``toolkit.core.onnx_file``)."""

from __future__ import annotations

import logging

import onnx

from toolkit.errors import ToolkitError
from toolkit.export.lowering import register_plugin_schema

log = logging.getLogger(__name__)


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
