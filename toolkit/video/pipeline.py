"""capture -> preprocess -> infer -> overlay -> sinks, each stage in its own thread, joined by bounded queues.

Why threads: decode, normalisation, the argmax/overlay and encoding all release the GIL (OpenCV, numpy,
the runtimes), so on a few cores they run while the model runs and the end-to-end rate approaches the
model's own throughput. File sources process every frame in order (blocking puts); live sources use
queues of one and drop the oldest frame, so what is shown is never more than a frame or two old.
The sink stage runs in the calling (main) thread: Ctrl-C lands there, windows need it, and on any stop
the sinks are closed so the output file is complete.
"""

from __future__ import annotations

import copy
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields

import cv2
import numpy as np

from toolkit.backend.base import BaseRunner, frame_runner
from toolkit.compare.temporal import FlipCounter
from toolkit.core.names import INPUT_NAME
from toolkit.errors import SourceLostError, ToolkitError
from toolkit.evaluate import Preprocessed
from toolkit.video.ops import FastPreprocess, argmax_classes
from toolkit.video.overlay import Overlay
from toolkit.video.sinks import Sink
from toolkit.video.sources import FrameSource, UnreadableFrame

log = logging.getLogger(__name__)

STAGES = ("capture", "preprocess", "infer", "overlay", "write")
UNREADABLE_LISTED = 20  # names kept for the summary and --json; the count covers them all
_END = object()  # end-of-stream marker, one per consumer
# how long run() waits for each stage thread after the stop before it closes the sinks anyway: a stage stuck in
# a runner call (a hung device) must not keep a second Ctrl-C from returning; the threads are daemons
JOIN_TIMEOUT_S = 5.0


@dataclass
class Item:
    index: int  # position in the source (gaps where frames were unreadable)
    frame: np.ndarray  # RGB uint8 as captured
    t0: float  # perf_counter at capture
    pre: Preprocessed | None = None
    logits: np.ndarray | None = None
    infer_ms: float = 0.0
    mask: np.ndarray | None = None  # class map at model resolution, then at frame size
    argmax_ms: float = 0.0  # when the worker took the argmax (CPU models), counted in the overlay stage
    out: np.ndarray | None = None
    seq: int = -1  # order among frames that entered the model (for reordering after parallel workers)


@dataclass
class RunSummary:
    """What happened in one run: what ``toolkit infer`` prints and writes with --json. The library reports
    (``stopped_by``, ``error``, ``errors``); the CLI decides the exit code from it (``cli/common.exit_code``)."""

    source: str
    model: str
    backend: str
    precision: str
    input_shape: list[int]
    frames: int = 0  # frames written to the sinks
    dropped: int = 0  # stale live frames dropped to keep latency low
    unreadable: int = 0  # frames the source could not decode (skipped)
    unreadable_names: list[str] = field(default_factory=list)  # the first UNREADABLE_LISTED of them, by name
    cancelled: int = 0  # frames in flight when a stop was requested, not finished
    reconnects: int = 0
    wall_s: float = 0.0
    fps: float = 0.0  # end to end: frames / wall time, pipeline fill included
    stopped_by: str = "end of source"
    error: str | None = None  # the first error, as one line
    stages: dict[str, dict[str, float]] = field(default_factory=dict)  # name -> p50_ms, p95_ms, mean_ms
    latency_ms: dict[str, float] = field(default_factory=dict)  # capture -> written, p50/p95
    outputs: list[str] = field(default_factory=list)
    # flicker of the class maps written: toolkit.compare.temporal.FlipCounter's summary (% of pixels changing
    # class between frames adjacent in the source; boundary/interior split; no optical flow in this loop)
    temporal: dict | None = None
    # every error that stopped the run (a stage's, a sink's, a close), first first; not in as_dict()
    errors: list[BaseException] = field(default_factory=list, repr=False, compare=False)

    @property
    def failure(self) -> BaseException | None:
        """The error that ended the run (None: it ended by itself or by a stop)."""
        return self.errors[0] if self.errors else None

    @property
    def interrupted(self) -> bool:
        """Stopped by Ctrl-C: the outputs are complete, but the run was cut short."""
        return self.stopped_by.startswith("interrupted")

    def as_dict(self) -> dict:
        """The JSON fields; the exceptions themselves stay out (``error`` is the first one's text)."""
        return {f.name: copy.deepcopy(getattr(self, f.name)) for f in fields(self) if f.name != "errors"}


def percentiles(values_ms: Sequence[float]) -> dict[str, float]:
    if not values_ms:
        return {"p50_ms": 0.0, "p95_ms": 0.0, "mean_ms": 0.0, "n": 0}
    a = np.asarray(values_ms, np.float64)
    return {"p50_ms": round(float(np.percentile(a, 50)), 3), "p95_ms": round(float(np.percentile(a, 95)), 3),
            "mean_ms": round(float(a.mean()), 3), "n": int(a.size)}


class Pipeline:
    """One run of a source through a runner into sinks; ``run()`` returns a RunSummary."""

    def __init__(self, source: FrameSource, runner: BaseRunner, overlay: Overlay, sinks: Sequence[Sink],
                 queue_size: int = 4, workers: int = 1, max_frames: int | None = None,
                 on_frame: Callable[[int], None] | None = None, hud: bool = True) -> None:
        if runner.meta is None:
            raise ToolkitError(f"model '{runner.name}' carries no label space (class names, palette, mean/std); "
                               "export it with the toolkit so its metadata travels with it")
        if workers < 1:
            raise ToolkitError(f"workers={workers}: expected 1 or more inference threads")
        if workers > 1 and not runner.info.thread_safe:
            raise ToolkitError(f"--workers {workers}: the {runner.backend} runner is not safe to call from several "
                               "threads at once; use --workers 1")
        self.source, self.runner, self.overlay, self.sinks = source, runner, overlay, list(sinks)
        self.meta = runner.meta
        self.workers, self.max_frames, self.on_frame, self.hud = workers, max_frames, on_frame, hud
        qsize = 1 if source.live else max(1, queue_size)
        self.q_pre: queue.Queue = queue.Queue(qsize)
        self.q_inf: queue.Queue = queue.Queue(qsize)
        self.q_post: queue.Queue = queue.Queue(max(qsize, workers))
        self.q_out: queue.Queue = queue.Queue(qsize)
        self.stop = threading.Event()  # graceful: finish what is written, close the sinks
        self.abort = threading.Event()  # second Ctrl-C: every stage leaves now, sinks still closed
        self._overlay_ready = threading.Event()
        self.times: dict[str, list[float]] = {s: [] for s in STAGES}
        self.latency: list[float] = []
        self.errors: list[BaseException] = []
        self.counts = {"dropped": 0, "unreadable": 0, "cancelled": 0}
        self.unreadable_names: list[str] = []
        self._lock = threading.Lock()
        self.stop_reason: str | None = None
        self._fps_ema: float | None = None
        self._last_out: float | None = None
        # A model on the CPU: its worker takes the argmax of the logits it just wrote, while they are in
        # its core's cache (0.22 ms against 0.38 ms read by another thread: tools/pipeline_costs.py) and passes on
        # the 1-byte class map. A GPU or remote model's worker goes straight back to the model instead.
        self.argmax_in_worker = runner.info.on_cpu
        # A GPU runner that takes the uint8 frame itself (PyTorch on CUDA): resize, normalisation, the model and
        # the argmax run on the device, 0.5 MB goes up and a 1-byte class map comes back; no host preprocessing.
        self.frame_runner = frame_runner(runner)
        self.frames_on_device = self.frame_runner is not None
        self.input_shape: tuple[int, ...] = (1, 3, *self.meta.input_size)  # set by warm_up()
        self.flips = FlipCounter()

    # -- helpers -----------------------------------------------------------------------------------
    def _put(self, q: queue.Queue, item: object) -> bool:
        while not self.abort.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _get(self, q: queue.Queue) -> object:
        while not self.abort.is_set():
            try:
                return q.get(timeout=0.1)
            except queue.Empty:
                continue
        return _END

    def _stage(self, fn: Callable[[], None], inq: queue.Queue | None, ends_in: int, outq: queue.Queue,
               ends_out: int) -> Callable[[], None]:
        """Thread body: on failure, record the error, stop the run, and keep the chain flowing (discard
        inputs until the end marker, then pass it on) so the frames already inferred still get written."""
        def run() -> None:
            try:
                fn()
            except BaseException as e:
                self.errors.append(e)
                self.request_stop("error")
                seen = 0
                while inq is not None and seen < ends_in:
                    got = self._get(inq)
                    if got is _END:
                        seen += 1
                    else:
                        self._cancel()
                for _ in range(ends_out):
                    self._put(outq, _END)
        return run

    def _cancel(self, n: int = 1) -> None:
        with self._lock:
            self.counts["cancelled"] += n

    # -- stages --------------------------------------------------------------------------------------
    def _capture(self) -> None:
        index = 0
        try:
            while not self.stop.is_set() and not self.abort.is_set():
                if self.max_frames is not None and index >= self.max_frames:
                    break
                t = time.perf_counter()
                try:
                    frame = self.source.read()
                except UnreadableFrame as e:
                    log.debug("%s", e)
                    self.counts["unreadable"] += 1
                    if len(self.unreadable_names) < UNREADABLE_LISTED:
                        self.unreadable_names.append(e.what)
                    index += 1
                    continue
                if frame is None:
                    break
                self.times["capture"].append((time.perf_counter() - t) * 1e3)
                item = Item(index, frame, time.perf_counter())
                index += 1
                if self.source.live:  # keep only the newest frame waiting
                    try:
                        self.q_pre.put_nowait(item)
                    except queue.Full:
                        try:
                            self.q_pre.get_nowait()
                            self.counts["dropped"] += 1
                        except queue.Empty:
                            pass
                        self._put(self.q_pre, item)
                elif not self._put(self.q_pre, item):
                    return
        except SourceLostError as e:  # already retried by RetryingSource: end the run, write what we have
            self.errors.append(e)
        self._put(self.q_pre, _END)

    def _preprocess(self) -> None:
        prep, seq = FastPreprocess(self.meta.dataset.mean, self.meta.dataset.std, self.meta.input_size,
                                   self.meta.output_stride), 0
        while (item := self._get(self.q_pre)) is not _END:
            assert isinstance(item, Item)
            if self.stop.is_set():
                self._cancel()
                continue
            t = time.perf_counter()
            if not self.frames_on_device:
                item.pre = prep(item.frame)
            item.seq, seq = seq, seq + 1
            self.times["preprocess"].append((time.perf_counter() - t) * 1e3)
            if not self._put(self.q_inf, item):
                return
        for _ in range(self.workers):
            self._put(self.q_inf, _END)

    def _infer(self) -> None:
        while (item := self._get(self.q_inf)) is not _END:
            assert isinstance(item, Item)
            if self.stop.is_set():
                self._cancel()
                continue
            t = time.perf_counter()
            if self.frame_runner is not None:
                item.mask = self.frame_runner.infer_frame(item.frame)
            else:
                assert item.pre is not None
                (item.logits,) = self.runner.infer({INPUT_NAME: item.pre.tensor}).values()
            done = time.perf_counter()
            item.infer_ms = (done - t) * 1e3
            self.times["infer"].append(item.infer_ms)
            if self.argmax_in_worker:
                item.mask, item.logits = self._class_map(item), None
                item.argmax_ms = (time.perf_counter() - done) * 1e3
            if not self._put(self.q_post, item):
                return
        self._put(self.q_post, _END)

    def _overlay(self) -> None:
        try:
            self._warm_overlay()
        finally:
            self._overlay_ready.set()  # run() starts the clock and the other stages on this
        pending: dict[int, Item] = {}
        next_seq, ended = 0, 0
        while ended < self.workers:
            got = self._get(self.q_post)
            if got is _END:
                ended += 1
                if self.abort.is_set():
                    return
                continue
            assert isinstance(got, Item)
            pending[got.seq] = got
            while next_seq in pending:  # emit in source order whatever order the workers finished in
                item = pending.pop(next_seq)  # inferred already: drawn and written even after a stop
                next_seq += 1
                t = time.perf_counter()
                self._draw(item)
                self.times["overlay"].append((time.perf_counter() - t) * 1e3 + item.argmax_ms)
                if not self._put(self.q_out, item):
                    return
        self._cancel(len(pending))
        self._put(self.q_out, _END)

    @staticmethod
    def _class_map(item: Item) -> np.ndarray:
        assert item.pre is not None and item.logits is not None
        h, w = item.pre.valid_hw
        return argmax_classes(item.logits[0, :, :h, :w])  # the padding cropped by a view: read in place

    def _draw(self, item: Item) -> None:
        mask = item.mask if item.mask is not None else self._class_map(item)
        h, w = item.frame.shape[:2]
        if mask.shape != (h, w):  # class map at model resolution, scaled to the frame by nearest neighbour
            mask = cv2.resize(mask, (w, h), interpolation=cv2.INTER_NEAREST)
        item.mask, item.logits = mask, None
        hud: list[str] = []
        if self.hud:
            now = time.perf_counter()
            if self._last_out is not None:
                rate = 1.0 / max(now - self._last_out, 1e-6)
                self._fps_ema = rate if self._fps_ema is None else 0.9 * self._fps_ema + 0.1 * rate
            self._last_out = now
            hud = self._hud_lines(self._fps_ema, item.infer_ms, self.input_shape)
        item.out = self.overlay(item.frame, mask, hud)

    def _hud_lines(self, fps: float | None, infer_ms: float, shape: tuple[int, ...]) -> list[str]:
        rate = f"{fps:5.1f}" if fps else "  -  "
        return [f"FPS {rate}  model {infer_ms:6.1f} ms",
                f"{self.runner.backend} {self.runner.info.precision}  {shape[2]}x{shape[3]}"]

    def request_stop(self, reason: str = "stopped") -> None:
        """Graceful stop (Ctrl-C, window closed, a caller's stop): frames in flight are cancelled, the rest
        is written and the sinks are closed. Safe from any thread; the first reason is kept."""
        with self._lock:
            if self.stop_reason is None:
                self.stop_reason = reason
        self.stop.set()

    # -- run -----------------------------------------------------------------------------------------
    def warm_up(self) -> list[int]:
        """One inference per worker, run concurrently, before the clock starts: the first call on a thread,
        and each extra concurrent call, grows the runtime's buffers once (2-3x a steady call)."""
        h, w = self.meta.input_size
        pre = FastPreprocess(self.meta.dataset.mean, self.meta.dataset.std, None,
                             self.meta.output_stride)(np.zeros((h, w, 3), np.uint8))
        feed = {INPUT_NAME: pre.tensor}
        # frames on the device: a graph is captured per frame size, so warm up at the source's (a video's
        # header says it; else the model's, the usual size)
        frame = np.zeros((*(self.source.frame_hw or (h, w)), 3), np.uint8)

        def call(_: int = 0) -> None:
            self.frame_runner.infer_frame(frame) if self.frame_runner is not None else self.runner.infer(feed)

        if self.workers == 1:
            call()
        else:
            with ThreadPoolExecutor(self.workers, thread_name_prefix="warm-up") as pool:
                list(pool.map(call, range(self.workers)))
        self.input_shape = tuple(pre.tensor.shape)
        return list(pre.tensor.shape)

    def _warm_overlay(self) -> None:
        """Draw once on a blank frame, in the overlay thread itself: OpenCV 5 initialises its font per
        thread on the first text it measures (~25 ms of CPU), which otherwise lands on the first frame.
        With this and warm_up(), the first frame of a 100-frame run is written 36-47 ms after the start
        instead of ~100 ms (2-core CPU; ``tools/pipeline_costs.py --model``, docs/BENCHMARKS.md)."""
        h, w = self.meta.input_size
        hud = self._hud_lines(None, 0.0, (1, 3, h, w)) if self.hud else []
        self.overlay(np.zeros((h, w, 3), np.uint8), np.zeros((h, w), np.uint8), hud)

    def run(self) -> RunSummary:
        runner = self.runner
        shape = self.warm_up()
        summary = RunSummary(source=self.source.name, model=runner.name, backend=runner.backend,
                             precision=runner.info.precision, input_shape=shape)
        n = self.workers
        bodies = [("capture", self._stage(self._capture, None, 0, self.q_pre, 1)),
                  ("preprocess", self._stage(self._preprocess, self.q_pre, 1, self.q_inf, n)),
                  *[(f"infer{i}", self._stage(self._infer, self.q_inf, 1, self.q_post, 1)) for i in range(n)],
                  ("overlay", self._stage(self._overlay, self.q_post, n, self.q_out, 1))]
        threads = [threading.Thread(target=body, name=name, daemon=True) for name, body in bodies]
        threads[-1].start()  # the overlay thread warms up first; its failure stops the run like any other
        self._overlay_ready.wait()
        start = time.perf_counter()
        last = start
        for t in threads[:-1]:
            t.start()
        try:
            interrupts, sinks_ok = 0, True
            while True:
                try:
                    item = self._get(self.q_out)
                    if item is _END:
                        break
                    assert isinstance(item, Item) and item.out is not None and item.mask is not None
                    if not sinks_ok:
                        self._cancel()
                        continue
                    t = time.perf_counter()
                    for sink in self.sinks:
                        sink.write(item.out, item.mask, item.index)
                        if sink.stop_requested:
                            self.request_stop("window closed")
                    last = time.perf_counter()
                    self.times["write"].append((last - t) * 1e3)
                    self.latency.append((last - item.t0) * 1e3)
                    summary.frames += 1
                    self.flips.add(item.index, item.mask)
                    if self.on_frame is not None:
                        self.on_frame(summary.frames)
                except KeyboardInterrupt as e:  # Ctrl-C, or SIGTERM under the CLI (message "SIGTERM")
                    interrupts += 1
                    self.request_stop(f"interrupted ({str(e) or 'Ctrl-C'})")
                    if interrupts > 1:  # second Ctrl-C: stop waiting for the stages
                        self.abort.set()
                        break
                except Exception as e:  # a sink failed (disk full ...): stop, drain, close the others
                    self.errors.append(e)
                    self.request_stop("error")
                    sinks_ok = False
        finally:
            self.request_stop("end of source")
            for t in threads:
                t.join(timeout=JOIN_TIMEOUT_S)
            close_errors = []
            for sink in self.sinks:
                try:
                    sink.close()
                except Exception as e:  # close every sink even if one fails
                    close_errors.append(e)
        end = last if summary.frames else time.perf_counter()
        summary.wall_s = round(end - start, 4)
        summary.fps = round(summary.frames / summary.wall_s, 3) if summary.wall_s > 0 and summary.frames else 0.0
        summary.stopped_by = self.stop_reason or "end of source"
        summary.dropped, summary.unreadable = self.counts["dropped"], self.counts["unreadable"]
        summary.unreadable_names = list(self.unreadable_names)
        summary.cancelled = self.counts["cancelled"]
        summary.reconnects = int(getattr(self.source, "reconnects", 0))
        summary.stages = {s: percentiles(self.times[s]) for s in STAGES}
        summary.temporal = self.flips.summary()
        summary.latency_ms = percentiles(self.latency)
        summary.errors = self.errors + close_errors
        if summary.errors:
            first = summary.errors[0]
            summary.stopped_by = "error"
            summary.error = str(first) if isinstance(first, ToolkitError) else f"{type(first).__name__}: {first}"
            if not isinstance(first, ToolkitError):
                log.error("pipeline stage failed", exc_info=first)
        return summary
