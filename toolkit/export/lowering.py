"""The ``plugin`` node and the graph passes between it and the ``mask`` subgraph.

The exporter writes each unpooling as one ``trt.plugins::SegNetMaskUnpool`` node (``op_type`` is the
TensorRT plugin's name; TensorRT's ONNX parser falls back to the plugin registry for unknown ops and
reads the string attributes ``plugin_version`` and ``plugin_namespace``). ``expand_plugin_nodes``
replaces each by the indices-free ``mask`` subgraph, its nodes named ``<plugin node>/mask/<role>`` so
that ``collapse_mask_groups`` can swap the very same group back for a plugin node after a tool that
cannot run unknown ops (calibration, quantization, FP16 conversion) has processed the graph.

The subgraph computes exactly ``toolkit.models.unpool.mask_unpool``: slicing, Max, Equal, Not, And,
Or, Where, Concat, Reshape and DepthToSpace (CRD), ops every TensorRT version parses; its Reshape
takes its target shape from ``Shape(y)`` so batch, H and W stay dynamic.
"""

from __future__ import annotations

import logging

import numpy as np
import onnx
from onnx import helper, numpy_helper

from toolkit.errors import ToolkitError
from toolkit.models.unpool import PLUGIN_DOMAIN, PLUGIN_NAMESPACE, PLUGIN_OP_TYPE, PLUGIN_VERSION

log = logging.getLogger(__name__)

GROUP_TAG = "/mask/"
_INT_MAX = np.iinfo(np.int64).max


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

    def _infer(ctx: object) -> None:
        ctx.set_output_type(0, ctx.get_input_type(0))  # type: ignore[attr-defined]

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


def mask_subgraph(x: str, y: str, out: str, group: str, elem_type: int) -> tuple[list[onnx.NodeProto],
                                                                                    list[onnx.TensorProto]]:
    """Nodes and initializers of the mask unpooling of (x, y) -> out, named ``group/mask/<role>``."""
    p = f"{group}{GROUP_TAG}"
    t = lambda role: f"{p}{role}"  # noqa: E731
    zero = np.zeros((), dtype=helper.tensor_dtype_to_np_dtype(elem_type))
    inits = [numpy_helper.from_array(zero, t("zero")),
             numpy_helper.from_array(np.array([_INT_MAX, _INT_MAX], np.int64), t("ends")),
             numpy_helper.from_array(np.array([2, 3], np.int64), t("axes")),
             numpy_helper.from_array(np.array([2, 2], np.int64), t("steps")),
             numpy_helper.from_array(np.array([1, 4, 1, 1], np.int64), t("x4")),
             numpy_helper.from_array(np.array([2], np.int64), t("ax2"))]
    nodes = []
    for k, (r, c) in zip("abcd", [(0, 0), (0, 1), (1, 0), (1, 1)], strict=True):
        inits.append(numpy_helper.from_array(np.array([r, c], np.int64), t(f"starts_{k}")))
        nodes.append(helper.make_node("Slice", [x, t(f"starts_{k}"), t("ends"), t("axes"), t("steps")],
                                      [t(f"v_{k}")], name=t(f"slice_{k}")))
    mk = helper.make_node
    nodes += [
        mk("Max", [t("v_a"), t("v_b")], [t("max_ab")], name=t("max_ab")),
        mk("Max", [t("v_c"), t("v_d")], [t("max_cd")], name=t("max_cd")),
        mk("Max", [t("max_ab"), t("max_cd")], [t("max")], name=t("max")),
        mk("Equal", [t("v_a"), t("max")], [t("m_a")], name=t("eq_a")),
        mk("Equal", [t("v_b"), t("max")], [t("eq_b")], name=t("eq_b")),
        mk("Not", [t("m_a")], [t("not_a")], name=t("not_a")),
        mk("And", [t("eq_b"), t("not_a")], [t("m_b")], name=t("and_b")),
        mk("Or", [t("m_a"), t("m_b")], [t("taken")], name=t("taken")),
        mk("Equal", [t("v_c"), t("max")], [t("eq_c")], name=t("eq_c")),
        mk("Not", [t("taken")], [t("not_taken")], name=t("not_taken")),
        mk("And", [t("eq_c"), t("not_taken")], [t("m_c")], name=t("and_c")),
        mk("Or", [t("taken"), t("m_c")], [t("taken_c")], name=t("taken_c")),
        mk("Not", [t("taken_c")], [t("m_d")], name=t("not_d")),
    ]
    for k in "abcd":
        nodes.append(mk("Where", [t(f"m_{k}"), y, t("zero")], [t(f"w_{k}")], name=t(f"where_{k}")))
        nodes.append(mk("Unsqueeze", [t(f"w_{k}"), t("ax2")], [t(f"u_{k}")], name=t(f"unsqueeze_{k}")))
    nodes += [
        mk("Concat", [t(f"u_{k}") for k in "abcd"], [t("stack")], name=t("stack"), axis=2),
        mk("Shape", [y], [t("y_shape")], name=t("y_shape")),
        mk("Mul", [t("y_shape"), t("x4")], [t("d2s_shape")], name=t("d2s_shape")),
        mk("Reshape", [t("stack"), t("d2s_shape")], [t("d2s_in")], name=t("reshape")),
        mk("DepthToSpace", [t("d2s_in")], [out], name=t("depth_to_space"), blocksize=2, mode="CRD"),
    ]
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

    The group's x is the input of its ``slice_a`` node and y the data input of its ``where_a`` node,
    whatever now produces them (a DequantizeLinear or Cast is fine); its output is the DepthToSpace's.
    """
    groups = mask_groups(model)
    if not groups:
        return 0
    by_name = {}
    for group, nodes in groups.items():
        roles = {n.name.split(GROUP_TAG, 1)[1]: n for n in nodes}
        try:
            x, y, out = roles["slice_a"].input[0], roles["where_a"].input[1], roles["depth_to_space"].output[0]
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
