"""The mixed-precision planner: the budget honoured on synthetic data (checked by an independent parity run
of the written graph), the plan file's fields, the sensitivity cache, exit 1 with the best plan, fp16 Casts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from typer.testing import CliRunner

from tests.helpers.models import tiny_onnx
from toolkit.cli.app import app
from toolkit.core.metadata import read_props
from toolkit.quant.plan_file import plan_path
from toolkit.quant.planner import Budget, Drift, convs_to_fp16, quantizable_layers

runner = CliRunner()
# A class-IoU budget the tiny random model's full int8 graph breaks on the synthetic val frames
# (its worst class loses ~0.29 points there), so the planner has to keep layers.
CLASS_BUDGET = 0.2
PLAN_FIELDS = {"model", "target", "budget", "keep_precision", "tune", "layers", "kept", "drift_before", "drift_after",
               "int8_share", "met", "reason", "speed", "strategy", "sensitivity_cache", "evaluations"}


def _quantize(tmp: Path, model: Path, data: Path, out: str, *extra: str) -> tuple[int, str]:
    args = ["quantize", "-m", str(model), "--precision", "int8", "--target", "cpu", "--calib-data", str(data),
            "--calib-size", "4", "--tune-data", str(data), "--tune-frames", "3", "--cache-dir", str(tmp / "cache"),
            "-o", str(tmp / out), *extra]
    result = runner.invoke(app, args)
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def planned(tmp_path_factory: pytest.TempPathFactory, synthetic_dir: Path) -> tuple[Path, Path, dict, str]:
    tmp = tmp_path_factory.mktemp("plan")
    model = tiny_onnx(tmp_path_factory, "mask")
    code, out = _quantize(tmp, model, synthetic_dir, "plan.onnx", "--max-class-drop", str(CLASS_BUDGET),
                          "--bench-iterations", "2")
    assert code == 0, out
    return tmp, model, json.loads(plan_path(tmp / "plan.onnx").read_text()), out


def test_plan_file_fields_and_budget_met(planned: tuple[Path, Path, dict, str]) -> None:
    _, _, plan, _ = planned
    assert set(plan) >= PLAN_FIELDS
    assert plan["met"] and plan["kept"], plan["reason"]
    assert plan["drift_before"]["worst_class_drop"] > CLASS_BUDGET  # the search was needed
    assert plan["drift_after"]["worst_class_drop"] <= CLASS_BUDGET
    assert {"node", "op", "sensitivity", "recovery"} <= set(plan["layers"][0])
    assert {"miou_drop", "worst_class_drop", "worst_class", "band_drop"} <= set(plan["layers"][0]["sensitivity"])
    assert all(k["precision"] == "fp32" and k["why"] for k in plan["kept"])
    assert 0 <= plan["int8_share"] < 1
    assert [s["model"] for s in plan["speed"]][1] == "full int8 (same calibration)" and len(plan["speed"]) == 3


def test_written_graph_meets_budget_independently(planned: tuple[Path, Path, dict, str], synthetic_dir: Path) -> None:
    """Re-measure the written file with parity's comparator: the plan's claim holds for the artefact."""
    from toolkit.backend import make_runner
    from toolkit.compare.comparator import Comparator
    from toolkit.data import CamVid

    tmp, model, plan, _ = planned
    out = onnx.load(str(tmp / "plan.onnx"))
    kept = [k["node"] for k in plan["kept"]]
    floats = {t.name for t in out.graph.initializer if t.data_type == onnx.TensorProto.FLOAT}
    weights = {n.name: n.input[1] for n in out.graph.node if n.op_type == "Conv"}
    assert all(weights[k] in floats for k in kept if k in weights)  # kept Convs read fp32 weights, no DQ
    assert any(n.op_type == "QuantizeLinear" for n in out.graph.node)  # the rest is int8
    assert json.loads(read_props(out)["mixed_precision_plan"])["kept"] == kept
    report = Comparator(make_runner(model), [make_runner(tmp / "plan.onnx")]).run(CamVid(synthetic_dir, "val", limit=3))
    assert Drift.from_result(report.candidates[0]).worst_class_drop <= CLASS_BUDGET


def test_second_run_reuses_sensitivity(planned: tuple[Path, Path, dict, str], synthetic_dir: Path) -> None:
    tmp, model, first, _ = planned
    code, out = _quantize(tmp, model, synthetic_dir, "again.onnx", "--max-class-drop", str(CLASS_BUDGET),
                          "--bench-iterations", "0")
    assert code == 0, out
    again = json.loads(plan_path(tmp / "again.onnx").read_text())
    assert again["sensitivity_cached"] and not first["sensitivity_cached"]
    assert again["evaluations"] < first["evaluations"]
    assert again["kept"] == first["kept"]


def test_no_plan_within_budget_exits_1_with_best_plan(planned: tuple[Path, Path, dict, str],
                                                      synthetic_dir: Path) -> None:
    tmp, model, _, _ = planned
    code, out = _quantize(tmp, model, synthetic_dir, "tight.onnx", "--max-class-drop", "0", "--max-miou-drop",
                          "-0.5", "--max-kept", "1", "--bench-iterations", "0")
    assert code == 2 and "--max-miou-drop" in out and "greater than or equal to 0" in out  # usage, by the option
    code, out = _quantize(tmp, model, synthetic_dir, "tight.onnx", "--max-class-drop", "0", "--max-kept", "1",
                          "--bench-iterations", "0")
    plan = json.loads(plan_path(tmp / "tight.onnx").read_text())
    assert code == 1 and "no plan" in out
    assert not plan["met"] and len(plan["kept"]) <= 1 and "best found" in plan["reason"]
    assert (tmp / "tight.onnx").is_file()


def test_budget_needs_tune_data(tmp_path: Path, synthetic_dir: Path) -> None:
    model = tmp_path / "m.onnx"
    model.write_bytes(b"")
    result = runner.invoke(app, ["quantize", "-m", str(model), "--precision", "int8", "--calib-data",
                                 str(synthetic_dir), "--max-miou-drop", "1", "-o", str(tmp_path / "o.onnx")])
    assert result.exit_code == 2 and "--tune-data" in result.output


def test_budget_violation() -> None:
    b = Budget(max_miou_drop=1.0, max_class_drop=2.0)
    assert b.violation(Drift(0.5, 2.5, "fence", None, 99.0)) == pytest.approx(0.5)
    assert b.violation(Drift(0.5, 1.0, "fence", None, 99.0)) <= 0
    assert b.failures(Drift(1.5, 1.0, "fence", None, 99.0)) == ["mIoU drop 1.500 > 1.0"]


def test_convs_to_fp16_close_to_fp32(tmp_path_factory: pytest.TempPathFactory) -> None:
    from toolkit.backend.onnxrt.loader import session_from_onnx
    from toolkit.core.onnx_file import load_onnx

    model = load_onnx(tiny_onnx(tmp_path_factory, "mask"))
    half = onnx.ModelProto()
    half.CopyFrom(model)
    names = [n for n in quantizable_layers(model) if not n.startswith("node_")][:3]
    assert convs_to_fp16(half, names) == 3
    types = {t.name: t.data_type for t in half.graph.initializer}
    assert all(types[n.input[1]] == onnx.TensorProto.FLOAT16 for n in half.graph.node if n.name in names)
    x = {"input": np.random.default_rng(0).normal(size=(1, 3, 64, 96)).astype(np.float32)}
    ref, got = (session_from_onnx(m).session.run(None, x)[0] for m in (model, half))  # type: ignore[attr-defined]
    assert np.abs(ref - got).max() < 0.05  # fp16 rounding of three Convs of a width-4 model
