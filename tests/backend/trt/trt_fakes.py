"""Stand-ins for ``tensorrt`` and cuda-python's runtime, so the loader and runner logic runs on a CPU.

They model the parts of the TensorRT 10/11 and cuda-python APIs that toolkit.backend.trt calls, as the
documentation describes them: name-based I/O tensors, optimisation profiles, set_input_shape /
set_tensor_address / execute_async_v3, and device memory as raw addresses (here: host memory from
ctypes), with stream capture recording enqueues into a replayable graph. The semantics a runner can get
wrong silently are kept: stream work runs only at synchronize, copies honour their kind (device vs pinned
memory), each I/O tensor has its own DataType, and a capture needs one plain enqueue after a shape
change. They check our code's use of the API as we understand it, not TensorRT itself: the real thing
was not available (docs/TENSORRT.md).
"""

from __future__ import annotations

import ctypes
import enum
import json
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

NUM_CLASSES = 2
PROFILE = ((1, 3, 8, 8), (1, 3, 16, 16), (2, 3, 32, 32))


def reference(x: np.ndarray) -> np.ndarray:
    """What the fake engine computes: logits[:, k] = (k + 1) * sum over channels + k."""
    s = x.astype(np.float32).sum(axis=1, keepdims=True)
    return np.concatenate([(k + 1) * s + k for k in range(NUM_CLASSES)], axis=1)


# ---- cuda-python runtime -----------------------------------------------------------------------------------------


class _Err(enum.IntEnum):
    """The cudaError_t values the fake returns (numbers as in the CUDA runtime)."""

    cudaSuccess = 0
    cudaErrorInvalidValue = 1
    cudaErrorIllegalState = 401
    cudaErrorStreamCaptureUnsupported = 900
    cudaErrorStreamCaptureInvalidated = 901


class _Stream:
    def __init__(self, handle: int) -> None:
        self.handle = handle

    def __int__(self) -> int:
        return self.handle


class FakeCudart:
    """The cudart calls the runner makes, over host memory standing in for device memory.

    Work on a stream is queued and runs only when the stream is synchronized (or destroyed), as a GPU
    gives no guarantee that it ran any earlier; ``cudaMemcpyAsync`` honours its kind (the destination of
    a host-to-device copy must be device memory, its source pinned host memory, and the other way round),
    refusing what CUDA calls undefined; stream capture records work into a graph, and a synchronize
    during capture invalidates it. Arguments of the wrong type (a device, flag or mode that is not an
    int or enum member) are refused, as cuda-python refuses them. ``allocs``, ``graph_launches``,
    ``captures``, ``streams`` and ``graphs`` (live graph objects) are counters for the tests; ``calls``
    records the device, stream flags and capture modes asked for.
    """

    cudaStreamNonBlocking = 1
    cudaMemcpyKind = enum.IntEnum("cudaMemcpyKind", {"cudaMemcpyHostToHost": 0, "cudaMemcpyHostToDevice": 1,
                                                     "cudaMemcpyDeviceToHost": 2, "cudaMemcpyDeviceToDevice": 3,
                                                     "cudaMemcpyDefault": 4})
    cudaStreamCaptureMode = enum.IntEnum("cudaStreamCaptureMode", {"cudaStreamCaptureModeGlobal": 0,
                                                                   "cudaStreamCaptureModeThreadLocal": 1,
                                                                   "cudaStreamCaptureModeRelaxed": 2})

    def __init__(self) -> None:
        self.allocs: dict[int, ctypes.Array] = {}
        self.capturing: dict[int, list] = {}
        self.graph_launches = 0
        self.captures = 0
        self.streams = 0
        self.graphs: dict[int, list] = {}  # id -> graph or graph exec, until destroyed
        self.calls: list[tuple] = []  # ("cudaSetDevice", 0), ("cudaStreamCreateWithFlags", 1), ...
        self._memory: dict[int, str] = {}  # address -> "device" | "host" (pinned)
        self._queues: dict[int, list[Callable[[], None]]] = {}
        self._invalidated: set[int] = set()  # streams whose capture was invalidated

    def _ok(self, *values: Any) -> tuple:
        return (_Err.cudaSuccess, *values)

    def cudaSetDevice(self, device: int) -> tuple:
        self.calls.append(("cudaSetDevice", device))
        if not isinstance(device, int) or device < 0:
            return (_Err.cudaErrorInvalidValue,)
        return self._ok()

    def cudaGetDeviceProperties(self, device: int) -> tuple:
        return self._ok(SimpleNamespace(name=b"Fake GPU\x00", major=8, minor=6))

    def cudaStreamCreateWithFlags(self, flags: int) -> tuple:
        self.calls.append(("cudaStreamCreateWithFlags", flags))
        if not isinstance(flags, int):
            return (_Err.cudaErrorInvalidValue, None)
        self.streams += 1
        stream = _Stream(1000 + self.streams)
        self._queues[int(stream)] = []
        return self._ok(stream)

    def cudaStreamDestroy(self, stream: _Stream) -> tuple:
        self._drain(int(stream))  # CUDA releases a stream once its pending work is done
        del self._queues[int(stream)]
        self.streams -= 1
        return self._ok()

    def cudaStreamSynchronize(self, stream: _Stream) -> tuple:
        if int(stream) in self.capturing:
            self._invalidated.add(int(stream))
            return (_Err.cudaErrorStreamCaptureUnsupported,)
        self._drain(int(stream))
        return self._ok()

    def _drain(self, handle: int) -> None:
        queue = self._queues[handle]
        while queue:
            queue.pop(0)()

    def _submit(self, stream: Any, op: Callable[[], None]) -> None:
        """Queue ``op`` on ``stream``, or record it into the graph being captured there."""
        capture = self.capturing.get(int(stream))
        (capture if capture is not None else self._queues[int(stream)]).append(op)

    def _region(self, ptr: int, n: int, kind: str) -> bool:
        """Whether [ptr, ptr + n) lies inside one allocation of this kind ("device" or "host")."""
        return any(self._memory[base] == kind and base <= ptr and ptr + n <= base + len(buf)
                   for base, buf in self.allocs.items())

    def _alloc(self, n: int, kind: str) -> tuple:
        buf = (ctypes.c_byte * n)()
        self.allocs[ctypes.addressof(buf)] = buf
        self._memory[ctypes.addressof(buf)] = kind
        return self._ok(ctypes.addressof(buf))

    def cudaMalloc(self, n: int) -> tuple:
        return self._alloc(n, "device")

    def cudaMallocHost(self, n: int) -> tuple:
        return self._alloc(n, "host")

    def _free(self, ptr: int, kind: str) -> tuple:
        if self._memory.get(int(ptr)) != kind:
            return (_Err.cudaErrorInvalidValue,)
        for handle in self._queues:  # cudaFree and cudaFreeHost synchronize the device first
            self._drain(handle)
        del self._memory[int(ptr)], self.allocs[int(ptr)]
        return self._ok()

    def cudaFree(self, ptr: int) -> tuple:
        return self._free(ptr, "device")

    def cudaFreeHost(self, ptr: int) -> tuple:
        return self._free(ptr, "host")

    def cudaMemcpyAsync(self, dst: int, src: int, n: int, kind: Any, stream: _Stream) -> tuple:
        k = self.cudaMemcpyKind
        ends = {k.cudaMemcpyHostToDevice: ("device", "host"), k.cudaMemcpyDeviceToHost: ("host", "device"),
                k.cudaMemcpyDeviceToDevice: ("device", "device")}.get(kind)
        if ends is None or not (self._region(int(dst), n, ends[0]) and self._region(int(src), n, ends[1])):
            return (_Err.cudaErrorInvalidValue,)  # CUDA: pointers not matching the kind are undefined behaviour
        self._submit(stream, lambda: ctypes.memmove(int(dst), int(src), n))  # reads src when it runs
        return self._ok()

    def cudaStreamBeginCapture(self, stream: _Stream, mode: Any) -> tuple:
        self.calls.append(("cudaStreamBeginCapture", mode))
        if not isinstance(mode, self.cudaStreamCaptureMode):
            return (_Err.cudaErrorInvalidValue,)
        if int(stream) in self.capturing:
            return (_Err.cudaErrorIllegalState,)
        self.capturing[int(stream)] = []
        return self._ok()

    def cudaStreamEndCapture(self, stream: _Stream) -> tuple:
        if int(stream) not in self.capturing:
            return (_Err.cudaErrorIllegalState, None)
        ops = self.capturing.pop(int(stream))
        if int(stream) in self._invalidated:
            self._invalidated.discard(int(stream))
            return (_Err.cudaErrorStreamCaptureInvalidated, None)
        self.captures += 1
        graph = list(ops)
        self.graphs[id(graph)] = graph
        return self._ok(graph)

    def cudaGraphInstantiate(self, graph: list, flags: int) -> tuple:
        if not isinstance(flags, int) or id(graph) not in self.graphs:
            return (_Err.cudaErrorInvalidValue, None)
        graph_exec = list(graph)
        self.graphs[id(graph_exec)] = graph_exec
        return self._ok(graph_exec)

    def cudaGraphLaunch(self, graph_exec: list, stream: _Stream) -> tuple:
        if id(graph_exec) not in self.graphs:
            return (_Err.cudaErrorInvalidValue,)
        self.graph_launches += 1
        for op in graph_exec:
            self._submit(stream, op)
        return self._ok()

    def cudaGraphExecDestroy(self, graph_exec: list) -> tuple:
        if id(graph_exec) not in self.graphs:
            return (_Err.cudaErrorInvalidValue,)
        del self.graphs[id(graph_exec)]
        return self._ok()

    cudaGraphDestroy = cudaGraphExecDestroy


# ---- tensorrt ----------------------------------------------------------------------------------------------------


class DataType(enum.IntEnum):
    """``tensorrt.DataType`` (the members of TensorRT 10)."""

    FLOAT = 0
    HALF = 1
    INT8 = 2
    INT32 = 3
    BOOL = 4
    UINT8 = 5
    FP8 = 6
    BF16 = 7
    INT64 = 8
    INT4 = 9


_NP_TYPES = {DataType.FLOAT: np.float32, DataType.HALF: np.float16, DataType.INT8: np.int8,
             DataType.INT32: np.int32, DataType.BOOL: np.bool_, DataType.UINT8: np.uint8, DataType.INT64: np.int64}


def nptype(trt_type: DataType) -> type:
    """``tensorrt.nptype``: the numpy type of a DataType; TypeError for those numpy lacks (FP8, BF16, INT4)."""
    if trt_type not in _NP_TYPES:
        raise TypeError("Could not resolve TensorRT datatype to an equivalent numpy datatype.")
    return _NP_TYPES[trt_type]


def device_array(ptr: int, dtype: np.dtype, shape: tuple) -> np.ndarray:
    """A numpy view of fake device memory at ``ptr``."""
    dtype = np.dtype(dtype)
    size = int(np.prod(shape))
    return np.frombuffer((ctypes.c_byte * (size * dtype.itemsize)).from_address(ptr), dtype).reshape(shape)


def cast_output(y: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """The engine's float32 result in its output dtype (integers rounded and saturated, as int8 quantization)."""
    dtype = np.dtype(dtype)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return np.clip(np.rint(y), info.min, info.max).astype(dtype)
    return y.astype(dtype)


class FakeContext:
    """``IExecutionContext``: enqueues run on the stream; after a shape change (and before the first run) an
    enqueue does deferred work that stream capture cannot record, so TensorRT needs one plain enqueue first."""

    def __init__(self, engine: FakeEngine) -> None:
        self.engine, self.shape, self.addresses, self.enqueues, self.shape_sets = engine, None, {}, 0, 0
        self._deferred = True  # the first enqueue of a context, and the first after a shape change

    def set_input_shape(self, name: str, shape: tuple) -> bool:
        lo, _, hi = PROFILE
        self.shape_sets += 1
        if name != "input" or not all(a <= s <= b for a, s, b in zip(lo, shape, hi, strict=True)):
            return False
        if tuple(shape) != self.shape:
            self._deferred = True
        self.shape = tuple(shape)
        return True

    def get_tensor_shape(self, name: str) -> tuple:
        if name not in ("input", "logits"):
            raise ValueError(f"no I/O tensor named {name!r}")  # TensorRT: an error and an invalid Dims
        n, _, h, w = self.shape
        return self.shape if name == "input" else (n, NUM_CLASSES, h, w)

    def set_tensor_address(self, name: str, ptr: int) -> bool:
        self.addresses[name] = int(ptr)
        return True

    def execute_async_v3(self, stream_handle: int) -> bool:
        cudart, handle = self.engine.cudart, int(stream_handle)
        if self.shape is None or set(self.addresses) != {"input", "logits"}:
            return False
        shape, addresses = self.shape, dict(self.addresses)
        dt = {n: np.dtype(nptype(self.engine.get_tensor_dtype(n))) for n in addresses}
        out_shape = self.get_tensor_shape("logits")
        if not (cudart._region(addresses["input"], int(np.prod(shape)) * dt["input"].itemsize, "device")
                and cudart._region(addresses["logits"], int(np.prod(out_shape)) * dt["logits"].itemsize, "device")):
            return False  # a tensor bound to host memory, or to a buffer too small for this shape
        if handle in cudart.capturing and self._deferred:
            cudart._invalidated.add(handle)  # the deferred work is not capturable: the capture is invalidated
            return False
        if handle not in cudart.capturing:
            self._deferred = False

        def run() -> None:  # recorded as is during stream capture; reads its input when the stream runs it
            self.enqueues += 1
            y = reference(device_array(addresses["input"], dt["input"], shape))
            device_array(addresses["logits"], dt["logits"], out_shape)[...] = cast_output(y, dt["logits"])

        cudart._submit(stream_handle, run)
        return True


class FakeEngine:
    """``ICudaEngine`` of one input and one output; ``dtypes`` sets their DataType (FLOAT by default)."""

    num_io_tensors = 2

    def __init__(self, cudart: FakeCudart, dtypes: dict[str, DataType] | None = None) -> None:
        self.cudart, self.contexts = cudart, []
        self._dtypes = {"input": DataType.FLOAT, "logits": DataType.FLOAT, **(dtypes or {})}

    def get_tensor_name(self, i: int) -> str:
        return ("input", "logits")[i]

    def get_tensor_mode(self, name: str) -> str:
        return "INPUT" if name == "input" else "OUTPUT"

    def get_tensor_shape(self, name: str) -> tuple:
        return (-1, 3, -1, -1) if name == "input" else (-1, NUM_CLASSES, -1, -1)

    def get_tensor_dtype(self, name: str) -> DataType:
        return self._dtypes[name]

    def get_tensor_profile_shape(self, name: str, index: int) -> list:
        if name != "input" or index != 0:  # one input, one optimisation profile
            raise ValueError(f"no profile {index!r} for input tensor {name!r}")
        return [list(s) for s in PROFILE]

    def create_execution_context(self) -> FakeContext:
        self.contexts.append(FakeContext(self))
        return self.contexts[-1]


class FakeTimingCache:
    def __init__(self, blob: bytes) -> None:
        self.blob = blob

    def serialize(self) -> bytes:
        return self.blob + b"+tuned"


class FakeConfig:
    def __init__(self) -> None:
        self.pool_limits: dict = {}
        self.profiles: list = []
        self.builder_optimization_level = 3
        self.progress_monitor = None
        self.cache: FakeTimingCache | None = None

    def set_memory_pool_limit(self, pool: str, size: int) -> None:
        self.pool_limits[pool] = size

    def add_optimization_profile(self, profile: Any) -> int:
        self.profiles.append(profile)
        return len(self.profiles) - 1

    def create_timing_cache(self, blob: bytes) -> FakeTimingCache:
        return FakeTimingCache(bytes(blob))

    def set_timing_cache(self, cache: FakeTimingCache, ignore_mismatch: bool) -> bool:
        self.cache = cache
        return cache.blob != b"BAD"

    def get_timing_cache(self) -> FakeTimingCache:
        assert self.cache is not None
        return self.cache


class FakeNetwork:
    num_inputs = 1

    def __init__(self, flags: int) -> None:
        self.flags = flags

    def get_input(self, i: int) -> SimpleNamespace:
        return SimpleNamespace(name="input", shape=(-1, 3, -1, -1))


class FakeProfile:
    def __init__(self) -> None:
        self.shapes: dict = {}

    def set_shape(self, name: str, lo: tuple, opt: tuple, hi: tuple) -> None:
        self.shapes[name] = (tuple(lo), tuple(opt), tuple(hi))


def make_fake_trt(version: str = "10.3.0.30", cudart: FakeCudart | None = None, build_fails: bool = False,
                  parse_errors: tuple[str, ...] = ()) -> SimpleNamespace:
    """A ``tensorrt`` module stand-in; ``trt.last`` exposes the builder objects for assertions."""
    cudart = cudart or FakeCudart()
    last = SimpleNamespace(builder=None, config=None, network=None, plugin_loads=[])

    class IProgressMonitor:
        def __init__(self) -> None:
            pass

    class Builder:
        def __init__(self, logger: Any) -> None:
            last.builder = self

        def create_network(self, flags: int) -> FakeNetwork:
            last.network = FakeNetwork(flags)
            return last.network

        def create_builder_config(self) -> FakeConfig:
            last.config = FakeConfig()
            return last.config

        def create_optimization_profile(self) -> FakeProfile:
            return FakeProfile()

        def build_serialized_network(self, network: FakeNetwork, config: FakeConfig) -> bytes | None:
            mon = config.progress_monitor
            if mon is not None:
                mon.phase_start("Building engine", None, 3)
                mon.phase_start("Tactic search", "Building engine", 2)
                for i in range(2):
                    mon.step_complete("Tactic search", i)
                mon.phase_finish("Tactic search")
                for i in range(3):
                    mon.step_complete("Building engine", i)
                mon.phase_finish("Building engine")
            if build_fails:
                return None
            return b"SERIALIZED:" + json.dumps(config.profiles[0].shapes["input"]).encode()

    class OnnxParser:
        def __init__(self, network: FakeNetwork, logger: Any) -> None:
            self.errors = list(parse_errors)

        def parse_from_file(self, path: str) -> bool:
            return Path(path).is_file() and not self.errors

        @property
        def num_errors(self) -> int:
            return len(self.errors)

        def get_error(self, i: int) -> str:
            return self.errors[i]

    class Runtime:
        def __init__(self, logger: Any) -> None:
            pass

        def deserialize_cuda_engine(self, data: bytes) -> FakeEngine | None:
            return FakeEngine(cudart) if data.startswith(b"SERIALIZED:") else None

    registry = SimpleNamespace(
        load_library=lambda path: last.plugin_loads.append(path) or f"handle:{path}",
        get_creator=lambda name, version, namespace: "creator")

    class Logger:
        WARNING = "WARNING"

        def __init__(self, severity: str) -> None:
            self.severity = severity

    return SimpleNamespace(
        __version__=version, last=last, cudart=cudart, Logger=Logger, Builder=Builder, OnnxParser=OnnxParser,
        Runtime=Runtime, IProgressMonitor=IProgressMonitor,
        NetworkDefinitionCreationFlag=SimpleNamespace(STRONGLY_TYPED=1),
        MemoryPoolType=SimpleNamespace(WORKSPACE="WORKSPACE"),
        TensorIOMode=SimpleNamespace(INPUT="INPUT", OUTPUT="OUTPUT"),
        DataType=DataType, nptype=nptype, get_plugin_registry=lambda: registry)
