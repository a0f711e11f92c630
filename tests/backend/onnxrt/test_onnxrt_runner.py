"""OnnxrtRunner: the Runner interface over ONNX Runtime, metadata into runner.meta on activate(), clear errors;
the one factory's rules for ONNX files (graph optimisation, spinning, thread counts)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from tests.export.helpers import tiny_onnx
from toolkit.backend import RunnerOptions, make_runner
from toolkit.backend.onnxrt.loader import providers_for
from toolkit.backend.onnxrt.runner import OnnxrtRunner
from toolkit.core.onnx_file import save_onnx
from toolkit.errors import InputShapeError, ToolkitError, UnknownNameError


@pytest.fixture(scope="module")
def mask_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_onnx(tmp_path_factory, "mask")


def test_make_runner_dispatches_and_fills_meta(mask_path: Path) -> None:
    runner = make_runner(mask_path, threads=1)
    assert isinstance(runner, OnnxrtRunner) and runner.meta is None  # nothing is read before activate()
    with runner:
        assert runner.meta is not None and runner.meta.num_classes == 6 and runner.info.precision == "fp32"
        info = runner.info
        assert (info.source, info.backend, info.lowering, info.graph_optimization) == (str(mask_path), "onnxrt",
                                                                                       "mask", "all")
        assert info.thread_safe and info.on_cpu and "source_sha256" in info.props
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
    with make_runner(bare) as runner:
        assert runner.meta is None and runner.info.precision == "fp32" and runner.info.lowering == "mask"
        assert runner.infer({"input": np.zeros((1, 3, 8, 8), np.float32)})["logits"].shape == (1, 6, 8, 8)


@pytest.mark.parametrize("content", [b"", b"not an onnx model at all", b"\x08\x07\x12\x03abc\xff\xff"])
def test_not_onnx_is_one_clear_error(tmp_path: Path, content: bytes) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(content)
    with pytest.raises(ToolkitError, match="not an ONNX model"):
        make_runner(bad).activate()


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
def test_spinning_switch(mask_path: Path, spin: bool) -> None:
    """``spin=False`` (what toolkit infer uses) reaches ONNX Runtime's session options; results are the same."""
    x = {"input": np.random.default_rng(0).normal(size=(1, 3, 16, 24)).astype(np.float32)}
    with make_runner(mask_path, RunnerOptions(threads=2, spin=spin)) as runner:
        assert runner.loaded is not None
        options = runner.loaded.session.get_session_options()
        try:
            entry = options.get_session_config_entry("session.intra_op.allow_spinning")
        except Exception:  # onnxruntime raises when the entry was never set (its default: spin)
            entry = None
        assert (entry != "0") if spin else (entry == "0")
        out = runner.infer(x)["logits"]
    with make_runner(mask_path, threads=1) as ref:
        # 1e-5: the same model and kernels, other thread settings; float32 last bits of logits ~10 only
        assert np.allclose(out, ref.infer(x)["logits"], atol=1e-5)


def test_graph_optimisation_is_one_policy(mask_path: Path, tmp_path: Path) -> None:
    """eval/parity/export (which took ONNX Runtime's 'all' for every file) and infer/bench (which took the
    measured choice) now get the same session: 'auto' = 'extended' for CPU int8 maxunpool graphs, else 'all'."""
    from toolkit.backend.onnxrt.loader import ort_graph_optimization
    from toolkit.core.metadata import write_props

    assert ort_graph_optimization("int8", "maxunpool", "cpu") == "extended"
    assert ort_graph_optimization("int8", "maxunpool", "cuda:0") == "all"
    assert ort_graph_optimization("int8", "mask", "cpu") == "all"
    assert ort_graph_optimization("fp32", "maxunpool", "cpu", "basic") == "basic"
    model = onnx.load(str(mask_path))
    write_props(model, {"precision": "int8", "lowering": "maxunpool"})  # int8 maxunpool, as
    fake = save_onnx(model, tmp_path / "int8ish.onnx")  # far as the policy can tell
    with make_runner(fake) as runner:  # the default options, as `toolkit eval` uses them
        assert runner.info.graph_optimization == "extended" and runner.info.precision == "int8"
    with make_runner(fake, graph_opt="all") as runner:
        assert runner.info.graph_optimization == "all"
    with pytest.raises(UnknownNameError, match="Did you mean 'basic'"):
        make_runner(fake, graph_opt="basci")  # refused at once, before anything is loaded


def test_thread_count_refused_where_the_backend_takes_none(tmp_path: Path) -> None:
    """A thread count for an engine or a served model is refused (it was warned about and dropped by one
    factory, refused by the other); options of other backends are unused, so one RunnerOptions fits a mixed list."""
    engine = tmp_path / "m.engine"
    engine.write_bytes(b"x")
    with pytest.raises(ToolkitError, match="takes no thread count"):
        make_runner(engine, threads=2)
    with pytest.raises(ToolkitError, match="takes no thread count"):
        make_runner("triton://127.0.0.1:9/m", threads=2)
    with pytest.raises(ToolkitError, match="expected 1 or more"):
        make_runner(None, threads=0)
    runner = make_runner("triton://127.0.0.1:9/m", RunnerOptions(graph_opt="extended", spin=False))
    assert runner.info.source == "triton://127.0.0.1:9/m" and runner.info.thread_safe
