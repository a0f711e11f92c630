"""Tiny ONNX graphs (built with onnx.helper) for the TensorRT preflight, sidecar and CLI tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from toolkit.core.names import PLUGIN_DOMAIN, PLUGIN_NAMESPACE, PLUGIN_OP_TYPE, PLUGIN_VERSION

OPSET = 18
DYN = ["N", 3, "H", "W"]

# The ``toolkit.*`` metadata keys that `toolkit export` writes (toolkit/export/metadata.py).
META = {
    "toolkit.arch": "enhanced", "toolkit.width": "8", "toolkit.classes": '["road", "sky"]',
    "toolkit.palette": "[[128, 64, 128], [128, 128, 128]]", "toolkit.mean": "[0.4, 0.4, 0.4]",
    "toolkit.std": "[0.3, 0.3, 0.3]", "toolkit.input_size": "64x96", "toolkit.ignore_index": "255",
}


def _model(nodes: list, inits: list, out_shape: list, extra_opsets: tuple = (), in_dims: list | None = None,
           in_type: int = TensorProto.FLOAT, meta: dict | None = None) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("input", in_type, in_dims or DYN)],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, out_shape)], initializer=inits)
    opsets = [helper.make_opsetid("", OPSET), *(helper.make_opsetid(d, v) for d, v in extra_opsets)]
    model = helper.make_model(graph, opset_imports=opsets)
    for k, v in (meta or {}).items():
        model.metadata_props.add(key=k, value=v)
    return model


def _conv_inits(c_out: int = 4) -> list:
    w = np.random.default_rng(0).standard_normal((c_out, 3, 3, 3)).astype(np.float32)
    return [numpy_helper.from_array(w, "w")]


def clean(in_dims: list | None = None, meta: dict | None = None) -> onnx.ModelProto:
    """Conv -> Relu -> MaxPool(1 output) -> DepthToSpace-free upsample by Resize: all TensorRT ops."""
    nodes = [helper.make_node("Conv", ["input", "w"], ["c"], pads=[1, 1, 1, 1], name="conv"),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2], name="pool"),
             helper.make_node("Resize", ["p", "", "scales"], ["logits"], mode="nearest", name="up")]
    inits = [*_conv_inits(), numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales")]
    return _model(nodes, inits, ["N", 4, "H", "W"], in_dims=in_dims, meta=meta)


def maxunpool() -> onnx.ModelProto:
    """The `maxunpool` lowering: MaxPool with Indices feeding ONNX MaxUnpool."""
    nodes = [helper.make_node("Conv", ["input", "w"], ["c"], pads=[1, 1, 1, 1], name="conv"),
             helper.make_node("MaxPool", ["c"], ["p", "idx"], kernel_shape=[2, 2], strides=[2, 2], name="pool"),
             helper.make_node("MaxUnpool", ["p", "idx"], ["logits"], kernel_shape=[2, 2], strides=[2, 2],
                              name="unpool")]
    return _model(nodes, _conv_inits(), ["N", 4, "H", "W"])


def maxpool_indices() -> onnx.ModelProto:
    """MaxPool whose Indices output is used (by a ScatterND-style path, here just a Cast), no MaxUnpool."""
    nodes = [helper.make_node("Conv", ["input", "w"], ["c"], pads=[1, 1, 1, 1], name="conv"),
             helper.make_node("MaxPool", ["c"], ["p", "idx"], kernel_shape=[2, 2], strides=[2, 2], name="pool"),
             helper.make_node("Cast", ["idx"], ["idx_f"], to=TensorProto.FLOAT, name="cast"),
             helper.make_node("Add", ["p", "idx_f"], ["logits"], name="add")]
    return _model(nodes, _conv_inits(), ["N", 4, "h", "w"])


def plugin(attrs: dict | None = None, op_type: str = PLUGIN_OP_TYPE) -> onnx.ModelProto:
    """Conv -> Relu -> MaxPool -> SegNetMaskUnpool(x=relu, y=pool): the `plugin` lowering's node."""
    attrs = {"plugin_version": PLUGIN_VERSION, "plugin_namespace": PLUGIN_NAMESPACE} if attrs is None else attrs
    nodes = [helper.make_node("Conv", ["input", "w"], ["c"], pads=[1, 1, 1, 1], name="conv"),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2], name="pool"),
             helper.make_node(op_type, ["r", "p"], ["logits"], domain=PLUGIN_DOMAIN, name="unpool1", **attrs)]
    return _model(nodes, _conv_inits(), ["N", 4, "H", "W"], extra_opsets=((PLUGIN_DOMAIN, 1),))


def qdq(zero_point: np.ndarray | None = None) -> onnx.ModelProto:
    """int8 Q/DQ in front of the Conv (activations) and on its weights, TensorRT's explicit-quantization form."""
    zp = np.zeros((), np.int8) if zero_point is None else zero_point
    inits = [*_conv_inits(), numpy_helper.from_array(np.array(0.05, np.float32), "s"),
             numpy_helper.from_array(zp, "zp")]
    nodes = [helper.make_node("QuantizeLinear", ["input", "s", "zp"], ["q"], name="q_in"),
             helper.make_node("DequantizeLinear", ["q", "s", "zp"], ["dq"], name="dq_in"),
             helper.make_node("Conv", ["dq", "w"], ["logits"], pads=[1, 1, 1, 1], name="conv")]
    return _model(nodes, inits, ["N", 4, "H", "W"])


def fp16() -> onnx.ModelProto:
    """fp32 I/O around an fp16 Conv (what an fp16 converter with fp32 I/O writes)."""
    w = np.random.default_rng(0).standard_normal((4, 3, 3, 3)).astype(np.float16)
    nodes = [helper.make_node("Cast", ["input"], ["x16"], to=TensorProto.FLOAT16, name="cast_in"),
             helper.make_node("Conv", ["x16", "w16"], ["c16"], pads=[1, 1, 1, 1], name="conv"),
             helper.make_node("Cast", ["c16"], ["logits"], to=TensorProto.FLOAT, name="cast_out")]
    return _model(nodes, [numpy_helper.from_array(w, "w16")], ["N", 4, "H", "W"])


def with_op(op_type: str, domain: str = "") -> onnx.ModelProto:
    """Conv followed by one arbitrary op (to exercise the support list)."""
    nodes = [helper.make_node("Conv", ["input", "w"], ["c"], pads=[1, 1, 1, 1], name="conv"),
             helper.make_node(op_type, ["c"], ["logits"], domain=domain, name="odd")]
    extra = ((domain, 1),) if domain else ()
    return _model(nodes, _conv_inits(), ["N", 4, "H", "W"], extra_opsets=extra)


def save(model: onnx.ModelProto, path: Path) -> Path:
    onnx.save(model, str(path))
    return path
