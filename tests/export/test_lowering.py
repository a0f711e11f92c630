"""Graph passes between the plugin node and the marked mask subgraph, and the ONNX MaxPool/MaxUnpool
semantics the ``maxunpool`` lowering relies on (checked on ONNX's own backend test cases)."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F
from onnx import helper

from tests.helpers.models import tiny_onnx
from toolkit.backend.onnxrt.loader import session_from_onnx
from toolkit.core.names import PLUGIN_OP_TYPE
from toolkit.core.onnx_file import load_onnx, op_counts
from toolkit.errors import ToolkitError
from toolkit.export import collapse_mask_groups, expand_plugin_nodes
from toolkit.export.lowering import make_plugin_node, mask_groups, topological_order
from toolkit.models.unpool import mask_unpool


def _single_plugin_model(dtype: int = onnx.TensorProto.FLOAT) -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", dtype, ["N", "C", "H", "W"])
    y = helper.make_tensor_value_info("y", dtype, ["N", "C", "h", "w"])
    out = helper.make_tensor_value_info("out", dtype, None)
    graph = helper.make_graph([make_plugin_node("x", "y", "out", "unpool")], "g", [x, y], [out])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18),
                                                   helper.make_opsetid("trt.plugins", 1)])


@pytest.mark.parametrize("case", ["random", "ties"])
def test_mask_subgraph_matches_pytorch(case: str) -> None:
    """Equal in value to mask_unpool/max_unpool2d; zeros may be -0.0 (a Mul), and adding a ReLU
    feature (the enhanced decoder's fusion) makes the result bit-identical."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 8, 12, generator=g)
    if case == "ties":
        x = torch.relu(torch.randint(0, 3, (2, 3, 8, 12), generator=g).float() - 1)
    y = torch.randn(2, 3, 4, 6, generator=g)
    model = _single_plugin_model()
    assert expand_plugin_nodes(model) == 1 and PLUGIN_OP_TYPE not in op_counts(model)
    out = ort.InferenceSession(model.SerializeToString()).run(None, {"x": x.numpy(), "y": y.numpy()})[0]
    ref = mask_unpool(x, y)
    assert torch.equal(ref, F.max_unpool2d(y, F.max_pool2d(x, 2, 2, return_indices=True)[1], 2, 2))
    assert np.array_equal(out, ref.numpy())
    assert (out != 0).sum() == (y != 0).sum()  # exactly one position per window
    fused = out + torch.relu(x).numpy()
    assert np.array_equal(fused.view(np.int32), (ref + torch.relu(x)).numpy().view(np.int32))


def test_expand_collapse_roundtrip(tmp_path_factory: pytest.TempPathFactory) -> None:
    plugin = load_onnx(tiny_onnx(tmp_path_factory, "plugin"))
    work = onnx.ModelProto()
    work.CopyFrom(plugin)
    assert expand_plugin_nodes(work) == 3 and len(mask_groups(work)) == 3
    assert collapse_mask_groups(work) == 3
    assert op_counts(work) == op_counts(plugin)
    before = [(n.op_type, list(n.input), list(n.output)) for n in plugin.graph.node]
    assert sorted(before) == sorted((n.op_type, list(n.input), list(n.output)) for n in work.graph.node)


def test_exported_mask_form_collapses_to_plugin(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The mask export (after onnxslim) still carries its marks, and the collapsed graph computes the same."""
    mask = load_onnx(tiny_onnx(tmp_path_factory, "mask"))
    collapsed = onnx.ModelProto()
    collapsed.CopyFrom(mask)
    assert collapse_mask_groups(collapsed) == 3
    assert set(op_counts(collapsed)) == set(op_counts(load_onnx(tiny_onnx(tmp_path_factory, "plugin"))))
    x = np.random.default_rng(0).normal(size=(2, 3, 32, 48)).astype(np.float32)
    a = session_from_onnx(mask).session.run(None, {"input": x})[0]
    b = session_from_onnx(collapsed).session.run(None, {"input": x})[0]
    assert np.array_equal(a, b)


def test_collapse_refuses_a_group_read_from_outside() -> None:
    model = _single_plugin_model()
    expand_plugin_nodes(model)
    model.graph.node.append(helper.make_node("Identity", ["unpool/mask/max"], ["leak"], name="outside"))
    with pytest.raises(ToolkitError, match="reads a tensor inside mask group"):
        collapse_mask_groups(model)


def test_topological_order_detects_cycles() -> None:
    graph = helper.make_graph([helper.make_node("Identity", ["b"], ["a"]), helper.make_node("Identity", ["a"], ["b"])],
                              "g", [], [])
    with pytest.raises(ToolkitError, match="cycle"):
        topological_order(graph, list(graph.node))


def _onnx_cases(monkeypatch: pytest.MonkeyPatch) -> dict[str, tuple]:
    """ONNX's backend test cases for MaxPool-with-indices and MaxUnpool (from the installed onnx)."""
    import onnx.backend.test.case.node.maxpool as mp
    import onnx.backend.test.case.node.maxunpool as mu

    cases: dict[str, tuple] = {}

    def capture(node, inputs, outputs, name, **_):
        cases[name] = (node, inputs, outputs)

    monkeypatch.setattr(mp, "expect", capture)
    monkeypatch.setattr(mu, "expect", capture)
    mp.MaxPool.export_maxpool_with_argmax_2d_precomputed_strides()
    mu.MaxUnpool.export_without_output_shape()
    return cases


def _run_node(node: onnx.NodeProto, inputs: list[np.ndarray], n_out: int) -> list[np.ndarray]:
    ins = [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(a.dtype), a.shape)
           for n, a in zip(node.input, inputs, strict=True)]
    types = [onnx.TensorProto.FLOAT, onnx.TensorProto.INT64]  # (values, indices) for MaxPool; values for MaxUnpool
    outs = [helper.make_tensor_value_info(n, t, None) for n, t in zip(node.output[:n_out], types, strict=False)]
    model = helper.make_model(helper.make_graph([node], "g", ins, outs), opset_imports=[helper.make_opsetid("", 18)])
    return ort.InferenceSession(model.SerializeToString()).run(None, dict(zip(node.input, inputs, strict=True)))


def test_onnx_runtime_follows_onnx_maxpool_maxunpool_cases(monkeypatch: pytest.MonkeyPatch) -> None:
    cases = _onnx_cases(monkeypatch)
    node, inputs, outputs = cases["test_maxunpool_export_without_output_shape"]
    np.testing.assert_array_equal(_run_node(node, inputs, 1)[0], outputs[0])
    node, inputs, outputs = cases["test_maxpool_with_argmax_2d_precomputed_strides"]
    for got, want in zip(_run_node(node, inputs, 2), outputs, strict=True):  # the case as written
        np.testing.assert_array_equal(got, want)
    node = helper.make_node("MaxPool", node.input, node.output, kernel_shape=[2, 2], strides=[2, 2])  # row-major
    y, idx = _run_node(node, inputs, 2)
    np.testing.assert_array_equal(y, outputs[0])
    # the case's expected indices are for storage_order=1 (column-major); row-major is its transpose
    np.testing.assert_array_equal(idx, [[[[6, 8], [16, 18]]]])
    assert node.op_type == "MaxPool" and outputs[1].tolist() == [[[[6, 16], [8, 18]]]]


def test_onnx_indices_are_flat_over_the_tensor_pytorch_per_plane() -> None:
    """Why the lowering keeps the indices inside ONNX: ONNX's are offset by (n*C + c)*H*W, PyTorch's are not.
    Our MaxPool -> MaxUnpool pair uses ONNX's layout end to end and matches max_unpool2d."""
    x = torch.randn(2, 3, 6, 8, generator=torch.Generator().manual_seed(0))
    y_t, idx_t = F.max_pool2d(x, 2, 2, return_indices=True)
    node = helper.make_node("MaxPool", ["x"], ["y", "i"], kernel_shape=[2, 2], strides=[2, 2])
    y_o, idx_o = _run_node(node, [x.numpy()], 2)
    plane = (np.arange(2 * 3).reshape(2, 3, 1, 1)) * 6 * 8
    np.testing.assert_array_equal(y_o, y_t.numpy())
    np.testing.assert_array_equal(idx_o, idx_t.numpy() + plane)
    unpool = helper.make_node("MaxUnpool", ["v", "i"], ["out"], kernel_shape=[2, 2], strides=[2, 2])
    v = torch.randn(2, 3, 3, 4, generator=torch.Generator().manual_seed(1))
    out = _run_node(unpool, [v.numpy(), idx_o], 1)[0]
    np.testing.assert_array_equal(out, F.max_unpool2d(v, idx_t, 2, 2, output_size=(6, 8)).numpy())
