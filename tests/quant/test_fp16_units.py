"""FP16 conversion on hand-built graphs: which ops stay fp32 (behind Casts) and which go fp16, the I/O types, the
exclusions by op type and by node name, plugin nodes, and out-of-range weights. Milliseconds per test (the mutation
map's tests for toolkit/quant/fp16.py); tests/quant/test_quant.py checks the exported SegNet and its drift."""

from __future__ import annotations

import logging
import warnings

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnxconverter_common import float16

from tests.helpers import onnx_graphs
from toolkit.core.names import PLUGIN_OP_TYPE
from toolkit.core.onnx_file import op_counts
from toolkit.errors import UnknownNameError
from toolkit.quant.fp16 import EXACT_IN_FP16, convert_fp16, fp16_block_list


def _graph(weight_scale: float = 1.0) -> onnx.ModelProto:
    """input -> Conv -> Max(., .) -> CumSum -> Resize (nearest, to its own size) -> Relu -> logits: Max and Resize
    are on the converter's default block list but exact in fp16; CumSum is on it and stays fp32."""
    rng = np.random.default_rng(0)
    w = (rng.standard_normal((4, 3, 3, 3)) * weight_scale).astype(np.float32)
    inits = [numpy_helper.from_array(w, "w"), numpy_helper.from_array(np.array(3, np.int64), "axis")]
    nodes = [helper.make_node("Conv", ["input", "w"], ["c"], pads=[1, 1, 1, 1], name="conv"),
             helper.make_node("Max", ["c", "c"], ["m"], name="max"),
             helper.make_node("CumSum", ["m", "axis"], ["s"], name="cumsum"),
             helper.make_node("Shape", ["s"], ["sizes"], name="shape"),
             helper.make_node("Resize", ["s", "", "", "sizes"], ["z"], mode="nearest", name="resize"),
             helper.make_node("Relu", ["z"], ["logits"], name="relu")]
    return onnx_graphs._model(nodes, inits, ["N", 4, "H", "W"])


def _elem_types(model: onnx.ModelProto) -> dict[str, int]:
    inferred = onnx.shape_inference.infer_shapes(model)
    vals = [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]
    return {v.name: v.type.tensor_type.elem_type for v in vals}


def _node_types(model: onnx.ModelProto) -> dict[str, int]:
    """Each non-Cast node's output element type, by node op type."""
    types = _elem_types(model)
    return {n.op_type: types[n.output[0]] for n in model.graph.node if n.op_type not in ("Cast", "Shape")}


FP16, FP32 = TensorProto.FLOAT16, TensorProto.FLOAT


def test_the_block_list_is_the_converters_minus_the_exact_ops_plus_extras() -> None:
    default = set(float16.DEFAULT_OP_BLOCK_LIST)
    assert {"Max", "Min", "Resize"} == EXACT_IN_FP16
    assert fp16_block_list() == sorted(default - {"Max", "Min", "Resize"}) and "CumSum" in fp16_block_list()
    assert fp16_block_list(["Conv", "TopK"]) == sorted((default - {"Max", "Min", "Resize"}) | {"Conv"})


def test_blocked_ops_stay_fp32_behind_casts_and_the_io_stays_fp32() -> None:
    f16 = convert_fp16(_graph())
    assert [v.type.tensor_type.elem_type for v in [*f16.graph.input, *f16.graph.output]] == [FP32, FP32]
    assert _node_types(f16) == {"Conv": FP16, "Max": FP16, "CumSum": FP32, "Resize": FP16, "Relu": FP16}
    assert {t.name: t.data_type for t in f16.graph.initializer}["w"] == FP16
    assert op_counts(f16)["Cast"] == 4  # the input, both sides of CumSum, the output
    x = {"input": np.random.default_rng(1).normal(size=(1, 3, 4, 5)).astype(np.float32)}
    import onnxruntime as ort

    def run(m: onnx.ModelProto) -> np.ndarray:
        return ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, x)[0]

    ref, got = run(_graph()), run(f16)
    # fp16 rounding of the Conv's inputs and output (rel 2^-11 each) summed by CumSum over 5 columns
    assert got.dtype == np.float32 and np.abs(got - ref).max() < 1e-2 * np.abs(ref).max()


def test_fp16_io_when_asked() -> None:
    f16 = convert_fp16(_graph(), keep_io_types=False)
    assert [v.type.tensor_type.elem_type for v in [*f16.graph.input, *f16.graph.output]] == [FP16, FP16]
    assert op_counts(f16)["Cast"] == 2  # only around CumSum


def test_exclude_by_op_type_and_by_node_name() -> None:
    by_type = convert_fp16(_graph(), exclude=["Relu"])
    assert _node_types(by_type)["Relu"] == FP32 and _node_types(by_type)["Conv"] == FP16
    by_name = convert_fp16(_graph(), exclude=["conv"])
    assert _node_types(by_name)["Conv"] == FP32 and _node_types(by_name)["Relu"] == FP16
    assert {t.name: t.data_type for t in by_name.graph.initializer}["w"] == FP32
    with pytest.raises(UnknownNameError, match="Did you mean 'conv'"):
        convert_fp16(_graph(), exclude=["cnv"])


def _plugin_then_relu() -> onnx.ModelProto:
    """onnx_graphs.plugin() with a Relu after the plugin node (as in SegNet, where a conv follows each unpooling)."""
    model = onnx_graphs.plugin()
    model.graph.node[-1].output[0] = "u"
    model.graph.node.append(helper.make_node("Relu", ["u"], ["logits"], name="head"))
    return model


@pytest.mark.parametrize("last", ["plugin", "relu"])
def test_a_plugin_node_comes_back_and_sees_fp16(last: str) -> None:
    """Also where the plugin node writes the graph output: the converter's output Cast, named after the group's
    last node, was swallowed with the group (the output had no producer)."""
    model = onnx_graphs.plugin() if last == "plugin" else _plugin_then_relu()
    f16 = convert_fp16(model)
    onnx.checker.check_model(f16)
    (node,) = [n for n in f16.graph.node if n.op_type == PLUGIN_OP_TYPE]
    types = _elem_types(f16)
    assert op_counts(f16)["Cast"] == 2 and not [n for n in f16.graph.node if "/mask/" in n.name]
    assert [types[i] for i in node.input] == [FP16, FP16]
    assert [o for n in f16.graph.node for o in n.output if o == "logits"] == ["logits"]  # a producer, once
    assert [v.type.tensor_type.elem_type for v in f16.graph.output] == [FP32]
    # fp16 I/O: no output Cast, the group's own last node writes the output and must stay in the group
    io16 = convert_fp16(model, keep_io_types=False)
    assert op_counts(io16)[f"trt.plugins::{PLUGIN_OP_TYPE}"] == 1 and "Cast" not in op_counts(io16)


def test_out_of_range_weights_are_clamped_and_logged_not_warned(caplog: pytest.LogCaptureFixture) -> None:
    with warnings.catch_warnings(record=True) as direct:  # what the converter itself warns
        warnings.simplefilter("always")
        float16.convert_float_to_float16(_graph(weight_scale=1e6), keep_io_types=True)
    assert direct
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning that escapes fails the test
        with caplog.at_level(logging.DEBUG, logger="toolkit.quant.fp16"):
            f16 = convert_fp16(_graph(weight_scale=1e6))
    w = numpy_helper.to_array({t.name: t for t in f16.graph.initializer}["w"])
    assert np.isfinite(w).all() and np.abs(w).max() == 10000.0  # the converter's clamp (max_finite_val)
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    clamped = f"fp16: {len(direct)} weight values outside fp16's range were clamped (e.g. {direct[0].message})"
    assert messages[0] == clamped
    assert messages[1] == "fp16: 0 ops kept fp32 by type, 0 by name"
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="toolkit.quant.fp16"):
        convert_fp16(_graph(), exclude=["Relu", "conv"])
    assert [r.getMessage() for r in caplog.records] == ["fp16: 1 ops kept fp32 by type, 1 by name"]
