"""ONNX files: loading (one clear error for a bad file), writing, and what a graph says about itself
(precision, unpool lowering, op counts, input/output names, metadata_props). Only ``onnx`` needed.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

import onnx

from toolkit.core.names import GROUP_TAG, INPUT_NAME, OUTPUT_NAME, PLUGIN_OP_TYPE
from toolkit.errors import ToolkitError
from toolkit.files import atomic_write

_F16 = (onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16)


def load_onnx(path: str | Path, external_data: bool = True) -> onnx.ModelProto:
    """The model in ``path``; a missing, empty, non-ONNX or truncated file is one ToolkitError line.

    ``external_data=False`` leaves weights stored beside the file unread (preflight and the engine's
    sidecar only look at the graph)."""
    path = Path(path)
    if not path.is_file():
        raise ToolkitError(f"{path}: ONNX file not found")
    try:
        model = onnx.load(str(path), load_external_data=external_data)
    except Exception as e:  # protobuf raises DecodeError, onnx raises others; all mean "not ONNX"
        raise ToolkitError(f"{path}: not an ONNX model ({type(e).__name__}); expected a file written by "
                           "toolkit export or another ONNX exporter") from None
    if not model.graph.node:
        raise ToolkitError(f"{path}: not an ONNX model (no graph nodes); expected a file written by toolkit export")
    return model


def model_bytes(model: onnx.ModelProto) -> bytes:
    data: bytes = model.SerializeToString(deterministic=True)  # protobuf's stubs type it Any
    return data


def model_sha256(model: onnx.ModelProto) -> str:
    return hashlib.sha256(model_bytes(model)).hexdigest()


def save_onnx(model: onnx.ModelProto, path: str | Path) -> Path:
    """Write atomically (a killed process leaves no half-written model)."""
    data = model_bytes(model)
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


def onnx_metadata(model: onnx.ModelProto) -> dict[str, str]:
    """The model's metadata_props as a dict, every tool's keys (``toolkit.core.metadata.read_props``: ours)."""
    return {p.key: p.value for p in model.metadata_props}


def input_names(model: onnx.ModelProto) -> list[str]:
    """The graph's real inputs (initializers listed as inputs by old exporters left out)."""
    init = {t.name for t in model.graph.initializer}
    return [i.name for i in model.graph.input if i.name not in init]


def output_names(model: onnx.ModelProto) -> list[str]:
    return [o.name for o in model.graph.output]


def check_toolkit_io(model: onnx.ModelProto, source: str | Path) -> None:
    """Refuse, in one line, a graph whose tensors are not the toolkit's ``input`` -> ``logits``: another
    exporter's model (``data`` -> ``output``) used to fail at the first frame with the runner's internal
    "expects inputs ['data'], got ['input']" (issue 25). infer, eval, bench and parity share this line."""
    inputs, outputs = input_names(model), output_names(model)
    if inputs == [INPUT_NAME] and OUTPUT_NAME in outputs:
        return
    raise ToolkitError(f"{source}: the model takes {inputs} and gives {outputs}; the toolkit feeds one tensor "
                       f"'{INPUT_NAME}' (float32 N x 3 x H x W, normalised RGB) and reads '{OUTPUT_NAME}' "
                       f"(N x classes x H x W), the names toolkit export writes: export the source checkpoint with "
                       f"toolkit export, or rename the graph's input and output")


def op_counts(model: onnx.ModelProto) -> Counter[str]:
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
    """fp32, fp16 or int8, from the graph itself: Q/DQ nodes mean int8; fp16 (or bf16) weights, graph
    tensors, Casts or Constants mean fp16. A graph that keeps fp32 weights and casts to fp16 inside (or
    stores its fp16 constants as Constant nodes) is an fp16 model too."""
    g = model.graph
    ops = {n.op_type for n in g.node}
    if ops & {"QuantizeLinear", "DequantizeLinear"}:
        return "int8"
    if any(t.data_type in _F16 for t in g.initializer):
        return "fp16"
    for vi in [*g.input, *g.output, *g.value_info]:
        if vi.type.HasField("tensor_type") and vi.type.tensor_type.elem_type in _F16:
            return "fp16"
    for n in g.node:
        if n.op_type == "Cast" and any(a.name == "to" and a.i in _F16 for a in n.attribute):
            return "fp16"
        if n.op_type == "Constant" and any(a.name == "value" and a.t.data_type in _F16 for a in n.attribute):
            return "fp16"
    return "fp32"
