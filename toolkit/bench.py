"""Latency and throughput of several models/backends measured in one run, so their ratios are fair.

Each entry is a runner (any backend). The runs are split into rounds: every round gives each runner a
short pause (so the previous runtime's spinning worker threads go quiet), a few uncounted warm-up calls
and a block of timed calls. Interleaving blocks this way spreads slow drifts of machine load (other jobs,
thermal state) over all entries instead of penalising whichever ran last.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from toolkit.backend import BaseRunner, RunnerOptions, make_runner
from toolkit.backend.base import frame_runner
from toolkit.core import defaults
from toolkit.core.shapes import check_multiple
from toolkit.errors import ToolkitError

log = logging.getLogger(__name__)

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
    io: str = "logits"  # what one call moves: logits (tensor in, logits out) or frames (uint8 in, class map out)
    stages_ms: dict[str, float] | None = None  # GPU runners: mean upload (h2d), compute, download (d2h) ms
    noise: dict | None = None  # spread_noise(latency_ms): the spread ratios and whether they say "noisy machine"

    def as_dict(self) -> dict:
        return asdict(self)


def make_input(runner: BaseRunner, shape: Sequence[int], seed: int = 0) -> dict[str, np.ndarray]:
    """A seeded normal tensor of ``shape`` in the dtype the runner's input expects (after activate())."""
    (spec,) = runner.input_specs()
    if len(shape) != len(spec.shape):
        raise ToolkitError(f"--input-shape {'x'.join(map(str, shape))}: the model takes {len(spec.shape)}-d input "
                           f"({'x'.join('?' if d is None else str(d) for d in spec.shape)})")
    x = np.random.default_rng(seed).standard_normal(tuple(shape), dtype=np.float32)
    return {spec.name: x.astype(spec.dtype, copy=False)}


def cuda_ms_per_call(fn: Callable[[], object], calls: int, repeats: int, warmup: int = 3) -> float:
    """Median GPU ms per call of ``fn`` over ``repeats`` blocks of ``calls`` back-to-back calls, timed with CUDA
    events (a sync per block, none per call): for code that stays on the device (a kernel, a graph replay),
    where ``bench_runners``' host wall time per call would measure Python instead. Needs a CUDA GPU."""
    import torch

    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    blocks = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(calls):
            fn()
        end.record()
        end.synchronize()
        blocks.append(start.elapsed_time(end) / calls)
    return float(np.median(blocks))


def latency_stats(values_ms: Sequence[float]) -> dict[str, float]:
    a = np.asarray(values_ms, np.float64)
    return {k: round(float(v), 3) for k, v in (("p50", np.percentile(a, 50)), ("p90", np.percentile(a, 90)),
                                                ("p99", np.percentile(a, 99)), ("mean", a.mean()),
                                                ("min", a.min()), ("max", a.max()))}


IO_MODES = ("logits", "frames")

# The same model on the same input repeats its time closely on an idle machine (on ours, a few per cent between
# p50 and p90). A p90 more than 1.5x the median means one call in ten was held up by something else (another
# process, a frequency drop, swapping); a median more than 1.5x the fastest call means even typical calls were.
# Chosen, not calibrated across machines: meant to flag the 2x-10x spreads of a loaded 2-core machine (issue 25),
# not to certify a quiet one.
NOISY_P90_OVER_P50 = 1.5
NOISY_P50_OVER_MIN = 1.5


def spread_noise(latency_ms: dict[str, float]) -> dict:
    """p90/p50 and p50/min of one entry, and ``noisy`` when either is past its threshold."""
    p50, p90, low = latency_ms["p50"], latency_ms["p90"], latency_ms["min"]
    p90_p50 = round(p90 / p50, 3) if p50 > 0 else None
    p50_min = round(p50 / low, 3) if low > 0 else None
    noisy = bool((p90_p50 or 0) > NOISY_P90_OVER_P50 or (p50_min or 0) > NOISY_P50_OVER_MIN)
    return {"p90_over_p50": p90_p50, "p50_over_min": p50_min, "noisy": noisy,
            "thresholds": {"p90_over_p50": NOISY_P90_OVER_P50, "p50_over_min": NOISY_P50_OVER_MIN}}


def noise_warnings(results: Sequence[BenchResult]) -> list[str]:
    """One warning line per entry whose spread says the machine was busy while it was timed."""
    lines = []
    for r in results:
        n = r.noise or spread_noise(r.latency_ms)
        if n["noisy"]:
            lines.append(f"warning: {r.name}: p90/p50 {n['p90_over_p50']}, p50/min {n['p50_over_min']} (above "
                         f"{NOISY_P90_OVER_P50} / {NOISY_P50_OVER_MIN}): the machine was busy while it was timed; "
                         "these figures and the ratios between models are not reliable, rerun on an idle machine")
    return lines


def make_call(runner: BaseRunner, shape: Sequence[int], io: str = "logits", seed: int = 0) -> Callable[[], object]:
    """One timed call: ``logits`` feeds a normalised float tensor and returns float logits to the host (what
    eval and parity do); ``frames`` feeds a uint8 H x W x 3 frame of the same size and returns the class map,
    pre- and post-processing on the device (what ``toolkit infer`` does with a GPU runner)."""
    if io == "logits":
        feed = make_input(runner, shape, seed)
        return lambda: runner.infer(feed)
    if io != "frames":
        raise ToolkitError(f"--io {io}: expected one of {', '.join(IO_MODES)}")
    on_device = frame_runner(runner)
    if on_device is None:
        raise ToolkitError(f"--io frames: {runner.name} takes preprocessed tensors only (frames on the device: "
                           "PyTorch checkpoints on --device cuda)")
    if len(shape) != 4 or shape[0] != 1 or shape[1] != 3:
        raise ToolkitError(f"--io frames: one 3-channel frame at a time, --input-shape 1x3xHxW (got "
                           f"{'x'.join(map(str, shape))})")
    frame = np.random.default_rng(seed).integers(0, 256, (shape[2], shape[3], 3), dtype=np.uint8)
    return lambda: on_device.infer_frame(frame)


def _timed_block(runner: BaseRunner, call: Callable[[], object], n: int, streams: int,
                 stages: list[dict[str, float]] | None = None) -> tuple[list[float], float]:
    """(per-call latencies in ms, wall seconds) of ``n`` calls, spread over ``streams`` concurrent threads;
    each call's device stage times (``runner.last_stage_ms``) go to ``stages`` where the runner has them."""
    lat: list[float] = []

    def worker(k: int) -> None:
        for _ in range(k):
            start = time.perf_counter()
            call()
            lat.append((time.perf_counter() - start) * 1e3)  # list.append is atomic under the GIL
            if stages is not None and runner.last_stage_ms is not None:
                stages.append(runner.last_stage_ms)

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


def mean_stages(stages: Sequence[dict[str, float]]) -> dict[str, float] | None:
    """Mean ms of each device stage over the calls that reported them; None when none did."""
    if not stages:
        return None
    return {k: round(float(np.mean([s[k] for s in stages])), 4) for k in stages[0]}


def bench_runners(runners: Sequence[BaseRunner], shape: Sequence[int], warmup: int = defaults.BENCH_WARMUP,
                  iterations: int = defaults.BENCH_ITERATIONS,
                  rounds: int = defaults.BENCH_ROUNDS, threads: int | None = None, pause_s: float = 0.2, seed: int = 0,
                  streams: int = defaults.BENCH_STREAMS, io: str = "logits") -> list[BenchResult]:
    """Time active runners on the same input, ``iterations`` each, split into ``rounds`` interleaved blocks.

    ``streams`` > 1 issues the calls from that many threads at once (as ``toolkit infer --workers`` does),
    so throughput is measured for concurrent use; latency then includes the contention.
    """
    if iterations < 1 or rounds < 1 or warmup < 0 or streams < 1:
        raise ToolkitError(f"iterations={iterations}, rounds={rounds}, warmup={warmup}, streams={streams}: need "
                           "iterations >= 1, rounds >= 1, warmup >= 0, streams >= 1")
    rounds = min(rounds, iterations)
    for r in runners:  # each model's own input multiple (its metadata; 8 for a model without one)
        if r.meta is not None:
            check_multiple(int(shape[2]), int(shape[3]), r.meta.output_stride, what=f"{r.name}: --input-shape",
                           prefix=f"{shape[0]}x{shape[1]}x")
    calls = [make_call(r, shape, io, seed) for r in runners]
    times: list[list[float]] = [[] for _ in runners]
    stages: list[list[dict[str, float]]] = [[] for _ in runners]
    walls = [0.0 for _ in runners]
    for rnd in range(rounds):
        block = iterations // rounds + (1 if rnd < iterations % rounds else 0)
        for i, (runner, call) in enumerate(zip(runners, calls, strict=True)):
            time.sleep(pause_s)
            _timed_block(runner, call, warmup * streams, streams)
            lat, wall = _timed_block(runner, call, block, streams, stages[i])
            times[i] += lat
            walls[i] += wall
    results = []
    for runner, t, wall, st in zip(runners, times, walls, stages, strict=True):
        results.append(BenchResult(name=runner.name, model=runner.name, backend=runner.backend,
                                   precision=runner.info.precision, shape=list(shape), threads=threads, streams=streams,
                                   warmup=warmup, iterations=len(t), latency_ms=latency_stats(t),
                                   throughput_fps=round(shape[0] * len(t) / wall, 3), io=io,
                                   stages_ms=mean_stages(st)))
        results[-1].noise = spread_noise(results[-1].latency_ms)
    base = results[0].throughput_fps if results else 0.0
    for r in results[1:]:
        r.ratio = round(r.throughput_fps / base, 3) if base > 0 else None
    return results


def bench_models(models: Sequence[str | Path | None], shape: Sequence[int], device: str = "cpu",
                 threads: int | None = None, warmup: int = 2, iterations: int = 20, rounds: int = 2,
                 streams: int = 1, graph_opt: str = "auto", precision: str | None = None,
                 cuda_graph: bool | None = None, compile: bool = False, io: str = "logits") -> list[BenchResult]:
    """Open every model (None = embedded default), benchmark them together, close them."""
    options = RunnerOptions(device=device, threads=threads, graph_opt=graph_opt, precision=precision,
                            cuda_graph=cuda_graph, compile=compile)
    runners = [make_runner(m, options) for m in models]
    active: list[BaseRunner] = []
    try:
        for r in runners:
            active.append(r.activate())
        results = bench_runners(active, shape, warmup, iterations, rounds, threads=threads, streams=streams, io=io)
    finally:
        for r in active:
            r.deactivate()
    for res, m in zip(results, models, strict=True):
        res.model = str(m) if m is not None else "embedded default"
    return results


def _ms(v: float) -> str:
    """Two decimals below 10 ms (GPU latencies), one above."""
    return f"{v:.2f}" if v < 10 else f"{v:.1f}"


def format_table(results: Sequence[BenchResult], compare: bool = False) -> str:
    """Markdown table (also readable in a terminal)."""
    head = ["model", "backend", "precision", "p50 ms", "p90 ms", "p99 ms", "mean ms", "FPS"]
    staged = any(r.stages_ms for r in results)
    if staged:
        head.append("h2d / compute / d2h ms")
    if compare:
        head.append(f"x vs {results[0].name}" if results else "ratio")
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        lat = r.latency_ms
        cells = [r.name, r.backend, r.precision, *(_ms(lat[k]) for k in ("p50", "p90", "p99", "mean")),
                 f"{r.throughput_fps:.2f}"]
        if staged:
            st = r.stages_ms
            cells.append(" / ".join(f"{st[k]:.3f}" for k in ("h2d", "compute", "d2h")) if st else "-")
        if compare:
            cells.append("1.00" if r.ratio is None else f"{r.ratio:.2f}")
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join([*rows, *noise_warnings(results)])
