"""Stand-ins for ``tensorrt`` and cuda-python's runtime, so the loader and runner logic runs on a CPU.

They model the parts of the TensorRT 10/11 and cuda-python APIs that toolkit.backend.trt calls, as the
documentation describes them: name-based I/O tensors, optimisation profiles, set_input_shape /
set_tensor_address / execute_async_v3, and device memory as raw addresses (here: host memory from
ctypes), with stream capture recording enqueues into a replayable graph. They check our code's use of
the API as we understand it, not TensorRT itself: the real thing was not available (docs/TENSORRT.md).
"""

from __future__ import annotations

import ctypes
import enum
import json
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
    cudaSuccess = 0
    cudaErrorInvalidValue = 1


class _Stream:
    def __init__(self, handle: int) -> None:
        self.handle = handle

    def __int__(self) -> int:
        return self.handle


class FakeCudart:
    """The cudart calls the runner makes, over host memory; tracks live allocations and graph launches."""

    cudaStreamNonBlocking = 1
    cudaMemcpyKind = enum.IntEnum("cudaMemcpyKind", {"cudaMemcpyHostToDevice": 1, "cudaMemcpyDeviceToHost": 2})
    cudaStreamCaptureMode = enum.IntEnum("cudaStreamCaptureMode", {"cudaStreamCaptureModeThreadLocal": 1})

    def __init__(self) -> None:
        self.allocs: dict[int, ctypes.Array] = {}
        self.capturing: dict[int, list] = {}
        self.graph_launches = 0
        self.captures = 0
        self.streams = 0

    def _ok(self, *values: Any) -> tuple:
        return (_Err.cudaSuccess, *values)

    def cudaSetDevice(self, device: int) -> tuple:
        return self._ok()

    def cudaGetDeviceProperties(self, device: int) -> tuple:
        return self._ok(SimpleNamespace(name=b"Fake GPU\x00", major=8, minor=6))

    def cudaStreamCreateWithFlags(self, flags: int) -> tuple:
        self.streams += 1
        return self._ok(_Stream(1000 + self.streams))

    def cudaStreamDestroy(self, stream: _Stream) -> tuple:
        self.streams -= 1
        return self._ok()

    def cudaStreamSynchronize(self, stream: _Stream) -> tuple:
        return self._ok()

    def _alloc(self, n: int) -> tuple:
        buf = (ctypes.c_byte * n)()
        self.allocs[ctypes.addressof(buf)] = buf
        return self._ok(ctypes.addressof(buf))

    cudaMalloc = cudaMallocHost = _alloc

    def _free(self, ptr: int) -> tuple:
        if self.allocs.pop(int(ptr), None) is None:
            return (_Err.cudaErrorInvalidValue,)
        return self._ok()

    cudaFree = cudaFreeHost = _free

    def cudaMemcpyAsync(self, dst: int, src: int, n: int, kind: Any, stream: _Stream) -> tuple:
        ctypes.memmove(dst, src, n)
        return self._ok()

    def cudaStreamBeginCapture(self, stream: _Stream, mode: Any) -> tuple:
        self.capturing[int(stream)] = []
        return self._ok()

    def cudaStreamEndCapture(self, stream: _Stream) -> tuple:
        self.captures += 1
        return self._ok(list(self.capturing.pop(int(stream))))

    def cudaGraphInstantiate(self, graph: list, flags: int) -> tuple:
        return self._ok(list(graph))

    def cudaGraphLaunch(self, graph_exec: list, stream: _Stream) -> tuple:
        self.graph_launches += 1
        for op in graph_exec:
            op()
        return self._ok()

    def cudaGraphExecDestroy(self, graph_exec: list) -> tuple:
        return self._ok()

    cudaGraphDestroy = cudaGraphExecDestroy


# ---- tensorrt ----------------------------------------------------------------------------------------------------


class FakeContext:
    def __init__(self, engine: FakeEngine) -> None:
        self.engine, self.shape, self.addresses, self.enqueues = engine, None, {}, 0

    def set_input_shape(self, name: str, shape: tuple) -> bool:
        lo, _, hi = PROFILE
        if name != "input" or not all(a <= s <= b for a, s, b in zip(lo, shape, hi, strict=True)):
            return False
        self.shape = tuple(shape)
        return True

    def get_tensor_shape(self, name: str) -> tuple:
        n, _, h, w = self.shape
        return self.shape if name == "input" else (n, NUM_CLASSES, h, w)

    def set_tensor_address(self, name: str, ptr: int) -> bool:
        self.addresses[name] = int(ptr)
        return True

    def execute_async_v3(self, stream_handle: int) -> bool:
        shape = self.shape
        op = lambda: self._run(shape)  # noqa: E731 - recorded as is during stream capture
        capture = self.engine.cudart.capturing.get(int(stream_handle))
        if capture is not None:
            capture.append(op)
        else:
            op()
        return True

    def _run(self, shape: tuple) -> None:
        self.enqueues += 1
        size = int(np.prod(shape))
        x = np.frombuffer((ctypes.c_float * size).from_address(self.addresses["input"]), np.float32).reshape(shape)
        y = reference(x)
        ctypes.memmove(self.addresses["logits"], y.ctypes.data, y.nbytes)


class FakeEngine:
    num_io_tensors = 2

    def __init__(self, cudart: FakeCudart) -> None:
        self.cudart, self.contexts = cudart, []

    def get_tensor_name(self, i: int) -> str:
        return ("input", "logits")[i]

    def get_tensor_mode(self, name: str) -> str:
        return "INPUT" if name == "input" else "OUTPUT"

    def get_tensor_shape(self, name: str) -> tuple:
        return (-1, 3, -1, -1) if name == "input" else (-1, NUM_CLASSES, -1, -1)

    def get_tensor_dtype(self, name: str) -> type:
        return np.float32

    def get_tensor_profile_shape(self, name: str, index: int) -> list:
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
        nptype=lambda dtype: dtype, get_plugin_registry=lambda: registry)
