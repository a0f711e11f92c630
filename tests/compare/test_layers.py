"""parity --layers: a planted fault (one Conv's weights perturbed) is located at that Conv, an exact copy shows no
divergence, int8 drift is found, and the JSON and HTML carry the per-layer results and a candidate's plan."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper
from typer.testing import CliRunner

from tests.helpers.models import tiny_checkpoint, tiny_onnx
from toolkit.cli.app import app
from toolkit.compare.layers import FLOOR, compare_layers, layer_feeds, module_names
from toolkit.core.onnx_file import load_onnx, save_onnx

PLANTED = "encoder.stage2.1.0"  # a Conv in the middle of the tiny graph


def _planted(model: onnx.ModelProto) -> onnx.ModelProto:
    bad = onnx.ModelProto()
    bad.CopyFrom(model)
    for t in bad.graph.initializer:
        if t.name == PLANTED + ".weight":
            w = numpy_helper.to_array(t)
            t.CopyFrom(numpy_helper.from_array((w * 1.2).astype(np.float32), t.name))
    return bad


@pytest.fixture(scope="module")
def ref(tmp_path_factory: pytest.TempPathFactory) -> onnx.ModelProto:
    return load_onnx(tiny_onnx(tmp_path_factory, "mask"))


def test_planted_fault_found_first(ref: onnx.ModelProto, synthetic_dir: Path) -> None:
    res = compare_layers(ref, _planted(ref), layer_feeds(ref, synthetic_dir, "val", 2))
    fd = res["first_divergence"]
    assert fd["node"] == PLANTED and fd["module"] == PLANTED and fd["op"] == "Conv"
    rows = {r["node"]: r for r in res["layers"]}
    before = [r for r in res["layers"][: [r["node"] for r in res["layers"]].index(PLANTED)]]
    assert before and all(r["rel_error"] == 0 for r in before)
    assert rows[PLANTED]["rel_error"] > FLOOR and rows[PLANTED]["rel_error_boundary"] is not None


def test_exact_copy_shows_no_divergence(ref: onnx.ModelProto, synthetic_dir: Path) -> None:
    copy = onnx.ModelProto()
    copy.CopyFrom(ref)
    res = compare_layers(ref, copy, layer_feeds(ref, synthetic_dir, "val", 2))
    assert res["first_divergence"] is None and res["layers"]
    assert all(r["rel_error"] == 0 and r["snr_db"] is None for r in res["layers"])


def test_module_names_follow_the_convs(ref: onnx.ModelProto) -> None:
    names = module_names(ref)
    convs = [n for n in ref.graph.node if n.op_type == "Conv"]
    assert all(names[n.name] == n.input[1].removesuffix(".weight") for n in convs)
    relu = next(n for n in ref.graph.node if n.op_type == "Relu")
    assert names[relu.name] == "after encoder.stage1.0.0"


def test_parity_layers_cli_json_and_html(tmp_path_factory: pytest.TempPathFactory, ref: onnx.ModelProto,
                                         synthetic_dir: Path, tmp_path: Path) -> None:
    from toolkit.core.metadata import write_props

    bad = _planted(ref)
    write_props(bad, {"mixed_precision_plan": json.dumps({"target": "cpu", "budget": {"max_miou_drop": 1.0},
                                                          "met": True, "kept": [PLANTED], "keep_precision": "fp32",
                                                          "int8_share": 0.9, "reason": "test plan"})})
    save_onnx(bad, tmp_path / "planted.onnx")
    out, html = tmp_path / "p.json", tmp_path / "p.html"
    result = CliRunner().invoke(app, ["parity", "--reference", str(tiny_checkpoint(tmp_path_factory)), "-c",
                                      str(tmp_path / "planted.onnx"), "--data", str(synthetic_dir), "--limit", "2",
                                      "--layers", "--max-miou-drop", "100", "--min-agreement", "0", "--json",
                                      str(out), "--report", str(html)])
    assert result.exit_code == 0, result.output
    assert f"drift starts at {PLANTED}" in result.output
    cand = json.loads(out.read_text())["candidates"][0]
    assert cand["first_divergence"]["node"] == PLANTED and "rule" in cand["first_divergence"]
    assert {"node", "module", "op", "rel_error", "snr_db", "rel_error_boundary", "rel_error_interior"} <= set(
        cand["layers"][0])
    assert cand["plan"]["kept"] == [PLANTED]
    page = html.read_text()
    assert "Per layer vs the fp32 ONNX" in page and "Mixed-precision plan" in page and "test plan" in page
