"""PyTorch runner: the fp32 reference every other backend is compared against, and the GPU path for
users without TensorRT.

On the CPU it is plain eager PyTorch (fp32, or bf16 where AMX makes that fast). On CUDA it runs as fast as
PyTorch can: fp16 (or bf16) weights in channels_last, ``inference_mode``, one CUDA graph per input shape
(``graphs.py``), pinned host buffers and asynchronous copies on a stream of the runner's own, with the
upload, compute and download timed apart (``last_stage_ms``, what ``toolkit bench`` reports). For video it
also takes the uint8 frame itself (``infer_frame``): resize, normalisation, padding, the model and the argmax
all run in one graph on the GPU, and the host gets back a 1-byte class map instead of float logits.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Any

import numpy as np
import torch
from torch import nn

from toolkit.backend.base import BaseRunner
from toolkit.backend.torch.device import torch_device
from toolkit.backend.torch.frames import area_weights, frame_to_input
from toolkit.backend.torch.graphs import DeviceSlot, GraphCache, capture_graph
from toolkit.backend.torch.precision import DTYPES, resolve_precision
from toolkit.core.description import ModelDescription
from toolkit.core.loader import BaseLoader, resolve
from toolkit.core.meta import ModelMeta
from toolkit.core.names import OUTPUT_NAME
from toolkit.core.shapes import pad_to_multiple
from toolkit.errors import ToolkitError
from toolkit.models.fold import fold_batchnorm

STAGES = ("h2d", "compute", "d2h")


class TorchRunner(BaseRunner):
    """Runs an nn.Module (or a loader giving (module, meta)) on one device; a ``FrameRunner`` on CUDA.

    ``precision``: None (fp32), 'auto', 'fp32', 'fp16', 'bf16' (``precision.resolve_precision``);
    ``cuda_graph``: None = on for CUDA, off on the CPU (True on the CPU is refused); ``compile``: wrap the
    model in ``torch.compile`` first (slow to start: measured against the graph in docs/BENCHMARKS.md).
    """

    backend = "torch"
    thread_safe = True  # the CPU path runs concurrently; on CUDA each concurrent caller takes its own slots

    def __init__(self, model: nn.Module | BaseLoader, meta: ModelMeta | None = None, device: str = "cpu",
                 name: str | None = None, source: str = "", precision: str | None = None,
                 cuda_graph: bool | None = None, compile: bool = False, graph_capacity: int = 4) -> None:
        self.device = torch_device(device)
        self._precision = resolve_precision(precision, self.device)
        super().__init__(name, source, ModelDescription(meta, self._precision))
        self._source = model
        on_cuda = self.device.type == "cuda"
        if cuda_graph and not on_cuda:
            raise ToolkitError("--cuda-graph: CUDA graphs need --device cuda")
        self.cuda_graph = on_cuda if cuda_graph is None else cuda_graph
        self.compile = compile
        # the fast path (CUDA graphs, or a low precision): BatchNorm folded into the convolutions, channels_last,
        # cuDNN autotuning; plain fp32 eager (the CPU reference, training's validation) runs the model as trained
        self._fast = self.cuda_graph or self._precision != "fp32"
        self._cudnn_benchmark: bool | None = None  # the process's setting, put back on deactivate()
        self.model: nn.Module | None = None
        self._fn: Callable[[torch.Tensor], torch.Tensor] | None = None
        self.graph_capacity = graph_capacity
        self.max_captures = 2 * graph_capacity  # then new shapes run eagerly: no capture per frame of a mixed folder
        self._lock = threading.Lock()  # keeps each call's copies and replay contiguous on the stream
        self._pool_lock = threading.Lock()
        self._stream: Any = None
        # sets of slots ({'logits': cache, 'frames': cache}): a call takes a free one and gives it back, so
        # concurrent callers never share static buffers and sequential ones reuse the same graphs
        self._free: list[dict[str, GraphCache[DeviceSlot]]] = []
        self._caches: list[GraphCache[DeviceSlot]] = []

    # -- lifecycle -----------------------------------------------------------------------------------
    def _activate_impl(self) -> ModelDescription:
        loaded = resolve(self._source)
        meta = self.description.meta
        if isinstance(loaded, tuple):
            loaded, meta = loaded
        dtype = DTYPES[self._precision]
        model = loaded.eval()
        if self._fast:
            model = fold_batchnorm(model)
        model = model.to(self.device, dtype=dtype)
        if self._fast:  # what cuDNN/oneDNN's fast kernels want
            model = model.to(memory_format=torch.channels_last)
        self.model = model
        self._fn = torch.compile(model) if self.compile else model
        if self.device.type == "cuda":
            if self._fast:  # fixed shapes: pick the fastest convolution once per shape (process-wide, so undone)
                self._cudnn_benchmark = torch.backends.cudnn.benchmark
                torch.backends.cudnn.benchmark = True
            self._stream = torch.cuda.Stream(self.device)
        return ModelDescription(meta, self._precision)

    def _deactivate_impl(self) -> None:
        for cache in self._caches:
            cache.clear()
        self._caches.clear()
        self._free.clear()
        if self._cudnn_benchmark is not None:
            torch.backends.cudnn.benchmark, self._cudnn_benchmark = self._cudnn_benchmark, None
        self.model = self._fn = self._stream = None

    @property
    def on_cpu(self) -> bool:
        return self.device.type == "cpu"

    @property
    def frames_on_device(self) -> bool:
        return self.device.type == "cuda" and self.meta is not None

    @property
    def graphs_captured(self) -> int:
        """CUDA graphs captured so far: one per input shape and concurrent caller (again after an eviction)."""
        with self._pool_lock:
            return sum(cache.captures for cache in self._caches)

    def _acquire(self) -> dict[str, GraphCache[DeviceSlot]]:
        """A free set of slots, or a new one when every set is in use: two callers (bench --streams 2, infer
        --workers 2) each prepare their next call while the GPU runs the other's."""
        with self._pool_lock:
            if self._free:
                return self._free.pop()
        slots = {"logits": GraphCache(self._capture_logits, self.graph_capacity, self.max_captures),
                 "frames": GraphCache(self._capture_frame, self.graph_capacity, self.max_captures)}
        with self._pool_lock:
            self._caches.extend(slots.values())
        return slots

    def _release(self, slots: dict[str, GraphCache[DeviceSlot]]) -> None:
        with self._pool_lock:
            self._free.append(slots)

    # -- logits: the runner interface ---------------------------------------------------------------
    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised float32 NCHW in, float32 NCHW logits out (contiguous: one plain copy to the host)."""
        assert self._fn is not None
        x = x.to(DTYPES[self._precision])
        if self._fast:
            x = x.contiguous(memory_format=torch.channels_last)
        return self._fn(x).float().contiguous()

    def _infer_impl(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        (x,) = feed.values()
        if self.device.type == "cpu":
            with torch.inference_mode():
                return {OUTPUT_NAME: self._forward(torch.from_numpy(np.ascontiguousarray(x))).numpy()}
        return {OUTPUT_NAME: self._on_device("logits", tuple(x.shape), x)}

    # -- frames: uint8 in, class map out ------------------------------------------------------------
    def infer_frame(self, frame_rgb: np.ndarray, at_frame_size: bool = False) -> np.ndarray:
        """H x W x 3 uint8 RGB frame -> class map (uint8) at the model's input size (or the frame's, with
        ``at_frame_size``), all on the GPU: the steps of ``toolkit.evaluate.preprocess`` (``frames.frame_to_input``),
        the model, ``postprocess_logits``'s bilinear resize where asked, the argmax."""
        self._require_active()
        if not self.frames_on_device:
            raise ToolkitError(f"runner '{self.name}' takes preprocessed tensors only here: frames on the device "
                               "need --device cuda and a model with metadata")
        if frame_rgb.dtype != np.uint8 or frame_rgb.ndim != 3 or frame_rgb.shape[2] != 3:
            raise ToolkitError(f"infer_frame: expected an H x W x 3 uint8 frame, got {frame_rgb.dtype} "
                               f"{'x'.join(map(str, frame_rgb.shape))}")
        out_hw = tuple(frame_rgb.shape[:2]) if at_frame_size else None
        assert self.meta is not None  # frames_on_device needs it
        h, w = self.meta.input_size
        if h < frame_rgb.shape[0] and w > frame_rgb.shape[1]:
            # rows shrink, columns grow: OpenCV's area filter does something of its own there; resizing on the
            # host keeps this rare aspect change equal to the host path (only the uint8 frame moves)
            import cv2

            frame_rgb = cv2.resize(frame_rgb, (w, h), interpolation=cv2.INTER_AREA)
        return self._on_device("frames", (*frame_rgb.shape, out_hw), frame_rgb)

    def _frame_fn(self, frame_hw: tuple[int, int], out_hw: tuple[int, int] | None
                  ) -> Callable[[torch.Tensor], torch.Tensor]:
        """The graph's function for frames of ``frame_hw``: class map at the model's size, or at ``out_hw``."""
        assert self.meta is not None
        mean = torch.tensor(self.meta.dataset.mean, dtype=torch.float32, device=self.device).view(1, 3, 1, 1)
        std = torch.tensor(self.meta.dataset.std, dtype=torch.float32, device=self.device).view(1, 3, 1, 1)
        h, w = self.meta.input_size or frame_hw
        padded = pad_to_multiple(h, w, self.meta.output_stride)
        area = (area_weights(h, frame_hw[0], self.device), area_weights(w, frame_hw[1], self.device)) \
            if h < frame_hw[0] else None  # made here, outside the graph

        resize_back = out_hw is not None and tuple(out_hw) != (h, w)

        def fn(frame: torch.Tensor) -> torch.Tensor:
            x = frame_to_input(frame, mean, std, (h, w), padded, area)
            logits = self._forward(x)[:, :, :h, :w]
            if resize_back:
                logits = torch.nn.functional.interpolate(logits, size=out_hw, mode="bilinear", align_corners=False)
            return logits[0].argmax(0).to(torch.uint8)

        return fn

    # -- the device path ------------------------------------------------------------------------------
    def _new_slot(self, shape: tuple[int, ...], dtype: torch.dtype, fn: Callable[[torch.Tensor], torch.Tensor],
                  graph: bool) -> DeviceSlot:
        slot = DeviceSlot(device_in=torch.zeros(shape, dtype=dtype, device=self.device),
                          host_in=torch.empty(shape, dtype=dtype, pin_memory=True), fn=fn,
                          events=[torch.cuda.Event(enable_timing=True) for _ in range(4)])
        if self.cuda_graph and graph:  # on a stream of its own: other threads replay theirs on the runner's
            with torch.inference_mode():
                slot.graph, slot.device_out = capture_graph(fn, slot.device_in, torch.cuda.Stream(self.device))
        return slot

    def _capture_logits(self, key: Hashable, graph: bool) -> DeviceSlot:
        assert isinstance(key, tuple)  # the input shape (_on_device's key)
        return self._new_slot(key, torch.float32, self._forward, graph)

    def _capture_frame(self, key: Hashable, graph: bool) -> DeviceSlot:
        assert isinstance(key, tuple)  # (H, W, 3, out_hw): the frame's shape, then the class map's size or None
        *shape, out_hw = key
        fn = self._frame_fn((shape[0], shape[1]), out_hw)
        return self._new_slot(tuple(shape), torch.uint8, fn, graph)

    def _on_device(self, kind: str, key: Hashable, host: np.ndarray) -> np.ndarray:
        """Pinned upload, graph replay (or eager call), download, on the runner's stream. The slot is this
        call's alone, so the host copy and the wait need no lock; only the enqueueing is serialised, so that a
        call's copies and replay stay contiguous on the stream (and its stage times its own)."""
        slots = self._acquire()
        try:
            return self._run_slot(slots[kind].get(key), host)
        finally:
            self._release(slots)

    def _run_slot(self, slot: DeviceSlot, host: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            slot.host_in.numpy()[...] = host
            ev = slot.events
            with self._lock, torch.cuda.stream(self._stream):
                ev[0].record()
                slot.device_in.copy_(slot.host_in, non_blocking=True)
                ev[1].record()
                out = slot.run()
                ev[2].record()
                host_out = torch.empty(out.shape, dtype=out.dtype, pin_memory=True)
                host_out.copy_(out, non_blocking=True)
                ev[3].record()
            ev[3].synchronize()
            self.last_stage_ms = {s: ev[i].elapsed_time(ev[i + 1]) for i, s in enumerate(STAGES)}  # this thread's
            return host_out.numpy()
