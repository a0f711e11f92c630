"""Engine sidecar: written atomically beside the engine, read back, and engines from elsewhere refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import onnx_graphs as g
from tests.helpers.trt_engine import ORIN, make_engine
from toolkit.backend.trt.compat import GpuInfo
from toolkit.backend.trt.sidecar import (
    check_sidecar,
    model_meta_from_onnx_metadata,
    read_sidecar,
    sidecar_path,
)
from toolkit.errors import EngineMismatchError


def test_roundtrip_and_location(tmp_path: Path) -> None:
    engine, side = make_engine(tmp_path)
    assert sidecar_path(engine) == tmp_path / "model.engine.json"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.engine", "model.engine.json"]  # no temp files
    raw = json.loads(sidecar_path(engine).read_text())
    for key in ("tensorrt_version", "gpu", "precision", "shapes", "onnx", "plugin_library", "toolkit_version",
                "onnx_metadata", "engine_sha256", "created"):
        assert raw[key], key
    back = read_sidecar(engine)
    assert back == side and back.engine_sha256 == raw["engine_sha256"] and len(back.engine_sha256) == 64


def test_matching_machine_accepted(tmp_path: Path) -> None:
    engine, side = make_engine(tmp_path)
    check_sidecar(engine, read_sidecar(engine), "10.3.0.30", ORIN)  # raises on any mismatch
    assert read_sidecar(engine).gpu == side.gpu == {"name": "Orin (nvgpu)", "compute_capability": "8.7"}


@pytest.mark.parametrize("trt_version,gpu,fragment", [
    ("10.7.0.23", ORIN, "built with TensorRT 10.3.0.30, this machine runs TensorRT 10.7.0.23"),
    ("10.3.0.30", GpuInfo("NVIDIA GeForce RTX 4090", "8.9"), "built for Orin (nvgpu) (compute capability 8.7)"),
    ("10.3.0.30", GpuInfo("Orin (nvgpu)", "8.6"), "this GPU is Orin (nvgpu) (compute capability 8.6)"),
    # same compute capability, another GPU model (an engine is tuned for one model: SM count, clocks, memory)
    ("10.3.0.30", GpuInfo("NVIDIA A10", "8.7"), "this GPU is NVIDIA A10 (compute capability 8.7)"),
])
def test_mismatch_refused(tmp_path: Path, trt_version: str, gpu: GpuInfo, fragment: str) -> None:
    engine, _ = make_engine(tmp_path)
    with pytest.raises(EngineMismatchError) as e:
        check_sidecar(engine, read_sidecar(engine), trt_version, gpu)
    msg = str(e.value)
    assert fragment in msg and "engines are not portable" in msg and "toolkit build-engine" in msg
    assert "\n" not in msg


def test_missing_sidecar_refused(tmp_path: Path) -> None:
    engine = tmp_path / "other.engine"
    engine.write_bytes(b"x")
    assert read_sidecar(engine) is None
    with pytest.raises(EngineMismatchError, match="no sidecar other.engine.json.*--no-sidecar-check"):
        check_sidecar(engine, None, "10.3.0.30", ORIN)


def test_changed_engine_refused(tmp_path: Path) -> None:
    engine, _ = make_engine(tmp_path)
    engine.write_bytes(b"another engine copied over the first")
    with pytest.raises(EngineMismatchError, match="sha256 differs"):
        check_sidecar(engine, read_sidecar(engine), "10.3.0.30", ORIN)
    check_sidecar(engine, read_sidecar(engine), "10.3.0.30", ORIN, check_hash=False)


@pytest.mark.parametrize("content,fragment", [
    ("{not json", "unreadable engine sidecar"),
    ('{"format": "something-else"}', "not a toolkit engine sidecar"),
    ('{"format": "segnet-toolkit/trt-engine-sidecar", "gpu": {}}', "incomplete engine sidecar"),
])
def test_corrupt_sidecar(tmp_path: Path, content: str, fragment: str) -> None:
    engine = tmp_path / "m.plan"
    engine.write_bytes(b"x")
    sidecar_path(engine).write_text(content)
    with pytest.raises(EngineMismatchError, match=fragment):
        read_sidecar(engine)


def test_model_meta_from_onnx_metadata() -> None:
    meta = model_meta_from_onnx_metadata(dict(g.META))
    assert meta is not None and meta.dataset.class_names == ("road", "sky") and meta.input_size == (64, 96)
    assert model_meta_from_onnx_metadata({}) is None
    assert model_meta_from_onnx_metadata({"other.tool": "x"}) is None
    assert model_meta_from_onnx_metadata({**g.META, "toolkit.palette": "[[1, 2"}) is None  # malformed: warned
