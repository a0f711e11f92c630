"""ParityReport and CandidateResult on their own: judging at the tolerance's edges, NaN in the JSON, and a
save/load round trip (fast, for the mutation run over toolkit/compare/results.py: docs/MUTATION.md)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from toolkit.compare.results import DEFAULT_TOLERANCES, CandidateResult, ParityReport, Tolerance

TOL = Tolerance(max_miou_drop=1.0, min_pixel_agreement=98.0)


def result(delta_miou: float = 0.0, agreement: float = 100.0, **kw: object) -> CandidateResult:
    fields: dict = dict(name="c", path="/m/c.onnx", backend="onnxrt", precision="int8", lowering="mask", miou=50.0,
                        delta_miou=delta_miou, pixel_agreement=agreement, max_abs_logit_diff=0.5,
                        mean_abs_logit_diff=0.01, per_class_iou={"sky": 60.0, "road": float("nan")},
                        per_class_delta_iou={"sky": -0.5, "road": None}, tolerance=TOL)
    return CandidateResult(**{**fields, **kw})


@pytest.mark.parametrize("delta,agreement,failures", [
    (-1.0, 98.0, []),  # exactly at both bounds: passes
    (-1.001, 98.0, ["mIoU drop 1.001 > 1.0"]),
    (-1.0, 97.999, ["pixel agreement 97.999 % < 98.0 %"]),
    (-2.0, 90.0, ["mIoU drop 2.000 > 1.0", "pixel agreement 90.000 % < 98.0 %"]),
    (+5.0, 100.0, []),  # a candidate better than the reference is no failure
])
def test_judge_at_the_bounds(delta: float, agreement: float, failures: list[str]) -> None:
    r = result(delta, agreement)
    r.failures = ["stale"]
    assert r.judge() is r
    assert r.failures == failures and r.passed is (not failures)


def test_report_passes_only_when_every_candidate_does() -> None:
    good, bad = result().judge(), result(-3.0).judge()
    assert ParityReport({}, {}, [good, good], []).passed and bool(ParityReport({}, {}, [good], []))
    assert not ParityReport({}, {}, [good, bad], []) and ParityReport({}, {}, [good, bad], []).passed is False
    assert ParityReport({}, {}, [], []).passed  # nothing to compare: nothing failed


def test_json_has_no_nan_and_round_trips(tmp_path: Path) -> None:
    c = result(float("nan"), 99.5, miou=float("nan")).judge()
    report = ParityReport({"name": "torch:ref", "miou": 50.0}, {"split": "val", "images": 4}, [c], ["sky", "road"],
                          [[1, 2, 3], [4, 5, 6]], command="toolkit parity -c c.onnx", speed=[{"name": "torch"}])
    d = report.to_dict()
    assert d["passed"] is c.passed and d["command"] == "toolkit parity -c c.onnx" and d["speed"] == [{"name": "torch"}]
    assert d["reference"] == {"name": "torch:ref", "miou": 50.0} and d["dataset"] == {"split": "val", "images": 4}
    assert d["class_names"] == ["sky", "road"] and d["palette"] == [[1, 2, 3], [4, 5, 6]]
    (cd,) = d["candidates"]
    assert cd["per_class_iou"] == {"sky": 60.0, "road": None} and cd["per_class_delta_iou"] == {"sky": -0.5,
                                                                                                 "road": None}
    assert cd["miou"] is None and cd["delta_miou"] is None  # NaN (an unlabelled clip) is null, not NaN
    assert cd["tolerance"] == {"max_miou_drop": 1.0, "min_pixel_agreement": 98.0}
    path = report.save(tmp_path / "parity.json")
    assert path == tmp_path / "parity.json" and [p.name for p in tmp_path.iterdir()] == ["parity.json"]
    text = path.read_text()
    assert "NaN" not in text and json.loads(text) == d and text.startswith('{\n  "passed"')  # indented JSON
    back = ParityReport.load(path)
    assert back.command == report.command and back.speed == report.speed and back.palette == report.palette
    assert back.reference == report.reference and back.dataset == report.dataset
    (bc,) = back.candidates
    assert bc.tolerance == TOL and isinstance(bc.tolerance, Tolerance) and bc.passed == c.passed
    assert bc.per_class_iou == {"sky": 60.0, "road": None} and bc.miou is None
    assert bc.name == c.name and bc.failures == c.failures


def test_a_report_without_the_optional_fields_loads(tmp_path: Path) -> None:
    c = result().judge()
    d = ParityReport({}, {}, [c], ["sky"]).to_dict()
    for key in ("palette", "command", "speed"):
        del d[key]
    path = tmp_path / "old.json"
    path.write_text(json.dumps(d))
    back = ParityReport.load(path)
    assert (back.palette, back.command, back.speed) == ([], "", [])
    assert back.class_names == ["sky"] and d["candidates"][0]["miou"] == 50.0  # finite numbers kept as they are
    assert back.candidates[0].delta_miou == 0.0 and ParityReport({}, {}, [result(-0.5)], []).to_dict()[
        "candidates"][0]["delta_miou"] == -0.5


def test_default_tolerances_loosen_with_precision() -> None:
    order = [DEFAULT_TOLERANCES[p] for p in ("fp32", "fp16", "bf16", "int8")]
    assert [t.max_miou_drop for t in order] == sorted(t.max_miou_drop for t in order)
    assert [t.min_pixel_agreement for t in order] == sorted((t.min_pixel_agreement for t in order), reverse=True)
    assert DEFAULT_TOLERANCES["fp32"] == Tolerance(0.01, 99.9) and DEFAULT_TOLERANCES["int8"] == Tolerance(1.0, 98.0)
    assert math.isclose(DEFAULT_TOLERANCES["fp16"].max_miou_drop, 0.1)
