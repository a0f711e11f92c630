"""TensorRT runner: device buffers and a stream through cuda-python, pinned host memory, async copies,
dynamic shapes within the engine's profile, and optional CUDA-graph replay.

Buffers are allocated once for the profile's largest shape and bound once (``set_tensor_address``), so
a shape change only calls ``set_input_shape`` and a captured CUDA graph stays valid for its shape.
Written against the TensorRT 10/11 and cuda-python 12/13 documentation (name-based I/O:
``num_io_tensors``, ``get_tensor_name``, ``set_tensor_address``, ``execute_async_v3``); not executed
on our machines (no TensorRT, no GPU there): see docs/TENSORRT.md.
"""

from __future__ import annotations

import ctypes
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from toolkit.backend.base import BaseRunner, TensorSpec
from toolkit.backend.trt.compat import cuda_call, import_cudart, import_tensorrt
from toolkit.backend.trt.shapes import ShapeProfile, format_shape
from toolkit.core.description import ModelDescription
from toolkit.core.loader import BaseLoader, resolve
from toolkit.errors import InputShapeError, ToolkitError

log = logging.getLogger(__name__)


@dataclass
class _Buffer:
    """One I/O tensor: a device allocation and a pinned host mirror, both sized for the largest shape."""

    name: str
    dtype: np.dtype
    is_input: bool
    nbytes: int
    device: int = 0
    host_ptr: int = 0
    host: np.ndarray | None = None

    def host_view(self, shape: tuple[int, ...]) -> np.ndarray:
        assert self.host is not None
        return self.host[: int(np.prod(shape))].reshape(shape)


def _numpy_dtype(trt: Any, trt_type: Any, name: str) -> np.dtype:
    """The numpy dtype of one I/O tensor; one clear error for TensorRT types numpy lacks (BF16, FP8, INT4)."""
    try:
        return np.dtype(trt.nptype(trt_type))
    except TypeError:
        raise ToolkitError(f"engine tensor '{name}' has TensorRT type {getattr(trt_type, 'name', trt_type)}, which "
                           "numpy has no type for; the runner reads float32, float16 and integer tensors: give "
                           "the ONNX graph's inputs and outputs one of those types") from None


class TrtRunner(BaseRunner):
    """Runs a deserialized engine; takes EngineFromPath (or an ``(engine, sidecar)`` pair)."""

    backend = "trt"
    thread_safe = False  # one execution context, one stream, one set of buffers

    def __init__(self, engine: BaseLoader | tuple[Any, Any], name: str | None = None, cuda_graph: bool = False,
                 device: int = 0, source: str = "") -> None:
        super().__init__(name, source)
        self._source, self.cuda_graph, self.device = engine, cuda_graph, device
        self._reset()

    def _reset(self) -> None:
        self.engine: Any = None
        self.context: Any = None
        self._cudart: Any = None
        self._stream: Any = None
        self._buffers: dict[str, _Buffer] = {}
        self._input: str = ""
        self._profile: ShapeProfile | None = None
        self._spec: TensorSpec | None = None
        self._shape: tuple[int, ...] | None = None
        self._out_shapes: dict[str, tuple[int, ...]] = {}
        self._graphs: dict[tuple[int, ...], tuple[Any, Any]] = {}  # input shape -> (graph, graph exec)
        self._graph_failed = False

    # -- lifecycle ---------------------------------------------------------------------------------
    def _activate_impl(self) -> ModelDescription:
        trt = import_tensorrt()
        cudart = self._cudart = import_cudart()
        engine, side = resolve(self._source)
        described = ModelDescription()
        if side is not None:
            described = ModelDescription(side.model_meta(), side.precision, side.onnx_metadata.get("lowering", ""),
                                         dict(side.onnx_metadata))
        cuda_call(cudart.cudaSetDevice(self.device))
        self.engine = engine
        self.context = engine.create_execution_context()
        if self.context is None:
            raise ToolkitError(f"runner '{self.name}': TensorRT could not create an execution context (GPU memory?)")
        self._stream = cuda_call(cudart.cudaStreamCreateWithFlags(cudart.cudaStreamNonBlocking))
        try:
            self._allocate(trt)
        except BaseException:
            self._deactivate_impl()
            raise
        return described

    def _allocate(self, trt: Any) -> None:
        engine, context, cudart = self.engine, self.context, self._cudart
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        if len(inputs) != 1:
            raise ToolkitError(f"engine has inputs {inputs}; the toolkit's models have exactly one")
        self._input = name = inputs[0]
        shape = tuple(engine.get_tensor_shape(name))
        if any(d < 0 for d in shape):
            lo, opt, hi = (tuple(s) for s in engine.get_tensor_profile_shape(name, 0))
            self._profile = ShapeProfile(lo, opt, hi)
        else:
            self._profile = ShapeProfile(shape, shape, shape)
        self._spec = TensorSpec(name, np.dtype(np.float32), tuple(None if d < 0 else d for d in shape))
        if not context.set_input_shape(name, self._profile.max):
            raise ToolkitError(f"engine refuses its own max profile shape {format_shape(self._profile.max)}")
        for n in names:
            is_input = n == name
            dims = self._profile.max if is_input else tuple(context.get_tensor_shape(n))
            if any(d < 0 for d in dims):
                raise ToolkitError(f"engine output '{n}' has a data-dependent shape {format_shape(dims)} "
                                   "(not supported)")
            dtype = _numpy_dtype(trt, engine.get_tensor_dtype(n), n)
            if is_input and dtype.kind != "f":
                raise ToolkitError(f"engine input '{n}' is {dtype}; the runner feeds float images (float32, cast "
                                   "to float16 for an fp16 input): build the engine from an ONNX with a float input "
                                   "(INT8 belongs inside the graph as Q/DQ: `toolkit quantize --precision int8 "
                                   "--target tensorrt`)")
            buf = _Buffer(n, dtype, is_input, max(1, int(np.prod(dims))) * dtype.itemsize)
            self._buffers[n] = buf
            buf.device = int(cuda_call(cudart.cudaMalloc(buf.nbytes)))
            buf.host_ptr = int(cuda_call(cudart.cudaMallocHost(buf.nbytes)))
            raw = (ctypes.c_byte * buf.nbytes).from_address(buf.host_ptr)
            buf.host = np.frombuffer(raw, dtype=dtype)
            if not context.set_tensor_address(n, buf.device):
                raise ToolkitError(f"TensorRT refused the device address of tensor '{n}'")
        log.debug("TensorRT runner: input %s profile %s, %d I/O tensors, %.1f MiB device buffers", name,
                  self._profile.to_text(), len(names), sum(b.nbytes for b in self._buffers.values()) / 2**20)

    def _deactivate_impl(self) -> None:
        cudart = self._cudart
        if cudart is not None:
            for graph, graph_exec in self._graphs.values():
                cudart.cudaGraphExecDestroy(graph_exec)
                cudart.cudaGraphDestroy(graph)
            if self._stream is not None:
                cudart.cudaStreamSynchronize(self._stream)
            for buf in self._buffers.values():
                buf.host = None
                if buf.device:
                    cudart.cudaFree(buf.device)
                if buf.host_ptr:
                    cudart.cudaFreeHost(buf.host_ptr)
            if self._stream is not None:
                cudart.cudaStreamDestroy(self._stream)
        self.context = None  # before the engine: a context must not outlive its engine
        self._reset()

    # -- inference ---------------------------------------------------------------------------------
    def _input_specs_impl(self) -> list[TensorSpec]:
        assert self._spec is not None
        return [self._spec]

    def _set_shape(self, shape: tuple[int, ...]) -> None:
        assert self._profile is not None
        if not self._profile.contains(shape):
            raise InputShapeError(f"input '{self._input}' {format_shape(shape)} is outside the engine's profile "
                                  f"{self._profile.to_text()} (min:opt:max); rebuild with `toolkit build-engine "
                                  "--shapes MIN:OPT:MAX` covering it")
        if not self.context.set_input_shape(self._input, shape):
            raise InputShapeError(f"TensorRT refused input shape {format_shape(shape)} for '{self._input}'")
        self._out_shapes = {n: tuple(self.context.get_tensor_shape(n)) for n, b in self._buffers.items()
                            if not b.is_input}
        self._shape = shape

    def _enqueue(self) -> None:
        if not self.context.execute_async_v3(int(self._stream)):
            raise ToolkitError(f"runner '{self.name}': TensorRT execute_async_v3 failed (see its log above)")

    def _launch(self, shape: tuple[int, ...]) -> None:
        """Run the engine on the stream, through a CUDA graph captured once per input shape when asked."""
        if not self.cuda_graph or self._graph_failed:
            self._enqueue()
            return
        cudart = self._cudart
        if shape not in self._graphs:
            self._enqueue()  # TensorRT: one plain enqueue after a shape change, before capturing
            mode = cudart.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal  # other threads may use CUDA
            cuda_call(cudart.cudaStreamBeginCapture(self._stream, mode))
            try:
                self._enqueue()
                graph = cuda_call(cudart.cudaStreamEndCapture(self._stream))
                self._graphs[shape] = (graph, cuda_call(cudart.cudaGraphInstantiate(graph, 0)))
            except ToolkitError as e:
                cudart.cudaStreamEndCapture(self._stream)  # leave capture mode whatever happened
                self._graph_failed = True
                log.warning("CUDA graph capture failed (%s); running without graphs", e)
                self._enqueue()
                return
        cuda_call(cudart.cudaGraphLaunch(self._graphs[shape][1], self._stream))

    def _infer_impl(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        cudart = self._cudart
        x = feed[self._input]
        shape = tuple(int(d) for d in x.shape)
        if shape != self._shape:
            self._set_shape(shape)
        inp = self._buffers[self._input]
        np.copyto(inp.host_view(shape), x, casting="same_kind")
        h2d, d2h = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice, cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        cuda_call(cudart.cudaMemcpyAsync(inp.device, inp.host_ptr, int(np.prod(shape)) * inp.dtype.itemsize, h2d,
                                         self._stream))
        self._launch(shape)
        for n, out_shape in self._out_shapes.items():
            buf = self._buffers[n]
            cuda_call(cudart.cudaMemcpyAsync(buf.host_ptr, buf.device, int(np.prod(out_shape)) * buf.dtype.itemsize,
                                             d2h, self._stream))
        cuda_call(cudart.cudaStreamSynchronize(self._stream))
        return {n: self._buffers[n].host_view(s).astype(np.float32, copy=True) for n, s in self._out_shapes.items()}

