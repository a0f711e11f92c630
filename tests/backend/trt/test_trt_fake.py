"""Loader chain and runner logic against stand-ins for TensorRT and cuda-python (tests/backend/trt/trt_fakes.py).

These run everywhere and check our side of the API contract (flags, profiles, timing cache, sidecar,
buffer binding, shape changes, CUDA-graph capture and replay, cleanup); the real-TensorRT tests are in
test_trt_real.py and skip without TensorRT and a GPU.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from tests.backend.trt import onnx_graphs as g
from tests.backend.trt import trt_fakes as fk
from toolkit.backend.trt import loader as ld
from toolkit.backend.trt import plugin_lib as pl
from toolkit.backend.trt import runner as rn
from toolkit.backend.trt.compat import GpuInfo
from toolkit.backend.trt.shapes import parse_shapes
from toolkit.backend.trt.sidecar import EngineMismatchError, read_sidecar
from toolkit.errors import InputShapeError

GPU = GpuInfo("Fake GPU", "8.6")
PROFILE_TEXT = "1x3x8x8:1x3x16x16:2x3x32x32"


@pytest.fixture
def use_trt(monkeypatch: pytest.MonkeyPatch) -> Callable[..., SimpleNamespace]:
    """Install a fake ``tensorrt`` (version chosen by the test) and cudart into the backend modules."""
    monkeypatch.setattr(pl, "_LOADED", {})

    def install(version: str = "10.3.0.30", **kw: object) -> SimpleNamespace:
        trt = fk.make_fake_trt(version, **kw)
        for mod in (ld, rn):
            monkeypatch.setattr(mod, "import_tensorrt", lambda t=trt: t)
        monkeypatch.setattr(rn, "import_cudart", lambda c=trt.cudart: c)
        monkeypatch.setattr(ld, "current_gpu", lambda device=0: GPU)
        return trt

    return install


def build(tmp_path: Path, onnx_model: object = None, plugins: tuple = (), **kw: object) -> Path:
    onnx_path = g.save(onnx_model or g.clean(meta=g.META), tmp_path / "m.onnx")
    built = ld.BuildEngine(ld.NetworkFromOnnx(onnx_path, plugins=plugins), parse_shapes(PROFILE_TEXT), **kw)
    return ld.SaveEngine(built, tmp_path / "m.engine")()


@pytest.mark.parametrize("version,flags,flag_name", [("10.3.0.30", 1 << 1, "STRONGLY_TYPED"),
                                                     ("11.1.0.106", 0, "none (TensorRT 11)")])
def test_build_strongly_typed_per_version(tmp_path: Path, use_trt, version: str, flags: int,
                                          flag_name: str) -> None:
    trt = use_trt(version)
    calls: list[tuple] = []
    engine = build(tmp_path, timing_cache=tmp_path / "t.cache", workspace_mb=256, opt_level=4,
                   progress=lambda *a: calls.append(a))
    assert trt.last.network.flags == flags
    cfg = trt.last.config
    assert cfg.pool_limits == {"WORKSPACE": 256 << 20} and cfg.builder_optimization_level == 4
    assert cfg.profiles[0].shapes["input"] == ((1, 3, 8, 8), (1, 3, 16, 16), (2, 3, 32, 32))
    assert (tmp_path / "t.cache").read_bytes() == b"+tuned"  # new cache serialized after the build
    assert calls[:2] == [("Building engine", 0, 3), ("Tactic search", 0, 2)]
    assert calls[-1] == ("Building engine", 3, 3) and ("Tactic search", 2, 2) in calls
    side = read_sidecar(engine)
    assert side.tensorrt_version == version and side.gpu == GPU.to_dict() and side.precision == "fp32"
    assert side.shapes == {"input": parse_shapes(PROFILE_TEXT).to_dict()}
    assert side.build["network_flag"] == flag_name and side.build["strongly_typed"] is True
    assert len(side.onnx["sha256"]) == 64 and side.onnx_metadata["toolkit.arch"] == "enhanced"
    assert side.plugin_library is None


def test_timing_cache_reused_and_mismatch(tmp_path: Path, use_trt) -> None:
    use_trt()
    cache = tmp_path / "t.cache"
    cache.write_bytes(b"old")
    build(tmp_path, timing_cache=cache)
    assert cache.read_bytes() == b"old+tuned"
    cache.write_bytes(b"BAD")
    with pytest.raises(ld.EngineBuildError, match="another TensorRT version or GPU"):
        build(tmp_path, timing_cache=cache)


def test_parse_and_build_failures(tmp_path: Path, use_trt) -> None:
    use_trt(parse_errors=("node unpool1: Plugin not found",))
    with pytest.raises(ld.EngineBuildError, match="ONNX parser failed: node unpool1: Plugin not found"):
        build(tmp_path)
    use_trt(build_fails=True)
    with pytest.raises(ld.EngineBuildError, match="failed to build an engine"):
        build(tmp_path)
    assert not (tmp_path / "m.engine").exists()


def test_plugin_library_recorded_and_required(tmp_path: Path, use_trt) -> None:
    trt = use_trt()
    lib = tmp_path / pl.LIBRARY_NAME
    lib.write_bytes(b"\x7fELF plugin")
    engine = build(tmp_path, g.plugin(), plugins=(lib,))
    assert trt.last.plugin_loads == [str(lib.resolve())]
    side = read_sidecar(engine)
    assert side.plugin_library["path"] == str(lib.resolve()) and len(side.plugin_library["sha256"]) == 64
    with pytest.raises(Exception, match="pass --plugin LIB or set SEGNET_PLUGIN_LIB"):
        ld.EngineFromPath(engine, plugins=[])()
    handle, _ = ld.EngineFromPath(engine, plugins=[lib])()
    assert handle.num_io_tensors == 2 and trt.last.plugin_loads == [str(lib.resolve())]  # loaded once per process


def test_engine_from_path_checks(tmp_path: Path, use_trt) -> None:
    use_trt("10.3.0.30")
    engine = build(tmp_path)
    use_trt("10.7.0.23")
    with pytest.raises(EngineMismatchError, match="built with TensorRT 10.3.0.30, this machine runs"):
        ld.EngineFromPath(engine)()
    assert ld.EngineFromPath(engine, check_sidecar=False)()[0].num_io_tensors == 2
    use_trt("10.3.0.30")
    with pytest.raises(EngineMismatchError, match="built for Fake GPU"):
        ld.EngineFromPath(engine, gpu=GpuInfo("Other GPU", "8.9"))()
    junk = tmp_path / "junk.engine"
    junk.write_bytes(b"not an engine")
    with pytest.raises(EngineMismatchError, match="no sidecar"):
        ld.EngineFromPath(junk)()
    with pytest.raises(EngineMismatchError, match="could not deserialize"):
        ld.EngineFromPath(junk, check_sidecar=False)()
    with pytest.raises(Exception, match="engine file not found"):
        ld.EngineFromPath(tmp_path / "none.engine")()


def _runner(trt: object, cuda_graph: bool = False) -> rn.TrtRunner:
    return rn.TrtRunner((fk.FakeEngine(trt.cudart), None), cuda_graph=cuda_graph)  # type: ignore[attr-defined]


def test_runner_dynamic_shapes(use_trt) -> None:
    trt = use_trt()
    rng = np.random.default_rng(0)
    with _runner(trt) as r:
        (spec,) = r.input_specs()
        assert spec.name == "input" and spec.shape == (None, 3, None, None)
        allocated = len(trt.cudart.allocs)
        assert allocated == 4  # device + pinned host for input and logits, sized for the max profile shape
        for shape in [(1, 3, 16, 16), (2, 3, 32, 32), (1, 3, 8, 24), (1, 3, 16, 16)]:
            x = rng.standard_normal(shape).astype(np.float32)
            out = r.infer({"input": x})
            assert set(out) == {"logits"} and out["logits"].shape == (shape[0], 2, *shape[2:])
            # the fake computes fk.reference's float32 formula itself: equal up to numpy's summation order (last bits)
            np.testing.assert_allclose(out["logits"], fk.reference(x), rtol=1e-6, atol=1e-5)
        first = r.infer({"input": np.ones((1, 3, 8, 8), np.float32)})["logits"]
        r.infer({"input": np.zeros((1, 3, 8, 8), np.float32)})
        assert first[0, 1, 0, 0] == 2 * 3 + 1  # outputs are copies, not views of the pinned buffer
        with pytest.raises(InputShapeError, match=f"outside the engine's profile {PROFILE_TEXT}"):
            r.infer({"input": np.zeros((4, 3, 16, 16), np.float32)})
        with pytest.raises(InputShapeError, match="dtype float64"):
            r.infer({"input": np.zeros((1, 3, 16, 16))})
        assert len(trt.cudart.allocs) == allocated
    assert trt.cudart.allocs == {} and trt.cudart.streams == 0 and not r.is_active


def test_runner_cuda_graph_replay(use_trt) -> None:
    trt = use_trt()
    rng = np.random.default_rng(1)
    with _runner(trt, cuda_graph=True) as r:
        for i, shape in enumerate([(1, 3, 16, 16)] * 3 + [(2, 3, 32, 32), (1, 3, 16, 16)]):
            x = rng.standard_normal(shape).astype(np.float32)
            # the fake computes fk.reference's float32 formula itself: equal up to numpy's summation order (last bits)
            np.testing.assert_allclose(r.infer({"input": x})["logits"], fk.reference(x), rtol=1e-6, atol=1e-5)
            assert trt.cudart.graph_launches == i + 1
        assert trt.cudart.captures == 2  # one graph per input shape, replayed afterwards
    assert trt.cudart.allocs == {}


def test_make_runner_end_to_end(tmp_path: Path, use_trt, monkeypatch: pytest.MonkeyPatch) -> None:
    from toolkit.backend import make_runner

    use_trt()
    engine = build(tmp_path)
    monkeypatch.delenv(pl.ENV_PLUGIN_LIB, raising=False)
    runner = make_runner(engine, threads=None)
    assert isinstance(runner, rn.TrtRunner) and runner.name == "trt:m.engine"
    with runner:
        assert runner.meta is not None and runner.meta.dataset.class_names == ("road", "sky")
        assert runner.info.precision == "fp32"
        x = np.ones((1, 3, 16, 16), np.float32)
        np.testing.assert_allclose(runner.infer({"input": x})["logits"], fk.reference(x))
    sidecar = json.loads((tmp_path / "m.engine.json").read_text())
    assert sidecar["onnx"]["path"] == str((tmp_path / "m.onnx").resolve())
