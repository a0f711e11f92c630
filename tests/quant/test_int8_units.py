"""INT8 quantization on hand-built graphs: the scales and zero points each target writes, which nodes get Q/DQ,
the calibrated ranges, the cache key's inputs, and the refusals. Milliseconds per test (the mutation map's
tests for ``toolkit/quant/int8.py``); tests/quant/test_quant.py checks the same on the exported SegNet."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.quantization import CalibrationMethod

from tests.helpers import onnx_graphs
from tests.helpers import quant_graphs as tg
from toolkit.core.names import PLUGIN_OP_TYPE
from toolkit.core.onnx_file import op_counts
from toolkit.errors import ToolkitError, UnknownNameError
from toolkit.export.lowering import expand_plugin_nodes, mask_group_node_names, mask_groups
from toolkit.quant import ImageFeeds, quantize_int8
from toolkit.quant.int8 import _check_symmetric, _float_outputs, _method, calibrate, split_exclude

# float32 rounding of a scale computed as range / levels (ORT computes in float32): relative 1e-6
REL = 1e-6


def _float_activations(model: onnx.ModelProto, feeds: ImageFeeds, names: list[str]) -> dict[str, np.ndarray]:
    """The float model's intermediate tensors over every feed, stacked (what a min/max calibrator sees)."""
    import onnxruntime as ort

    m = onnx.ModelProto()
    m.CopyFrom(model)
    m.graph.output.extend(helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in names
                          if n not in {o.name for o in m.graph.output})
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    out_names = [o.name for o in sess.get_outputs()]
    runs = [dict(zip(out_names, sess.run(None, feeds.feed(i)), strict=True)) for i in range(len(feeds))]
    result = {n: np.stack([r[n] for r in runs]) for n in names if n in out_names}
    result["input"] = np.stack([feeds.feed(i)["input"] for i in range(len(feeds))])
    return result


def _scale(q: onnx.ModelProto, tensor: str) -> tuple[np.ndarray, np.ndarray]:
    """(scale, zero point) of the QuantizeLinear that reads ``tensor``."""
    (node,) = [n for n in q.graph.node if n.op_type == "QuantizeLinear" and n.input[0] == tensor]
    inits = tg.inits(q)
    return inits[node.input[1]], inits[node.input[2]]


def _weight_dq(q: onnx.ModelProto, weight: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(int8 values, scale, zero point) of the DequantizeLinear that restores ``weight``."""
    (node,) = [n for n in q.graph.node if n.op_type == "DequantizeLinear" and n.input[0] == f"{weight}_quantized"]
    inits = tg.inits(q)
    return inits[node.input[0]], inits[node.input[1]], inits[node.input[2]]


@pytest.fixture
def feeds(tmp_path: Path) -> ImageFeeds:
    return tg.feeds(tmp_path / "images")


# --- split_exclude and _method -----------------------------------------------------------------------------

def test_exclude_items_are_split_into_op_types_and_node_names() -> None:
    model = tg.two_conv()
    assert split_exclude(model, ["Relu", "conv2", "Conv"]) == (["Relu", "Conv"], ["conv2"])
    assert split_exclude(model, []) == ([], [])


def test_an_unknown_exclude_item_lists_op_types_then_names_without_mask_nodes() -> None:
    model = onnx_graphs.plugin()
    expand_plugin_nodes(model)
    ops = sorted({n.op_type for n in model.graph.node})
    with pytest.raises(UnknownNameError) as e:
        split_exclude(model, ["conv", "Conx"])
    # every op type (the mask group's too), then the names a user wrote: conv, pool, relu (not the group's)
    assert str(e.value) == ("--exclude 'Conx' is neither an op type nor a node name of this model: valid choices: "
                            f"{', '.join(ops)}, conv, pool, relu. Did you mean 'Conv'?")


def test_the_unknown_exclude_list_shows_at_most_40_names() -> None:
    nodes = [helper.make_node("Identity", ["input" if i == 0 else f"t{i - 1}"], [f"t{i}"], name=f"n{i:02d}")
             for i in range(44)]
    nodes.append(helper.make_node("Identity", ["t43"], ["logits"], name="n44"))
    model = onnx_graphs._model(nodes, [], ["N", 3, "H", "W"])
    with pytest.raises(UnknownNameError) as e:
        split_exclude(model, ["zzz"])
    names = [f"n{i:02d}" for i in range(45)]
    assert f"valid choices: Identity, {', '.join(names[:40])}." in str(e.value) and "n40" not in str(e.value)


def test_method_names_map_to_onnxruntimes_calibrators() -> None:
    assert _method("minmax") == CalibrationMethod.MinMax
    assert _method("entropy") == CalibrationMethod.Entropy
    assert _method("percentile") == CalibrationMethod.Percentile
    with pytest.raises(UnknownNameError, match=r"^unknown calibration method 'minmx': valid choices: minmax, "
                                               r"entropy, percentile\. Did you mean 'minmax'\?$"):
        _method("minmx")


# --- calibrate ---------------------------------------------------------------------------------------------

def _ranges(model: onnx.ModelProto, feeds: ImageFeeds, tmp_path: Path, method: str, symmetric: bool,
            **kw: object) -> dict[str, tuple[float, float]]:
    path = tmp_path / "float.onnx"
    onnx.save(model, str(path))
    data = calibrate(path, feeds, method, symmetric, **kw).data  # type: ignore[attr-defined]
    return {k: (float(np.ravel(v.range_value[0])[0]), float(np.ravel(v.range_value[1])[0])) for k, v in data.items()}


def test_minmax_ranges_are_the_float_models_extremes(feeds: ImageFeeds, tmp_path: Path) -> None:
    model = tg.two_conv()
    acts = _float_activations(model, feeds, ["c1", "r1", "logits"])
    plain = _ranges(model, feeds, tmp_path, "minmax", symmetric=False, chunk=2)
    sym = _ranges(model, feeds, tmp_path, "minmax", symmetric=True)
    for name, a in acts.items():
        assert plain[name] == pytest.approx((a.min(), a.max()), rel=REL)
        assert sym[name] == pytest.approx((-np.abs(a).max(), np.abs(a).max()), rel=REL)
    assert plain["input"] == (-2.0, 2.0) and plain["r1"][0] == 0.0  # the images' extremes; after the ReLU


def test_the_percentile_reaches_the_calibrator(feeds: ImageFeeds, tmp_path: Path) -> None:
    model = tg.two_conv()
    full = _ranges(model, feeds, tmp_path, "percentile", symmetric=True)
    half = _ranges(model, feeds, tmp_path, "percentile", symmetric=True, percentile=50.0)
    # 99.99 % of |input| keeps nearly the whole [-2, 2]; the median of |input| is ~1 (uniform pixels)
    assert 1.99 < full["input"][1] <= 2.0 and full["input"][0] == -full["input"][1]
    assert 0.9 < half["input"][1] < 1.1
    plain = _ranges(model, feeds, tmp_path, "percentile", symmetric=False, percentile=50.0)
    assert plain["input"][0] < -0.5 and plain["input"][0] != -plain["input"][1]  # its own low end


def test_calibration_reads_every_image_in_chunks(feeds: ImageFeeds, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    sizes: list[int] = []
    chunks = ImageFeeds.chunks

    def spy(self: ImageFeeds, n: int, on_image: object = None) -> object:
        sizes.append(n)
        return chunks(self, n, on_image)  # type: ignore[arg-type]

    monkeypatch.setattr(ImageFeeds, "chunks", spy)
    seen: list[int] = []
    _ranges(tg.two_conv(), feeds, tmp_path, "minmax", symmetric=True, chunk=2, on_image=lambda: seen.append(1))
    assert sizes == [2] and len(seen) == len(feeds) == 3
    quantize_int8(tg.two_conv(), feeds, method="minmax", cache_dir=tmp_path, chunk=1)
    assert sizes == [2, 1]


def test_the_calibrators_chatter_goes_to_the_debug_log_and_its_files_to_a_temp_folder(
        feeds: ImageFeeds, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture) -> None:
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    path = tmp_path / "float.onnx"
    onnx.save(tg.two_conv(), str(path))
    with caplog.at_level(logging.DEBUG, logger="toolkit.quant.int8"):
        calibrate(path, feeds, "percentile", True)
    assert capsys.readouterr().out == ""  # stdout may carry a command's JSON
    (record,) = caplog.records
    assert record.getMessage().startswith("calibrator: Collecting tensor data") and "Number of tensors : 4" in \
        record.getMessage()
    assert list(cwd.iterdir()) == []  # onnxruntime's augmented model is not left in the working folder


# --- _float_outputs and _check_symmetric -------------------------------------------------------------------

def _qdq_out(extra_reader: bool = False, src_is_input: bool = False, second_output: bool = False) -> onnx.ModelProto:
    """... -> QuantizeLinear -> DequantizeLinear -> graph output ``logits``."""
    s, zp = numpy_helper.from_array(np.array(0.1, np.float32), "s"), numpy_helper.from_array(np.int8(0), "zp")
    nodes = []
    src = "input"
    if not src_is_input:
        if second_output:  # the quantized tensor is the producer's second output
            nodes.append(helper.make_node("Split", ["input"], ["a", "c"], axis=1, num_outputs=2, name="split"))
        else:
            nodes.append(helper.make_node("Relu", ["input"], ["c"], name="relu"))
        src = "c"
    nodes += [helper.make_node("QuantizeLinear", [src, "s", "zp"], ["q"], name="q"),
              helper.make_node("DequantizeLinear", ["q", "s", "zp"], ["logits"], name="dq")]
    model = onnx_graphs._model(nodes, [s, zp], ["N", None, "H", "W"])
    if extra_reader:
        nodes_out = helper.make_node("Neg", [src], ["other"], name="neg")
        model.graph.node.append(nodes_out)
        model.graph.output.append(helper.make_tensor_value_info("other", TensorProto.FLOAT, None))
    if second_output:
        model.graph.output.append(helper.make_tensor_value_info("a", TensorProto.FLOAT, None))
    return model


def test_the_output_qdq_pair_is_dropped_and_its_producer_writes_the_output() -> None:
    model = _qdq_out()
    assert _float_outputs(model) == 1
    assert [(n.op_type, list(n.output)) for n in model.graph.node] == [("Relu", ["logits"])]
    split = _qdq_out(second_output=True)
    assert _float_outputs(split) == 1
    assert [list(n.output) for n in split.graph.node] == [["a", "logits"]]


def _two_outputs(first_removable: bool, blocker: str) -> onnx.ModelProto:
    """Two graph outputs behind Q/DQ pairs: ``first`` (removable or not, by ``blocker``), then ``logits``."""
    s, zp = numpy_helper.from_array(np.array(0.1, np.float32), "s"), numpy_helper.from_array(np.int8(0), "zp")
    nodes = [helper.make_node("Relu", ["input"], ["r"], name="relu"),
             helper.make_node("Neg", ["input"], ["n"], name="neg")]
    if first_removable:
        nodes.append(helper.make_node("QuantizeLinear", ["r", "s", "zp"], ["rq"], name="q1"))
    elif blocker == "no_quantize":  # the DQ reads a Cast, not a QuantizeLinear
        nodes.append(helper.make_node("Cast", ["r"], ["rq"], to=TensorProto.INT8, name="cast"))
    else:  # the quantized tensor has another reader
        nodes += [helper.make_node("QuantizeLinear", ["r", "s", "zp"], ["rq"], name="q1"),
                  helper.make_node("Abs", ["r"], ["other"], name="abs")]
    nodes += [helper.make_node("DequantizeLinear", ["rq", "s", "zp"], ["first"], name="dq1"),
              helper.make_node("QuantizeLinear", ["n", "s", "zp"], ["nq"], name="q2"),
              helper.make_node("DequantizeLinear", ["nq", "s", "zp"], ["logits"], name="dq2")]
    model = onnx_graphs._model(nodes, [s, zp], ["N", 3, "H", "W"])
    model.graph.output.insert(0, helper.make_tensor_value_info("first", TensorProto.FLOAT, None))
    if blocker == "reader" and not first_removable:
        model.graph.output.append(helper.make_tensor_value_info("other", TensorProto.FLOAT, None))
    return model


@pytest.mark.parametrize("blocker", ["no_quantize", "reader"])
def test_every_output_pair_is_dropped_past_one_that_cannot_be(blocker: str) -> None:
    both = _two_outputs(True, blocker)
    assert _float_outputs(both) == 2 and "QuantizeLinear" not in op_counts(both)
    later = _two_outputs(False, blocker)
    assert _float_outputs(later) == 1
    assert [n.name for n in later.graph.node if n.op_type == "DequantizeLinear"] == ["dq1"]
    assert next(n for n in later.graph.node if n.name == "neg").output[0] == "logits"


@pytest.mark.parametrize("case", ["extra_reader", "src_is_input"])
def test_an_output_qdq_pair_stays_where_it_cannot_be_dropped(case: str) -> None:
    model = _qdq_out(**{case: True})
    before = [n.op_type for n in model.graph.node]
    assert _float_outputs(model) == 0 and [n.op_type for n in model.graph.node] == before


def test_an_output_dequantize_without_its_quantize_stays() -> None:
    w = numpy_helper.from_array(np.ones((1, 3, 1, 1), np.int8), "wq")
    s, zp = numpy_helper.from_array(np.array(0.1, np.float32), "s"), numpy_helper.from_array(np.int8(0), "zp")
    nodes = [helper.make_node("Relu", ["input"], ["r"], name="relu"),
             helper.make_node("DequantizeLinear", ["r_codes", "s", "zp"], ["logits"], name="dq"),
             helper.make_node("Cast", ["r"], ["r_codes"], to=TensorProto.INT8, name="cast")]
    model = onnx_graphs._model(nodes, [w, s, zp], ["N", 3, "H", "W"])
    assert _float_outputs(model) == 0 and len(model.graph.node) == 3
    weight_only = onnx_graphs._model([helper.make_node("DequantizeLinear", ["wq", "s", "zp"], ["logits"], name="dq")],
                                     [w, s, zp], [1, 3, 1, 1])
    assert _float_outputs(weight_only) == 0 and len(weight_only.graph.node) == 1


def test_symmetric_check_refuses_a_nonzero_or_uint8_zero_point() -> None:
    _check_symmetric(onnx_graphs.qdq())  # int8 zeros: fine
    no_zp = onnx_graphs.qdq()
    for n in no_zp.graph.node:
        if n.op_type in ("QuantizeLinear", "DequantizeLinear"):
            del n.input[2]
    _check_symmetric(no_zp)  # no zero point: 0 by the ONNX default
    with pytest.raises(ToolkitError) as e:
        _check_symmetric(onnx_graphs.qdq(np.array([0, 0, 0, 0, 3], np.int8)))
    assert str(e.value) == ("node 'q_in': zero point [0 0 0 0] (int8); TensorRT needs symmetric int8 "
                            "(internal error: please report)")
    with pytest.raises(ToolkitError, match=r"^node 'q_in': zero point \[0\] \(uint8\)"):
        _check_symmetric(onnx_graphs.qdq(np.zeros(1, np.uint8)))
    dq_only = onnx_graphs.qdq()  # the DequantizeLinear's zero point alone is off
    dq_only.graph.initializer.append(numpy_helper.from_array(np.int8(2), "zp_dq"))
    dq_only.graph.node[1].input[2] = "zp_dq"
    with pytest.raises(ToolkitError, match=r"^node 'dq_in': zero point \[2\] \(int8\)"):
        _check_symmetric(dq_only)


# --- quantize_int8: what each target writes ----------------------------------------------------------------

def test_tensorrt_target_scales_and_zero_points(feeds: ImageFeeds, tmp_path: Path) -> None:
    model = tg.two_conv(meta={"toolkit.arch": "tiny"})
    acts = _float_activations(model, feeds, ["r1"])
    q, rep = quantize_int8(model, feeds, method="minmax", cache_dir=tmp_path)
    w = tg.inits(model)
    # symmetric int8: scale = max |x| / 127, every zero point an int8 0
    s, zp = _scale(q, "input")
    assert float(s) == pytest.approx(2 / 127, rel=REL) and zp.dtype == np.int8 and zp == 0
    s, zp = _scale(q, "r1")
    assert float(s) == pytest.approx(acts["r1"].max() / 127, rel=REL) and zp.dtype == np.int8 and zp == 0
    for name in ("w1", "w2"):  # per-channel weights: one scale per output channel, 8 bits
        codes, scale, zp = _weight_dq(q, name)
        assert scale == pytest.approx(np.abs(w[name]).reshape(len(w[name]), -1).max(1) / 127, rel=REL)
        assert zp.dtype == np.int8 and not zp.any() and np.abs(codes).max() == 127
    # one Q/DQ per activation, after the ReLU: none on the Conv's signed output, none on the logits
    assert sorted(n.input[0] for n in q.graph.node if n.op_type == "QuantizeLinear") == ["input", "r1"]
    assert [n.op_type for n in q.graph.node if "logits" in n.output] == ["Conv"]
    # biases stay float (TensorRT folds them itself)
    convs = [n for n in q.graph.node if n.op_type == "Conv"]
    assert [n.input[2] for n in convs] == ["b1", "b2"] and tg.inits(q)["b1"].dtype == np.float32
    # the source's metadata, once (onnxruntime adds its own onnx.* keys)
    assert [(p.key, p.value) for p in q.metadata_props if p.key.startswith("toolkit.")] == [("toolkit.arch", "tiny")]
    assert (rep.target, rep.method, rep.images, rep.cache_hit, rep.excluded_nodes, rep.quantized_nodes) == \
        ("tensorrt", "minmax", 3, False, [], 2)
    assert Path(rep.cache_file).parent == tmp_path and Path(rep.cache_file).is_file()
    assert len(Path(rep.cache_file).name) == len("calib-.json") + 32


def test_cpu_target_writes_uint8_activations_and_7_bit_weights(feeds: ImageFeeds, tmp_path: Path) -> None:
    model = tg.two_conv()
    acts = _float_activations(model, feeds, ["r1"])
    q, rep = quantize_int8(model, feeds, target="cpu", method="minmax", cache_dir=tmp_path)
    w = tg.inits(model)
    # asymmetric uint8: scale = (max - min) / 255, zero point = round(-min / scale); [-2, 2] -> 128
    s, zp = _scale(q, "input")
    assert float(s) == pytest.approx(4 / 255, rel=REL) and zp.dtype == np.uint8 and zp == 128
    s, zp = _scale(q, "r1")
    assert float(s) == pytest.approx(acts["r1"].max() / 255, rel=REL) and zp.dtype == np.uint8 and zp == 0
    # reduce_range on by default for cpu: 7-bit weights, codes in [-64, 64], scale = max |w| / 64
    codes, scale, zp = _weight_dq(q, "w1")
    assert scale == pytest.approx(np.abs(w["w1"]).reshape(4, -1).max(1) / 64, rel=REL) and np.abs(codes).max() == 64
    # int32 biases, which ONNX Runtime fuses into QLinearConv
    biases = [n for n in q.graph.node if n.op_type == "DequantizeLinear" and n.output[0] in ("b1", "b2")]
    assert len(biases) == 2 and all(tg.inits(q)[n.input[0]].dtype == np.int32 for n in biases)
    assert rep.target == "cpu"
    full, _ = quantize_int8(model, feeds, target="cpu", method="minmax", cache_dir=tmp_path, reduce_range=False)
    assert _weight_dq(full, "w1")[1] == pytest.approx(np.abs(w["w1"]).reshape(4, -1).max(1) / 127, rel=REL)
    reduced, _ = quantize_int8(model, feeds, method="minmax", cache_dir=tmp_path, reduce_range=True)
    assert np.abs(_weight_dq(reduced, "w1")[0]).max() == 64


def test_per_tensor_weights_have_one_scale(feeds: ImageFeeds, tmp_path: Path) -> None:
    model = tg.two_conv()
    q, _ = quantize_int8(model, feeds, method="minmax", cache_dir=tmp_path, per_channel=False)
    _, scale, _ = _weight_dq(q, "w1")
    assert scale.shape == () and float(scale) == pytest.approx(np.abs(tg.inits(model)["w1"]).max() / 127, rel=REL)


def test_the_quantized_model_stays_close_to_the_float_one(feeds: ImageFeeds, tmp_path: Path) -> None:
    import onnxruntime as ort

    model = tg.two_conv()
    x = feeds.feed(1)
    ref = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, x)[0]
    for target in ("tensorrt", "cpu"):
        q, _ = quantize_int8(model, feeds, target=target, method="minmax", cache_dir=tmp_path)
        got = ort.InferenceSession(q.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, x)[0]
        # two 8-bit roundings (input, r1) and 7/8-bit weights: ~1 % of the logit range; a wrong scale is off by x2
        assert np.abs(got - ref).max() < 0.05 * np.abs(ref).max(), target


def test_excluded_nodes_keep_float_weights(feeds: ImageFeeds, tmp_path: Path) -> None:
    model = tg.two_conv()
    q, rep = quantize_int8(model, feeds, method="minmax", cache_dir=tmp_path, exclude=["conv2"])
    assert rep.excluded_nodes == ["conv2"]
    assert "w2" in tg.inits(q) and not [n for n in q.graph.node if n.input and n.input[0] == "w2_quantized"]
    assert _weight_dq(q, "w1")[0].dtype == np.int8
    q, rep = quantize_int8(model, feeds, method="minmax", cache_dir=tmp_path, exclude=["Conv"])
    assert rep.excluded_nodes == ["conv1", "conv2"] and rep.quantized_nodes == 0
    assert "QuantizeLinear" not in op_counts(q)


@pytest.mark.parametrize("target", ["tensorrt", "cpu"])
def test_plugin_nodes_come_back_and_their_groups_are_not_quantized(feeds: ImageFeeds, tmp_path: Path,
                                                                   target: str) -> None:
    q, rep = quantize_int8(onnx_graphs.plugin(), feeds, target=target, method="minmax", cache_dir=tmp_path)
    expanded = onnx_graphs.plugin()
    expand_plugin_nodes(expanded)
    assert rep.excluded_nodes == mask_group_node_names(expanded) and rep.excluded_nodes
    assert op_counts(q)[f"trt.plugins::{PLUGIN_OP_TYPE}"] == 1 and not mask_groups(q)
    assert rep.quantized_nodes == op_counts(q)["QuantizeLinear"] > 0


@pytest.mark.parametrize(("target", "x_from", "window_max"), [("tensorrt", "Relu", "MaxPool"),
                                                              ("cpu", "QuantizeLinear", "Reshape")])
def test_an_expanded_mask_graph_unpools_on_codes_only_for_cpu(feeds: ImageFeeds, tmp_path: Path, target: str,
                                                              x_from: str, window_max: str,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    model = onnx_graphs.plugin()
    expand_plugin_nodes(model)
    with caplog.at_level(logging.DEBUG, logger="toolkit.quant.int8"):
        q, _ = quantize_int8(model, feeds, target=target, method="minmax", cache_dir=tmp_path)
    codes = [r.getMessage() for r in caplog.records if r.getMessage().startswith("unpooling on")]
    assert codes == (["unpooling on uint8 codes in 1 mask groups"] if target == "cpu" else [])
    producers = {o: n for n in q.graph.node for o in n.output}
    (group,) = mask_groups(q).values()
    roles = {n.name.split("/mask/", 1)[1]: n for n in group}
    assert producers[roles["x_planes"].input[0]].op_type == x_from and roles["max"].op_type == window_max


# --- the calibration cache ---------------------------------------------------------------------------------

def test_the_cache_is_reused_and_keyed_on_what_the_ranges_depend_on(feeds: ImageFeeds, tmp_path: Path) -> None:
    model = tg.two_conv()
    seen: list[int] = []
    _, first = quantize_int8(model, feeds, cache_dir=tmp_path, on_image=lambda: seen.append(1))
    assert not first.cache_hit and len(seen) == 3
    _, again = quantize_int8(model, feeds, cache_dir=tmp_path, on_image=lambda: seen.append(1))
    assert again.cache_hit and again.cache_file == first.cache_file and len(seen) == 3
    _, forced = quantize_int8(model, feeds, cache_dir=tmp_path, use_cache=False, on_image=lambda: seen.append(1))
    assert not forced.cache_hit and forced.cache_file == first.cache_file and len(seen) == 6

    def key(m: onnx.ModelProto = model, f: ImageFeeds = feeds, **kw: object) -> str:
        return quantize_int8(m, f, cache_dir=tmp_path, **kw)[1].cache_file  # type: ignore[arg-type]

    # metadata is not part of the ranges: a re-tagged model hits the same cache
    assert key(tg.two_conv(meta={"toolkit.arch": "other"})) == first.cache_file
    assert key(percentile=99.0) != first.cache_file  # the percentile, for the percentile method
    assert key(method="minmax") == key(method="minmax", percentile=99.0)  # ... and only for it
    assert key(method="minmax") != first.cache_file and key(target="cpu") != first.cache_file
    sized = ImageFeeds(feeds.paths, feeds.mean, feeds.std, (8, 8))
    assert key(f=sized) != first.cache_file
    assert key(tg.two_conv(seed=1)) != first.cache_file
    other = ImageFeeds(tg.images(tmp_path / "other", 3, seed=1), feeds.mean, feeds.std, None)
    assert key(f=other) != first.cache_file  # the same count of other images


def test_the_log_says_whether_it_calibrated(feeds: ImageFeeds, tmp_path: Path,
                                            caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="toolkit.quant.int8"):
        _, rep = quantize_int8(tg.two_conv(), feeds, method="minmax", cache_dir=tmp_path)
        quantize_int8(tg.two_conv(), feeds, method="minmax", cache_dir=tmp_path)
    assert [r.getMessage() for r in caplog.records if r.name == "toolkit.quant.int8"] == \
        ["calibrating on 3 images (minmax)", f"calibration cache hit: {rep.cache_file}"]


def test_tensorrt_scales_come_from_symmetric_percentiles(feeds: ImageFeeds, tmp_path: Path) -> None:
    """|x|'s percentile, not the larger of two one-sided percentiles: they differ on skewed tensors."""
    model = tg.two_conv()
    q, _ = quantize_int8(model, feeds, cache_dir=tmp_path, percentile=90.0)
    sym = _ranges(model, feeds, tmp_path, "percentile", symmetric=True, percentile=90.0)
    one_sided = _ranges(model, feeds, tmp_path, "percentile", symmetric=False, percentile=90.0)
    for name in ("input", "r1"):
        assert float(_scale(q, name)[0]) == pytest.approx(sym[name][1] / 127, rel=REL)
        assert max(map(abs, one_sided[name])) != pytest.approx(sym[name][1], rel=1e-3)


def test_the_default_cache_folder_is_under_toolkit_cache(feeds: ImageFeeds, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOOLKIT_CACHE", str(tmp_path / "cache"))
    _, rep = quantize_int8(tg.two_conv(), feeds, method="minmax")
    assert Path(rep.cache_file).parent == tmp_path / "cache" / "calibration" and Path(rep.cache_file).is_file()


@pytest.mark.parametrize(("text", "cause"), [("{}", "'calibration_method'"),
                                             ("not json", "Expecting value: line 1 column 1 (char 0)")])
def test_a_broken_cache_file_is_named_in_the_error(feeds: ImageFeeds, tmp_path: Path, text: str, cause: str) -> None:
    _, rep = quantize_int8(tg.two_conv(), feeds, method="minmax", cache_dir=tmp_path)
    Path(rep.cache_file).write_text(text)
    with pytest.raises(ToolkitError, match=r"^quantization failed: [^\n]+; delete (\S+) and retry$") as e:
        quantize_int8(tg.two_conv(), feeds, method="minmax", cache_dir=tmp_path)
    assert str(e.value) == f"quantization failed: {cause}; delete {rep.cache_file} and retry"


def test_refusals(feeds: ImageFeeds, tmp_path: Path) -> None:
    model = tg.two_conv()
    with pytest.raises(UnknownNameError,
                       match=r"^unknown target 'gpu': valid choices: tensorrt, cpu\. Did you mean 'cpu'\?$"):
        quantize_int8(model, feeds, target="gpu", cache_dir=tmp_path)
    with pytest.raises(UnknownNameError, match="unknown calibration method 'max'"):
        quantize_int8(model, feeds, method="max", cache_dir=tmp_path)
    assert not list(tmp_path.glob("calib-*"))  # refused before calibrating
    with pytest.raises(ToolkitError, match=r"^model is already quantized \(it has Q/DQ nodes\); quantize its fl"):
        quantize_int8(onnx_graphs.qdq(), feeds, cache_dir=tmp_path)
    dq_only = onnx_graphs.qdq()
    del dq_only.graph.node[0]
    dq_only.graph.node[0].input[0] = "input"
    with pytest.raises(ToolkitError, match="already quantized"):
        quantize_int8(dq_only, feeds, cache_dir=tmp_path)
    q_only = onnx_graphs.qdq()
    q_only.graph.node[1].op_type = "Cast"  # QuantizeLinear -> Cast: a Q without its DQ
    del q_only.graph.node[1].input[1:]
    with pytest.raises(ToolkitError, match="already quantized"):
        quantize_int8(q_only, feeds, cache_dir=tmp_path)
    with pytest.raises(ToolkitError, match=r"^model is fp16; int8 quantization needs the fp32 model$"):
        quantize_int8(onnx_graphs.fp16(), feeds, cache_dir=tmp_path)
    assert not list(tmp_path.glob("calib-*"))
