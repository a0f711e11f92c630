"""``toolkit parity --report --json --bench`` on synthetic data with tiny models: the HTML and the JSON hold
the same where-it-changed data, and the speed of one interleaved run."""

from __future__ import annotations

import json
import re
from pathlib import Path

import onnx
import pytest
from typer.testing import CliRunner

from tests.helpers.models import tiny_checkpoint, tiny_onnx
from toolkit.cli.app import app
from toolkit.core.metadata import write_props
from toolkit.core.onnx_file import save_onnx
from toolkit.quant import convert_fp16


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    mask = tiny_onnx(tmp_path_factory, "mask")
    fp16 = tmp_path_factory.mktemp("report_cli") / "fp16.onnx"
    save_onnx(write_props(convert_fp16(onnx.load(str(mask))), {"precision": "fp16"}), fp16)
    return tiny_checkpoint(tmp_path_factory), mask, fp16


def test_parity_report_json_and_bench(models: tuple[Path, Path, Path], synthetic_dir: Path, tmp_path: Path) -> None:
    ckpt, mask, fp16 = models
    html, js = tmp_path / "out" / "report.html", tmp_path / "p.json"
    result = CliRunner().invoke(app, ["parity", "--reference", str(ckpt), "-c", str(mask), "-c", str(fp16), "--data",
                                      str(synthetic_dir), "--report", str(html), "--json", str(js), "--worst", "2",
                                      "--band", "2", "--bench", "--bench-iterations", "2"])
    assert result.exit_code == 0, result.output
    assert f"wrote {html}" in result.output
    data = json.loads(js.read_text())
    assert data["command"].startswith("toolkit parity") and "--report" in data["command"]
    assert "--bench-iterations 2" in data["command"] and "--bench" in data["command"].split()
    assert [s["name"] for s in data["speed"]] == [data["reference"]["name"]] + [c["name"] for c in data["candidates"]]
    assert data["speed"][0]["ratio"] is None and data["speed"][1]["iterations"] == 2
    assert data["reference"]["band_px"] == 2 and len(data["reference"]["label_pixels"]) == len(data["class_names"])
    fp32, half = data["candidates"]
    for c in (fp32, half):
        drift = c["drift"]
        assert c["sha256"] and len(c["sha256"]) == 64
        assert len(drift["worst_frames"]) == 2 and drift["band_px"] == 2
        assert drift["pixels"] == 4 * 64 * 96  # 4 val frames at label resolution
        k = len(data["class_names"])
        assert len(drift["confusion_difference"]) == k and sum(map(sum, drift["confusion_difference"])) == 0
        assert sum(map(sum, drift["transitions"])) == drift["pixels"]
    assert fp32["drift"]["changed_pixels"] == 0 and fp32["drift"]["boundary_share"] is None
    assert fp32["drift"]["delta_miou_band"] == 0
    assert half["drift"]["changed_pixels"] == round(half["drift"]["pixels"] * (1 - half["pixel_agreement"] / 100))
    page = html.read_text(encoding="utf-8")
    assert data["command"].replace("'", "&#x27;") in page or data["command"] in page
    assert fp16.name in page and half["sha256"][:16] in page and "Speed" in page
    assert len(re.findall(r'<img src="data:image/png;base64,', page)) == 2 * 2 * 4


def test_failed_parity_still_writes_the_report(models: tuple[Path, Path, Path], synthetic_dir: Path,
                                               tmp_path: Path) -> None:
    """Exit 1 on a tolerance, and the report is there to say where: what a failing CI job needs most."""
    ckpt, _, fp16 = models
    html = tmp_path / "failed.html"
    result = CliRunner().invoke(app, ["parity", "--reference", str(ckpt), "-c", str(fp16), "--data", str(synthetic_dir),
                                      "--limit", "2", "--min-agreement", "100.5", "--report", str(html)])
    assert result.exit_code == 1 and "parity failed" in result.output
    assert "where the class maps changed" in result.output
    assert '<span class="fail">FAIL</span>' in html.read_text(encoding="utf-8")
