"""The model zoo: names resolve to sha256-verified shipped files, typos get a did-you-mean, the default
follows the device, `toolkit models` lists every entry, and `--model NAME` works in the commands."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from toolkit import zoo
from toolkit.cli.app import app
from toolkit.errors import CheckpointError, ToolkitError, UnknownNameError

runner = CliRunner()
SHARED_W64 = Path(__file__).resolve().parents[1].parent / "shared" / "models" / "enhanced_w64_camvid.safetensors"


def test_every_shipped_file_matches_its_sha256_and_header() -> None:
    from toolkit.checkpoint import read_checkpoint

    assert {"enhanced-w64"} <= set(zoo.zoo_names())
    for entry in zoo.list_zoo():
        path = entry.verified_path()
        _, meta = read_checkpoint(path)
        assert meta.arch in ("enhanced", "segnet") and meta.num_classes == 11
        assert meta.provenance["trained_by"] == "toolkit train"


def test_names_resolve_paths_pass_through_and_typos_get_a_suggestion(tmp_path: Path) -> None:
    r = zoo.resolve_model("enhanced-w64")
    assert r.name == "enhanced-w64" and Path(r.model) == zoo.get_zoo_model("enhanced-w64").path
    f = tmp_path / "mine.safetensors"
    assert zoo.resolve_model(str(f)).model == f  # a file path (even a missing one) is left to the loader
    assert zoo.resolve_model("triton://localhost:8001/segnet").reason == "Triton server"
    with pytest.raises(UnknownNameError, match="Did you mean 'enhanced-w64'"):
        zoo.resolve_model("enhanced-w46")
    with pytest.raises(UnknownNameError, match="toolkit models"):
        zoo.get_zoo_model("nope")


def test_the_default_follows_the_device() -> None:
    gpu, cpu = zoo.resolve_model(None, "cuda"), zoo.resolve_model(None, "cpu")
    assert gpu.name == "enhanced-w64" and "CUDA" in gpu.reason
    assert cpu.name != gpu.name and "CPU" in cpu.reason
    assert zoo.resolve_model(None, "cuda:1").name == gpu.name
    from toolkit.assets import default_checkpoint_path

    assert default_checkpoint_path() == cpu.model


def test_a_modified_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    entry = zoo.get_zoo_model("enhanced-w16" if "enhanced-w16" in zoo.zoo_names() else zoo.zoo_names()[-1])
    copy = tmp_path / entry.file
    shutil.copy(entry.path, copy)
    monkeypatch.setattr(zoo, "ASSETS_DIR", tmp_path)
    assert entry.verified_path() == copy
    data = bytearray(copy.read_bytes())
    data[-1] ^= 0xFF  # one flipped bit in the last weight
    copy.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="does not match its sha256"):
        entry.verified_path()
    copy.unlink()
    with pytest.raises(CheckpointError, match="missing"):
        entry.verified_path()


def test_models_json_lists_every_entry_with_its_figures() -> None:
    result = runner.invoke(app, ["models", "--json", "--verify"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [r["name"] for r in rows] == zoo.zoo_names()
    w64 = next(r for r in rows if r["name"] == "enhanced-w64")
    assert (w64["arch"], w64["width"], w64["input_size"]) == ("enhanced", 64, [360, 480])
    # abs 0.01: the count is analytic (from the layer shapes) and reported to 2 decimals
    assert w64["gflops"] == pytest.approx(96.39, abs=0.01) and 2.7e6 < w64["params"] < 2.8e6
    assert w64["weights_dtype"] in ("f16", "float16") and w64["size_mb"] < 6
    text = runner.invoke(app, ["models"])
    assert text.exit_code == 0 and "default here" in text.output


def test_fp16_weights_of_the_w64_model_are_the_gpu_runs_rounded(tmp_path: Path) -> None:
    """The shipped file is the GPU run's checkpoint with every float tensor rounded to fp16, nothing else."""
    if not SHARED_W64.is_file():
        pytest.skip(f"{SHARED_W64} not present")
    from safetensors.torch import load_file

    src, shipped = load_file(str(SHARED_W64)), load_file(str(zoo.get_zoo_model("enhanced-w64").verified_path()))
    assert src.keys() == shipped.keys()
    for k, v in src.items():
        assert torch.equal(v.half() if v.is_floating_point() else v, shipped[k]), k


def test_model_option_takes_zoo_names_in_export_and_eval(tmp_path: Path, camvid_dir: Path) -> None:
    out = tmp_path / "m.onnx"
    result = runner.invoke(app, ["export", "--model", "enhanced-w16", "-o", str(out), "--no-verify"])
    assert result.exit_code == 0, result.output
    assert out.is_file()
    result = runner.invoke(app, ["eval", "--model", "enhanced-w16", "--data", str(camvid_dir), "--limit", "1"])
    assert result.exit_code == 0 and "enhanced-w16" in result.output
    result = runner.invoke(app, ["infer", "--model", "enhnced-w16", "--source", str(tmp_path)])
    assert result.exit_code == 2 and "Did you mean 'enhanced-w16'" in result.output
    result = runner.invoke(app, ["eval", "enhanced-w16", "--model", "enhanced-w64", "--data", str(camvid_dir)])
    assert result.exit_code == 2 and "two models" in result.output


def test_pick_model_refuses_two_different_models() -> None:
    from toolkit.cli.common import pick_model

    assert pick_model("enhanced-w64", "enhanced-w64", quiet=True).name == "enhanced-w64"
    with pytest.raises(ToolkitError, match="two models"):
        pick_model("enhanced-w64", "x.safetensors", quiet=True)


def test_info_sizes_a_zoo_model_and_names_the_default_here() -> None:
    result = runner.invoke(app, ["info", "--model", "enhanced-w64", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["model"]["width"] == 64 and report["model"]["gflops"] == pytest.approx(96.39, abs=0.01)
    want = "enhanced-w64" if report["system"]["cuda_available"] else zoo.default_zoo_model("cpu").name
    assert report["default_model"]["name"] == want and report["default_model"]["why"]
