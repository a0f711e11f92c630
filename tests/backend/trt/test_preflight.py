"""Preflight: the op check that runs before any TensorRT build, on tiny ONNX graphs (no TensorRT needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.helpers import onnx_graphs as g
from toolkit.backend.trt.preflight import TRT_SUPPORTED_OPS, TRT_UNSUPPORTED_OPS, preflight, summary
from toolkit.core.onnx_file import detect_precision
from toolkit.errors import CheckFailedError, PreflightError, ToolkitError


def test_clean_graph_accepted(tmp_path: Path) -> None:
    report = preflight(g.save(g.clean(), tmp_path / "m.onnx"))
    assert report.ok, report.issues
    assert report.precision == "fp32" and report.opset == g.OPSET and not report.plugin_nodes
    assert report.inputs == {"input": ["N", 3, "H", "W"]}
    assert report.op_counts["Conv"] == 1
    report.raise_if_failed()  # no exception
    assert "ok" in summary(report)


def test_maxunpool_refused_with_fix() -> None:
    report = preflight(g.maxunpool())
    ops = {i.op_type for i in report.issues}
    assert ops == {"MaxUnpool", "MaxPool"}  # both halves of the indices form are named
    with pytest.raises(PreflightError) as e:
        report.raise_if_failed("m.onnx")
    msg = str(e.value)
    assert "--unpool mask" in msg and "plugin" in msg and "unpool [MaxUnpool]" in msg
    assert isinstance(e.value, CheckFailedError) and e.value.exit_code == 1


def test_maxpool_with_indices_refused() -> None:
    report = preflight(g.maxpool_indices())
    assert [(i.node, i.op_type) for i in report.issues] == [("pool", "MaxPool")]
    assert "Indices" in report.issues[0].message and "--unpool mask" in report.issues[0].message


def test_plugin_node_needs_library(tmp_path: Path) -> None:
    report = preflight(g.plugin())
    assert report.plugin_nodes == ["unpool1"] and not report.ok
    assert "toolkit build-plugin" in report.issues[0].message and "--plugin" in report.issues[0].message
    missing = preflight(g.plugin(), plugin_library=tmp_path / "nope.so")
    assert "not found" in missing.issues[0].message
    lib = tmp_path / "libsegnet_plugins.so"
    lib.write_bytes(b"\x7fELF")
    assert preflight(g.plugin(), plugin_library=lib).ok


def test_plugin_node_attributes_and_arity(tmp_path: Path) -> None:
    lib = tmp_path / "libsegnet_plugins.so"
    lib.write_bytes(b"\x7fELF")
    assert preflight(g.plugin(attrs={}), plugin_library=lib).ok  # the parser defaults to version "1", namespace ""
    bad = preflight(g.plugin(attrs={"plugin_version": "2"}), plugin_library=lib)
    assert len(bad.issues) == 1 and "plugin_version '2'" in bad.issues[0].message
    other = preflight(g.plugin(op_type="SegNetSomethingElse"), plugin_library=lib)
    assert "unknown plugin op" in other.issues[0].message


@pytest.mark.parametrize("op,domain,expect", [
    ("Unique", "", "not supported"),           # an 'N' row of the support matrix
    ("FancyNewOp", "", "not in the TensorRT"),  # in no row
    ("Gelu", "com.microsoft", "custom-domain"),
    ("Relu", "", None),
])
def test_support_list(op: str, domain: str, expect: str | None) -> None:
    report = preflight(g.with_op(op, domain))
    if expect is None:
        assert report.ok
    else:
        assert len(report.issues) == 1 and expect in report.issues[0].message


def test_support_list_sane() -> None:
    assert not TRT_SUPPORTED_OPS & TRT_UNSUPPORTED_OPS
    # Every op of the `mask` lowering (toolkit/export/lowering.py) and of fp16/int8 graphs is supported.
    needed = {"Slice", "Max", "Equal", "Not", "And", "Or", "Where", "Unsqueeze", "Concat", "Shape", "Mul", "Reshape",
              "DepthToSpace", "Conv", "BatchNormalization", "Relu", "MaxPool", "Add", "Cast", "QuantizeLinear",
              "DequantizeLinear", "Resize", "Constant"}
    assert needed <= TRT_SUPPORTED_OPS
    assert {"MaxUnpool", "DynamicQuantizeLinear", "QLinearConv"} <= TRT_UNSUPPORTED_OPS


def test_qdq_forms() -> None:
    assert preflight(g.qdq()).ok and detect_precision(g.qdq()) == "int8"
    uint8 = preflight(g.qdq(np.array(128, np.uint8)))
    assert len(uint8.issues) == 2 and "--target tensorrt" in uint8.issues[0].message  # Q and DQ
    nonzero = preflight(g.qdq(np.array(3, np.int8)))
    assert nonzero.issues and "zero point" in nonzero.issues[0].message


def test_precision_detection() -> None:
    assert detect_precision(g.clean()) == "fp32"
    assert detect_precision(g.fp16()) == "fp16"
    assert preflight(g.fp16()).ok


def test_precision_claim_mismatch_warns() -> None:
    report = preflight(g.clean(meta={"toolkit.precision": "fp16"}))
    assert report.ok and any("metadata says precision fp16" in w for w in report.warnings)


def test_opset_outside_range_warns() -> None:
    model = g.clean()
    model.opset_import[0].version = 30
    assert any("opset 30" in w for w in preflight(model).warnings)


def test_bad_files(tmp_path: Path) -> None:
    with pytest.raises(ToolkitError, match="not found"):
        preflight(tmp_path / "missing.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"this is not protobuf \xff\xfe")
    with pytest.raises(ToolkitError, match="not an ONNX model"):
        preflight(junk)


def test_subgraphs_and_local_functions_are_checked() -> None:
    from onnx import helper

    model = g.with_op("Relu")
    body = helper.make_graph([helper.make_node("MaxUnpool", ["a", "b"], ["o"], kernel_shape=[2, 2], name="deep")],
                             "then", [], [helper.make_tensor_value_info("o", 1, None)])
    model.graph.node.append(helper.make_node("If", ["cond"], ["z"], then_branch=body, else_branch=body, name="if"))
    fn = helper.make_function("local", "MyBlock", ["x"], ["y"], [helper.make_node("Unique", ["x"], ["y"])],
                              [helper.make_opsetid("", g.OPSET)])
    model.functions.append(fn)
    model.graph.node.append(helper.make_node("MyBlock", ["c"], ["zz"], domain="local", name="block"))
    issues = {(i.node, i.op_type) for i in preflight(model).issues}
    assert ("deep", "MaxUnpool") in issues  # inside both If branches
    assert any(op == "Unique" for _, op in issues)  # inside the local function
    assert not any(op == "MyBlock" for _, op in issues)  # the call itself is fine (parser imports local functions)
