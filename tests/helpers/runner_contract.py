"""The runner contract every backend's runner meets: ``RunnerContract`` holds the tests; each backend's
subclass (tests/backend/test_runner_contract.py, tests/backend/aoti/test_aoti.py) sets what it expects and
provides a ``runner`` fixture that makes an inactive runner through ``toolkit.backend.make_runner``."""

from __future__ import annotations

import numpy as np
import pytest

from toolkit.backend import BaseRunner
from toolkit.backend.base import frame_runner
from toolkit.core.description import ModelDescription
from toolkit.core.names import INPUT_NAME, OUTPUT_NAME
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
