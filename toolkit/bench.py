"""Latency and throughput of several models/backends measured in one run, so their ratios are fair.

Each entry is a runner (any backend). The runs are split into rounds: every round gives each runner a
short pause (so the previous runtime's spinning worker threads go quiet), a few uncounted warm-up calls
and a block of timed calls. Interleaving blocks this way spreads slow drifts of machine load (other jobs,
thermal state) over all entries instead of penalising whichever ran last.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from toolkit.backend import backend_for, make_runner
from toolkit.backend.base import BaseRunner
from toolkit.errors import ToolkitError, UnknownNameError, suggest

log = logging.getLogger("toolkit.bench")

GRAPH_OPTS = ("auto", "all", "extended", "basic")


@dataclass
class BenchResult:
    """One entry's numbers; ``ratio`` is its throughput over the first entry's (None for the first)."""

    name: str
    model: str
    backend: str
    precision: str
    shape: list[int]
    threads: int | None
    streams: int
    warmup: int
    iterations: int
    latency_ms: dict[str, float] = field(default_factory=dict)  # p50, p90, p99, mean, min, max
    throughput_fps: float = 0.0  # frames per second: batch * iterations / wall time of the timed blocks
    ratio: float | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def set_torch_threads(threads: int | None) -> None:
    """PyTorch's intra-op thread count is process-wide; None leaves it as is."""
    if threads is not None:
        import torch

        torch.set_num_threads(threads)


def ort_graph_optimization(precision: str, lowering: str, device: str, requested: str = "auto") -> str:
    """ONNX Runtime graph optimisation level; 'auto' picks what measured fastest on our CPU.

    INT8 with the maxunpool lowering on the CPU: 'extended'. 'all' adds the NHWC layout transform, which
    wraps MaxPool-with-indices and MaxUnpool (no NHWC or int8 kernels) in Transposes; that costs more
    than it saves. With the mask lowering 'all' wins (its plain MaxPool runs NHWC in uint8). Everything
    else: 'all'. Measurements in docs/BENCHMARKS.md.
    """
    if requested not in GRAPH_OPTS:
        raise UnknownNameError(f"--graph-opt {requested}: {suggest(requested, GRAPH_OPTS)}")
    if requested != "auto":
        return requested
    cpu = device.split(":")[0] == "cpu"
    return "extended" if precision == "int8" and lowering == "maxunpool" and cpu else "all"


def _onnxrt_runner(path: Path, device: str, threads: int | None, graph_opt: str, spin: bool = True) -> BaseRunner:
    """An OnnxrtRunner like ``make_onnxrt_runner``'s, with the graph optimisation level chosen per model."""
    from toolkit.backend.onnxrt.loader import OnnxFromPath, SessionFromOnnx
    from toolkit.backend.onnxrt.runner import OnnxrtRunner, describe_model

    if not path.is_file():
        raise ToolkitError(f"{path}: model file not found")
    model = OnnxFromPath(path)()
    meta, precision, lowering, props = describe_model(model, str(path))
    level = ort_graph_optimization(precision, lowering, device, graph_opt)
    runner = OnnxrtRunner(SessionFromOnnx(model, device=device, threads=threads, graph_optimization=level,
                                          source=str(path), spin=spin),
                          name=f"onnxrt:{path.name}", meta=meta, precision=precision)
    runner.lowering, runner.props = lowering, props  # type: ignore[attr-defined]
    runner.graph_optimization = level  # type: ignore[attr-defined]
    return runner


def open_runner(model: str | Path | None, device: str = "cpu", threads: int | None = None,
                graph_opt: str = "auto", spin: bool = True, **kwargs: object) -> BaseRunner:
    """``make_runner`` with the thread count passed the way the model's backend takes it, and for ONNX
    Runtime the graph optimisation level (``ort_graph_optimization``) and whether its idle intra-op
    threads busy-wait (``spin``: off where other threads of ours share the cores, as in a pipeline)."""
    backend = backend_for(model)
    if threads is not None and threads < 1:
        raise ToolkitError(f"--threads {threads}: expected 1 or more")
    if backend == "torch":
        set_torch_threads(threads)
    elif backend == "onnxrt":
        return _onnxrt_runner(Path(model), device, threads, graph_opt, spin)  # type: ignore[arg-type]
    elif threads is not None:
        raise ToolkitError(f"{model}: the {backend} backend takes no thread count; leave --threads out")
    return make_runner(model, device=device, **kwargs)


def make_input(runner: BaseRunner, shape: Sequence[int], seed: int = 0) -> dict[str, np.ndarray]:
    """A seeded normal tensor of ``shape`` in the dtype the runner's input expects (after activate())."""
    (spec,) = runner.input_specs()
    if len(shape) != len(spec.shape):
        raise ToolkitError(f"--shape {'x'.join(map(str, shape))}: the model takes {len(spec.shape)}-d input "
                           f"({'x'.join('?' if d is None else str(d) for d in spec.shape)})")
    x = np.random.default_rng(seed).standard_normal(tuple(shape), dtype=np.float32)
    return {spec.name: x.astype(spec.dtype, copy=False)}


def latency_stats(values_ms: Sequence[float]) -> dict[str, float]:
    a = np.asarray(values_ms, np.float64)
    return {k: round(float(v), 3) for k, v in (("p50", np.percentile(a, 50)), ("p90", np.percentile(a, 90)),
                                                ("p99", np.percentile(a, 99)), ("mean", a.mean()),
                                                ("min", a.min()), ("max", a.max()))}


def _timed_block(runner: BaseRunner, feed: dict[str, np.ndarray], n: int, streams: int) -> tuple[list[float], float]:
    """(per-call latencies in ms, wall seconds) of ``n`` calls, spread over ``streams`` concurrent threads."""
    lat: list[float] = []

    def worker(k: int) -> None:
        for _ in range(k):
            start = time.perf_counter()
            runner.infer(feed)
            lat.append((time.perf_counter() - start) * 1e3)  # list.append is atomic under the GIL

    t0 = time.perf_counter()
    if streams == 1:
        worker(n)
    else:
        import threading

        shares = [n // streams + (1 if i < n % streams else 0) for i in range(streams)]
        pool = [threading.Thread(target=worker, args=(k,)) for k in shares if k]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
    return lat, time.perf_counter() - t0


def bench_runners(runners: Sequence[BaseRunner], shape: Sequence[int], warmup: int = 2, iterations: int = 20,
                  rounds: int = 2, threads: int | None = None, pause_s: float = 0.2, seed: int = 0,
                  streams: int = 1) -> list[BenchResult]:
    """Time active runners on the same input, ``iterations`` each, split into ``rounds`` interleaved blocks.

    ``streams`` > 1 issues the calls from that many threads at once (as ``toolkit infer --workers`` does),
    so throughput is measured for concurrent use; latency then includes the contention.
    """
    if iterations < 1 or rounds < 1 or warmup < 0 or streams < 1:
        raise ToolkitError(f"iterations={iterations}, rounds={rounds}, warmup={warmup}, streams={streams}: need "
                           "iterations >= 1, rounds >= 1, warmup >= 0, streams >= 1")
    rounds = min(rounds, iterations)
    feeds = [make_input(r, shape, seed) for r in runners]
    times: list[list[float]] = [[] for _ in runners]
    walls = [0.0 for _ in runners]
    for rnd in range(rounds):
        block = iterations // rounds + (1 if rnd < iterations % rounds else 0)
        for i, (runner, feed) in enumerate(zip(runners, feeds, strict=True)):
            time.sleep(pause_s)
            _timed_block(runner, feed, warmup * streams, streams)
            lat, wall = _timed_block(runner, feed, block, streams)
            times[i] += lat
            walls[i] += wall
    results = []
    for runner, t, wall in zip(runners, times, walls, strict=True):
        results.append(BenchResult(name=runner.name, model=runner.name, backend=runner.backend,
                                   precision=runner.precision, shape=list(shape), threads=threads, streams=streams,
                                   warmup=warmup, iterations=len(t), latency_ms=latency_stats(t),
                                   throughput_fps=round(shape[0] * len(t) / wall, 3)))
    base = results[0].throughput_fps if results else 0.0
    for r in results[1:]:
        r.ratio = round(r.throughput_fps / base, 3) if base > 0 else None
    return results


def bench_models(models: Sequence[str | Path | None], shape: Sequence[int], device: str = "cpu",
                 threads: int | None = None, warmup: int = 2, iterations: int = 20, rounds: int = 2,
                 streams: int = 1, graph_opt: str = "auto") -> list[BenchResult]:
    """Open every model (None = embedded default), benchmark them together, close them."""
    runners = [open_runner(m, device=device, threads=threads, graph_opt=graph_opt) for m in models]
    active: list[BaseRunner] = []
    try:
        for r in runners:
            active.append(r.activate())
        results = bench_runners(active, shape, warmup, iterations, rounds, threads=threads, streams=streams)
    finally:
        for r in active:
            r.deactivate()
    for res, m in zip(results, models, strict=True):
        res.model = str(m) if m is not None else "embedded default"
    return results


def format_table(results: Sequence[BenchResult], compare: bool = False) -> str:
    """Markdown table (also readable in a terminal)."""
    head = ["model", "backend", "precision", "p50 ms", "p90 ms", "p99 ms", "mean ms", "FPS"]
    if compare:
        head.append(f"x vs {results[0].name}" if results else "ratio")
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        lat = r.latency_ms
        cells = [r.name, r.backend, r.precision, f"{lat['p50']:.1f}", f"{lat['p90']:.1f}", f"{lat['p99']:.1f}",
                 f"{lat['mean']:.1f}", f"{r.throughput_fps:.2f}"]
        if compare:
            cells.append("1.00" if r.ratio is None else f"{r.ratio:.2f}")
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)
