"""Let ONNX Runtime find the unpooling maxima on the uint8 codes of a CPU int8 graph, not on floats.

The quantizer leaves each marked mask subgraph in float, so ONNX Runtime dequantizes the encoder
feature x at full resolution only to compare it with its own window maximum, and pools it a second
time in float. Dequantization ``(q - zero_point) * scale`` is strictly increasing in q for a scale
> 0, so "x equals its window maximum" and the first such position are the same on the codes q: this
pass points the subgraph's x at the codes (its Resize and Equal then run on one byte per value) and,
where the encoder pools the same codes with the same quantization on both sides, reads the encoder's
pooled codes instead of pooling again (else the subgraph pools the codes itself). Where the group's
output is quantized right away with zero point 0, it also builds y, the window scores and the output
as codes (``_unpool_on_codes``), so no float tensor is left at full resolution. The graph computes
exactly what it did before (tests compare bit for bit); only the work changes. For ``--target cpu``
graphs only: TensorRT has no uint8 pooling or comparison, and its builder fuses Q/DQ itself.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from toolkit.core.names import GROUP_TAG
from toolkit.export.lowering import POOL_ATTRS, mask_groups, topological_order


def _per_tensor_qparams(node: onnx.NodeProto, inits: dict[str, np.ndarray]) -> tuple[bytes, bytes] | None:
    """(scale, zero point) bytes of a Q/DQ node with a scalar positive scale; None otherwise."""
    if len(node.input) < 3 or node.input[1] not in inits or node.input[2] not in inits:
        return None
    scale, zero = inits[node.input[1]], inits[node.input[2]]
    if scale.size != 1 or zero.size != 1 or not float(scale.ravel()[0]) > 0:
        return None
    return scale.tobytes(), zero.tobytes()


def _is_plain_pool(node: onnx.NodeProto) -> bool:
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    attrs = {k: v.decode() if isinstance(v, bytes) else v for k, v in attrs.items()}
    return node.op_type == "MaxPool" and len(node.output) == 1 and {**POOL_ATTRS, **attrs} == POOL_ATTRS


def mask_groups_on_codes(model: onnx.ModelProto) -> int:
    """Rewire (in place) every mask group whose x is a per-tensor DequantizeLinear; returns how many."""
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    producer = {o: n for n in model.graph.node for o in n.output}
    readers: dict[str, list[onnx.NodeProto]] = {}
    for n in model.graph.node:
        for name in n.input:
            readers.setdefault(name, []).append(n)
    rewired = 0
    for nodes in mask_groups(model).values():
        roles = {n.name.split(GROUP_TAG, 1)[1]: n for n in nodes}
        if "x_planes" not in roles or "max" not in roles or roles["max"].op_type != "MaxPool":
            continue
        x = roles["x_planes"].input[0]
        dq = producer.get(x)
        qparams = _per_tensor_qparams(dq, inits) if dq is not None and dq.op_type == "DequantizeLinear" else None
        if qparams is None:
            continue
        codes = dq.input[0]
        for n in nodes:
            n.input[:] = [codes if name == x else name for name in n.input]
        pooled = _encoder_pooled_codes(model, codes, qparams, producer, readers, inits)
        if pooled is not None:
            old = roles["max"]
            reuse = helper.make_node("Reshape", [pooled, roles["y_planes"].input[1]], list(old.output), name=old.name)
            model.graph.node.insert(list(model.graph.node).index(old), reuse)
            model.graph.node.remove(old)
        _unpool_on_codes(model, roles, inits, producer, readers)
        rewired += 1
    if rewired:
        # The group's tensors changed type (uint8 now); let ONNX Runtime infer them afresh.
        keep = [v for v in model.graph.value_info if GROUP_TAG not in v.name]
        del model.graph.value_info[:]
        model.graph.value_info.extend(keep)
        ordered = topological_order(model.graph, list(model.graph.node))
        del model.graph.node[:]
        model.graph.node.extend(ordered)
        read = {name for n in model.graph.node for name in n.input} | {o.name for o in model.graph.output} | \
            {i.name for i in model.graph.input}
        unused = [t for t in model.graph.initializer if t.name not in read]  # e.g. the float window ranks
        for t in unused:
            model.graph.initializer.remove(t)
    return rewired


def _encoder_pooled_codes(model: onnx.ModelProto, codes: str, qparams: tuple[bytes, bytes],
                          producer: dict[str, onnx.NodeProto], readers: dict[str, list[onnx.NodeProto]],
                          inits: dict[str, np.ndarray]) -> str | None:
    """The codes of a plain 2x2 pool of ``codes`` outside any group (DQ -> MaxPool -> Q, same qparams)."""
    for pool in model.graph.node:
        if GROUP_TAG in pool.name or not _is_plain_pool(pool):
            continue
        dq = producer.get(pool.input[0])
        if dq is None or dq.op_type != "DequantizeLinear" or dq.input[0] != codes:
            continue
        if _per_tensor_qparams(dq, inits) != qparams:
            continue
        for q in readers.get(pool.output[0], []):
            if q.op_type == "QuantizeLinear" and _per_tensor_qparams(q, inits) == qparams:
                return q.output[0]
    return None


def _unpool_on_codes(model: onnx.ModelProto, roles: dict[str, onnx.NodeProto], inits: dict[str, np.ndarray],
                     producer: dict[str, onnx.NodeProto], readers: dict[str, list[onnx.NodeProto]]) -> None:
    """Also put y, the window ranks and the output on uint8, when the output is quantized right away
    with zero point 0 (a ReLU feature's range starts at 0) and y is a per-tensor DequantizeLinear.

    Then ``Q(first * up(DQ(y)))`` is ``first * up(Q(DQ(y)))``: y is requantized to the output's
    quantization at low resolution (nothing to do when both are the same), upsampled as codes, and
    multiplied by the 0/1 mask in uint8; unselected positions are 0, the code of 0.0. The scores (0..4)
    are built in uint8 too; only their 2x2 max pool runs in float, where ONNX Runtime's kernel is ~5x
    faster than its uint8 one. Full resolution then sees no float multiply, cast or quantize: in
    ONNX Runtime's CPU kernels a uint8 Mul is ~6x cheaper than a float one, Equal ~8x, Resize ~9x
    (``python tools/ort_op_costs.py``).
    """
    out = roles["out"].output[0]
    quant = readers.get(out, [])
    if len(quant) != 1 or quant[0].op_type != "QuantizeLinear" or any(o.name == out for o in model.graph.output):
        return
    q = quant[0]
    out_qparams = _per_tensor_qparams(q, inits)
    if out_qparams is None or inits[q.input[2]].dtype != np.uint8 or int(inits[q.input[2]].ravel()[0]) != 0:
        return
    y_dq = producer.get(roles["y_planes"].input[0])
    y_qparams = (_per_tensor_qparams(y_dq, inits)
                 if y_dq is not None and y_dq.op_type == "DequantizeLinear" else None)
    rank = roles["rank"].input[0]
    if y_qparams is None or rank not in inits:
        return
    prefix = roles["out"].name.rsplit(GROUP_TAG, 1)[0] + GROUP_TAG
    new_nodes = []
    y_codes = y_dq.input[0]
    if y_qparams != out_qparams:  # requantize y to the output's scale while it is still small
        new_nodes += [helper.make_node("DequantizeLinear", [y_codes, *y_dq.input[1:]], [prefix + "y_float"],
                                       name=prefix + "y_float"),
                      helper.make_node("QuantizeLinear", [prefix + "y_float", *q.input[1:]], [prefix + "y_codes"],
                                       name=prefix + "y_codes")]
        y_codes = prefix + "y_codes"
    roles["y_planes"].input[0] = y_codes
    if "y_dims_shape" in roles:  # the shape of y is the shape of its codes: no dequantize just for Shape
        roles["y_dims_shape"].input[0] = y_dq.input[0]
    if all(r is roles["y_planes"] or r is roles.get("y_dims_shape") for r in readers.get(y_dq.output[0], [])) \
            and not any(o.name == y_dq.output[0] for o in model.graph.output):
        model.graph.node.remove(y_dq)  # the group read the float y only through these two
    rank_u8 = prefix + "rank_2x2_u8"
    model.graph.initializer.append(numpy_helper.from_array(inits[rank].astype(np.uint8), rank_u8))
    inits[rank_u8] = inits[rank].astype(np.uint8)
    roles["rank"].input[0] = rank_u8  # Tile: ranks as uint8
    roles["eq_f"].input[1] = rank_u8  # CastLike: the equality mask as uint8, so the score Mul is uint8
    score, pooled = roles["score"].output[0], roles["max_score"].output[0]
    new_nodes += [helper.make_node("Cast", [score], [prefix + "score_float"], name=prefix + "score_float",
                                   to=onnx.TensorProto.FLOAT),
                  helper.make_node("Cast", [prefix + "max_score_float"], [prefix + "max_score_codes"],
                                   name=prefix + "max_score_codes", to=onnx.TensorProto.UINT8)]
    roles["max_score"].input[0] = prefix + "score_float"
    roles["max_score"].output[0] = prefix + "max_score_float"
    for reader in readers.get(pooled, []):
        reader.input[:] = [prefix + "max_score_codes" if name == pooled else name for name in reader.input]
    roles["out"].output[0] = q.output[0]  # the group now ends in the codes the quantizer produced
    model.graph.node.remove(q)
    model.graph.node.extend(new_nodes)
