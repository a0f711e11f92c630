"""The mixed-precision planner's pieces and its search, on hand-built graphs with a fake evaluation whose drift
is a known function of the layers kept (milliseconds; tests/quant/test_planner.py runs it end to end)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from tests.helpers import onnx_graphs
from toolkit.errors import ToolkitError
from toolkit.quant.planner import (
    SENSITIVITY_VERSION,
    Budget,
    Drift,
    Plan,
    Planner,
    convs_to_fp16,
    quantizable_layers,
    sensitivity_key,
)


def _drift(miou: float, cls: float = 0.0, band: float | None = None, worst: str = "road") -> Drift:
    return Drift(miou, cls, worst, band, 99.0)


def test_budget_checks_its_limits_and_measures_the_worst_gap() -> None:
    with pytest.raises(ToolkitError) as e:
        Budget(max_class_drop=-0.5)
    assert str(e.value) == "--max-class-drop -0.5: expected a non-negative number of IoU points"
    assert Budget().empty and not Budget(max_band_drop=0.0).empty
    b = Budget(max_miou_drop=1.0, max_class_drop=2.0, max_band_drop=0.5)
    assert b.violation(_drift(1.5, 2.25, 0.5)) == pytest.approx(0.5)  # the largest of 0.5, 0.25, 0.0
    assert b.violation(_drift(0.5, 1.0, None)) == pytest.approx(-0.5)  # inside: the tightest margin, band unknown
    assert Budget().violation(_drift(9.0)) == 0.0
    assert b.failures(_drift(1.5, 2.5, 0.75, worst="fence")) == [
        "mIoU drop 1.500 > 1.0", "class drop (fence) 2.500 > 2.0", "band mIoU drop 0.750 > 0.5"]
    assert b.failures(_drift(1.0, 2.0, None)) == []  # at the limit is inside


def test_drift_from_a_parity_result() -> None:
    from types import SimpleNamespace

    c = SimpleNamespace(delta_miou=-1.23456, per_class_delta_iou={"a": -0.5, "b": -2.25004, "c": None},
                        drift={"delta_miou_band": -3.33333}, pixel_agreement=97.123456)
    assert Drift.from_result(c) == Drift(1.2346, 2.25, "b", 3.3333, 97.1235)  # type: ignore[arg-type]
    bare = SimpleNamespace(delta_miou=0.5, per_class_delta_iou={"a": None}, drift=None, pixel_agreement=100.0)
    assert Drift.from_result(bare) == Drift(-0.5, 0.0, "", None, 100.0)  # type: ignore[arg-type]


def test_the_plan_file_and_its_summary() -> None:
    plan = Plan("m.onnx", "tensorrt", Budget(max_miou_drop=1.0), "fp16", {"frames": 2}, [],
                kept=[{"node": "conv1"}, {"node": "conv2"}], drift_before=_drift(2.0), met=True, reason="r")
    d = plan.to_dict()
    assert d["met"] and d["strategy"] == ("sensitivity: one layer kept in higher precision at a time in the fully "
                                          "quantized graph; plan: keep layers in order of recovered drift until the "
                                          "budget is met")
    assert d["drift_before"]["miou_drop"] == 2.0 and d["drift_after"] is None
    assert plan.summary() == {"target": "tensorrt", "budget": {"max_miou_drop": 1.0, "max_class_drop": None,
                                                               "max_band_drop": None},
                              "met": True, "kept": ["conv1", "conv2"], "keep_precision": "fp16", "int8_share": 1.0,
                              "drift_before": {"miou_drop": 2.0, "worst_class_drop": 0.0, "worst_class": "road",
                                               "band_drop": None, "pixel_agreement": 99.0},
                              "drift_after": None, "reason": "r"}
    after = Plan("m.onnx", "cpu", Budget(), "fp32", {}, [], drift_after=_drift(0.5)).summary()
    assert after["drift_before"] is None and after["drift_after"]["miou_drop"] == 0.5


def _three_convs() -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal((3, 3, 1, 1)).astype(np.float32), f"w{i}") for i in range(3)]
    inits.append(numpy_helper.from_array(rng.standard_normal(3).astype(np.float32), "b0"))
    nodes = [helper.make_node("Conv", ["input", "w0", "b0"], ["c0"], name="conv0"),
             helper.make_node("Relu", ["c0"], ["r0"], name="relu0"),
             helper.make_node("Conv", ["r0", "w1"], ["c1"], name="conv1"),
             helper.make_node("Add", ["c1", "r0"], ["a"], name="add"),
             helper.make_node("Conv", ["a", "w2"], ["logits"], name="conv2"),
             helper.make_node("Identity", ["a"], ["unused"], name="g/mask/max")]
    return onnx_graphs._model(nodes, inits, ["N", 3, "H", "W"])


def test_quantizable_layers_in_graph_order() -> None:
    model = _three_convs()
    model.graph.node[-1].op_type = "MaxPool"  # a mask group's MaxPool is never a layer
    assert quantizable_layers(model) == ["conv0", "conv1", "add", "conv2"]
    assert quantizable_layers(model, ["conv1", "add"]) == ["conv0", "conv2"]


def test_convs_to_fp16_wraps_each_named_conv_in_casts() -> None:
    import onnxruntime as ort

    model = _three_convs()
    half = onnx.ModelProto()
    half.CopyFrom(model)
    assert convs_to_fp16(half, ["conv0", "conv2"]) == 2
    names = [(n.name, n.op_type) for n in half.graph.node]
    assert names[:3] == [("conv0/cast_fp16", "Cast"), ("conv0", "Conv"), ("conv0/cast_fp32", "Cast")]
    types = {t.name: t.data_type for t in half.graph.initializer}
    assert types == {"w0_fp16": TensorProto.FLOAT16, "b0_fp16": TensorProto.FLOAT16, "w1": TensorProto.FLOAT,
                     "w2_fp16": TensorProto.FLOAT16}  # the fp32 copies of converted weights are dropped
    conv0 = next(n for n in half.graph.node if n.name == "conv0")
    assert list(conv0.input) == ["input_conv0_fp16", "w0_fp16", "b0_fp16"] and list(conv0.output) == ["c0_fp16"]
    casts = {n.name: n.attribute[0].i for n in half.graph.node if n.op_type == "Cast"}
    assert casts == {"conv0/cast_fp16": TensorProto.FLOAT16, "conv0/cast_fp32": TensorProto.FLOAT,
                     "conv2/cast_fp16": TensorProto.FLOAT16, "conv2/cast_fp32": TensorProto.FLOAT}
    x = {"input": np.random.default_rng(1).normal(size=(1, 3, 4, 4)).astype(np.float32)}
    ref, got = (ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, x)[0]
                for m in (model, half))
    assert np.abs(ref - got).max() < 1e-2 * np.abs(ref).max()  # two fp16 roundings per converted Conv
    with pytest.raises(ToolkitError, match=r"^node 'add' is not a float Conv with initializer weights"):
        convs_to_fp16(_three_convs(), ["add"])
    dynamic = _three_convs()
    dynamic.graph.node[2].input[1] = "r0"  # a weight that is not an initializer
    with pytest.raises(ToolkitError, match="node 'conv1' is not a float Conv"):
        convs_to_fp16(dynamic, ["conv1"])


def test_the_sensitivity_key() -> None:
    key = sensitivity_key("sha", {"target": "cpu", "exclude": ["a"], "path": Path("x")})
    assert len(key) == 32 and key == sensitivity_key("sha", {"path": Path("x"), "exclude": ["a"], "target": "cpu"})
    assert key != sensitivity_key("sha2", {"target": "cpu", "exclude": ["a"], "path": Path("x")})
    assert key != sensitivity_key("sha", {"target": "tensorrt", "exclude": ["a"], "path": Path("x")})
    assert SENSITIVITY_VERSION == 1 and "v" not in {"target", "exclude", "path"}


# --- the search, with a fake evaluation ---------------------------------------------------------------------

# mIoU drop of the fully quantized graph, and what keeping each layer in higher precision recovers (additive)
FULL = 4.0
RECOVERY = {"conv0": 0.25, "conv1": 1.5, "add": 0.5, "conv2": 1.0}


class FakePlanner(Planner):
    """``_evaluate`` reads which layers each candidate kept (recorded by the fake quantize) instead of running it."""

    def __init__(self, *args: object, **kw: object) -> None:
        self.kept_by_path: dict[Path, list[str]] = {}
        self.fp16_by_path: dict[Path, list[str]] = {}  # the Convs each candidate file runs in fp16
        self.batches: list[int] = []
        super().__init__(*args, quantize=self._quantize, **kw)  # type: ignore[misc, arg-type]

    def _quantize(self, path: Path, exclude: list[str]) -> None:
        self.kept_by_path[path] = [n for n in exclude if n not in self.exclude]
        onnx.save(_three_convs(), str(path))

    def _evaluate(self, paths: list[Path]) -> list[Drift]:  # type: ignore[override]
        self.batches.append(len(paths))
        self.evaluations += len(paths)
        out = []
        for p in paths:
            kept = self.kept_by_path[p]
            self.fp16_by_path[p] = [n.name for n in onnx.load(str(p)).graph.node if n.name.endswith("/cast_fp16")]
            d = FULL - sum(RECOVERY[k] for k in kept)
            out.append(Drift(round(d, 4), round(d / 2, 4), "road", None, 99.0))
        return out


@pytest.fixture
def model(tmp_path: Path) -> Path:
    path = tmp_path / "fp32.onnx"
    onnx.save(_three_convs(), str(path))
    return path


def _planner(model: Path, tmp_path: Path, budget: Budget, target: str = "cpu", **kw: object) -> FakePlanner:
    return FakePlanner(model, target, budget, None, cache_dir=tmp_path / "cache", **kw)  # type: ignore[arg-type]


def test_layers_are_kept_by_recovery_until_the_budget_is_met(model: Path, tmp_path: Path) -> None:
    messages: list[str] = []
    planner = _planner(model, tmp_path, Budget(max_miou_drop=1.6), progress=messages.append)
    plan = planner.plan()
    # recoveries in order: conv1 1.5, conv2 1.0, add 0.5, conv0 0.25: 4.0 - 1.5 - 1.0 = 1.5 <= 1.6 with two kept
    assert plan.met and [k["node"] for k in plan.kept] == ["conv1", "conv2"]
    assert plan.reason == "2 of 4 layers kept in fp32 meet the budget" and plan.int8_share == 0.5
    assert plan.drift_before == Drift(4.0, 2.0, "road", None, 99.0) and plan.drift_after.miou_drop == 1.5
    assert [r["node"] for r in plan.layers] == ["conv0", "conv1", "add", "conv2"]
    assert {r["node"]: r["recovery"] for r in plan.layers} == RECOVERY
    assert plan.layers[1] == {"node": "conv1", "op": "Conv", "recovery": 1.5,
                              "sensitivity": {"miou_drop": 2.5, "worst_class_drop": 1.25, "worst_class": "road",
                                              "band_drop": None, "pixel_agreement": 99.0}}
    assert (plan.model, plan.target, plan.budget, plan.tune) == (str(model), "cpu", Budget(max_miou_drop=1.6), {})
    assert plan.kept[0] == {"node": "conv1", "op": "Conv", "precision": "fp32",
                            "why": "rank 1 by recovered drift: alone it leaves mIoU drop 2.500, class drop 1.250 "
                                   "(road) vs 4.000 / 2.000 fully quantized"}
    # one full, four keep-one-out, then prefixes 1..4 in one batch (the search stops at the first that meets it)
    assert planner.batches == [1, 4, 4] and plan.evaluations == 9 and not plan.sensitivity_cached
    assert messages == ["sensitivity: 4 layers kept one at a time (mIoU drop 4.000 > 1.6 fully quantized)",
                        "plan: trying 1..4 layers kept"]
    cache = json.loads(Path(plan.sensitivity_cache).read_text())
    assert sorted(cache["layers"]) == sorted(RECOVERY) and cache["full"]["miou_drop"] == 4.0


def test_the_sensitivity_cache_is_reused(model: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    import logging

    _planner(model, tmp_path, Budget(max_miou_drop=1.6)).plan()
    again = _planner(model, tmp_path, Budget(max_miou_drop=2.6))
    with caplog.at_level(logging.INFO, logger="toolkit.quant.planner"):
        plan = again.plan()
    assert [r.getMessage() for r in caplog.records] == [f"sensitivity cache hit: {plan.sensitivity_cache}"]
    assert plan.sensitivity_cached and again.batches == [4]  # only the search
    assert [k["node"] for k in plan.kept] == ["conv1"]
    forced = _planner(model, tmp_path, Budget(max_miou_drop=2.6), use_cache=False)
    assert not forced.plan().sensitivity_cached and forced.batches[:2] == [1, 4]
    changed = tmp_path / "other.onnx"
    m = _three_convs()
    m.graph.initializer[0].float_data[:] = []
    m.graph.initializer[0].raw_data = np.zeros((3, 3, 1, 1), np.float32).tobytes()
    onnx.save(m, str(changed))
    assert not _planner(changed, tmp_path, Budget(max_miou_drop=2.6)).plan().sensitivity_cached  # another model
    other = _planner(model, tmp_path, Budget(max_miou_drop=2.6), exclude=["conv0"])
    assert not other.plan().sensitivity_cached  # the exclusions are part of the key


def test_the_default_sensitivity_folder(model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOOLKIT_CACHE", str(tmp_path / "tc"))
    plan = FakePlanner(model, "cpu", Budget(max_miou_drop=1.6), None).plan()  # type: ignore[arg-type]
    assert Path(plan.sensitivity_cache).parent == tmp_path / "tc" / "sensitivity"
    nested = _planner(model, tmp_path / "a" / "b", Budget(max_miou_drop=1.6)).plan()  # missing parents made
    assert Path(nested.sensitivity_cache).is_file()


def test_a_budget_the_full_graph_meets_needs_no_search(model: Path, tmp_path: Path) -> None:
    planner = _planner(model, tmp_path, Budget(max_miou_drop=4.0))
    plan = planner.plan()
    assert plan.met and plan.kept == [] and plan.reason == "the fully quantized graph meets the budget"
    assert not plan.sensitivity_cached
    assert planner.batches == [1] and plan.int8_share == 1.0 and not Path(plan.sensitivity_cache).exists()


def test_a_full_graph_less_than_a_point_over_is_planned(model: Path, tmp_path: Path) -> None:
    plan = _planner(model, tmp_path, Budget(max_miou_drop=3.5)).plan()  # violation 0.5: still over
    assert plan.met and [k["node"] for k in plan.kept] == ["conv1"] and plan.drift_after.miou_drop == 2.5


def test_a_prefix_exactly_at_the_limit_meets_it(model: Path, tmp_path: Path) -> None:
    plan = _planner(model, tmp_path, Budget(max_miou_drop=1.5)).plan()  # two kept: exactly 1.5
    assert plan.met and len(plan.kept) == 2


def test_no_plan_within_the_budget_reports_the_best(model: Path, tmp_path: Path) -> None:
    plan = _planner(model, tmp_path, Budget(max_miou_drop=1.6)).plan(max_kept=1)
    assert not plan.met and [k["node"] for k in plan.kept] == ["conv1"]
    assert plan.reason == ("no plan with up to 1 of 4 layers kept meets the budget; best found keeps 1 "
                           "(mIoU drop 2.500 > 1.6)")
    impossible = _planner(model, tmp_path, Budget(max_miou_drop=0.0, max_class_drop=0.0)).plan()
    assert not impossible.met and len(impossible.kept) == 4 and impossible.int8_share == 0.0
    assert impossible.reason == ("no plan with up to 4 of 4 layers kept meets the budget; best found keeps 4 "
                                 "(mIoU drop 0.750 > 0.0; class drop (road) 0.375 > 0.0)")


def test_tensorrt_keeps_convs_in_fp16(model: Path, tmp_path: Path) -> None:
    planner = _planner(model, tmp_path, Budget(max_miou_drop=2.6), target="tensorrt")
    plan = planner.plan()
    assert plan.keep_precision == "fp16" and plan.kept[0]["precision"] == "fp16"
    for path, kept in planner.kept_by_path.items():  # only the kept Convs (not Add) run in fp16
        assert sorted(planner.fp16_by_path[path]) == sorted(f"{n}/cast_fp16" for n in kept if n.startswith("conv"))
    everything = _planner(model, tmp_path, Budget(max_miou_drop=0.0), target="tensorrt").plan()
    assert {k["node"]: k["precision"] for k in everything.kept} == {"conv0": "fp16", "conv1": "fp16",
                                                                     "conv2": "fp16", "add": "fp32"}
    cpu = _planner(model, tmp_path, Budget(max_miou_drop=2.6), use_cache=False)
    cpu.plan()
    assert not any(cpu.fp16_by_path.values())


def test_nothing_to_plan_is_refused(model: Path, tmp_path: Path) -> None:
    with pytest.raises(ToolkitError, match=r"no quantizable Conv left \(check --exclude\)$"):
        _planner(model, tmp_path, Budget(max_miou_drop=1.0), exclude=list(RECOVERY)).plan()
