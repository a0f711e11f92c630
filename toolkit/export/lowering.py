"""The ``plugin`` node and the graph passes between it and the ``mask`` subgraph.

The exporter writes each unpooling as one ``trt.plugins::SegNetMaskUnpool`` node (``op_type`` is the
TensorRT plugin's name; TensorRT's ONNX parser falls back to the plugin registry for unknown ops and
reads the string attributes ``plugin_version`` and ``plugin_namespace``). ``expand_plugin_nodes``
replaces each by the indices-free ``mask`` subgraph, its nodes named ``<plugin node>/mask/<role>`` so
that ``collapse_mask_groups`` can swap the very same group back for a plugin node after a tool that
cannot run unknown ops (calibration, quantization, FP16 conversion) has processed the graph.

The subgraph computes ``toolkit.models.unpool.mask_unpool`` (equal in value; see ``mask_subgraph``)
with MaxPool, nearest Resize, Equal, CastLike, Mul, Tile, Reshape, Shape, Slice and Concat, ops every
TensorRT version parses; its shapes come from ``Shape(x)``/``Shape(y)`` so batch, H and W stay dynamic.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np
import onnx
from onnx import helper, numpy_helper

from toolkit.core.names import GROUP_TAG, PLUGIN_DOMAIN, PLUGIN_NAMESPACE, PLUGIN_OP_TYPE, PLUGIN_VERSION
from toolkit.errors import ToolkitError

if TYPE_CHECKING:
    from onnx.shape_inference import InferenceContext

log = logging.getLogger(__name__)

def register_plugin_schema() -> None:
    """Teach onnx (checker, shape inference, onnxscript) the plugin op: output = type/shape of input x."""
    from onnx import defs

    if defs.has(PLUGIN_OP_TYPE, PLUGIN_DOMAIN):
        return
    fp, attr = defs.OpSchema.FormalParameter, defs.OpSchema.Attribute
    schema = defs.OpSchema(
        PLUGIN_OP_TYPE, PLUGIN_DOMAIN, int(PLUGIN_VERSION),
        "SegNet max-unpooling without indices: y goes to the first maximum of each 2x2 window of x.",
        inputs=[fp("x", "T", "pre-pool feature N x C x H x W"), fp("y", "T", "feature N x C x H/2 x W/2")],
        outputs=[fp("out", "T", "unpooled N x C x H x W")],
        type_constraints=[("T", ["tensor(float)", "tensor(float16)"], "float tensors")],
        attributes=[attr("plugin_version", helper.make_attribute("plugin_version", PLUGIN_VERSION), "version"),
                    attr("plugin_namespace", helper.make_attribute("plugin_namespace", PLUGIN_NAMESPACE), "ns")],
    )

    def _infer(ctx: InferenceContext) -> None:
        ctx.set_output_type(0, ctx.get_input_type(0))

    schema.set_type_and_shape_inference_function(_infer)
    defs.register_schema(schema)


def make_plugin_node(x: str, y: str, out: str, name: str) -> onnx.NodeProto:
    """One SegNetMaskUnpool node, attributed as TensorRT's ONNX parser expects."""
    return helper.make_node(PLUGIN_OP_TYPE, [x, y], [out], name=name, domain=PLUGIN_DOMAIN,
                            plugin_version=PLUGIN_VERSION, plugin_namespace=PLUGIN_NAMESPACE)


def plugin_nodes(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    return [n for n in model.graph.node if n.op_type == PLUGIN_OP_TYPE]


def _ensure_opset(model: onnx.ModelProto, domain: str, version: int) -> None:
    if not any(o.domain == domain for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid(domain, version))


def _drop_opset(model: onnx.ModelProto, domain: str) -> None:
    keep = [o for o in model.opset_import if o.domain != domain]
    del model.opset_import[:]
    model.opset_import.extend(keep)


def _elem_type(model: onnx.ModelProto, tensor: str) -> int:
    """Element type of a tensor from graph inputs/value_info/initializers (FLOAT when unknown)."""
    for v in [*model.graph.input, *model.graph.value_info, *model.graph.output]:
        if v.name == tensor and v.type.tensor_type.elem_type:
            return v.type.tensor_type.elem_type
    return onnx.TensorProto.FLOAT


# The 2x2/2 max-pool, attributes spelled out as the exporter writes them.
POOL_ATTRS = {"kernel_shape": [2, 2], "strides": [2, 2], "pads": [0, 0, 0, 0], "dilations": [1, 1],
               "ceil_mode": 0, "storage_order": 0, "auto_pad": "NOTSET"}
# Rank of each 2x2 window position, highest first in row-major order: the first maximum wins ties.
_WINDOW_RANK = np.array([[[[4, 3], [2, 1]]]])


def mask_subgraph(x: str, y: str, out: str, group: str, elem_type: int) -> tuple[list[onnx.NodeProto],
                                                                                    list[onnx.TensorProto]]:
    """Nodes and initializers of the mask unpooling of (x, y) -> out, named ``group/mask/<role>``.

    The full-resolution work is nearest 2x Resize, Equal, CastLike, Mul and MaxPool, ops ONNX
    Runtime runs near memory speed (strided Slice, DepthToSpace and Where cost it 4-10x more):

    1. ``eq``: x equals the upsampled max of its window (every maximum, ties included);
    2. ``score``: eq times the window rank [[4, 3], [2, 1]], so the first maximum scores highest;
    3. ``first``: score equals the upsampled max score of its window (exactly one per window);
    4. ``out``: that 0/1 mask times the upsampled y.

    The work runs on (N*C, 1, H, W) views: with one channel, ONNX Runtime keeps these ops in plain
    NCHW instead of converting them to its blocked NCHWc layout, whose reorders at full resolution
    would cost more than the ops themselves. Equal in value to max_unpool2d for finite y; a zero it
    writes is -0.0 where y < 0 (Mul, not Where); the enhanced decoder's fusion adds a ReLU feature
    right after, which turns those into +0.0. The group pools x itself rather than reading the
    encoder's pool: after quantization the two no longer see the same values.
    """
    p = f"{group}{GROUP_TAG}"
    t = lambda role: f"{p}{role}"  # noqa: E731
    np_type = helper.tensor_dtype_to_np_dtype(elem_type)
    inits = [numpy_helper.from_array(_WINDOW_RANK.astype(np_type), t("rank_2x2")),
             numpy_helper.from_array(np.array([-1, 1], np.int64), t("planes")),
             numpy_helper.from_array(np.array([1, 1], np.int64), t("ones")),
             numpy_helper.from_array(np.array([2], np.int64), t("hw_start")),
             numpy_helper.from_array(np.array([4], np.int64), t("hw_end"))]
    mk = helper.make_node

    def up(src: str, role: str) -> onnx.NodeProto:
        return mk("Resize", [src, "", "", t("full_size")], [t(role)], name=t(role), mode="nearest",
                  coordinate_transformation_mode="asymmetric", nearest_mode="floor")

    def planes_shape(src: str, role: str) -> list[onnx.NodeProto]:
        """(-1, 1, H, W) of ``src``'s shape, into tensor ``role``."""
        shape, hw = t(f"{role}_shape"), t(f"{role}_hw")
        return [mk("Shape", [src], [shape], name=shape),
                mk("Slice", [shape, t("hw_start"), t("hw_end")], [hw], name=hw),
                mk("Concat", [t("planes"), hw], [t(role)], name=t(role), axis=0)]

    nodes = [*planes_shape(x, "x_dims"), *planes_shape(y, "y_dims"),
             mk("Reshape", [x, t("x_dims")], [t("x_planes")], name=t("x_planes")),
             mk("Reshape", [y, t("y_dims")], [t("y_planes")], name=t("y_planes")),
             mk("Shape", [t("x_planes")], [t("full_size")], name=t("full_size")),
             mk("MaxPool", [t("x_planes")], [t("max")], name=t("max"), **POOL_ATTRS),
             up(t("max"), "up_max"),
             mk("Equal", [t("x_planes"), t("up_max")], [t("eq")], name=t("eq")),
             mk("CastLike", [t("eq"), t("rank_2x2")], [t("eq_f")], name=t("eq_f")),
             mk("Concat", [t("ones"), t("y_dims_hw")], [t("repeats")], name=t("repeats"), axis=0),
             mk("Tile", [t("rank_2x2"), t("repeats")], [t("rank")], name=t("rank")),
             mk("Mul", [t("eq_f"), t("rank")], [t("score")], name=t("score")),
             mk("MaxPool", [t("score")], [t("max_score")], name=t("max_score"), **POOL_ATTRS),
             up(t("max_score"), "up_max_score"),
             mk("Equal", [t("score"), t("up_max_score")], [t("first")], name=t("first")),
             mk("CastLike", [t("first"), t("y_planes")], [t("first_f")], name=t("first_f")),
             up(t("y_planes"), "up_y"),
             mk("Mul", [t("first_f"), t("up_y")], [t("out_planes")], name=t("out_planes")),
             mk("Reshape", [t("out_planes"), t("x_dims_shape")], [out], name=t("out"))]
    return nodes, inits


def topological_order(graph: onnx.GraphProto, nodes: list[onnx.NodeProto]) -> list[onnx.NodeProto]:
    """``nodes`` sorted so every tensor is produced before it is read (stable for sorted input)."""
    available = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    pending, ordered = list(nodes), []
    while pending:
        rest = []
        for n in pending:
            if all(i in available for i in n.input):
                ordered.append(n)
                available.update(n.output)
            else:
                rest.append(n)
        if len(rest) == len(pending):
            missing = sorted({i for n in rest for i in n.input} - available)[:3]
            raise ToolkitError(f"graph has a cycle or reads undefined tensors {missing}")
        pending = rest
    return ordered


def _rebuild_nodes(model: onnx.ModelProto, nodes: list[onnx.NodeProto]) -> None:
    del model.graph.node[:]
    model.graph.node.extend(nodes)


def expand_plugin_nodes(model: onnx.ModelProto) -> int:
    """Replace every plugin node (in place) by its marked mask subgraph; returns how many."""
    new_nodes: list[onnx.NodeProto] = []
    count = 0
    for node in model.graph.node:
        if node.op_type != PLUGIN_OP_TYPE:
            new_nodes.append(node)
            continue
        if len(node.input) != 2 or len(node.output) != 1:
            raise ToolkitError(f"node '{node.name}': {PLUGIN_OP_TYPE} needs inputs (x, y) and one output")
        group = node.name or f"{PLUGIN_OP_TYPE}_{count}"
        nodes, inits = mask_subgraph(node.input[0], node.input[1], node.output[0], group,
                                     _elem_type(model, node.input[1]))
        new_nodes.extend(nodes)
        model.graph.initializer.extend(inits)
        count += 1
    if count:
        _rebuild_nodes(model, new_nodes)
        _drop_opset(model, PLUGIN_DOMAIN)
    return count


def mask_groups(model: onnx.ModelProto) -> dict[str, list[onnx.NodeProto]]:
    """Marked mask subgraphs by group name (the plugin node they came from / will become)."""
    groups: dict[str, list[onnx.NodeProto]] = {}
    for node in model.graph.node:
        if GROUP_TAG in node.name:
            groups.setdefault(node.name.split(GROUP_TAG)[0], []).append(node)
    return groups


def mask_group_node_names(model: onnx.ModelProto) -> list[str]:
    """Names of every node inside a marked group (kept out of quantization and FP16 conversion)."""
    return [n.name for nodes in mask_groups(model).values() for n in nodes]


def collapse_mask_groups(model: onnx.ModelProto) -> int:
    """Swap each marked mask subgraph (in place) for one plugin node; returns how many.

    The group's x and y are the inputs of its ``x_planes`` and ``y_planes`` reshapes, whatever
    now produces them (a DequantizeLinear or Cast is fine); its output is its ``out`` node's.
    """
    groups = mask_groups(model)
    if not groups:
        return 0
    by_name = {}
    for group, nodes in groups.items():
        roles = {n.name.split(GROUP_TAG, 1)[1]: n for n in nodes}
        try:
            x, y, out = roles["x_planes"].input[0], roles["y_planes"].input[0], roles["out"].output[0]
        except KeyError as e:
            raise ToolkitError(f"mask unpooling group '{group}' lost its node {e}; was it edited by another "
                               "tool? Re-export with --unpool plugin") from None
        internal = {o for n in nodes for o in n.output} - {out}
        group_names = {n.name for n in nodes}
        for n in model.graph.node:
            if n.name not in group_names and internal.intersection(n.input):
                raise ToolkitError(f"node '{n.name}' reads a tensor inside mask group '{group}'; cannot swap it "
                                   "for a plugin node")
        by_name[group] = (group_names, make_plugin_node(x, y, out, group))
    new_nodes: list[onnx.NodeProto] = []
    placed: set[str] = set()
    owner = {name: g for g, (names, _) in by_name.items() for name in names}
    for n in model.graph.node:
        g = owner.get(n.name)
        if g is None:
            new_nodes.append(n)
        elif g not in placed:  # the plugin node goes where the group's first node was (topological order)
            new_nodes.append(by_name[g][1])
            placed.add(g)
    _rebuild_nodes(model, topological_order(model.graph, new_nodes))
    prefixes = tuple(f"{g}{GROUP_TAG}" for g in by_name)
    used = {i for n in model.graph.node for i in n.input}
    keep = [t for t in model.graph.initializer if not (t.name.startswith(prefixes) and t.name not in used)]
    del model.graph.initializer[:]
    model.graph.initializer.extend(keep)
    keep_vi = [v for v in model.graph.value_info if not v.name.startswith(prefixes)]
    del model.graph.value_info[:]
    model.graph.value_info.extend(keep_vi)
    _ensure_opset(model, PLUGIN_DOMAIN, int(PLUGIN_VERSION))
    return len(by_name)
