"""An engine built through the real loader chain on the TensorRT stand-ins (tests/helpers/trt_fakes.py)."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import onnx_graphs as g
from toolkit.backend.trt import loader as ld
from toolkit.backend.trt.compat import GpuInfo
from toolkit.backend.trt.shapes import parse_shapes

GPU = GpuInfo("Fake GPU", "8.6")
PROFILE_TEXT = "1x3x8x8:1x3x16x16:2x3x32x32"


def build(tmp_path: Path, onnx_model: object = None, plugins: tuple = (), **kw: object) -> Path:
    onnx_path = g.save(onnx_model or g.clean(meta=g.META), tmp_path / "m.onnx")
    built = ld.BuildEngine(ld.NetworkFromOnnx(onnx_path, plugins=plugins), parse_shapes(PROFILE_TEXT), **kw)
    return ld.SaveEngine(built, tmp_path / "m.engine")()
