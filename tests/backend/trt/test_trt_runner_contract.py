"""TrtRunner's side of the TensorRT/cuda-python contract that the end-to-end fake tests leave open.

Written from the mutation run over toolkit/backend/trt/runner.py (docs/MUTATION.md): each test fails on a
mutant that passed test_trt_fake.py and test_trt_fake_semantics.py: the device and stream asked for,
the sidecar's description, the error for each engine the runner cannot drive, capture failure falling
back to plain enqueues once, graphs destroyed at deactivate, and the shape set once per change.
"""
# ruff: noqa: F811  (pytest fixtures are parameters named like the imported fixture)

from __future__ import annotations

import logging
import re

import numpy as np
import pytest

from tests.backend.trt import onnx_graphs as g
from tests.backend.trt import trt_fakes as fk
from tests.backend.trt.test_trt_fake import use_trt  # noqa: F401  (a fixture)
from toolkit.backend.trt import runner as rn
from toolkit.backend.trt.compat import GpuInfo
from toolkit.backend.trt.sidecar import Sidecar
from toolkit.errors import InputShapeError, ToolkitError

SHAPE = (1, 3, 8, 8)


def _runner(engine: fk.FakeEngine, **kw: object) -> rn.TrtRunner:
    return rn.TrtRunner((engine, None), **kw)  # type: ignore[arg-type]


def test_runner_sets_the_device_asked_for_and_a_non_blocking_stream(use_trt) -> None:
    trt = use_trt()
    with _runner(fk.FakeEngine(trt.cudart)):
        pass
    with _runner(fk.FakeEngine(trt.cudart), device=1):
        pass
    calls = [c for c in trt.cudart.calls if c[0] in ("cudaSetDevice", "cudaStreamCreateWithFlags")]
    # device 0 by default; a non-blocking stream does not serialise with the legacy default stream
    assert calls == [("cudaSetDevice", 0), ("cudaStreamCreateWithFlags", trt.cudart.cudaStreamNonBlocking),
                     ("cudaSetDevice", 1), ("cudaStreamCreateWithFlags", trt.cudart.cudaStreamNonBlocking)]


def test_runner_describes_the_model_from_the_sidecar(use_trt) -> None:
    trt = use_trt()
    props = {**g.META, "lowering": "maxunpool"}
    side = Sidecar(tensorrt_version="10.3.0.30", gpu=GpuInfo("Fake GPU", "8.6").to_dict(), precision="fp16",
                   shapes={}, onnx_metadata=props)
    r = rn.TrtRunner((fk.FakeEngine(trt.cudart), side), source="/x/m.engine")
    with r:
        info = r.info
    assert (info.source, info.precision, info.lowering) == ("/x/m.engine", "fp16", "maxunpool")
    assert info.props == props and r.meta is not None and r.meta.dataset.class_names == ("road", "sky")
    with _runner(fk.FakeEngine(trt.cudart)) as bare:  # no sidecar, no source: nothing made up
        assert (bare.info.source, bare.info.lowering, bare.info.props) == ("", "", {})
    side.onnx_metadata = dict(g.META)  # an ONNX without the key: no lowering, not a made-up one
    with rn.TrtRunner((fk.FakeEngine(trt.cudart), side)) as r2:
        assert r2.info.lowering == ""


def test_a_deactivated_runner_holds_no_handles_and_destroys_its_graphs(use_trt) -> None:
    trt = use_trt()
    r = _runner(fk.FakeEngine(trt.cudart), cuda_graph=True)
    with r:
        for shape in (SHAPE, (1, 3, 16, 16)):
            r.infer({"input": np.ones(shape, np.float32)})
        assert len(trt.cudart.graphs) == 4  # a graph and its executable per shape
    assert trt.cudart.graphs == {}  # every graph and graph exec destroyed, none leaked
    assert (r.engine, r.context, r._cudart, r._stream) == (None, None, None, None)


def test_without_cuda_graph_nothing_is_captured(use_trt) -> None:
    trt = use_trt()
    with _runner(fk.FakeEngine(trt.cudart)) as r:
        for _ in range(3):
            r.infer({"input": np.ones(SHAPE, np.float32)})
    assert trt.cudart.captures == 0 and trt.cudart.graph_launches == 0
    assert not [c for c in trt.cudart.calls if c[0] == "cudaStreamBeginCapture"]


def test_capture_uses_thread_local_mode(use_trt) -> None:
    trt = use_trt()
    with _runner(fk.FakeEngine(trt.cudart), cuda_graph=True) as r:
        r.infer({"input": np.ones(SHAPE, np.float32)})
    # global mode would make other threads' CUDA calls fail during the capture (bench --streams, serve)
    assert [c for c in trt.cudart.calls if c[0] == "cudaStreamBeginCapture"] == [
        ("cudaStreamBeginCapture", trt.cudart.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal)]


class _NoCaptureContext(fk.FakeContext):
    """A context whose work cannot be captured (as with a plugin that synchronizes in enqueue)."""

    def execute_async_v3(self, stream_handle: int) -> bool:
        if int(stream_handle) in self.engine.cudart.capturing:
            self.engine.cudart._invalidated.add(int(stream_handle))
            return False
        return super().execute_async_v3(stream_handle)


class _Engine(fk.FakeEngine):
    context_class: type[fk.FakeContext] = fk.FakeContext

    def create_execution_context(self) -> fk.FakeContext:
        self.contexts.append(self.context_class(self))
        return self.contexts[-1]


def test_a_failed_capture_falls_back_to_plain_enqueues_once(use_trt, caplog: pytest.LogCaptureFixture) -> None:
    trt = use_trt()
    engine = _Engine(trt.cudart)
    engine.context_class = _NoCaptureContext
    rng = np.random.default_rng(6)
    with caplog.at_level(logging.WARNING, logger="toolkit"), _runner(engine, cuda_graph=True) as r:
        for shape in (SHAPE, SHAPE, (1, 3, 16, 16)):
            x = rng.standard_normal(shape).astype(np.float32)
            np.testing.assert_allclose(r.infer({"input": x})["logits"], fk.reference(x), rtol=1e-6, atol=1e-5)
            assert not trt.cudart.capturing  # the stream left capture mode
    begins = [c for c in trt.cudart.calls if c[0] == "cudaStreamBeginCapture"]
    assert len(begins) == 1 and trt.cudart.graph_launches == 0  # tried once, then plain enqueues only
    (record,) = [rec for rec in caplog.records if rec.levelno == logging.WARNING]
    assert re.fullmatch(r"CUDA graph capture failed \(.*execute_async_v3 failed.*\); running without graphs",
                        record.getMessage())


def test_the_input_shape_is_set_once_per_change(use_trt) -> None:
    trt = use_trt()
    with _runner(fk.FakeEngine(trt.cudart)) as r:
        sets = r.context.shape_sets  # the max profile shape, at activate
        for shape in (SHAPE, SHAPE, SHAPE, (1, 3, 16, 16), (1, 3, 16, 16)):
            r.infer({"input": np.ones(shape, np.float32)})
        assert r.context.shape_sets - sets == 2


class _StaticEngine(_Engine):
    def get_tensor_shape(self, name: str) -> tuple:
        return SHAPE if name == "input" else (1, fk.NUM_CLASSES, 8, 8)

    def get_tensor_profile_shape(self, name: str, index: int) -> list:
        raise AssertionError("a static engine has no profile to ask for")


def test_static_shape_engine(use_trt) -> None:
    trt = use_trt()
    with _runner(_StaticEngine(trt.cudart)) as r:
        assert r.input_specs()[0].shape == SHAPE
        x = np.random.default_rng(7).standard_normal(SHAPE).astype(np.float32)
        np.testing.assert_allclose(r.infer({"input": x})["logits"], fk.reference(x), rtol=1e-6, atol=1e-5)
        assert r._profile is not None and r._profile.to_text() == "1x3x8x8:1x3x8x8:1x3x8x8"
        with pytest.raises(InputShapeError, match="expected 1x3x8x8"):
            r.infer({"input": np.zeros((1, 3, 8, 16), np.float32)})


def test_a_shape_outside_the_profile_says_how_to_rebuild(use_trt) -> None:
    trt = use_trt()
    with _runner(fk.FakeEngine(trt.cudart)) as r, pytest.raises(InputShapeError) as e:
        r.infer({"input": np.zeros((1, 3, 8, 40), np.float32)})
    assert str(e.value) == ("input 'input' 1x3x8x40 is outside the engine's profile 1x3x8x8:1x3x16x16:2x3x32x32 "
                            "(min:opt:max); rebuild with `toolkit build-engine --shapes MIN:OPT:MAX` covering it")


class _TwoInputs(_Engine):
    num_io_tensors = 3

    def get_tensor_name(self, i: int) -> str:
        return ("input", "mask", "logits")[i]

    def get_tensor_mode(self, name: str) -> str:
        return "OUTPUT" if name == "logits" else "INPUT"


class _RefusesMax(fk.FakeContext):
    def set_input_shape(self, name: str, shape: tuple) -> bool:
        return tuple(shape) != fk.PROFILE[2] and super().set_input_shape(name, shape)


class _RefusesOneShape(fk.FakeContext):
    def set_input_shape(self, name: str, shape: tuple) -> bool:
        return tuple(shape) != (1, 3, 8, 16) and super().set_input_shape(name, shape)


class _DataDependent(fk.FakeContext):
    def get_tensor_shape(self, name: str) -> tuple:
        return (-1, fk.NUM_CLASSES, -1, -1) if name == "logits" else super().get_tensor_shape(name)


class _RefusesAddress(fk.FakeContext):
    def set_tensor_address(self, name: str, ptr: int) -> bool:
        return False


class _NoContext(_Engine):
    def create_execution_context(self) -> None:  # type: ignore[override]
        return None


class _FailsToRun(fk.FakeContext):
    def execute_async_v3(self, stream_handle: int) -> bool:
        return False


@pytest.mark.parametrize("engine_class,context_class,message", [
    (_NoContext, fk.FakeContext, "runner 'trt': TensorRT could not create an execution context (GPU memory?)"),
    (_TwoInputs, fk.FakeContext, "engine has inputs ['input', 'mask']; the toolkit's models have exactly one"),
    (_Engine, _RefusesMax, "engine refuses its own max profile shape 2x3x32x32"),
    (_Engine, _DataDependent, "engine output 'logits' has a data-dependent shape ?x2x?x? (not supported)"),
    (_Engine, _RefusesAddress, "TensorRT refused the device address of tensor 'input'"),
])
def test_engines_the_runner_cannot_drive_are_refused_with_one_line(use_trt, engine_class: type, context_class: type,
                                                                   message: str) -> None:
    trt = use_trt()
    engine = engine_class(trt.cudart)
    engine.context_class = context_class
    with pytest.raises(ToolkitError) as e:
        _runner(engine).activate()
    assert str(e.value) == message
    assert trt.cudart.allocs == {} and trt.cudart.streams == 0  # nothing left allocated


@pytest.mark.parametrize("context_class,shape,error,message", [
    (_RefusesOneShape, (1, 3, 8, 16), InputShapeError, "TensorRT refused input shape 1x3x8x16 for 'input'"),
    (_FailsToRun, SHAPE, ToolkitError, "runner 'trt': TensorRT execute_async_v3 failed (see its log above)"),
])
def test_infer_failures_are_one_line(use_trt, context_class: type, shape: tuple, error: type,
                                     message: str) -> None:
    trt = use_trt()
    engine = _Engine(trt.cudart)
    engine.context_class = context_class
    with _runner(engine) as r, pytest.raises(error) as e:
        r.infer({"input": np.zeros(shape, np.float32)})
    assert str(e.value) == message


@pytest.mark.parametrize("dtypes,message", [
    ({"input": fk.DataType.INT8},
     "engine input 'input' is int8; the runner feeds float images (float32, cast to float16 for an fp16 input): "
     "build the engine from an ONNX with a float input (INT8 belongs inside the graph as Q/DQ: `toolkit quantize "
     "--precision int8 --target tensorrt`)"),
    ({"logits": fk.DataType.BF16},
     "engine tensor 'logits' has TensorRT type BF16, which numpy has no type for; the runner reads float32, "
     "float16 and integer tensors: give the ONNX graph's inputs and outputs one of those types")])
def test_io_type_errors_say_how_to_fix_them(use_trt, dtypes: dict, message: str) -> None:
    trt = use_trt()
    with pytest.raises(ToolkitError) as e:
        _runner(fk.FakeEngine(trt.cudart, dtypes)).activate()
    assert str(e.value) == message


def test_activate_logs_the_profile_and_buffer_size(use_trt, monkeypatch: pytest.MonkeyPatch,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    trt = use_trt()
    monkeypatch.setattr(fk, "PROFILE", ((1, 3, 8, 8), (1, 3, 16, 16), (2, 3, 256, 256)))
    with caplog.at_level(logging.DEBUG, logger="toolkit"), _runner(fk.FakeEngine(trt.cudart)):
        pass
    # (2*3 + 2*2) x 256 x 256 float32 = 2.5 MiB of device buffers
    assert "TensorRT runner: input input profile 1x3x8x8:1x3x16x16:2x3x256x256, 2 I/O tensors, 2.5 MiB device " \
           "buffers" in caplog.messages
