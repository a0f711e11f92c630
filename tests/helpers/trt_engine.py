"""An engine built through the real loader chain on the TensorRT stand-ins (tests/helpers/trt_fakes.py)."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import onnx_graphs as g
from toolkit.backend.trt import loader as ld
from toolkit.backend.trt.compat import GpuInfo
from toolkit.backend.trt.shapes import parse_shapes
from toolkit.backend.trt.sidecar import Sidecar, write_sidecar

GPU = GpuInfo("Fake GPU", "8.6")
PROFILE_TEXT = "1x3x8x8:1x3x16x16:2x3x32x32"
ORIN = GpuInfo("Orin (nvgpu)", "8.7")


def build(tmp_path: Path, onnx_model: object = None, plugins: tuple = (), **kw: object) -> Path:
    onnx_path = g.save(onnx_model or g.clean(meta=g.META), tmp_path / "m.onnx")
    built = ld.BuildEngine(ld.NetworkFromOnnx(onnx_path, plugins=plugins), parse_shapes(PROFILE_TEXT), **kw)
    return ld.SaveEngine(built, tmp_path / "m.engine")()


def make_engine(tmp_path: Path, data: bytes = b"fake serialized engine") -> tuple[Path, Sidecar]:
    engine = tmp_path / "model.engine"
    engine.write_bytes(data)
    side = Sidecar(tensorrt_version="10.3.0.30", gpu=ORIN.to_dict(), precision="int8",
                   shapes={"input": {"min": [1, 3, 64, 96], "opt": [1, 3, 64, 96], "max": [2, 3, 64, 96]}},
                   onnx={"path": "/x/m.onnx", "sha256": "ab" * 32},
                   plugin_library={"path": "/x/libsegnet_plugins.so", "sha256": "cd" * 32},
                   onnx_metadata=dict(g.META), toolkit_version="0.1.0",
                   build={"strongly_typed": True, "opt_level": 3})
    write_sidecar(engine, side)
    return engine, side
