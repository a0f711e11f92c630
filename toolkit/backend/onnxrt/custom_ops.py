"""Running ``plugin``-form graphs in ONNX Runtime on the CPU, so their wiring is tested without TensorRT.

Two ways, chosen by ``plugin_impl``:

- ``pyop`` (default when onnxruntime-extensions is installed): the SegNetMaskUnpool node stays one node;
  ONNX Runtime calls a Python implementation (onnxruntime-extensions' PyOp) that computes the same
  function as the TensorRT plugin (``toolkit.models.unpool.mask_unpool``). PyOps live in the domain
  ``ai.onnx.contrib``, so the in-memory copy handed to ONNX Runtime has the nodes' domain renamed;
  the file is untouched. PyOps only take fp32 (fp16 aborts the process), so an fp16 plugin node is
  wrapped in Casts to fp32 and back in that copy.
- ``expand``: the node is replaced in memory by the indices-free mask subgraph (same function, plain
  ONNX ops). Always available; it checks the graph around the plugin, not the plugin as one node.
"""

from __future__ import annotations

import logging

import numpy as np
import onnx

from toolkit.core.names import PLUGIN_DOMAIN, PLUGIN_OP_TYPE
from toolkit.errors import ToolkitError, UnknownNameError, suggest
from toolkit.export.lowering import expand_plugin_nodes, plugin_nodes, register_plugin_schema

log = logging.getLogger(__name__)

PLUGIN_IMPLS = ("auto", "pyop", "expand")
PYOP_DOMAIN = "ai.onnx.contrib"
_registered = False


def have_extensions() -> bool:
    try:
        import onnxruntime_extensions  # noqa: F401
    except ImportError:
        return False
    return True


def _register_pyops() -> None:
    """Register the PyOp implementations once per process."""
    global _registered
    if _registered:
        return
    import torch
    from onnxruntime_extensions import PyCustomOpDef, onnx_op

    from toolkit.models.unpool import mask_unpool

    attrs = {"plugin_version": PyCustomOpDef.dt_string, "plugin_namespace": PyCustomOpDef.dt_string}
    dt = PyCustomOpDef.dt_float

    def impl(x: np.ndarray, y: np.ndarray, **_: str) -> np.ndarray:
        return mask_unpool(torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(np.ascontiguousarray(y))).numpy()

    onnx_op(op_type=PLUGIN_OP_TYPE, inputs=[dt, dt], outputs=[dt], attrs=attrs)(impl)
    _registered = True


def _input_elem_types(model: onnx.ModelProto) -> dict[str, int]:
    register_plugin_schema()
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # inference is only used to pick a dtype; fall back to fp32
        inferred = model
    return {v.name: v.type.tensor_type.elem_type for v in [*inferred.graph.input, *inferred.graph.value_info]}


def _wrap_in_fp32(node: onnx.NodeProto) -> list[onnx.NodeProto]:
    """Cast(fp16 -> fp32) on both inputs, the node in fp32, Cast back to fp16 on its output."""
    from onnx import helper

    f32 = [f"{node.name}/pyop_in{i}" for i in range(2)]
    out = node.output[0]
    casts = [helper.make_node("Cast", [src], [dst], name=dst, to=onnx.TensorProto.FLOAT)
             for src, dst in zip(node.input, f32, strict=True)]
    del node.input[:]
    node.input.extend(f32)
    node.output[0] = f"{node.name}/pyop_out"
    back = helper.make_node("Cast", [node.output[0]], [out], name=f"{node.name}/pyop_cast", to=onnx.TensorProto.FLOAT16)
    return [*casts, node, back]


def prepare_plugin_model(model: onnx.ModelProto, plugin_impl: str = "auto") -> tuple[onnx.ModelProto, str]:
    """A copy of ``model`` that ONNX Runtime can run, and the way used ('none', 'pyop' or 'expand')."""
    if plugin_impl not in PLUGIN_IMPLS:
        raise UnknownNameError(f"unknown plugin implementation '{plugin_impl}': {suggest(plugin_impl, PLUGIN_IMPLS)}")
    if not plugin_nodes(model):
        return model, "none"
    if plugin_impl == "auto":
        plugin_impl = "pyop" if have_extensions() else "expand"
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    if plugin_impl == "expand":
        expand_plugin_nodes(copy)
        return copy, "expand"
    if not have_extensions():
        raise ToolkitError("plugin implementation 'pyop' needs onnxruntime-extensions "
                           "(pip install onnxruntime-extensions), or use 'expand'")
    _register_pyops()
    types = _input_elem_types(copy)
    nodes: list[onnx.NodeProto] = []
    for node in copy.graph.node:
        if node.op_type != PLUGIN_OP_TYPE or node.domain != PLUGIN_DOMAIN:
            nodes.append(node)
            continue
        elem = types.get(node.input[1], onnx.TensorProto.FLOAT)
        node.domain = PYOP_DOMAIN
        if elem == onnx.TensorProto.FLOAT:
            nodes.append(node)
        elif elem == onnx.TensorProto.FLOAT16:
            nodes.extend(_wrap_in_fp32(node))
        else:
            raise ToolkitError(f"node '{node.name}': {PLUGIN_OP_TYPE} input type "
                               f"{onnx.TensorProto.DataType.Name(elem)} not supported (float or float16)")
    del copy.graph.node[:]
    copy.graph.node.extend(nodes)
    for o in copy.opset_import:
        if o.domain == PLUGIN_DOMAIN:
            o.domain, o.version = PYOP_DOMAIN, 1
    return copy, "pyop"


def custom_ops_library() -> str:
    from onnxruntime_extensions import get_library_path

    return get_library_path()
