"""Comparator: a PyTorch reference vs ONNX candidates over a whole (synthetic) split."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest

from tests.helpers.models import tiny_checkpoint, tiny_onnx
from toolkit.compare import DEFAULT_TOLERANCES, ParityReport, compare_files, tolerance_for
from toolkit.core.metadata import write_props
from toolkit.core.onnx_file import save_onnx
from toolkit.data import CamVid
from toolkit.errors import ToolkitError
from toolkit.quant import convert_fp16


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    mask = tiny_onnx(tmp_path_factory, "mask")
    fp16 = tmp_path_factory.mktemp("parity") / "fp16.onnx"
    model = onnx.load(str(mask))
    save_onnx(write_props(convert_fp16(model), {"precision": "fp16"}), fp16)
    return {"ckpt": tiny_checkpoint(tmp_path_factory), "mask": mask, "fp16": fp16,
            "maxunpool": tiny_onnx(tmp_path_factory, "maxunpool")}


def test_parity_report(files: dict[str, Path], synthetic_dir: Path, tmp_path: Path) -> None:
    val = CamVid(synthetic_dir, "val")
    report = compare_files(files["ckpt"], [files["mask"], files["maxunpool"], files["fp16"]], val,
                           dataset_info={"split": "val"})
    assert report and report.dataset["images"] == len(val) == 4
    fp32, maxunpool, fp16 = report.candidates
    for c in (fp32, maxunpool):
        assert c.precision == "fp32" and c.passed and abs(c.delta_miou) < 1e-9
        assert c.pixel_agreement == 100.0 and c.max_abs_logit_diff < 1e-4
        assert c.miou == pytest.approx(report.reference["miou"])
    assert fp32.lowering == "mask" and maxunpool.lowering == "maxunpool"
    assert fp32.source_matches is True and report.reference["sha256"]
    assert fp16.precision == "fp16" and fp16.tolerance == DEFAULT_TOLERANCES["fp16"]
    assert 0 < fp16.max_abs_logit_diff < 1 and fp16.mean_abs_logit_diff < fp16.max_abs_logit_diff
    assert set(fp16.per_class_delta_iou) == set(report.class_names)
    saved = report.save(tmp_path / "parity.json")
    data = json.loads(saved.read_text())
    assert data["candidates"][0]["miou"] == fp32.miou and data["candidates"][2]["passed"] == fp16.passed
    assert {"delta_miou", "pixel_agreement", "per_class_delta_iou"} <= set(data["candidates"][1])
    again = ParityReport.load(saved)
    assert again.candidates[2].tolerance == fp16.tolerance and bool(again) == bool(report)


def test_tolerance_failure_is_reported(files: dict[str, Path], synthetic_dir: Path) -> None:
    val = CamVid(synthetic_dir, "val", limit=2)
    report = compare_files(files["ckpt"], [files["fp16"]], val, min_pixel_agreement=100.0001)
    assert not report and not report.candidates[0].passed
    assert "pixel agreement" in report.candidates[0].failures[0]


def test_tolerances_per_precision() -> None:
    assert tolerance_for("fp16").max_miou_drop == 0.1 and tolerance_for("int8").min_pixel_agreement == 98.0
    assert tolerance_for("fp32", max_miou_drop=0.5).max_miou_drop == 0.5


def test_other_classes_are_refused(files: dict[str, Path], synthetic_dir: Path, tmp_path: Path) -> None:
    model = onnx.load(str(files["mask"]))
    names = json.loads({p.key: p.value for p in model.metadata_props}["toolkit.classes"])
    other = save_onnx(write_props(model, {"classes": json.dumps(names[::-1])}), tmp_path / "other.onnx")
    with pytest.raises(ToolkitError, match="classes"):
        compare_files(files["ckpt"], [other], CamVid(synthetic_dir, "val", limit=1))


def test_a_checkpoint_at_another_precision_is_a_candidate(files: dict[str, Path], synthetic_dir: Path) -> None:
    """``ckpt@bf16``: the reference checkpoint itself, run by PyTorch in bf16 (on CUDA one would use @fp16)."""
    val = CamVid(synthetic_dir, "val", limit=2)
    report = compare_files(files["ckpt"], [f"{files['ckpt']}@bf16"], val)
    (bf16,) = report.candidates
    assert bf16.name == "torch:tiny.safetensors@bf16" and bf16.precision == "bf16" and bf16.backend == "torch"
    assert bf16.tolerance == DEFAULT_TOLERANCES["bf16"] and bf16.source_matches is None
    assert 0 < bf16.max_abs_logit_diff < 1 and bf16.sha256 == report.reference["sha256"]
