"""The runner contract, once, for every backend (in the style of segmentation_models.pytorch's base tester).

``RunnerContract`` (tests/helpers/runner_contract.py) holds the tests; each backend's subclass here sets
what it expects (backend name, thread safety, CPU or not, a valid input shape, classes) and provides a
``runner`` fixture that makes an *inactive* runner through the one factory, ``toolkit.backend.make_runner``.
Subclasses add only their special cases. TensorRT runs against the stand-ins of tests/helpers/trt_fakes.py
(the real engine tests are in test_trt_real.py); Triton needs a live server from ``toolkit serve`` and skips
without the serve extra.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.helpers.models import tiny_checkpoint, tiny_onnx
from tests.helpers.ports import free_ports
from tests.helpers.runner_contract import RunnerContract
from tests.helpers.serve import missing_serve_stack
from tests.helpers.trt_engine import build
from toolkit.backend import BaseRunner, make_runner
from toolkit.backend.base import frame_runner
from toolkit.core.names import INPUT_NAME
from toolkit.errors import InputShapeError


class TestTorchRunner(RunnerContract):
    backend, thread_safe, on_cpu = "torch", True, True

    @pytest.fixture
    def runner(self, tmp_path_factory: pytest.TempPathFactory) -> BaseRunner:
        return make_runner(tiny_checkpoint(tmp_path_factory))


class TestTorchCudaRunner(RunnerContract):
    """fp32 through a captured CUDA graph (the default on CUDA): the same contract; skips without a GPU."""

    backend, thread_safe, on_cpu = "torch", True, False

    @pytest.fixture
    def runner(self, tmp_path_factory: pytest.TempPathFactory) -> BaseRunner:
        import torch

        if not torch.cuda.is_available():
            pytest.skip("no CUDA GPU (torch.cuda.is_available() is False)")
        return make_runner(tiny_checkpoint(tmp_path_factory), device="cuda")


class TestOnnxrtRunner(RunnerContract):
    backend, thread_safe, on_cpu = "onnxrt", True, True

    @pytest.fixture
    def runner(self, tmp_path_factory: pytest.TempPathFactory) -> BaseRunner:
        return make_runner(tiny_onnx(tmp_path_factory, "mask"), threads=1)

    def test_graph_optimisation_is_reported(self, runner: BaseRunner) -> None:
        with runner:
            assert runner.info.graph_optimization == "all" and runner.info.lowering == "mask"


class TestTorchRunnerS2(RunnerContract):
    """The stride-2 stem design (output stride 16) through PyTorch: the same contract at a multiple of 16."""

    backend, thread_safe, on_cpu = "torch", True, True
    shape = (1, 3, 16, 32)

    @pytest.fixture
    def runner(self, tmp_path_factory: pytest.TempPathFactory) -> BaseRunner:
        return make_runner(tiny_checkpoint(tmp_path_factory, "enhanced_s2"))

    def test_stride_from_the_checkpoint(self, runner: BaseRunner) -> None:
        with runner:
            assert runner.meta is not None and runner.meta.output_stride == 16


class TestOnnxrtRunnerS2(RunnerContract):
    """The stride-2 stem design exported (mask lowering) through ONNX Runtime; the stride read from the file."""

    backend, thread_safe, on_cpu = "onnxrt", True, True
    shape = (1, 3, 16, 32)

    @pytest.fixture
    def runner(self, tmp_path_factory: pytest.TempPathFactory) -> BaseRunner:
        return make_runner(tiny_onnx(tmp_path_factory, "mask", "enhanced_s2"), threads=1)

    def test_stride_from_the_onnx_metadata(self, runner: BaseRunner) -> None:
        with runner:
            assert runner.meta is not None and runner.meta.output_stride == 16


class TestTrtRunnerFake(RunnerContract):
    """The fake engine computes logits[:, k] = (k + 1) * sum over channels + k for its two classes."""

    backend, thread_safe, on_cpu = "trt", False, False
    shape = (1, 3, 16, 16)  # inside the fake engine's profile 1x3x8x8 : 2x3x32x32
    num_classes = 2

    @pytest.fixture
    def runner(self, tmp_path: Path, use_trt, monkeypatch: pytest.MonkeyPatch) -> BaseRunner:
        from toolkit.backend.trt import plugin_lib as pl

        use_trt()
        monkeypatch.delenv(pl.ENV_PLUGIN_LIB, raising=False)
        return make_runner(build(tmp_path))

    def test_outside_the_profile_is_refused(self, runner: BaseRunner) -> None:
        with runner, pytest.raises(InputShapeError, match="outside the engine's profile"):
            runner.infer({INPUT_NAME: np.zeros((1, 3, 64, 64), np.float32)})


@pytest.mark.skipif(missing_serve_stack() is not None, reason=str(missing_serve_stack()))
class TestTritonRunner(RunnerContract):
    """A model behind ``toolkit serve``; its tensor model takes the runner's input."""

    backend, thread_safe, on_cpu = "triton", True, False
    shape = (1, 3, 64, 96)

    @pytest.fixture(scope="class")
    def server_url(self, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
        from toolkit.serve.server import SegmentationServer, ServeConfig

        http, grpc, metrics = free_ports(3)
        config = ServeConfig(model=str(tiny_checkpoint(tmp_path_factory)), max_batch=4, http_port=http,
                             grpc_port=grpc, metrics_port=metrics, drain_timeout_s=10)
        with SegmentationServer(config):
            yield f"triton://127.0.0.1:{http}/segnet_tensor"

    @pytest.fixture
    def runner(self, server_url: str) -> BaseRunner:
        return make_runner(server_url)


def test_an_activation_that_returns_no_description_is_refused() -> None:
    """The contract: ``_activate_impl`` returns the model's description; a backend written to the old one
    (setting attributes, returning None) fails on activate(), not later with a half-described runner."""

    class Old(BaseRunner):
        backend = "old"

        def _activate_impl(self):  # type: ignore[no-untyped-def]
            return None

    with pytest.raises(TypeError, match="must return a ModelDescription"):
        Old().activate()


def test_only_runners_that_take_frames_are_frame_runners(tmp_path_factory: pytest.TempPathFactory) -> None:
    with make_runner(tiny_onnx(tmp_path_factory, "mask"), threads=1) as ort, \
            make_runner(tiny_checkpoint(tmp_path_factory)) as cpu_torch:
        assert frame_runner(ort) is None and not hasattr(ort, "infer_frame")
        assert frame_runner(cpu_torch) is None  # PyTorch takes frames on CUDA only
