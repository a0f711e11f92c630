"""``toolkit.compare.layers`` on graphs of five nodes written with onnx.helper, whose every tensor numpy computes
by hand (1x1 convolutions, ReLU, 2x2 max pool, nearest 2x upsampling): each layer's relative error, SNR and
boundary/interior split checked against that, the jump rule at both of its bounds, Q/DQ and dropped tensors.
Milliseconds per test, so the mutation map can use them (test_layers.py exports the real SegNet, ~10 s).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from toolkit.compare.drift import boundary_band
from toolkit.compare.layers import (
    FLOOR,
    JUMP,
    RULE,
    _band_at,
    _compared,
    _rel,
    _session,
    _with_outputs,
    compare_layers,
    dequantized_names,
    layer_feeds,
    layers_for_candidates,
    module_names,
)
from toolkit.core.meta import ModelMeta
from toolkit.core.metadata import meta_props, write_props
from toolkit.core.names import INPUT_NAME
from toolkit.core.onnx_file import save_onnx
from toolkit.data import CamVid, synthetic_info, write_synthetic_camvid
from toolkit.errors import ToolkitError
from toolkit.evaluate import preprocess

K = synthetic_info().num_classes
HW = (16, 24)
SCALE = 0.05  # the Q/DQ step: a visible quantization error on ReLU outputs of order 1
COMPARED = ["enc.a", "relu", "pool", "head", "up", "mean"]  # graph order; "shape" (a Shape op) is not compared
# relative errors agree with the float64 hand computation to float32 rounding (~1e-7 per sum of 3 or 4 terms)
REL = 1e-4

rng = np.random.default_rng(0)
W1 = rng.standard_normal((4, 3)).astype(np.float32)
W2 = rng.standard_normal((K, 4)).astype(np.float32)
NOISE = rng.standard_normal((4, 3)).astype(np.float32)


def graph(w1: np.ndarray, w2: np.ndarray, qdq: bool = False, pool: int = 2, int_a: bool = False) -> onnx.ModelProto:
    """input -> Conv enc.a -> Relu -> [Q/DQ] -> MaxPool -> Conv head -> Resize up (logits) -> ReduceMean (mean);
    plus a Shape node off the input. ``int_a``: the tensor ``a`` is int32 (cast there and back)."""
    a = "a_f" if int_a else "a"
    nodes = [helper.make_node("Conv", [INPUT_NAME, "enc.a.weight"], [a], name="enc.a")]
    if int_a:
        nodes += [helper.make_node("Cast", ["a_f"], ["a"], to=TensorProto.INT32, name="to_int"),
                  helper.make_node("Cast", ["a"], ["a_back"], to=TensorProto.FLOAT, name="to_float")]
    nodes.append(helper.make_node("Relu", ["a_back" if int_a else "a"], ["r"], name="relu"))
    src = "r"
    inits = [numpy_helper.from_array(w1[:, :, None, None], "enc.a.weight"),
             numpy_helper.from_array(w2[:, :, None, None], "head.weight"),
             numpy_helper.from_array(np.array([1, 1, pool, pool], np.float32), "scales"),
             numpy_helper.from_array(np.array([2, 3], np.int64), "axes")]
    if qdq:
        inits += [numpy_helper.from_array(np.array(SCALE, np.float32), "s"),
                  numpy_helper.from_array(np.array(0, np.uint8), "zp")]
        nodes += [helper.make_node("QuantizeLinear", ["r", "s", "zp"], ["r_q"], name="q"),
                  helper.make_node("DequantizeLinear", ["r_q", "s", "zp"], ["r_dq"], name="dq")]
        src = "r_dq"
    nodes += [helper.make_node("MaxPool", [src], ["p"], kernel_shape=[pool, pool], strides=[pool, pool], name="pool"),
              helper.make_node("Conv", ["p", "head.weight"], ["h"], name="head"),
              helper.make_node("Resize", ["h", "", "scales"], ["logits"], mode="nearest", name="up"),
              helper.make_node("ReduceMean", ["logits", "axes"], ["mean"], keepdims=0, name="mean"),
              helper.make_node("Shape", [INPUT_NAME], ["shape_out"], name="shape")]
    x = helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["N", 3, "H", "W"])
    g = helper.make_graph(nodes, "g", [x],
                          [helper.make_tensor_value_info("logits", TensorProto.FLOAT, None),
                           helper.make_tensor_value_info("mean", TensorProto.FLOAT, None)], initializer=inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])


def forward(w1: np.ndarray, w2: np.ndarray, x: np.ndarray, qdq: bool = False) -> dict[str, np.ndarray]:
    """Every compared tensor of ``graph``, in float64."""
    x = x.astype(np.float64)
    a = np.einsum("oc,nchw->nohw", w1.astype(np.float64), x)
    r = np.maximum(a, 0)
    r_seen = np.clip(np.rint(r.astype(np.float32) / np.float32(SCALE)), 0, 255) * SCALE if qdq else r
    n, c, h, w = r_seen.shape
    p = r_seen.reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))
    hd = np.einsum("oc,nchw->nohw", w2.astype(np.float64), p)
    up = hd.repeat(2, axis=2).repeat(2, axis=3)
    return {"a": a, "r": r_seen, "p": p, "h": hd, "logits": up, "mean": up.mean(axis=(2, 3))}


def feeds(n: int = 2) -> list[dict[str, np.ndarray]]:
    g = np.random.default_rng(1)
    return [{INPUT_NAME: g.standard_normal((1, 3, *HW)).astype(np.float32)} for _ in range(n)]


def expected(cand_w1: np.ndarray, cand_w2: np.ndarray, fs: list[dict[str, np.ndarray]], band_px: int,
             qdq: bool = False) -> dict[str, dict]:
    """Per tensor: rel error, SNR, boundary and interior rel error over all frames (band: the reference's
    class map's, resized nearest to the layer)."""
    sums: dict[str, np.ndarray] = {}
    for f in fs:
        ref, cand = forward(W1, W2, f[INPUT_NAME]), forward(cand_w1, cand_w2, f[INPUT_NAME], qdq)
        band = boundary_band(ref["logits"][0].argmax(0), band_px)
        for t, r in ref.items():
            e = cand[t] - r
            s = sums.setdefault(t, np.zeros(6))
            s[:2] += (r ** 2).sum(), (e ** 2).sum()
            if r.ndim == 4:
                ys = np.round(np.linspace(0, band.shape[0] - 1, r.shape[2])).astype(int)
                xs = np.round(np.linspace(0, band.shape[1] - 1, r.shape[3])).astype(int)
                b = band[ys][:, xs][None, None]
                s[2:] += (r ** 2 * b).sum(), (e ** 2 * b).sum(), (r ** 2 * ~b).sum(), (e ** 2 * ~b).sum()
    return {t: {"rel_error": math.sqrt(s[1] / s[0]),
                "snr_db": None if s[1] == 0 else 10 * math.log10(s[0] / s[1]),
                "rel_error_boundary": math.sqrt(s[3] / s[2]) if s[2] else None,
                "rel_error_interior": math.sqrt(s[5] / s[4]) if s[4] else None} for t, s in sums.items()}


def approx(v: float | None) -> object:
    return None if v is None else pytest.approx(v, rel=REL, abs=1e-9)


def check_rows(res: dict, want: dict[str, dict]) -> None:
    for row in res["layers"]:
        w = want[row["tensor"]]
        assert {k: row[k] for k in w} == {k: approx(v) for k, v in w.items()}, row["node"]


# ---- compare_layers --------------------------------------------------------------------------------------

def test_an_exact_copy_has_no_error_anywhere() -> None:
    res = compare_layers(graph(W1, W2), graph(W1, W2), feeds(3), band_px=2)
    assert res["frames"] == 3 and res["rule"] == RULE
    assert [r["node"] for r in res["layers"]] == COMPARED
    assert [r["op"] for r in res["layers"]] == ["Conv", "Relu", "MaxPool", "Conv", "Resize", "ReduceMean"]
    assert [r["module"] for r in res["layers"]] == ["enc.a", "after enc.a", "after enc.a", "head", "after head",
                                                    "after head"]
    n, h, w = 1, *HW
    assert [r["shape"] for r in res["layers"]] == [[n, 4, h, w], [n, 4, h, w], [n, 4, h // 2, w // 2],
                                                   [n, K, h // 2, w // 2], [n, K, h, w], [n, K]]
    for r in res["layers"]:
        assert (r["rel_error"], r["snr_db"], r["input_rel_error"], r["amplification"], r["jump"]) == \
               (0.0, None, 0.0, None, False)
        assert (r["rel_error_boundary"] is None) == (r["rel_error_interior"] is None) == (r["op"] == "ReduceMean")
    assert res["first_divergence"] is None and res["largest_jump"] is None


def test_each_layers_error_is_the_hand_computed_one() -> None:
    """A small change in enc.a (the first divergence) grown by a large one in head (the largest jump)."""
    w1, w2 = W1 + 0.01 * NOISE, W2 * 1.5
    fs = feeds()
    res = compare_layers(graph(W1, W2), graph(w1, w2), fs, band_px=2)
    want = expected(w1, w2, fs, band_px=2)
    check_rows(res, want)
    rows = {r["node"]: r for r in res["layers"]}
    band, interior = rows["enc.a"]["rel_error_boundary"], rows["enc.a"]["rel_error_interior"]
    assert band != pytest.approx(interior, rel=0.01)  # the split is informative here, not a copy of the total
    # input errors: the largest reaching each node (0 from the graph input and weights)
    assert [rows[n]["input_rel_error"] for n in COMPARED] == [0.0, *(approx(want[t]["rel_error"])
                                                                    for t in ("a", "r", "p", "h", "logits"))]
    assert rows["head"]["amplification"] == approx(want["h"]["rel_error"] / want["p"]["rel_error"])
    assert [rows[n]["jump"] for n in COMPARED] == [True, False, False, True, False, False]
    first, largest = res["first_divergence"], res["largest_jump"]
    assert set(first) == {"node", "module", "op", "rel_error", "snr_db", "input_rel_error", "amplification"}
    assert first == {k: rows["enc.a"][k] for k in first} and first["amplification"] is None
    assert largest == {k: rows["head"][k] for k in largest}


def test_the_default_band_is_three_pixels() -> None:
    w1, fs = W1 + 0.01 * NOISE, feeds()
    check_rows(compare_layers(graph(W1, W2), graph(w1, W2), fs), expected(w1, W2, fs, band_px=3))


def test_the_first_jump_without_an_amplification_is_also_the_largest() -> None:
    """Only head changes: its error comes from nothing (no amplification), what follows only carries it."""
    w2, fs = W2 * 1.2, feeds()
    res = compare_layers(graph(W1, W2), graph(W1, w2), fs, band_px=1)
    check_rows(res, expected(W1, w2, fs, band_px=1))
    rows = {r["node"]: r for r in res["layers"]}
    assert [rows[n]["jump"] for n in COMPARED] == [False, False, False, True, False, False]
    assert rows["up"]["amplification"] == pytest.approx(1.0, rel=REL)  # nearest upsampling: the same error
    assert res["first_divergence"]["node"] == res["largest_jump"]["node"] == "head"


@pytest.mark.parametrize("factor", [JUMP * 1.01, JUMP * 0.99])
def test_a_jump_is_at_least_jump_times_its_input_error(factor: float) -> None:
    """enc.a's error e, then head's weights scaled by the s that makes head's error ``factor`` x e (JUMP's
    two sides): ||s hc - hr||^2 = s^2 |hc|^2 - 2 s <hc, hr> + |hr|^2 = (factor e)^2 |hr|^2, solved for s."""
    w1, fs = W1 + 0.01 * NOISE, feeds()
    outs = [(forward(w1, W2, f[INPUT_NAME]), forward(W1, W2, f[INPUT_NAME])) for f in fs]
    e_in = math.sqrt(sum(((c["p"] - r["p"]) ** 2).sum() for c, r in outs) / sum((r["p"] ** 2).sum() for _, r in outs))
    a = sum((c["h"] ** 2).sum() for c, _ in outs)
    b = sum((c["h"] * r["h"]).sum() for c, r in outs)
    c2 = sum((r["h"] ** 2).sum() for _, r in outs)
    t = factor * e_in
    s = (b + math.sqrt(b * b - a * c2 * (1 - t * t))) / a
    res = compare_layers(graph(W1, W2), graph(w1, (W2 * s).astype(np.float32)), fs, band_px=1)
    row = {r["node"]: r for r in res["layers"]}["head"]
    assert e_in >= FLOOR and row["input_rel_error"] == pytest.approx(e_in, rel=REL)
    assert row["rel_error"] == pytest.approx(t, rel=REL) and row["jump"] is (factor >= JUMP)
    assert row["amplification"] == pytest.approx(factor, rel=REL)


def test_the_floor_keeps_float_noise_out() -> None:
    """Errors under FLOOR are no divergence, however large their ratio to the input's (0 here)."""
    for eps, jump in ((FLOOR * 0.9, False), (FLOOR * 1.1, True)):
        res = compare_layers(graph(W1, W2), graph(W1, W2 * (1 + eps)), feeds(), band_px=1)
        row = {r["node"]: r for r in res["layers"]}["head"]
        assert row["rel_error"] == pytest.approx(eps, rel=1e-3) and row["jump"] is jump


def test_a_quantized_tensor_is_compared_where_the_graph_reads_it() -> None:
    """The Q/DQ candidate's ReLU output goes on as its DequantizeLinear output: that is what is compared."""
    cand, fs = graph(W1, W2, qdq=True), feeds()
    assert dequantized_names(cand) == {"r": "r_dq"}
    res = compare_layers(graph(W1, W2), cand, fs, band_px=2)
    assert [r["node"] for r in res["layers"]] == COMPARED  # q and dq are the candidate's own: not rows
    check_rows(res, expected(W1, W2, fs, band_px=2, qdq=True))
    fd = res["first_divergence"]
    assert (fd["node"], fd["module"], fd["op"]) == ("relu", "after enc.a", "Relu") and fd["rel_error"] > FLOOR


def test_tensors_of_another_shape_or_type_are_left_out() -> None:
    """No rows for ``a`` (int32 in the candidate) nor pool and head (no pooling there: other shapes); the error
    reaching up through them is relu's, the last compared tensor upstream."""
    res = compare_layers(graph(W1, W2), graph(W1, W2, pool=1, int_a=True), feeds(), band_px=1)
    rows = {r["node"]: r for r in res["layers"]}
    assert list(rows) == ["relu", "up", "mean"]
    assert rows["up"]["input_rel_error"] == rows["relu"]["rel_error"] > 0
    assert rows["relu"]["input_rel_error"] == 0.0  # a (not compared) reaches back to the input and weights


def test_no_frames_no_error() -> None:
    res = compare_layers(graph(W1, W2), graph(W1, W2 * 1.2), [], band_px=1)
    assert res["frames"] == 0 and [r["node"] for r in res["layers"]] == COMPARED
    assert all(r["shape"] == [] and r["rel_error"] == 0.0 and not r["jump"] for r in res["layers"])
    assert res["first_divergence"] is None


def test_small_tensors_keep_their_snr() -> None:
    """Frames of tiny values (sum r^2 well below 1): the SNR is the ratio, whatever the scale."""
    w1, w2 = W1 + 0.01 * NOISE, W2 * 1.5
    fs = [{INPUT_NAME: (f[INPUT_NAME] * 1e-3).astype(np.float32)} for f in feeds()]
    check_rows(compare_layers(graph(W1, W2), graph(w1, w2), fs, band_px=1), expected(w1, w2, fs, band_px=1))


def test_a_tensor_left_out_on_one_frame_stays_out_and_the_rest_still_count() -> None:
    """The candidate resizes the pooled tensor to 8 x 12 (its size for a 16 x 24 frame): a 32 x 48 frame
    first leaves pool, head and up out (other shapes), the 16 x 24 frame after it matches them again but they
    stay out; mean, after them in graph order, still counts the second frame (no error there)."""
    cand = graph(W1, W2)
    nodes = list(cand.graph.node)
    pool = next(i for i, n in enumerate(nodes) if n.name == "pool")
    nodes[pool].output[0] = "p0"
    sizes = numpy_helper.from_array(np.array([1, 4, HW[0] // 2, HW[1] // 2], np.int64), "sizes")
    nodes.insert(pool + 1, helper.make_node("Resize", ["p0", "", "", "sizes"], ["p"], mode="nearest", name="fit"))
    del cand.graph.node[:]
    cand.graph.node.extend(nodes)
    cand.graph.initializer.append(sizes)
    big = {INPUT_NAME: np.random.default_rng(2).standard_normal((1, 3, 2 * HW[0], 2 * HW[1])).astype(np.float32)}
    small = feeds(1)[0]
    both = {r["node"]: r for r in compare_layers(graph(W1, W2), cand, [big, small], band_px=1)["layers"]}
    first = {r["node"]: r for r in compare_layers(graph(W1, W2), cand, [big], band_px=1)["layers"]}
    assert list(both) == list(first) == ["enc.a", "relu", "mean"]
    assert 0 < both["mean"]["rel_error"] < first["mean"]["rel_error"]


def _rows(*tensors: str, rel: float = 0.0) -> list[dict]:
    return [{"tensor": t, "rel_error": rel} for t in tensors]


def test_the_error_reaching_a_node_through_uncompared_ones() -> None:
    """_mark_jumps on a graph given by hand: Constants and weights bring no error, a node without output or
    input is skipped or reads 0, an error that vanishes has no amplification, and both bounds of RULE hold."""
    nodes = [helper.make_node("Conv", ["x", "w"], ["a"], name="conv"),
             helper.make_node("Constant", [], ["k"], name="k", value_float=1.0),
             helper.make_node("Add", ["a", "k"], ["b"], name="add"),
             helper.make_node("Relu", ["b"], ["c"], name="relu"),
             helper.make_node("Mul", ["b", "k"], ["d"], name="mul"),
             helper.make_node("RandomNormal", [], ["n"], name="noise", shape=[1]),
             helper.make_node("Identity", ["c"], [], name="sink")]
    model = helper.make_model(helper.make_graph(nodes, "g", [], []))
    rows = [{"tensor": "a", "rel_error": 0.25}, {"tensor": "c", "rel_error": 1.0},
            {"tensor": "d", "rel_error": 0.0}, {"tensor": "n", "rel_error": FLOOR}]
    _mark_jumps_of(model, rows)
    a, c, d, n = rows
    assert (a["input_rel_error"], a["amplification"], a["jump"]) == (0.0, None, True)
    # c reads b (not compared), which reads a and the Constant: a's error; exactly JUMP x it is a jump
    assert (c["input_rel_error"], c["amplification"], c["jump"]) == (0.25, 4.0, True)
    assert (d["input_rel_error"], d["amplification"], d["jump"]) == (0.25, None, False)
    # no inputs: nothing reaches it; exactly FLOOR is a jump
    assert (n["input_rel_error"], n["amplification"], n["jump"]) == (0.0, None, True)


def _mark_jumps_of(model: onnx.ModelProto, rows: list[dict]) -> None:
    from toolkit.compare.layers import _mark_jumps

    _mark_jumps(model, rows, {r["tensor"]: r["rel_error"] for r in rows})


@pytest.mark.parametrize(("length", "reached"), [(201, True), (202, False)])
def test_the_walk_back_through_uncompared_nodes_is_bounded(length: int, reached: bool) -> None:
    """a -> Cast x length -> relu: the error reaching relu is a's through at most 200 uncompared producers
    (a recursion bound; past it nothing is said to reach it)."""
    casts = [helper.make_node("Cast", [f"t{i - 1}" if i > 1 else "a"], [f"t{i}"], to=TensorProto.FLOAT,
                              name=f"cast{i}") for i in range(1, length + 1)]
    nodes = [helper.make_node("Conv", ["x", "w"], ["a"], name="conv"), *casts,
             helper.make_node("Relu", [f"t{length}"], ["r"], name="relu")]
    rows = [{"tensor": "a", "rel_error": 0.5}, {"tensor": "r", "rel_error": 0.5}]
    _mark_jumps_of(helper.make_model(helper.make_graph(nodes, "g", [], [])), rows)
    assert rows[1]["input_rel_error"] == (0.5 if reached else 0.0)


def test_the_largest_jump_is_the_most_amplified_one() -> None:
    """enc.a's change below FLOOR, the Q/DQ ReLU's and head's above it, each many times its input's."""
    w1, w2, fs = W1 + 2e-4 * NOISE, W2 * 3.0, feeds()
    res = compare_layers(graph(W1, W2), graph(w1, w2, qdq=True), fs, band_px=1)
    jumps = [r for r in res["layers"] if r["jump"]]
    assert [r["node"] for r in jumps] == ["relu", "head"] and all(r["amplification"] for r in jumps)
    best = max(jumps, key=lambda r: r["amplification"])
    assert res["largest_jump"]["node"] == best["node"] and res["largest_jump"]["amplification"] == best[
        "amplification"]
    assert res["first_divergence"]["node"] == "relu" != best["node"]  # the first jump is not the largest


# ---- the helpers ------------------------------------------------------------------------------------------

def test_with_outputs_adds_the_missing_tensors_to_a_copy() -> None:
    model = graph(W1, W2)
    out = _with_outputs(model, ["a", "logits", "p"])
    assert [o.name for o in out.graph.output] == ["logits", "mean", "a", "p"]
    assert [o.name for o in model.graph.output] == ["logits", "mean"]  # the input model is unchanged


def test_the_session_keeps_every_tensor_as_named() -> None:
    s = _session(graph(W1, W2))
    opts = s.get_session_options()
    assert opts.graph_optimization_level == ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    assert opts.log_severity_level == 3 and s.get_providers() == ["CPUExecutionProvider"]


def test_the_session_asks_for_the_cpu_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Asked for, not left to the build's default (on onnxruntime-gpu that is CUDA, which reorders sums)."""
    asked: list = []
    real = ort.InferenceSession

    def spy(*args: object, **kwargs: object) -> ort.InferenceSession:
        asked.append(kwargs.get("providers"))
        return real(*args, **kwargs)

    monkeypatch.setattr(ort, "InferenceSession", spy)
    _session(graph(W1, W2))
    assert asked == [["CPUExecutionProvider"]]


def test_compared_nodes_are_the_references_float_layers_the_candidate_has() -> None:
    plumbing = ["Shape", "Constant", "Reshape", "Equal", "Tile", "Slice", "CastLike", "Cast", "Gather", "Unsqueeze"]
    nodes = [helper.make_node(op, ["x"], [f"t{i}"], name=f"n{i}") for i, op in enumerate(plumbing)]
    nodes += [helper.make_node("Relu", ["x"], ["kept"], name="kept"),
              helper.make_node("Where", ["x"], ["m"], name="/decoder/mask/where"),
              helper.make_node("Relu", ["x"], ["not_in_candidate"], name="gone"),
              helper.make_node("Relu", ["x"], [], name="no_output")]
    ref = helper.make_model(helper.make_graph(nodes, "g", [], []))
    cand = helper.make_model(helper.make_graph(
        [helper.make_node("Identity", ["x"], [o for n in nodes for o in n.output if o != "not_in_candidate"])],
        "g", [], []))
    assert [n.name for n in _compared(ref, cand)] == ["kept"]


def test_module_names_follow_the_first_input_back_to_a_conv() -> None:
    names = module_names(graph(W1, W2, qdq=True))
    assert names == {"enc.a": "enc.a", "relu": "after enc.a", "q": "after enc.a", "dq": "after enc.a",
                     "pool": "after enc.a", "head": "head", "up": "after head", "mean": "after head", "shape": ""}
    # only a Conv is named by its weight, and only a weight named *.weight; a node reading nothing is no module's
    nodes = [helper.make_node("Conv", [INPUT_NAME, "conv_kernel"], ["c"], name="conv"),
             helper.make_node("Conv", [INPUT_NAME, "enc.b.weight"], ["d"], name="enc.b"),
             helper.make_node("Gemm", ["d", "fc.weight"], ["e"], name="fc"),
             helper.make_node("Constant", [], ["k"], name="const", value_float=1.0)]
    assert module_names(helper.make_model(helper.make_graph(nodes, "g", [], []))) == {
        "conv": "", "enc.b": "enc.b", "fc": "after enc.b", "const": ""}


def test_module_names_walk_back_past_nodes_listed_later() -> None:
    """Nodes out of graph order: c reads b, which is listed after it; b reads the Conv."""
    nodes = [helper.make_node("Conv", ["x", "enc.w.weight"], ["a"], name="conv"),
             helper.make_node("Relu", ["b"], ["c"], name="c"),
             helper.make_node("Relu", ["a"], ["b"], name="b")]
    nodes += [helper.make_node("Relu", ["k"], ["d"], name="d"),  # reads a Constant listed after it
              helper.make_node("Constant", [], ["k"], name="k", value_float=1.0)]
    names = module_names(helper.make_model(helper.make_graph(nodes, "g", [], [])))
    assert names == {"conv": "enc.w", "c": "after enc.w", "b": "after enc.w", "d": "", "k": ""}


@pytest.mark.parametrize(("length", "found"), [(65, True), (66, False)])
def test_module_names_walk_back_at_most_64_producers(length: int, found: bool) -> None:
    """A chain c1 -> ... -> cN after a Conv, listed in reverse: cN's walk to the Conv takes N - 1 producers;
    the walk is bounded (64), so an unsorted graph cannot make it long."""
    chain = [helper.make_node("Relu", [f"c{i - 1}" if i > 1 else "a"], [f"c{i}"], name=f"c{i}")
             for i in range(1, length + 1)]
    nodes = [helper.make_node("Conv", ["x", "enc.w.weight"], ["a"], name="conv"), *reversed(chain)]
    names = module_names(helper.make_model(helper.make_graph(nodes, "g", [], [])))
    assert names[f"c{length}"] == ("after enc.w" if found else "")


def test_only_a_quantize_linear_output_is_followed_to_its_dequantize() -> None:
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "zp"], ["xq"], name="q"),
             helper.make_node("DequantizeLinear", ["xq", "s", "zp"], ["x_dq"], name="dq"),
             helper.make_node("Identity", ["y"], ["yi"], name="id"),
             helper.make_node("DequantizeLinear", ["yi", "s", "zp"], ["y_dq"], name="dq2"),
             helper.make_node("QuantizeLinear", ["z", "s", "zp"], ["zq"], name="q_only")]
    assert dequantized_names(helper.make_model(helper.make_graph(nodes, "g", [], []))) == {"x": "x_dq"}


def test_band_at_picks_the_nearest_pixel() -> None:
    band = np.arange(6 * 8).reshape(6, 8) % 3 == 0
    assert np.array_equal(_band_at(band, 6, 8), band)
    small = _band_at(band, 3, 4)
    ys, xs = np.round(np.linspace(0, 5, 3)).astype(int), np.round(np.linspace(0, 7, 4)).astype(int)
    assert np.array_equal(small, band[np.ix_(ys, xs)]) and (ys[-1], xs[-1]) == (5, 7)


def test_rel_of_zero_reference() -> None:
    assert _rel(4.0, 0.25) == 4.0 and _rel(0.0, 0.0) == 0.0 and _rel(1e-12, 0.0) == math.inf


# ---- layer_feeds and layers_for_candidates --------------------------------------------------------------

INPUT = (36, 44)  # the reference's input size: frames are resized to it and padded to its stride
META = ModelMeta("enhanced", 4, synthetic_info(), input_size=INPUT, output_stride=16)  # a stride-2 stem: not 8


def with_meta(model: onnx.ModelProto) -> onnx.ModelProto:
    return write_props(model, meta_props(META, "mask"))


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_camvid(tmp_path_factory.mktemp("layers"), {"val": 3, "test": 2}, size=(40, 56))


def test_feeds_are_the_splits_first_frames_preprocessed_as_the_reference_says(data: Path) -> None:
    ref = with_meta(graph(W1, W2))
    info = synthetic_info()
    ds = CamVid(data, "val")
    want = [preprocess(ds.load(i)[0], info.mean, info.std, INPUT, 16).tensor for i in range(2)]
    got = layer_feeds(ref, data, "val", 2)
    assert [list(f) for f in got] == [[INPUT_NAME]] * 2
    assert all(np.array_equal(g[INPUT_NAME], w) for g, w in zip(got, want, strict=True))
    assert got[0][INPUT_NAME].shape[2:] == (48, 48)  # 36 x 44 padded to multiples of 16
    assert len(layer_feeds(ref, data, "test", 5)) == 2  # no more than the split has
    with pytest.raises(ToolkitError, match=r"^the reference ONNX has no toolkit metadata \(mean/std/input size\)"):
        layer_feeds(graph(W1, W2), data, "val", 1)
    bad = write_props(with_meta(graph(W1, W2)), {"mean": "[0.5, 0.5]"})
    with pytest.raises(ToolkitError, match=r"^reference ONNX: malformed toolkit metadata"):
        layer_feeds(bad, data, "val", 1)


def test_layers_for_candidates_compares_each_onnx_file(data: Path, tmp_path: Path) -> None:
    ref_path = save_onnx(with_meta(graph(W1, W2)), tmp_path / "ref.onnx")
    cand = save_onnx(with_meta(graph(W1, W2 * 1.2)), tmp_path / "cand.onnx")
    engine = tmp_path / "cand.engine"
    engine.write_bytes(b"not onnx")
    out = layers_for_candidates(ref_path, [engine, tmp_path / "missing.onnx", cand], data, "test", 3, band_px=2)
    assert out[:2] == [None, None] and out[2] is not None
    direct = compare_layers(with_meta(graph(W1, W2)), with_meta(graph(W1, W2 * 1.2)),
                            layer_feeds(with_meta(graph(W1, W2)), data, "test", 3), band_px=2)
    assert out[2] == {**direct, "reference_onnx": str(ref_path)} and out[2]["frames"] == 2
