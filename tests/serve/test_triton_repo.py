"""`toolkit export-triton`: the repository layout, and every config.pbtxt parsed with Triton's own protobuf
(tritonclient's model_config_pb2) and checked against the ONNX model's tensors."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import onnx
import pytest
from typer.testing import CliRunner

from tests.serve.conftest import missing_serve_stack
from toolkit.cli.app import app
from toolkit.errors import ToolkitError
from toolkit.serve.triton_repo import onnx_signature, parse_config, plan_models, write_repository

runner = CliRunner()


def _has_model_config_pb2() -> str | None:
    try:
        from tritonclient.grpc import model_config_pb2  # noqa: F401
    except Exception as e:
        return f"tritonclient[grpc] not importable ({type(e).__name__}: {e}); {missing_serve_stack() or ''}"
    return None


needs_pb2 = pytest.mark.skipif(_has_model_config_pb2() is not None, reason=str(_has_model_config_pb2()))


def test_onnx_signature_reads_names_shapes_and_metadata(tiny_onnx: Path) -> None:
    inputs, outputs, meta = onnx_signature(tiny_onnx)
    assert [(i.name, i.data_type, i.dims[:2]) for i in inputs] == [("input", "TYPE_FP32", [-1, 3])]
    assert outputs[0].name == "logits" and outputs[0].dims[0] == -1
    if meta is not None:  # written by toolkit.export
        assert meta.num_classes == outputs[0].dims[1] and meta.input_size == (64, 96)


@needs_pb2
def test_repository_configs_parse_with_tritons_protobuf(tiny_onnx: Path, tmp_path: Path) -> None:
    models = plan_models([tiny_onnx], name="segnet", max_batch=16)
    (config_path,) = write_repository(models, tmp_path / "repo", instances=2, max_queue_delay_us=500)
    folder = config_path.parent
    assert folder.name == "segnet_onnx" and (folder / "1" / "model.onnx").read_bytes() == tiny_onnx.read_bytes()
    cfg = parse_config(config_path)
    assert cfg.name == "segnet_onnx" and cfg.platform == "onnxruntime_onnx"
    assert cfg.max_batch_size == 16 and cfg.dynamic_batching.max_queue_delay_microseconds == 500
    assert [(g.count, g.kind) for g in cfg.instance_group] == [(2, cfg.instance_group[0].KIND_CPU)]
    graph = onnx.load(str(tiny_onnx), load_external_data=False).graph
    for tensors, values in ((cfg.input, graph.input), (cfg.output, graph.output)):
        assert [t.name for t in tensors] == [v.name for v in values]
        for t, v in zip(tensors, values, strict=True):
            onnx_dims = [d.dim_value if d.HasField("dim_value") else -1 for d in v.type.tensor_type.shape.dim]
            assert list(t.dims) == onnx_dims[1:]  # the batch dimension belongs to max_batch_size
            assert t.data_type == 11  # TYPE_FP32
    _, _, meta = onnx_signature(tiny_onnx)
    if meta is not None:
        assert json.loads(cfg.parameters["toolkit_meta"].string_value)["dataset"]["class_names"] == list(
            meta.dataset.class_names)
        assert (folder / "labels.txt").read_text().split() == list(meta.dataset.class_names)
        assert cfg.output[0].label_filename == "labels.txt"


@needs_pb2
def test_static_batch_model_gets_no_batching(tiny_onnx: Path, tmp_path: Path) -> None:
    model = onnx.load(str(tiny_onnx))
    for v in list(model.graph.input) + list(model.graph.output):
        v.type.tensor_type.shape.dim[0].dim_value = 1
    static = tmp_path / "static.onnx"
    onnx.save(model, str(static))
    (config_path,) = write_repository(plan_models([static], name="s"), tmp_path / "repo")
    cfg = parse_config(config_path)
    assert cfg.max_batch_size == 0 and not cfg.HasField("dynamic_batching") and list(cfg.input[0].dims)[:2] == [1, 3]


def test_engine_takes_io_from_its_onnx_and_profile(tiny_onnx: Path, tmp_path: Path) -> None:
    engine = tmp_path / "m.engine"
    engine.write_bytes(b"not a real engine")  # only copied, never deserialized here
    lib = tmp_path / "libsegnet_plugins.so"
    lib.write_bytes(b"\x7fELF")
    engine.with_name("m.engine.json").write_text(json.dumps({
        "onnx": {"path": str(tiny_onnx)}, "shapes": {"input": {"min": [1, 3, 64, 96], "opt": [2, 3, 64, 96],
                                                                "max": [4, 3, 64, 96]}}}))
    (m,) = plan_models([engine], name="segnet", max_batch=8, plugin_lib=lib)
    assert m.platform == "tensorrt_plan" and m.kind == "KIND_GPU" and m.max_batch == 4
    assert m.inputs[0].dims == [-1, 3, 64, 96]
    configs = write_repository([m], tmp_path / "repo")
    assert (tmp_path / "repo" / "plugins" / lib.name).is_file()
    assert (tmp_path / "repo" / "segnet_trt" / "1" / "model.plan").read_bytes() == b"not a real engine"
    if _has_model_config_pb2() is None:
        cfg = parse_config(configs[0])
        assert cfg.platform == "tensorrt_plan" and cfg.max_batch_size == 4 and list(cfg.input[0].dims) == [3, 64, 96]
        assert cfg.instance_group[0].kind == cfg.instance_group[0].KIND_GPU


def test_bad_sources_are_one_clear_error(tiny_onnx: Path, tmp_path: Path) -> None:
    with pytest.raises(ToolkitError, match="export it first"):
        plan_models([tmp_path / "m.safetensors"])
    with pytest.raises(ToolkitError, match="file not found"):
        plan_models([tmp_path / "missing.onnx"])
    lone = tmp_path / "lone.engine"
    lone.write_bytes(b"x")
    with pytest.raises(ToolkitError, match="pass the ONNX it was built from"):
        plan_models([lone])
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00garbage")
    with pytest.raises(ToolkitError, match="not a readable ONNX model"):
        plan_models([junk])


def test_export_triton_cli(tiny_onnx: Path, tmp_path: Path) -> None:
    out = tmp_path / "repo"
    result = runner.invoke(app, ["export-triton", str(tiny_onnx), "-o", str(out), "--max-batch", "4"])
    assert result.exit_code == 0, result.output
    assert "segnet_onnx: onnxruntime_onnx" in result.output and (out / "segnet_onnx" / "config.pbtxt").is_file()
    again = runner.invoke(app, ["export-triton", str(tiny_onnx), "-o", str(out)])
    assert again.exit_code == 2 and "--overwrite" in again.output
    assert runner.invoke(app, ["export-triton", str(tiny_onnx), "-o", str(out), "--overwrite"]).exit_code == 0


def test_onnx_from_repository_runs_like_the_checkpoint(tiny_onnx: Path, tiny_checkpoint: Path, tmp_path: Path) -> None:
    """The copied model file is the exported one: ONNX Runtime on it matches PyTorch on the checkpoint."""
    ort = pytest.importorskip("onnxruntime")
    from toolkit.backend import make_runner

    (config_path,) = write_repository(plan_models([tiny_onnx]), tmp_path / "repo")
    sess = ort.InferenceSession(str(config_path.parent / "1" / "model.onnx"), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal((2, 3, 64, 96)).astype(np.float32)
    with make_runner(str(tiny_checkpoint)) as torch_runner:
        ref = torch_runner.infer({"input": x})["logits"]
    # 1e-4: fp32 ONNX Runtime vs fp32 PyTorch on the same weights, the bound tests/export/test_export.py holds every
    # export to
    np.testing.assert_allclose(sess.run(None, {"input": x})[0], ref, rtol=1e-4, atol=1e-4)


def test_overwrite_never_deletes_its_own_input(tiny_onnx: Path, tmp_path: Path) -> None:
    out = tmp_path / "repo"
    assert runner.invoke(app, ["export-triton", str(tiny_onnx), "-o", str(out)]).exit_code == 0
    inside = out / "segnet_onnx" / "1" / "model.onnx"
    before = inside.read_bytes()
    result = runner.invoke(app, ["export-triton", str(inside), "-o", str(out), "--overwrite"])
    assert result.exit_code == 2 and "holds the input" in result.output, result.output
    assert inside.read_bytes() == before


def test_repository_files_are_readable_by_other_users(tiny_onnx: Path, tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        (config,) = write_repository(plan_models([tiny_onnx]), tmp_path / "repo")
    finally:
        os.umask(old)
    for f in (config, config.parent / "1" / "model.onnx"):
        assert f.stat().st_mode & 0o777 == 0o644, f
