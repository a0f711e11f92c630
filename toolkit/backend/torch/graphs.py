"""Captured CUDA graphs by input shape: what makes a small model's GPU path as fast as the GPU.

A 360x480 SegNet runs ~60 kernels per frame, launched one by one from Python; replayed from a graph the
w=64 model's compute took 1.24 ms per frame against 1.77 ms eager (fp16, H100: docs/BENCHMARKS.md
section 6). A graph is captured once per input shape, with static input and output buffers, and replayed
for every frame of that shape; a new shape captures a new graph, and the least recently used one is
dropped beyond ``capacity`` (each holds its own memory pool). The cache is plain bookkeeping, so it is tested on the CPU
with a fake capture; the capture itself is ``capture_graph``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

SlotT = TypeVar("SlotT")
WARMUP_CALLS = 3  # eager calls on the capture stream first: cuDNN picks its algorithms, lazy inits happen


class GraphCache(Generic[SlotT]):
    """Slots (a captured graph and its buffers) keyed by shape; ``get`` makes one on a miss.

    ``capture(key, graph)`` makes the slot; ``graph`` is False once ``max_captures`` graphs were captured,
    so a stream of ever new shapes (a folder of mixed image sizes) runs eagerly instead of capturing for
    every frame."""

    def __init__(self, capture: Callable[[Hashable, bool], SlotT], capacity: int = 4,
                 max_captures: int | None = None) -> None:
        if capacity < 1:
            raise ValueError(f"capacity={capacity}: expected 1 or more")
        self._capture, self.capacity = capture, capacity
        self.max_captures = max_captures
        self._slots: OrderedDict[Hashable, SlotT] = OrderedDict()
        self.captures = 0  # how many graphs were captured (a re-capture after eviction counts again)
        self.misses = 0  # slots made, with a graph or not

    def get(self, key: Hashable) -> SlotT:
        slot = self._slots.get(key)
        if slot is not None:
            self._slots.move_to_end(key)
            return slot
        while len(self._slots) >= self.capacity:
            self._slots.popitem(last=False)
        graph = self.max_captures is None or self.captures < self.max_captures
        slot = self._capture(key, graph)
        self.captures += int(graph)
        self.misses += 1
        self._slots[key] = slot
        return slot

    def keys(self) -> list[Hashable]:
        """Cached shapes, least recently used first."""
        return list(self._slots)

    def clear(self) -> None:
        self._slots.clear()


@dataclass
class DeviceSlot:
    """Static device buffers for one input shape, run by ``run()``: a graph replay, or the eager function.

    ``host_in`` is pinned, so the upload is a true asynchronous DMA; outputs go to a fresh pinned tensor
    per call (torch's caching host allocator recycles it once the caller drops the numpy array), so a
    caller may keep a result while the next frame runs."""

    device_in: Any  # torch.Tensor on the GPU
    host_in: Any  # pinned torch.Tensor of the same shape and dtype
    device_out: Any = None  # torch.Tensor written by run()
    graph: Any = None  # torch.cuda.CUDAGraph, or None: eager
    fn: Callable[[Any], Any] | None = None  # the eager function (also what the graph captured)
    events: list[Any] = field(default_factory=list)  # 4 timing events: before/after upload, compute, download

    def run(self) -> Any:
        if self.graph is not None:
            self.graph.replay()
        else:
            assert self.fn is not None
            self.device_out = self.fn(self.device_in)
        return self.device_out


def capture_graph(fn: Callable[[Any], Any], device_in: Any, stream: Any) -> tuple[Any, Any]:
    """(graph, static output) of ``fn(device_in)`` captured on ``stream`` (one no other thread uses), after
    WARMUP_CALLS eager calls."""
    import torch

    stream.wait_stream(torch.cuda.current_stream(device_in.device))
    with torch.cuda.stream(stream):
        for _ in range(WARMUP_CALLS):
            fn(device_in)
    stream.synchronize()
    graph = torch.cuda.CUDAGraph()
    # thread_local: other threads keep replaying their graphs and waiting on their events during this capture
    with torch.cuda.graph(graph, stream=stream, capture_error_mode="thread_local"):
        out = fn(device_in)
    stream.synchronize()
    return graph, out
