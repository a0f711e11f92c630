"""FP16 ONNX graphs that TensorRT builds strongly typed: weights and activations in fp16, fp32 I/O.

onnxconverter-common's float16 converter does the conversion (the light alternative to ModelOpt's
AutoCast, without its onnx/onnxruntime-gpu pins). Ops that overflow or lose too much in fp16 stay
fp32 behind Casts: the converter's default block list (ML ops, Resize, TopK, ...) minus Max, Min and
Resize, plus ``exclude`` (op types or node names). Max and Min are exact in any float type, and so is
Resize in the only form our graphs hold (the mask unpooling's nearest 2x copies). Plugin nodes are
expanded to their marked mask subgraph for the conversion and swapped back afterwards, so the plugin
sees fp16 tensors.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence

import onnx

from toolkit.core.names import GROUP_TAG
from toolkit.export.lowering import collapse_mask_groups, expand_plugin_nodes, mask_group_node_names

log = logging.getLogger(__name__)

EXACT_IN_FP16 = {"Max", "Min", "Resize"}


def fp16_block_list(extra_ops: Sequence[str] = ()) -> list[str]:
    """Op types kept in fp32."""
    from onnxconverter_common import float16

    return sorted((set(float16.DEFAULT_OP_BLOCK_LIST) - EXACT_IN_FP16) | set(extra_ops))


def convert_fp16(model: onnx.ModelProto, keep_io_types: bool = True, exclude: Sequence[str] = ()) -> onnx.ModelProto:
    """An fp16 copy of ``model``; ``exclude`` lists op types or node names that stay fp32."""
    from onnxconverter_common import float16

    from toolkit.quant.int8 import split_exclude

    work = onnx.ModelProto()
    work.CopyFrom(model)
    had_plugin = expand_plugin_nodes(work)
    group_nodes = set(mask_group_node_names(work))
    ops, nodes = split_exclude(work, exclude)
    with warnings.catch_warnings(record=True) as caught:  # one warning per weight below fp16's range
        warnings.simplefilter("always")
        out = float16.convert_float_to_float16(work, keep_io_types=keep_io_types, op_block_list=fp16_block_list(ops),
                                               node_block_list=nodes or None, disable_shape_infer=False)
    if caught:
        log.debug("fp16: %d weight values outside fp16's range were clamped (e.g. %s)", len(caught), caught[0].message)
    if had_plugin:
        _unmark_output_casts(out, group_nodes)
        collapse_mask_groups(out)
    log.debug("fp16: %d ops kept fp32 by type, %d by name", len(ops), len(nodes))
    return out


def _unmark_output_casts(model: onnx.ModelProto, group_nodes: set[str]) -> None:
    """Take the converter's graph-output Casts out of the mask groups.

    The converter names the Cast it puts on a graph output after its producer (``unpool1/mask/out_cast_to_logits``
    where a plugin node writes the output), which makes it a member of that group by name, and
    ``collapse_mask_groups`` would then drop it with the group and leave the output without a producer."""
    outputs = {o.name for o in model.graph.output}
    for n in model.graph.node:
        if GROUP_TAG in n.name and n.name not in group_nodes and outputs.intersection(n.output):
            n.name = n.name.replace(GROUP_TAG, "_")
