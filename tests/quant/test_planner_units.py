"""The mixed-precision planner's pieces and its search, on hand-built graphs with a fake evaluation whose drift
is a known function of the layers kept (milliseconds; tests/quant/test_planner.py runs it end to end)."""

from __future__ import annotations

import json
import re
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


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run in a fresh folder: a mutant that saves to ``str(None)`` leaves a file named ``None`` in the working
    folder, which would let a later ``onnx.load(str(None))`` mutant load it and survive."""
    monkeypatch.chdir(tmp_path)


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
        self.recovery = dict(kw.pop("recovery", RECOVERY))  # type: ignore[call-overload]
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
            d = FULL - sum(self.recovery[k] for k in kept)
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


def test_a_layer_that_recovers_nothing_is_not_kept_for_a_tie(model: Path, tmp_path: Path) -> None:
    # conv0 recovers nothing: keeping it last leaves the drift of three kept; the best found keeps three, not four
    plan = _planner(model, tmp_path, Budget(max_miou_drop=0.0), recovery={**RECOVERY, "conv0": 0.0}).plan()
    assert not plan.met and [k["node"] for k in plan.kept] == ["conv1", "conv2", "add"]
    assert plan.drift_after.miou_drop == 1.0 and plan.reason.endswith("best found keeps 3 (mIoU drop 1.000 > 0.0)")


def _six_convs() -> onnx.ModelProto:
    w = numpy_helper.from_array(np.eye(3, dtype=np.float32).reshape(3, 3, 1, 1), "w")
    names = ["input", *(f"c{i}" for i in range(5)), "logits"]
    nodes = [helper.make_node("Conv", [names[i], "w"], [names[i + 1]], name=f"conv{i}") for i in range(6)]
    return onnx_graphs._model(nodes, [w], ["N", 3, "H", "W"])


def test_the_search_takes_a_second_batch_without_skipping_a_prefix(tmp_path: Path) -> None:
    path = tmp_path / "six.onnx"
    onnx.save(_six_convs(), str(path))
    recovery = {f"conv{i}": 0.5 + 0.05 * i for i in range(6)}  # sum of the best five: 3.0, all six: 3.25
    planner = _planner(path, tmp_path, Budget(max_miou_drop=1.0), recovery=recovery)
    plan = planner.plan()
    assert plan.met and len(plan.kept) == 5 and plan.reason == "5 of 6 layers kept in fp32 meet the budget"
    assert [k["node"] for k in plan.kept] == ["conv5", "conv4", "conv3", "conv2", "conv1"]
    assert planner.batches == [1, 6, 4, 2]  # prefixes 1..4, then 5..6


# --- _evaluate, write_planned and bench_plan, with fake runners ---------------------------------------------


class _Runner:
    def __init__(self, path: Path, device: str, log: list) -> None:
        self.path, self.device, self.log = Path(path), device, log
        log.append(("make", self.path.name, device))

    def activate(self) -> _Runner:
        self.log.append(("activate", self.path.name))
        return self

    def deactivate(self) -> None:
        self.log.append(("deactivate", self.path.name))


def test_evaluate_compares_each_batch_against_a_fresh_fp32_runner(model: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    import toolkit.backend
    import toolkit.compare.comparator
    from toolkit.compare.drift import DriftOptions

    made: list = []
    runs: list = []
    monkeypatch.setattr(toolkit.backend, "make_runner", lambda p, device: _Runner(p, device, made))

    class FakeComparator:
        def __init__(self, ref: _Runner, cands: list[_Runner], drift: DriftOptions) -> None:
            self.ref, self.cands, self.drift = ref, cands, drift

        def run(self, dataset: object) -> SimpleNamespace:
            runs.append((self.ref.path.name, [c.path.name for c in self.cands], self.drift, dataset))
            return SimpleNamespace(candidates=[SimpleNamespace(
                delta_miou=-float(c.path.stem[1:]), per_class_delta_iou={"sky": -0.5}, drift=None,
                pixel_agreement=90.0) for c in self.cands])

    monkeypatch.setattr(toolkit.compare.comparator, "Comparator", FakeComparator)
    dataset = object()
    planner = Planner(model, "cpu", Budget(max_miou_drop=1.0), dataset, lambda p, e: None)  # type: ignore[arg-type]
    assert planner.band_px == DriftOptions().band_px  # the band parity measures by default
    paths = [tmp_path / f"p{i}.onnx" for i in range(6)]
    drifts = planner._evaluate(paths)
    assert [d.miou_drop for d in drifts] == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0] and planner.evaluations == 6
    assert drifts[1] == Drift(1.0, 0.5, "sky", None, 90.0)
    assert [(r[0], r[1], r[3]) for r in runs] == [("fp32.onnx", ["p0.onnx", "p1.onnx", "p2.onnx", "p3.onnx"], dataset),
                                                  ("fp32.onnx", ["p4.onnx", "p5.onnx"], dataset)]
    assert all(r[2] == DriftOptions(band_px=planner.band_px, worst_frames=0) for r in runs)
    assert {m[2] for m in made} == {"cpu"} and [m[1] for m in made].count("fp32.onnx") == 2
    narrow = Planner(model, "cpu", Budget(max_miou_drop=1.0), dataset, lambda p, e: None,  # type: ignore[arg-type]
                     band_px=1)
    narrow._evaluate(paths[:1])
    assert runs[-1][2] == DriftOptions(band_px=1, worst_frames=0)


def _written(tmp_path: Path, target: str, kept: list[str]) -> onnx.ModelProto:
    from toolkit.quant.planner import write_planned

    out = tmp_path / f"{target}.onnx"
    onnx.save(_three_convs(), str(out))
    plan = Plan("m.onnx", target, Budget(max_miou_drop=1.0), "fp16", {}, [], kept=[{"node": n} for n in kept],
                met=True, reason="r")
    write_planned(plan, out)
    return onnx.load(str(out))


def test_write_planned_casts_the_kept_convs_and_records_the_plan(tmp_path: Path) -> None:
    from toolkit.core.metadata import read_props

    m = _written(tmp_path, "tensorrt", ["conv0", "add"])
    assert [n.name for n in m.graph.node if n.op_type == "Cast"] == ["conv0/cast_fp16", "conv0/cast_fp32"]
    summary = json.loads(read_props(m)["mixed_precision_plan"])
    assert summary["kept"] == ["conv0", "add"] and summary["target"] == "tensorrt" and summary["met"]
    assert read_props(m)["mixed_precision_plan"] == json.dumps(summary, separators=(",", ":"))
    cpu = _written(tmp_path, "cpu", ["conv0"])  # the planner kept it in fp32: nothing to rewrite
    assert not any(n.op_type == "Cast" for n in cpu.graph.node)
    assert json.loads(read_props(cpu)["mixed_precision_plan"])["kept"] == ["conv0"]
    none = _written(tmp_path, "tensorrt", [])
    assert [n.name for n in none.graph.node] == [n.name for n in _three_convs().graph.node]


def test_write_planned_writes_atomically(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import toolkit.files
    from toolkit.quant.planner import write_planned

    out = tmp_path / "m.onnx"
    onnx.save(_three_convs(), str(out))
    before = out.read_bytes()
    calls: list[Path] = []
    real = toolkit.files.atomic_write

    def failing(path: Path, write: object) -> Path:
        calls.append(Path(path))
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("toolkit.core.onnx_file.atomic_write", failing)
    with pytest.raises(OSError):
        write_planned(Plan("m", "cpu", Budget(), "fp32", {}, []), out)
    assert calls == [out] and out.read_bytes() == before and real is toolkit.files.atomic_write


class _Result:
    def __init__(self, i: int) -> None:
        self.i, self.model = i, ""

    def as_dict(self) -> dict:
        return {"i": self.i, "model": self.model}


def _meta_graph(tmp_path: Path, meta: dict | None) -> Path:
    path = tmp_path / "fp32.onnx"
    onnx.save(_three_convs() if meta is None else onnx_graphs.clean(meta=meta), str(path))
    return path


def test_bench_plan_times_the_three_graphs_in_one_interleaved_run(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import toolkit.backend
    import toolkit.bench
    from toolkit.quant.planner import bench_plan

    made: list = []
    benched: list = []
    monkeypatch.setattr(toolkit.backend, "make_runner", lambda p, device: _Runner(p, device, made))

    def fake_bench(runners: list[_Runner], shape: tuple, iterations: int) -> list:
        benched.append(([r.path.name for r in runners], shape, iterations))
        assert all(("deactivate", r.path.name) not in made for r in runners)
        return [_Result(i) for i in range(len(runners))]

    monkeypatch.setattr(toolkit.bench, "bench_runners", fake_bench)
    meta = {**onnx_graphs.META, "toolkit.input_size": "60x90", "toolkit.output_stride": "8"}
    fp32 = _meta_graph(tmp_path, meta)
    cands = [tmp_path / "full.onnx", tmp_path / "plan.onnx"]
    out = bench_plan(fp32, cands, 7)
    assert out == [{"i": i, "model": str(p)} for i, p in enumerate([fp32, *cands])]
    assert benched == [(["fp32.onnx", "full.onnx", "plan.onnx"], (1, 3, 64, 96), 7)]  # padded to the stride
    assert [m for m in made if m[0] == "make"] == [("make", n, "cpu") for n in ("fp32.onnx", "full.onnx", "plan.onnx")]
    assert [m[1] for m in made if m[0] == "deactivate"] == ["fp32.onnx", "full.onnx", "plan.onnx"]


def test_bench_plan_names_each_result_and_deactivates_on_failure(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import toolkit.backend
    import toolkit.bench
    from toolkit.quant.planner import bench_plan

    made: list = []
    monkeypatch.setattr(toolkit.backend, "make_runner", lambda p, device: _Runner(p, device, made))
    fp32 = _meta_graph(tmp_path, onnx_graphs.META)
    seen: list = []

    def fake_bench(runners: list[_Runner], shape: tuple, iterations: int) -> list:
        seen.append(len(runners))
        raise RuntimeError("bench failed")

    monkeypatch.setattr(toolkit.bench, "bench_runners", fake_bench)
    with pytest.raises(RuntimeError, match="bench failed"):
        bench_plan(fp32, [tmp_path / "plan.onnx"], 3)
    assert seen == [2] and [m[1] for m in made if m[0] == "deactivate"] == ["fp32.onnx", "plan.onnx"]


def test_bench_plan_refuses_a_model_without_metadata(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import toolkit.backend
    from toolkit.quant.planner import bench_plan

    made: list = []
    monkeypatch.setattr(toolkit.backend, "make_runner", lambda p, device: _Runner(p, device, made))
    fp32 = _meta_graph(tmp_path, None)
    with pytest.raises(ToolkitError) as e:
        bench_plan(fp32, [], 3)
    assert str(e.value) == f"{fp32}: no input size in its metadata to bench at" and made == []


def test_bench_plan_names_the_model_whose_metadata_is_malformed(tmp_path: Path) -> None:
    from toolkit.quant.planner import bench_plan

    fp32 = _meta_graph(tmp_path, {**onnx_graphs.META, "toolkit.width": "wide"})
    with pytest.raises(ToolkitError, match=rf"^{re.escape(str(fp32))}: malformed toolkit metadata"):
        bench_plan(fp32, [], 3)
