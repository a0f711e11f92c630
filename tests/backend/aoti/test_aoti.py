"""AOTInductor packages: the sidecar's refusals (fast, on a stand-in file); one real static-shape CPU build of a
tiny model, loaded and compared with the checkpoint (in the default suite); then a dynamic-shape build through
``toolkit build-engine --backend aoti``, once per session (slow: AOTInductor compiles C++ for minutes on 2 cores),
loaded through the factory and compared with the PyTorch runner, bench and parity."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from tests.helpers.models import tiny_checkpoint
from tests.helpers.runner_contract import RunnerContract
from toolkit.backend import BaseRunner, make_runner
from toolkit.backend.aoti.package import PackageSidecar, here_for, write_package_sidecar
from toolkit.backend.trt.sidecar import sidecar_path
from toolkit.cli.app import app
from toolkit.core.meta import ModelMeta
from toolkit.core.names import INPUT_NAME, OUTPUT_NAME
from toolkit.data import synthetic_info
from toolkit.errors import PackageMismatchError, ToolkitError

cli = CliRunner()
SHAPES = "1x3x16x24:1x3x32x48:3x3x64x96"  # dynamic batch, H and W
ATOL = 1e-4  # fp32 package vs fp32 eager: same math, other kernels (folded BatchNorm, fused pointwise ops)


def _fake_package(folder: Path, **edits: object) -> Path:
    """A stand-in .pt2 with a sidecar as this machine would write it, then ``edits`` applied to the sidecar."""
    package = folder / "fake.pt2"
    package.write_bytes(b"not a real package")
    sidecar = PackageSidecar(**here_for(torch.device("cpu")), precision="fp32",
                             shapes={"min": [1, 3, 16, 24], "opt": [1, 3, 16, 24], "max": [1, 3, 16, 24]},
                             model_meta=ModelMeta("enhanced", 4, synthetic_info(), input_size=(16, 24)).to_json())
    write_package_sidecar(package, sidecar)
    d = json.loads(sidecar_path(package).read_text())
    d.update(edits)
    sidecar_path(package).write_text(json.dumps(d))
    return package


@pytest.mark.parametrize(("edits", "message"), [
    ({"torch_version": "2.99.0"}, "built with torch 2.99.0, this process runs torch"),
    ({"device": "cuda"}, "built for --device cuda, asked to run on --device cpu; pass --device cuda"),
    ({"cpu_isa": "avx512"}, "compiled for avx512, this CPU runs"),
    ({"package_sha256": "0" * 64}, "the file changed since its sidecar was written"),
    ({"format": "something else"}, "unreadable package sidecar"),
])
def test_a_foreign_package_is_refused_in_one_line(tmp_path: Path, edits: dict, message: str) -> None:
    runner = make_runner(_fake_package(tmp_path, **edits))
    with pytest.raises(PackageMismatchError, match=message):
        runner.activate()
    result = cli.invoke(app, ["bench", "-m", str(tmp_path / "fake.pt2"), "--input-shape", "1x3x16x24"])
    assert result.exit_code == 2 and message.split(",")[0] in result.output and "Traceback" not in result.output


def test_a_package_without_sidecar_or_not_a_package(tmp_path: Path) -> None:
    package = _fake_package(tmp_path)
    with pytest.raises(ToolkitError, match="not a loadable AOTInductor package"):
        make_runner(package).activate()  # the sidecar matches; the bytes are not a package
    sidecar_path(package).unlink()
    with pytest.raises(PackageMismatchError, match="no sidecar fake.pt2.json beside it"):
        make_runner(package).activate()


def test_build_engine_refuses_what_aoti_cannot_build(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    ckpt = tiny_checkpoint(tmp_path_factory)
    onnx = tmp_path / "m.onnx"
    onnx.write_bytes(b"x")
    for args, message in [
        (["-m", str(onnx), "--backend", "aoti"], "--backend aoti compiles a checkpoint"),
        (["-m", str(ckpt), "--backend", "aot"], "--backend aot: "),
        (["-m", str(ckpt), "--backend", "aoti", "--precision", "int8"], "a package is built in one of"),
        (["-m", str(ckpt), "--backend", "aoti", "-o", str(tmp_path / "m.engine")], "packages end in .pt2"),
        (["-m", str(ckpt), "--backend", "aoti", "--shapes", "1x3x16x24", "--input-shape", "1x3x16x24"], "pass one"),
        (["-m", str(ckpt), "--backend", "aoti", "--shapes", "1x3x17x24"], "multiples of 8"),
        (["-m", str(onnx), "--precision", "fp16"], "--precision fp16: applies to --backend aoti"),
        (["-m", str(onnx), "--device", "cuda"], "--device cuda: applies to --backend aoti"),
        (["-m", str(ckpt), "--backend", "aoti", "--dry-run"], "--dry-run: applies to TensorRT engines"),
    ]:
        result = cli.invoke(app, ["build-engine", *args])
        assert result.exit_code == 2 and message in result.output, (args, result.output)
    assert not list(tmp_path.glob("*.pt2*"))


def test_a_static_package_builds_loads_and_matches_the_checkpoint(tmp_path: Path,
                                                                  tmp_path_factory: pytest.TempPathFactory) -> None:
    """The one real build the default suite runs: one static shape, the smallest compile (35 s measured here on
    2 busy cores, against 120-170 s for the dynamic profile of the slow tests): build, load through the factory,
    the checkpoint's logits within ATOL, and any other shape refused in one line."""
    ckpt = tiny_checkpoint(tmp_path_factory)
    out = tmp_path / "static.pt2"
    result = cli.invoke(app, ["build-engine", "-m", str(ckpt), "--backend", "aoti", "--input-shape", "1x3x32x48",
                              "-o", str(out)])
    assert result.exit_code == 0, result.output
    feed = {INPUT_NAME: np.random.default_rng(1).standard_normal((1, 3, 32, 48)).astype(np.float32)}
    with make_runner(out) as aoti, make_runner(ckpt) as eager:
        assert aoti.info.backend == "aoti"
        np.testing.assert_allclose(aoti.infer(feed)[OUTPUT_NAME], eager.infer(feed)[OUTPUT_NAME], atol=ATOL, rtol=0)
        with pytest.raises(ToolkitError, match="outside the package's shapes"):
            aoti.infer({INPUT_NAME: np.zeros((1, 3, 64, 96), np.float32)})


@pytest.fixture(scope="session")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny checkpoint compiled once for the CPU, through the CLI, with dynamic batch and H/W."""
    ckpt = tiny_checkpoint(tmp_path_factory)
    out = tmp_path_factory.mktemp("aoti") / "tiny.pt2"
    result = cli.invoke(app, ["build-engine", "-m", str(ckpt), "--backend", "aoti", "--shapes", SHAPES, "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in result.output
    return out


@pytest.mark.slow
def test_the_package_runs_like_the_checkpoint(package: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    sidecar = json.loads(sidecar_path(package).read_text())
    assert sidecar["torch_version"] == torch.__version__ and sidecar["device"] == "cpu"
    assert sidecar["precision"] == "fp32" and sidecar["shapes"]["max"] == [3, 3, 64, 96]
    assert sidecar["source"]["sha256"] and sidecar["package_sha256"]
    ckpt = tiny_checkpoint(tmp_path_factory)
    rng = np.random.default_rng(0)
    with make_runner(package) as aoti, make_runner(ckpt) as eager:
        info = aoti.info
        assert (info.backend, info.precision, info.on_cpu, info.source) == ("aoti", "fp32", True, str(package))
        assert aoti.meta is not None and aoti.meta.num_classes == eager.meta.num_classes  # type: ignore[union-attr]
        for shape in [(1, 3, 32, 48), (3, 3, 64, 96), (2, 3, 16, 24)]:  # the profile's opt, max, and in between
            feed = {INPUT_NAME: rng.standard_normal(shape).astype(np.float32)}
            got, want = aoti.infer(feed)[OUTPUT_NAME], eager.infer(feed)[OUTPUT_NAME]
            assert got.shape == want.shape and got.dtype == np.float32
            np.testing.assert_allclose(got, want, atol=ATOL, rtol=0)
        with pytest.raises(ToolkitError, match="outside the package's shapes 1x3x16x24:1x3x32x48:3x3x64x96"):
            aoti.infer({INPUT_NAME: np.zeros((4, 3, 64, 96), np.float32)})
    with pytest.raises(ToolkitError, match="--precision fp16 applies to PyTorch checkpoints only"):
        make_runner(package, precision="fp16")


@pytest.mark.slow
def test_bench_and_parity_take_the_package(package: Path, synthetic_dir: Path,
                                           tmp_path_factory: pytest.TempPathFactory) -> None:
    ckpt = str(tiny_checkpoint(tmp_path_factory))
    result = cli.invoke(app, ["bench", "-m", str(package), "-m", ckpt, "--input-shape", "2x3x32x48",
                              "--iterations", "3", "--compare"])
    assert result.exit_code == 0, result.output
    assert "aoti:tiny.pt2" in result.output
    report = package.parent / "parity.json"
    result = cli.invoke(app, ["parity", "--reference", ckpt, "-c", str(package), "--data", str(synthetic_dir),
                              "--json", str(report)])
    assert result.exit_code == 0, result.output
    candidate = json.loads(report.read_text())["candidates"][0]
    assert candidate["pixel_agreement"] >= 99.9


@pytest.mark.slow
class TestAotiRunner(RunnerContract):
    """The runner contract on the session's CPU package (its profile covers the contract's 1x3x16x24)."""

    backend, thread_safe, on_cpu = "aoti", True, True

    @pytest.fixture
    def runner(self, package: Path) -> BaseRunner:
        return make_runner(package)
