"""OnnxrtRunner: the Runner interface over ONNX Runtime, metadata into runner.meta, clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from tests.export.helpers import tiny_onnx
from toolkit.backend import make_runner
from toolkit.backend.onnxrt.loader import providers_for
from toolkit.backend.onnxrt.runner import OnnxrtRunner, make_onnxrt_runner
from toolkit.errors import InputShapeError, ToolkitError, UnknownNameError
from toolkit.export.onnx_io import save_onnx


@pytest.fixture(scope="module")
def mask_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_onnx(tmp_path_factory, "mask")


def test_make_runner_dispatches_and_fills_meta(mask_path: Path) -> None:
    runner = make_runner(mask_path, threads=1)
    assert isinstance(runner, OnnxrtRunner)
    assert runner.meta is not None and runner.meta.num_classes == 6 and runner.precision == "fp32"
    with runner:
        (spec,) = runner.input_specs()
        assert spec.name == "input" and spec.shape == (None, 3, None, None)
        out = runner.infer({"input": np.zeros((2, 3, 16, 24), np.float32)})
        assert out["logits"].shape == (2, 6, 16, 24) and out["logits"].dtype == np.float32
        assert runner.last_inference_time is not None and runner.providers == ["CPUExecutionProvider"]
        with pytest.raises(InputShapeError, match="dtype float64"):
            runner.infer({"input": np.zeros((1, 3, 16, 24))})
        with pytest.raises(InputShapeError, match="shape 1x4x16x24"):
            runner.infer({"input": np.zeros((1, 4, 16, 24), np.float32)})


def test_model_without_metadata_runs(mask_path: Path, tmp_path: Path) -> None:
    model = onnx.load(str(mask_path))
    del model.metadata_props[:]
    bare = save_onnx(model, tmp_path / "bare.onnx")
    runner = make_onnxrt_runner(bare)
    assert runner.meta is None and runner.precision == "fp32" and runner.lowering == "mask"
    with runner:
        assert runner.infer({"input": np.zeros((1, 3, 8, 8), np.float32)})["logits"].shape == (1, 6, 8, 8)


@pytest.mark.parametrize("content", [b"", b"not an onnx model at all", b"\x08\x07\x12\x03abc\xff\xff"])
def test_not_onnx_is_one_clear_error(tmp_path: Path, content: bytes) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(content)
    with pytest.raises(ToolkitError, match="not an ONNX model"):
        make_onnxrt_runner(bad)


def test_missing_file_and_unknown_device(tmp_path: Path) -> None:
    with pytest.raises(ToolkitError, match="not found"):
        make_runner(tmp_path / "missing.onnx")
    with pytest.raises(UnknownNameError, match="Did you mean 'cuda'"):
        providers_for("cdua")


def test_missing_provider_is_refused_not_replaced() -> None:
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has CUDA")
    with pytest.raises(ToolkitError, match="lacks"):
        providers_for("cuda")


@pytest.mark.parametrize("spin", [True, False])
def test_open_runner_spinning_switch(mask_path: Path, spin: bool) -> None:
    """``spin=False`` (what toolkit infer uses) reaches ONNX Runtime's session options; results are the same."""
    from toolkit.bench import open_runner

    x = {"input": np.random.default_rng(0).normal(size=(1, 3, 16, 24)).astype(np.float32)}
    with open_runner(mask_path, threads=2, spin=spin) as runner:
        options = runner.loaded.session.get_session_options()  # type: ignore[attr-defined]
        try:
            entry = options.get_session_config_entry("session.intra_op.allow_spinning")
        except Exception:  # onnxruntime raises when the entry was never set (its default: spin)
            entry = None
        assert (entry != "0") if spin else (entry == "0")
        out = runner.infer(x)["logits"]
    with make_runner(mask_path, threads=1) as ref:
        assert np.allclose(out, ref.infer(x)["logits"], atol=1e-5)
