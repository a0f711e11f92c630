"""The one inference interface: every backend (PyTorch, ONNX Runtime, TensorRT, remote) is a Runner.

``infer``, ``bench`` and ``parity`` only ever see this class. The base owns the public methods, the
input checks and the runner's description; a backend fills ``_activate_impl`` (which returns the model's
``ModelDescription``), ``_infer_impl``, ``_deactivate_impl`` and ``_input_specs_impl``. A runner that also
takes uint8 frames on its device implements ``FrameRunner`` (``toolkit.backend.base.frames``) besides.
Tensors cross the interface as numpy arrays named by the model's I/O names
(``input``: N x 3 x H x W float32, normalised; ``logits``: N x K x H x W float32).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from types import TracebackType

import numpy as np

from toolkit.backend.base.frames import frame_runner
from toolkit.core.description import ModelDescription
from toolkit.core.meta import ModelMeta
from toolkit.core.names import INPUT_NAME
from toolkit.errors import InputShapeError, ToolkitError


@dataclass(frozen=True)
class TensorSpec:
    """Name, numpy dtype and shape of one input; None marks a dynamic dimension."""

    name: str
    dtype: np.dtype
    shape: tuple[int | None, ...]


@dataclass(frozen=True)
class RunnerInfo:
    """What a runner says about itself (``runner.info``); complete after activate(), when the model's
    metadata has been read.

    ``source``: the file or URL the model came from ("" for an in-memory model); ``lowering``: the unpool
    form of an ONNX graph or engine ("" where it does not apply); ``graph_optimization``: ONNX Runtime's
    level ("" elsewhere); ``thread_safe``: infer() may be called from several threads at once;
    ``on_cpu``: the model computes on this host's CPU; ``frames_on_device``: ``infer_frame`` takes uint8
    frames and returns class maps, pre- and post-processing on the runner's device; ``props``: the
    model's toolkit metadata_props (source_sha256, quantization settings ...)."""

    name: str
    backend: str
    source: str
    precision: str
    lowering: str = ""
    graph_optimization: str = ""
    thread_safe: bool = False
    on_cpu: bool = False
    frames_on_device: bool = False
    props: dict[str, str] = field(default_factory=dict)


class BaseRunner:
    """activate() -> infer(feed) ... -> deactivate(); also a context manager."""

    backend = "base"
    thread_safe = False  # infer() may run concurrently from several threads: a backend says so when it is

    def __init__(self, name: str | None = None, source: str = "",
                 description: ModelDescription | None = None) -> None:
        self.name = name or self.backend
        self.source = source
        self.is_active = False
        self.last_inference_time: float | None = None  # seconds, of the last infer() call
        self._calls = threading.local()  # what the calling thread's last call measured (last_stage_ms)
        # what is known before activate() (a model given in memory, a precision asked for); activate() replaces it
        self._description = description or ModelDescription()

    @property
    def description(self) -> ModelDescription:
        """The model's description, as ``_activate_impl`` returned it (before activate(): what the
        constructor was given, often nothing)."""
        return self._description

    @property
    def meta(self) -> ModelMeta | None:
        """Label space, normalisation and input size, when the model carries them (after activate())."""
        return self._description.meta

    @property
    def last_stage_ms(self) -> dict[str, float] | None:
        """GPU runners: ms of this thread's last call's upload, compute and download ('h2d', 'compute',
        'd2h'), timed on the device; None where a runner cannot time them apart. Per thread, so that
        concurrent callers (bench --streams) each read their own call's."""
        return getattr(self._calls, "stage_ms", None)

    @last_stage_ms.setter
    def last_stage_ms(self, value: dict[str, float] | None) -> None:
        self._calls.stage_ms = value

    @property
    def info(self) -> RunnerInfo:
        """This runner's description (source, precision, lowering, graph optimisation, thread safety)."""
        d = self._description
        return RunnerInfo(name=self.name, backend=self.backend, source=self.source, precision=d.precision,
                          lowering=d.lowering, graph_optimization=self._graph_optimization(),
                          thread_safe=self.thread_safe, on_cpu=self.on_cpu,
                          frames_on_device=frame_runner(self) is not None, props=dict(d.props))

    # -- lifecycle ---------------------------------------------------------------------------------
    def activate(self) -> BaseRunner:
        if not self.is_active:
            described = self._activate_impl()
            if not isinstance(described, ModelDescription):
                raise TypeError(f"{type(self).__name__}._activate_impl must return a ModelDescription, "
                                f"got {type(described).__name__}")
            self._description = described
            self.is_active = True
        return self

    def deactivate(self) -> None:
        if self.is_active:
            self._deactivate_impl()
            self.is_active = False

    def __enter__(self) -> BaseRunner:
        return self.activate()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.deactivate()

    @property
    def on_cpu(self) -> bool:
        """True when the model computes on this host's CPU: post-processing then competes for the same
        cores, so it is cheapest in the calling thread, while the outputs are still in its cache.
        False (the default) for GPU and remote runners, whose calling thread should get back to the model."""
        return False

    def _graph_optimization(self) -> str:
        """The runtime's graph optimisation level, where the backend has one (ONNX Runtime); "" elsewhere."""
        return ""

    # -- inference ---------------------------------------------------------------------------------
    def input_specs(self) -> list[TensorSpec]:
        """The inputs this runner expects (after activate())."""
        self._require_active()
        return self._input_specs_impl()

    def infer(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run one batch; checks names, dtypes and static dimensions first."""
        self._require_active()
        self._check_feed(feed)
        start = time.perf_counter()
        out = self._infer_impl(feed)
        self.last_inference_time = time.perf_counter() - start
        return out

    def _require_active(self) -> None:
        if not self.is_active:
            raise ToolkitError(f"runner '{self.name}' is not active: call activate() or use 'with'")

    def _check_feed(self, feed: dict[str, np.ndarray]) -> None:
        specs = {s.name: s for s in self._input_specs_impl()}
        if set(feed) != set(specs):
            raise InputShapeError(f"runner '{self.name}' expects inputs {sorted(specs)}, got {sorted(feed)}")
        for name, arr in feed.items():
            spec = specs[name]
            if arr.dtype != spec.dtype:
                raise InputShapeError(f"input '{name}': dtype {arr.dtype}, expected {spec.dtype}")
            if len(arr.shape) != len(spec.shape) or any(
                e is not None and e != a for e, a in zip(spec.shape, arr.shape, strict=False)
            ):
                shown = "x".join("?" if d is None else str(d) for d in spec.shape)
                raise InputShapeError(f"input '{name}': shape {'x'.join(map(str, arr.shape))}, expected {shown}")

    # -- for backends ------------------------------------------------------------------------------
    def _activate_impl(self) -> ModelDescription:
        """Load the model, allocate what inference needs, and return what the model says about itself."""
        raise NotImplementedError

    def _deactivate_impl(self) -> None:
        pass

    def _infer_impl(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def _input_specs_impl(self) -> list[TensorSpec]:
        return [TensorSpec(INPUT_NAME, np.dtype(np.float32), (None, 3, None, None))]
