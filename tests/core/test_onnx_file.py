"""toolkit.core.onnx_file: one loader, one precision rule for every reader (ONNX Runtime runner, engine
sidecar, preflight), the graph's input/output names."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from toolkit.core.onnx_file import detect_precision, input_names, load_onnx, output_names, save_onnx
from toolkit.errors import ToolkitError


def _cast_graph(inner: int = TensorProto.FLOAT16) -> onnx.ModelProto:
    """fp32 in and out, fp32 weights, computing in ``inner`` through two Casts: no fp16 initializer at all."""
    nodes = [helper.make_node("Cast", ["input"], ["h"], to=inner),
             helper.make_node("Cast", ["h"], ["logits"], to=TensorProto.FLOAT)]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 3, 8, 8])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_fp16_casts_count_as_fp16() -> None:
    """The rule of the two copies that disagreed: only the TensorRT one looked past initializers. A graph
    that casts to fp16 inside is an fp16 model whichever reader asks."""
    assert detect_precision(_cast_graph()) == "fp16"
    assert detect_precision(_cast_graph(TensorProto.DOUBLE)) == "fp32"
    const = _cast_graph(TensorProto.FLOAT)
    const.graph.node.append(helper.make_node("Constant", [], ["c"], value=helper.make_tensor(
        "c", TensorProto.FLOAT16, [1], [1.0])))
    assert detect_precision(const) == "fp16"


def test_onnxrt_runner_reports_the_same_precision(tmp_path: Path) -> None:
    from toolkit.backend import make_runner

    path = save_onnx(_cast_graph(), tmp_path / "cast16.onnx")  # no toolkit metadata: precision is detected
    with make_runner(path) as runner:
        assert runner.info.precision == "fp16" and runner.meta is None
        out = runner.infer({"input": np.ones((1, 3, 8, 8), np.float32)})["logits"]
    assert out.shape == (1, 3, 8, 8)


def test_names_and_bad_files(tmp_path: Path) -> None:
    model = _cast_graph()
    assert input_names(model) == ["input"] and output_names(model) == ["logits"]
    with pytest.raises(ToolkitError, match="ONNX file not found"):
        load_onnx(tmp_path / "missing.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"this is not protobuf \xff\xfe")
    for external in (True, False):  # preflight reads without external weights; the message is the same
        with pytest.raises(ToolkitError, match="not an ONNX model"):
            load_onnx(junk, external_data=external)
