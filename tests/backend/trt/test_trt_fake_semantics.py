"""The TensorRT/cuda-python stand-ins keep the semantics the runner depends on, and the runner meets them.

Each semantic is one the runner can get wrong without a visible effect on a lenient fake (issue 29):
work queued on a stream runs only at synchronize; a copy goes in the direction of its
``cudaMemcpyKind``; every I/O tensor has its own dtype (fp16 and int8 included); and an enqueue after a
shape change cannot be captured into a CUDA graph until one plain enqueue has run.
"""

from __future__ import annotations

import ctypes
import logging

import numpy as np
import pytest

from tests.helpers import trt_fakes as fk
from toolkit.backend.trt import runner as rn
from toolkit.errors import ToolkitError

SHAPE = (1, 3, 8, 8)


def _pair(cudart: fk.FakeCudart, n: int) -> tuple[int, int]:
    """A pinned host and a device allocation of n bytes."""
    return cudart.cudaMallocHost(n)[1], cudart.cudaMalloc(n)[1]


def _bytes(ptr: int, n: int) -> bytes:
    return ctypes.string_at(ptr, n)


def test_fake_copy_is_queued_until_sync_and_reads_its_source_when_it_runs() -> None:
    cudart = fk.FakeCudart()
    _, stream = cudart.cudaStreamCreateWithFlags(cudart.cudaStreamNonBlocking)
    host, dev = _pair(cudart, 4)
    ctypes.memmove(host, b"abcd", 4)
    h2d = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice
    assert cudart.cudaMemcpyAsync(dev, host, 4, h2d, stream)[0] == 0
    assert _bytes(dev, 4) == b"\0\0\0\0"  # not done at enqueue
    ctypes.memmove(host, b"wxyz", 4)  # an async copy reads its source when the stream gets to it
    assert cudart.cudaStreamSynchronize(stream)[0] == 0
    assert _bytes(dev, 4) == b"wxyz"


@pytest.mark.parametrize("kind,dst_dev,src_dev", [("cudaMemcpyHostToDevice", False, True),
                                                  ("cudaMemcpyDeviceToHost", True, False),
                                                  ("cudaMemcpyHostToDevice", False, False)])
def test_fake_copy_refuses_pointers_that_do_not_match_its_kind(kind: str, dst_dev: bool, src_dev: bool) -> None:
    cudart = fk.FakeCudart()
    _, stream = cudart.cudaStreamCreateWithFlags(cudart.cudaStreamNonBlocking)
    host, dev = _pair(cudart, 8)
    err = cudart.cudaMemcpyAsync(dev if dst_dev else host, dev if src_dev else host, 8,
                                 getattr(cudart.cudaMemcpyKind, kind), stream)[0]
    assert err == fk._Err.cudaErrorInvalidValue


def test_fake_copy_refuses_a_range_past_its_allocation() -> None:
    cudart = fk.FakeCudart()
    _, stream = cudart.cudaStreamCreateWithFlags(cudart.cudaStreamNonBlocking)
    host, dev = _pair(cudart, 8)
    kind = cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
    assert cudart.cudaMemcpyAsync(host, dev, 8, kind, stream)[0] == 0
    assert cudart.cudaMemcpyAsync(host, dev, 9, kind, stream)[0] == fk._Err.cudaErrorInvalidValue


def _context(dtypes: dict | None = None) -> tuple[fk.FakeCudart, fk.FakeContext, object]:
    cudart = fk.FakeCudart()
    engine = fk.FakeEngine(cudart, dtypes)
    ctx = engine.create_execution_context()
    _, stream = cudart.cudaStreamCreateWithFlags(cudart.cudaStreamNonBlocking)
    assert ctx.set_input_shape("input", SHAPE)
    n, _, h, w = fk.PROFILE[-1]
    for name, shape in (("input", fk.PROFILE[-1]), ("logits", (n, fk.NUM_CLASSES, h, w))):  # room for any shape
        nbytes = int(np.prod(shape)) * np.dtype(fk.nptype(engine.get_tensor_dtype(name))).itemsize
        assert ctx.set_tensor_address(name, cudart.cudaMalloc(nbytes)[1])
    return cudart, ctx, stream


def test_fake_capture_needs_a_plain_enqueue_after_each_shape_change() -> None:
    cudart, ctx, stream = _context()
    mode = cudart.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal
    assert cudart.cudaStreamBeginCapture(stream, mode)[0] == 0
    assert ctx.execute_async_v3(int(stream)) is False  # deferred first-run work cannot be captured
    assert cudart.cudaStreamEndCapture(stream)[0] == fk._Err.cudaErrorStreamCaptureInvalidated
    assert ctx.execute_async_v3(int(stream)) is True  # the plain enqueue
    cudart.cudaStreamBeginCapture(stream, mode)
    assert ctx.execute_async_v3(int(stream)) is True
    err, graph = cudart.cudaStreamEndCapture(stream)
    assert err == 0 and len(graph) == 1
    assert ctx.set_input_shape("input", (1, 3, 8, 16))  # a new shape: deferred work again
    cudart.cudaStreamBeginCapture(stream, mode)
    assert ctx.execute_async_v3(int(stream)) is False
    assert cudart.cudaStreamEndCapture(stream)[0] == fk._Err.cudaErrorStreamCaptureInvalidated


def test_fake_sync_during_capture_invalidates_it() -> None:
    cudart, _, stream = _context()
    cudart.cudaStreamBeginCapture(stream, cudart.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal)
    assert cudart.cudaStreamSynchronize(stream)[0] == fk._Err.cudaErrorStreamCaptureUnsupported
    assert cudart.cudaStreamEndCapture(stream)[0] == fk._Err.cudaErrorStreamCaptureInvalidated


def test_fake_enqueue_refuses_host_memory_and_short_buffers() -> None:
    cudart, ctx, stream = _context()
    ctx.set_tensor_address("logits", cudart.cudaMallocHost(1 << 16)[1])
    assert ctx.execute_async_v3(int(stream)) is False
    ctx.set_tensor_address("logits", cudart.cudaMalloc(4)[1])
    assert ctx.execute_async_v3(int(stream)) is False


def test_fake_nptype_matches_tensorrt() -> None:
    assert fk.nptype(fk.DataType.HALF) is np.float16 and fk.nptype(fk.DataType.INT8) is np.int8
    with pytest.raises(TypeError):
        fk.nptype(fk.DataType.BF16)


# ---- the runner against these semantics ------------------------------------------------------------------------


def _runner(trt: object, cuda_graph: bool = False, dtypes: dict | None = None) -> rn.TrtRunner:
    return rn.TrtRunner((fk.FakeEngine(trt.cudart, dtypes), None), cuda_graph=cuda_graph)  # type: ignore[attr-defined]


def test_runner_returns_outputs_after_the_stream_ran(use_trt) -> None:
    trt = use_trt()
    rng = np.random.default_rng(2)
    with _runner(trt) as r:
        for _ in range(2):  # a second call must not see the first call's output either
            x = rng.standard_normal(SHAPE).astype(np.float32)
            np.testing.assert_allclose(r.infer({"input": x})["logits"], fk.reference(x), rtol=1e-6, atol=1e-5)
            assert all(not q for q in trt.cudart._queues.values())  # nothing left pending on the stream


def test_runner_captures_graphs_after_a_plain_enqueue(use_trt, caplog: pytest.LogCaptureFixture) -> None:
    trt = use_trt()
    rng = np.random.default_rng(3)
    with caplog.at_level(logging.WARNING, logger="toolkit"), _runner(trt, cuda_graph=True) as r:
        for shape in (SHAPE, (1, 3, 16, 8), SHAPE):
            x = rng.standard_normal(shape).astype(np.float32)
            np.testing.assert_allclose(r.infer({"input": x})["logits"], fk.reference(x), rtol=1e-6, atol=1e-5)
        assert not r._graph_failed and "capture failed" not in caplog.text
        assert trt.cudart.captures == 2 and trt.cudart.graph_launches == 3
        assert r.context.enqueues == 5  # 2 plain enqueues (one per new shape) + 3 graph replays


@pytest.mark.parametrize("dtypes", [{"input": fk.DataType.HALF, "logits": fk.DataType.HALF},
                                    {"input": fk.DataType.HALF},
                                    {"logits": fk.DataType.HALF}])
@pytest.mark.parametrize("cuda_graph", [False, True])
def test_runner_fp16_io(use_trt, dtypes: dict, cuda_graph: bool) -> None:
    trt = use_trt()
    x = np.random.default_rng(4).standard_normal((2, 3, 32, 16)).astype(np.float32)
    with _runner(trt, cuda_graph, dtypes) as r:
        assert r.input_specs()[0].dtype == np.float32  # the caller still feeds float32
        sizes = sorted(len(b) for b in trt.cudart.allocs.values())
        in_item = 2 if "input" in dtypes else 4
        out_item = 2 if "logits" in dtypes else 4
        assert sizes == sorted([2 * 3 * 32 * 32 * in_item] * 2 + [2 * 2 * 32 * 32 * out_item] * 2)
        out = r.infer({"input": x})["logits"]
    x_engine = x.astype(np.float16) if "input" in dtypes else x
    want = fk.cast_output(fk.reference(x_engine), np.float16 if "logits" in dtypes else np.float32)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, want.astype(np.float32))  # the same rounding on both sides: exact


def test_runner_int8_output_returns_the_codes(use_trt) -> None:
    trt = use_trt()
    x = np.random.default_rng(5).uniform(-30, 30, SHAPE).astype(np.float32)
    with _runner(trt, dtypes={"logits": fk.DataType.INT8}) as r:
        out = r.infer({"input": x})["logits"]
    want = fk.cast_output(fk.reference(x), np.int8)
    assert out.dtype == np.float32 and np.abs(want.astype(np.int16)).max() >= 127  # some saturate
    np.testing.assert_array_equal(out, want.astype(np.float32))


@pytest.mark.parametrize("dtypes,match", [
    ({"input": fk.DataType.INT8}, "engine input 'input' is int8; the runner feeds float images"),
    ({"logits": fk.DataType.BF16}, "engine tensor 'logits' has TensorRT type BF16, which numpy has no type for")])
def test_runner_refuses_io_types_it_cannot_feed_or_read(use_trt, dtypes: dict, match: str) -> None:
    trt = use_trt()
    with pytest.raises(ToolkitError, match=match):
        _runner(trt, dtypes=dtypes).activate()
    assert trt.cudart.allocs == {} and trt.cudart.streams == 0  # nothing left allocated


def test_fake_free_waits_for_queued_work_and_frees_its_own_kind_only() -> None:
    cudart = fk.FakeCudart()
    _, stream = cudart.cudaStreamCreateWithFlags(cudart.cudaStreamNonBlocking)
    host, dev = _pair(cudart, 4)
    cudart.cudaMemcpyAsync(dev, host, 4, cudart.cudaMemcpyKind.cudaMemcpyHostToDevice, stream)
    assert cudart.cudaFree(host)[0] == fk._Err.cudaErrorInvalidValue  # pinned memory goes back by cudaFreeHost
    assert cudart.cudaFreeHost(host)[0] == 0 and cudart._queues[int(stream)] == []  # the copy ran first
    assert cudart.cudaFree(dev)[0] == 0 and cudart.allocs == {}
