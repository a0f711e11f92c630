"""The runner contract, once, for every backend (in the style of segmentation_models.pytorch's base tester).

``RunnerContract`` holds the tests; each backend's subclass sets what it expects (backend name, thread
safety, CPU or not, a valid input shape, classes) and provides a ``runner`` fixture that makes an
*inactive* runner through the one factory, ``toolkit.backend.make_runner``. Subclasses add only their
special cases. TensorRT runs against the stand-ins of tests/backend/trt/trt_fakes.py (the real engine
tests are in test_trt_real.py); Triton needs a live server from ``toolkit serve`` and skips without the
serve extra.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.backend.trt.test_trt_fake import build, use_trt  # noqa: F401  (use_trt: a fixture)
from tests.export.helpers import tiny_checkpoint, tiny_onnx
from tests.serve.conftest import free_ports, missing_serve_stack
from toolkit.backend import BaseRunner, make_runner
from toolkit.backend.base import INPUT_NAME, OUTPUT_NAME, frame_runner
from toolkit.core.description import ModelDescription
from toolkit.data import synthetic_info
from toolkit.errors import InputShapeError, ToolkitError


class RunnerContract:
    """What every runner does; subclasses set the attributes and the ``runner`` fixture."""

    backend: str
    thread_safe: bool
    on_cpu: bool
    shape: tuple[int, int, int, int] = (1, 3, 16, 24)
    num_classes = synthetic_info().num_classes

    @pytest.fixture
    def runner(self) -> BaseRunner:
        raise NotImplementedError

    def feed(self, seed: int = 0) -> dict[str, np.ndarray]:
        return {INPUT_NAME: np.random.default_rng(seed).standard_normal(self.shape).astype(np.float32)}

    def test_nothing_happens_before_activate(self, runner: BaseRunner) -> None:
        assert not runner.is_active and runner.meta is None  # the model is read on activate(), once
        with pytest.raises(ToolkitError, match="not active"):
            runner.infer(self.feed())
        with pytest.raises(ToolkitError, match="not active"):
            runner.input_specs()

    def test_activation_describes_the_runner(self, runner: BaseRunner) -> None:
        with runner:
            info = runner.info
            assert runner.meta is not None and runner.meta.num_classes == self.num_classes
            assert (info.backend, info.name, info.precision) == (self.backend, runner.name, "fp32")
            assert info.thread_safe is self.thread_safe and info.on_cpu is self.on_cpu
            assert info.source and info.source == runner.source
        assert not runner.is_active

    def test_the_description_is_returned_by_activation_and_read_only(self, runner: BaseRunner) -> None:
        with runner:
            d = runner.description
            assert isinstance(d, ModelDescription) and runner.meta is d.meta
            assert (runner.info.precision, runner.info.lowering, runner.info.props) == (d.precision, d.lowering,
                                                                                       d.props)
            with pytest.raises(AttributeError):
                runner.meta = None  # type: ignore[misc]
            assert not hasattr(runner, "precision")  # one place to read it: runner.info.precision
            assert runner.info.frames_on_device is (frame_runner(runner) is not None)

    def test_infer(self, runner: BaseRunner) -> None:
        with runner:
            (spec,) = runner.input_specs()
            assert spec.name == INPUT_NAME and spec.dtype == np.float32 and len(spec.shape) == 4
            out = runner.infer(self.feed())
            assert set(out) == {OUTPUT_NAME}
            n, _, h, w = self.shape
            assert out[OUTPUT_NAME].shape == (n, self.num_classes, h, w) and out[OUTPUT_NAME].dtype == np.float32
            assert runner.last_inference_time is not None and runner.last_inference_time >= 0

    def test_bad_feeds_are_refused_before_the_backend(self, runner: BaseRunner) -> None:
        x = self.feed()[INPUT_NAME]
        with runner:
            with pytest.raises(InputShapeError, match="expects inputs"):
                runner.infer({"image": x})
            with pytest.raises(InputShapeError, match="dtype float64"):
                runner.infer({INPUT_NAME: x.astype(np.float64)})
            with pytest.raises(InputShapeError, match="shape"):
                runner.infer({INPUT_NAME: x[0]})

    def test_reactivation_gives_the_same_outputs(self, runner: BaseRunner) -> None:
        with runner:
            first = runner.infer(self.feed(1))[OUTPUT_NAME]
        with runner:
            again = runner.infer(self.feed(1))[OUTPUT_NAME]
        # 1e-6: the same runner re-activated on the same input; room only for a backend that re-picks kernels (float32
        # last bits)
        np.testing.assert_allclose(first, again, rtol=1e-6, atol=1e-6)


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


class TestTrtRunnerFake(RunnerContract):
    """The fake engine computes logits[:, k] = (k + 1) * sum over channels + k for its two classes."""

    backend, thread_safe, on_cpu = "trt", False, False
    shape = (1, 3, 16, 16)  # inside the fake engine's profile 1x3x8x8 : 2x3x32x32
    num_classes = 2

    @pytest.fixture
    def runner(self, tmp_path: Path, use_trt, monkeypatch: pytest.MonkeyPatch) -> BaseRunner:  # noqa: F811
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
