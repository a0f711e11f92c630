"""``quantize_planned`` (toolkit/quant/plan_file.py) with its pieces faked: the calibration runs once, the output
keeps what the plan kept, the plan file lands beside it atomically, the bench compares the right graphs
(milliseconds; tests/quant/test_planner.py runs it end to end)."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

import toolkit.files
from toolkit.quant import plan_file
from toolkit.quant.planner import Budget, Plan
from toolkit.quant.quantize_file import Calibration


def test_plan_path_is_beside_the_output() -> None:
    assert plan_file.plan_path("out/m.int8.onnx") == Path("out/m.int8.plan.json")
    assert plan_file.plan_path(Path("m.onnx")) == Path("m.plan.json")


class _Fakes:
    def __init__(self, monkeypatch: pytest.MonkeyPatch, kept: list[str]) -> None:
        self.quantized: list[dict] = []
        self.events: list = []
        self.planner_args: dict = {}
        fakes = self

        def quantize_file(model: Path, path: Path, precision: str, **kw: object) -> SimpleNamespace:
            fakes.quantized.append({"model": model, "path": Path(path), "precision": precision, **kw})
            Path(path).write_bytes(b"onnx")
            return SimpleNamespace(summary=f"int8 {Path(path).name}")

        class FakePlanner:
            def __init__(self, model: Path, target: str, budget: Budget, dataset: object, quantize: object,
                         exclude: object, **kw: object) -> None:
                fakes.planner_args = {"model": model, "target": target, "budget": budget, "dataset": dataset,
                                      "exclude": exclude, **kw}
                self.quantize, self.model, self.target, self.budget = quantize, model, target, budget

            def plan(self, max_kept: int | None = None) -> Plan:
                fakes.events.append(("plan", max_kept))
                self.quantize(Path(fakes.tmp) / "a.onnx", ["x"])  # type: ignore[operator]
                self.quantize(Path(fakes.tmp) / "b.onnx", ["y"])  # type: ignore[operator]
                return Plan(str(self.model), self.target, self.budget, "fp32", {}, [],
                            kept=[{"node": n} for n in kept], met=True, reason="ok")

        def write_planned(plan: Plan, output: Path) -> None:
            fakes.events.append(("write_planned", Path(output).name, [k["node"] for k in plan.kept]))

        def bench_plan(fp32: Path, candidates: list[Path], iterations: int) -> list[dict]:
            fakes.events.append(("bench", Path(fp32).name, [Path(c).name for c in candidates], iterations,
                                 all(Path(c).is_file() for c in candidates)))
            return [{"model": str(p)} for p in [fp32, *candidates]]

        monkeypatch.setattr(plan_file, "quantize_file", quantize_file)
        monkeypatch.setattr(plan_file, "Planner", FakePlanner)
        monkeypatch.setattr(plan_file, "write_planned", write_planned)
        monkeypatch.setattr(plan_file, "bench_plan", bench_plan)
        qf = sys.modules["toolkit.quant.quantize_file"]  # the package's `quantize_file` is the function
        monkeypatch.setattr(qf, "run_once", lambda p: fakes.events.append(("run_once", Path(p).name)))
        self.tmp = ""


def _run(tmp_path: Path, fakes: _Fakes, **kw: object) -> Plan:
    fakes.tmp = str(tmp_path)
    calib = Calibration([tmp_path / "i1.png", tmp_path / "i2.png"], use_cache=False, on_image=lambda: None)
    return plan_file.quantize_planned(tmp_path / "fp32.onnx", tmp_path / "m.int8.onnx", "tensorrt", calib,
                                      Budget(max_miou_drop=1.0), "DATA", {"frames": 3},  # type: ignore[arg-type]
                                      exclude=["ex"], **kw)


def test_quantize_planned_calibrates_once_and_writes_the_plan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fakes = _Fakes(monkeypatch, ["k1", "k2"])
    progress = [].append
    plan = _run(tmp_path, fakes, per_channel=False, reduce_range=True, max_kept=3, bench_iterations=5,
                sensitivity_cache=tmp_path / "sc", progress=progress)
    q = fakes.quantized
    assert [x["path"].name for x in q] == ["a.onnx", "b.onnx", "m.int8.onnx", "full_int8.onnx"]
    assert all(x["model"] == tmp_path / "fp32.onnx" and x["precision"] == "int8" and x["target"] == "tensorrt"
               and x["per_channel"] is False and x["reduce_range"] is True and x["smoke_run"] is False for x in q)
    assert [x["exclude"] for x in q] == [["x"], ["y"], ["ex", "k1", "k2"], ["ex"]]
    first = q[0]["calibration"]
    assert first.use_cache is False and first.on_image is not None  # the caller's settings, the first time only
    assert all(x["calibration"] == dataclasses.replace(first, use_cache=True, on_image=None) for x in q[1:])
    a = fakes.planner_args
    assert (a["model"], a["target"], a["dataset"], list(a["exclude"])) == (tmp_path / "fp32.onnx", "tensorrt",
                                                                          "DATA", ["ex"])
    assert a["cache_dir"] == tmp_path / "sc" and a["progress"] is progress and a["budget"] == Budget(max_miou_drop=1.0)
    assert a["settings"] == {"calib": [str(tmp_path / "i1.png"), str(tmp_path / "i2.png")],
                             "method": first.shown, "per_channel": False, "reduce_range": True,
                             "tune": {"frames": 3}}
    assert fakes.events == [("plan", 3), ("write_planned", "m.int8.onnx", ["k1", "k2"]), ("run_once", "m.int8.onnx"),
                            ("bench", "fp32.onnx", ["full_int8.onnx", "m.int8.onnx"], 5, True)]
    assert plan.tune == {"frames": 3} and plan.speed[1]["model"] == "full int8 (same calibration)"
    assert plan.speed[2]["model"] == str(tmp_path / "m.int8.onnx")
    written = json.loads((tmp_path / "m.int8.plan.json").read_text())
    assert written == json.loads(json.dumps({**plan.to_dict(), "output": str(tmp_path / "m.int8.onnx"),
                                             "quantize": "int8 m.int8.onnx"}))
    assert (tmp_path / "m.int8.plan.json").read_text() == json.dumps(written, indent=2)
    assert not list(tmp_path.glob("toolkit-plan-bench-*"))


def test_quantize_planned_without_a_bench(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fakes = _Fakes(monkeypatch, [])
    plan = _run(tmp_path, fakes, bench_iterations=0)
    assert plan.speed == [] and not any(e[0] == "bench" for e in fakes.events)
    assert [x["path"].name for x in fakes.quantized] == ["a.onnx", "b.onnx", "m.int8.onnx"]
    assert fakes.quantized[2]["exclude"] == ["ex"] and fakes.events[0] == ("plan", None)
    assert fakes.planner_args["cache_dir"] is None and fakes.planner_args["progress"] is None
    assert fakes.quantized[0]["per_channel"] is True and fakes.quantized[0]["reduce_range"] is None
    once = _Fakes(monkeypatch, [])
    assert len(_run(tmp_path, once, bench_iterations=1).speed) == 3  # one timed call each is still a bench


def test_the_plan_file_is_written_atomically(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fakes = _Fakes(monkeypatch, [])
    target = tmp_path / "m.int8.plan.json"
    target.write_text("previous")
    calls: list[Path] = []

    def failing(path: Path, write: object) -> Path:
        calls.append(Path(path))
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(toolkit.files, "atomic_write", failing)
    with pytest.raises(OSError):
        _run(tmp_path, fakes, bench_iterations=0)
    assert calls == [target] and target.read_text() == "previous"
