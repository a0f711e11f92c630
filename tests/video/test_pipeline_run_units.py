"""Pipeline.run() and its stages with fakes only: a listed source, recording sinks, a fake runner at 16x24 and an
overlay that draws nothing, so each test takes milliseconds and no video is encoded (the mutation run over
toolkit/video/pipeline.py runs them for each of its ~700 mutants; docs/MUTATION.md)."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Sequence

import numpy as np
import pytest

from tests.helpers.video import FakeRunner
from toolkit.errors import SourceLostError, ToolkitError
from toolkit.video import pipeline
from toolkit.video.overlay import Overlay
from toolkit.video.pipeline import _END, STAGES, UNREADABLE_LISTED, Item, Pipeline, RunSummary
from toolkit.video.sinks import Sink
from toolkit.video.sources import FrameSource, UnreadableFrame

HW = (16, 24)  # multiples of the model's output stride (8): no padding


def frame(i: int) -> np.ndarray:
    """Frame i: channel i % 3 lit, so the fake runner's class map is class i % 3; pixel (0, 0) of channel 0
    keeps i (the overlay below returns the frame, so what a sink gets says which frame it was)."""
    f = np.zeros((*HW, 3), np.uint8)
    f[..., i % 3] = 200
    f[0, 0, 0] = i
    return f


class Listed(FrameSource):
    """Frames 0..n-1; an index in ``fail`` raises that exception instead."""

    name = "listed"

    def __init__(self, n: int, fail: dict[int, BaseException] | None = None, live: bool = False,
                 hw: tuple[int, int] | None = None) -> None:
        self.n, self.fail, self.live, self.hw, self.i = n, fail or {}, live, hw, 0
        self.reconnects = 0

    def read(self) -> np.ndarray | None:
        i, self.i = self.i, self.i + 1
        if i in self.fail:
            raise self.fail[i]
        return frame(i) if i < self.n else None

    @property
    def frame_hw(self) -> tuple[int, int] | None:
        return self.hw


class Plain(Overlay):
    """Returns the frame itself: no drawing, and a sink sees which frame it got."""

    def __call__(self, frame: np.ndarray, mask: np.ndarray, hud: Sequence[str] = ()) -> np.ndarray:
        return frame


class Recorder(Sink):
    """Keeps (index, frame id, mask) per write; ``stop_at``: asks to stop after that many; ``fail_at``: raises."""

    def __init__(self, stop_at: int = 0, fail_at: int = 0, interrupt_at: Sequence[int] = (),
                 close_error: Exception | None = None, message: str = "") -> None:
        self.got: list[tuple[int, int, np.ndarray]] = []
        self.stop_at, self.fail_at, self.interrupt_at, self.message = stop_at, fail_at, interrupt_at, message
        self.close_error, self.closed, self.calls = close_error, False, 0

    def write(self, frame: np.ndarray, mask: np.ndarray, index: int) -> None:
        self.calls += 1
        if self.calls == self.fail_at:
            time.sleep(0.1)  # the stages fill their queues meanwhile: frames are in flight when it fails
            raise OSError("disk full")
        if self.calls in self.interrupt_at:
            time.sleep(0.1)
            raise KeyboardInterrupt(self.message)
        self.got.append((index, int(frame[0, 0, 0]), mask.copy()))
        self.stop_requested = self.calls == self.stop_at

    def close(self) -> None:
        self.closed = True
        if self.close_error is not None:
            raise self.close_error


class ThreadSafe(FakeRunner):
    thread_safe = True


def pipe(source: FrameSource, sinks: Sequence[Sink], runner: FakeRunner | None = None, **kw: object) -> Pipeline:
    runner = runner or FakeRunner(size=HW)
    runner.activate()  # a fake: nothing to release
    ds = runner.meta.dataset
    return Pipeline(source, runner, Plain(ds.class_names, ds.palette), sinks, **kw)  # type: ignore[arg-type]


def finish(p: Pipeline, timeout_s: float = 10.0) -> RunSummary:
    """p.run() under a watchdog: a run left waiting on a stage (a bug) fails here in seconds, not at the mutation
    tool's per-mutant time limit (the run itself takes milliseconds)."""
    done: list[RunSummary] = []
    t = threading.Thread(target=lambda: done.append(p.run()), name="caller", daemon=True)
    t.start()
    t.join(timeout_s)
    assert done, "run() did not return"
    return done[0]


@pytest.mark.parametrize("workers", [1, 2])
def test_every_frame_reaches_every_sink_in_order_with_its_class_map(workers: int) -> None:
    a, b, frames = Recorder(), Recorder(), []
    t0 = time.perf_counter()
    s = finish(pipe(Listed(5), [a, b], ThreadSafe(size=HW), workers=workers, on_frame=frames.append))
    assert 0 < s.wall_s <= time.perf_counter() - t0 and s.wall_s == round(s.wall_s, 4)
    for sink in (a, b):
        assert [(i, f) for i, f, _ in sink.got] == [(i, i) for i in range(5)] and sink.closed
        for i, _, mask in sink.got:
            assert mask.shape == HW and (mask == i % 3).all()
    assert frames == [1, 2, 3, 4, 5]
    assert (s.frames, s.dropped, s.unreadable, s.cancelled, s.reconnects) == (5, 0, 0, 0, 0)
    assert (s.stopped_by, s.error, s.errors, s.failure) == ("end of source", None, [], None)
    assert (s.source, s.model, s.backend, s.precision, s.input_shape) == ("listed", "fake", "fake", "fp32",
                                                                           [1, 3, *HW])
    assert {k: v["n"] for k, v in s.stages.items()} == dict.fromkeys(STAGES, 5) and s.latency_ms["n"] == 5
    assert s.wall_s > 0 and s.fps == round(5 / s.wall_s, 3)
    assert s.temporal is not None and s.temporal["pairs"] == 4 and s.temporal["flip_rate"] == 100.0


def test_an_empty_source_ends_at_once_with_zeros() -> None:
    sink = Recorder()
    s = finish(pipe(Listed(0), [sink]))
    assert (s.frames, s.fps, s.stopped_by, sink.got, sink.closed) == (0, 0.0, "end of source", [], True)
    assert s.wall_s > 0 and s.latency_ms["n"] == 0  # to the end of the joins when nothing was written


def test_max_frames_counts_source_positions() -> None:
    sink = Recorder()
    s = finish(pipe(Listed(9, fail={1: UnreadableFrame("bad", "frame 1")}), [sink], max_frames=3))
    assert [i for i, _, _ in sink.got] == [0, 2] and (s.frames, s.unreadable) == (2, 1)


def test_unreadable_frames_are_skipped_counted_and_the_first_ones_named(caplog: pytest.LogCaptureFixture) -> None:
    n = UNREADABLE_LISTED + 5
    fail = {i: UnreadableFrame(f"cannot decode {i}", f"f{i}") for i in range(1, n + 1)}
    sink = Recorder()
    with caplog.at_level("DEBUG", logger="toolkit.video.pipeline"):
        s = finish(pipe(Listed(n + 3, fail=fail), [sink]))
    assert [r.getMessage() for r in caplog.records] == [str(fail[i]) for i in range(1, n + 1)]  # each, at debug
    assert [i for i, _, _ in sink.got] == [0, n + 1, n + 2]  # indices keep the source's positions
    assert s.unreadable == n and s.unreadable_names == [f"f{i}" for i in range(1, UNREADABLE_LISTED + 1)]
    assert s.error is None and s.stopped_by == "end of source"
    assert s.temporal["gaps"] == 1  # the flip rate counts 0 -> n+1 as a gap, n+1 -> n+2 as adjacent


def test_a_lost_source_ends_the_run_with_its_error_after_writing_what_came_before() -> None:
    sink = Recorder()
    s = finish(pipe(Listed(9, fail={3: SourceLostError("camera gone")}), [sink]))
    assert [i for i, _, _ in sink.got] == [0, 1, 2]
    assert (s.stopped_by, s.error) == ("error", "camera gone") and isinstance(s.failure, SourceLostError)


def test_a_sink_that_asks_to_stop_ends_the_run_as_window_closed() -> None:
    sink = Recorder(stop_at=2)
    s = finish(pipe(Listed(50), [sink], queue_size=1))
    assert s.stopped_by == "window closed" and s.error is None and 2 <= s.frames < 50 and sink.closed
    assert s.frames + s.cancelled <= 50


def test_a_failing_sink_stops_the_run_and_every_sink_is_still_closed() -> None:
    bad, good = Recorder(fail_at=2), Recorder()
    before = set(threading.enumerate())
    p = pipe(Listed(50), [bad, good], queue_size=1)
    s = finish(p)
    assert [x for x in threading.enumerate() if x not in before and x.is_alive() and x.name != "caller"] == []
    assert p.stop_reason == "error" and bad.calls == 2  # nothing written to any sink after the failure
    assert (s.stopped_by, s.error) == ("error", "OSError: disk full") and isinstance(s.failure, OSError)
    assert len(bad.got) == 1 and len(good.got) == 1 and bad.closed and good.closed
    assert s.frames == 1 and s.cancelled >= 1  # frames that reached the sinks after the failure: not written


def test_close_errors_follow_the_stage_errors_and_every_sink_is_closed() -> None:
    first, second = Recorder(close_error=ToolkitError("cannot rename")), Recorder(close_error=OSError("gone"))
    s = finish(pipe(Listed(2), [first, second]))
    assert first.closed and second.closed and s.frames == 2
    assert [str(e) for e in s.errors] == ["cannot rename", "gone"]
    assert (s.stopped_by, s.error) == ("error", "cannot rename")  # a ToolkitError's text alone


@pytest.mark.parametrize("message, reason", [("", "interrupted (Ctrl-C)"), ("SIGTERM", "interrupted (SIGTERM)")])
def test_an_interrupt_stops_gracefully(message: str, reason: str) -> None:
    sink = Recorder(interrupt_at=[2], message=message)
    s = finish(pipe(Listed(50), [sink], queue_size=1))
    assert s.stopped_by == reason and s.interrupted and s.error is None and sink.closed
    assert len(sink.got) == s.frames > 1  # the frames in flight after the stop are still written


def test_a_second_interrupt_stops_waiting_for_the_stages() -> None:
    sink = Recorder(interrupt_at=[1, 2])
    s = finish(pipe(Listed(50), [sink], queue_size=1))
    assert s.stopped_by == "interrupted (Ctrl-C)" and s.frames == 0 and sink.closed  # no write after the second
    assert sink.calls == 2


def test_a_second_interrupt_returns_even_with_a_stage_stuck_in_the_runner(monkeypatch: pytest.MonkeyPatch) -> None:
    """A hung runner call (a device that stopped answering) must not keep the second Ctrl-C from returning: run()
    waits JOIN_TIMEOUT_S per stage, then closes the sinks. The wait is cut to 0.2 s here; without a limit the run
    never returns (the watchdog fails the test)."""
    monkeypatch.setattr(pipeline, "JOIN_TIMEOUT_S", 0.2)
    hanging, release = threading.Event(), threading.Event()

    class Hangs(FakeRunner):
        calls = 0

        def _infer_impl(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
            self.calls += 1
            if self.calls == 4:  # the warm-up, frames 0 and 1, then frame 2 hangs
                hanging.set()
                release.wait(30)
            return super()._infer_impl(feed)

    class Interrupts(Recorder):  # Ctrl-C on frames 0 and 1, once frame 1 is inferred (frame 2 hangs)
        def write(self, frame: np.ndarray, mask: np.ndarray, index: int) -> None:
            hanging.wait(5)
            super().write(frame, mask, index)

    sink = Interrupts(interrupt_at=[1, 2])
    try:
        s = finish(pipe(Listed(50), [sink], Hangs(size=HW), queue_size=1))
        stuck = [t.name for t in threading.enumerate() if t.name == "infer0"]
    finally:
        release.set()
    assert s.stopped_by == "interrupted (Ctrl-C)" and sink.calls == 2 and sink.closed and stuck == ["infer0"]


class ThreadClocks:
    """A fake ``time`` for the pipeline: each thread reads its own clock, which moves only when a fake called in
    that thread says how long it took, so every stage time, the latency and the wall time are exact."""

    def __init__(self) -> None:
        self._local = threading.local()

    def perf_counter(self) -> float:
        return getattr(self._local, "t", 0.0)

    def advance(self, ms: float) -> None:
        self._local.t = self.perf_counter() + ms / 1e3


@pytest.mark.parametrize("on_cpu", [True, False])  # the argmax in the worker, or in the overlay thread
def test_stage_times_latency_and_wall_time_are_measured_where_they_happen(monkeypatch: pytest.MonkeyPatch,
                                                                          on_cpu: bool) -> None:
    clocks = ThreadClocks()
    monkeypatch.setattr(pipeline, "time", clocks)
    argmax = pipeline.argmax_classes
    monkeypatch.setattr(pipeline, "argmax_classes", lambda x: (clocks.advance(2), argmax(x))[1])

    class Prep(pipeline.FastPreprocess):
        def __call__(self, image_rgb: np.ndarray) -> pipeline.Preprocessed:
            clocks.advance(1)
            return super().__call__(image_rgb)

    monkeypatch.setattr(pipeline, "FastPreprocess", Prep)

    class Source(Listed):
        def read(self) -> np.ndarray | None:
            clocks.advance(3)
            return super().read()

    class Runner(FakeRunner):
        def _infer_impl(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
            clocks.advance(7)
            return super()._infer_impl(feed)

    class Draws(Plain):
        def __call__(self, frame: np.ndarray, mask: np.ndarray, hud: Sequence[str] = ()) -> np.ndarray:
            clocks.advance(5)
            return frame

    class Sink20(Recorder):
        def write(self, frame: np.ndarray, mask: np.ndarray, index: int) -> None:
            clocks.advance(20)
            super().write(frame, mask, index)

        def close(self) -> None:
            clocks.advance(500)  # after the last write: not part of the wall time
            super().close()

    runner = type("Runner", (Runner,), {"on_cpu": on_cpu})(size=HW)
    runner.activate()
    ds = runner.meta.dataset
    n = 4
    s = finish(Pipeline(Source(n), runner, Draws(ds.class_names, ds.palette), [Sink20()]))
    assert s.frames == n
    exact = {"capture": 3.0, "preprocess": 1.0, "infer": 7.0, "overlay": 5.0 + 2.0, "write": 20.0}  # argmax: overlay
    assert s.stages == {k: pipeline.percentiles([ms] * n) for k, ms in exact.items()}
    # latency: frame i is captured at 3 (i + 1) ms on the capture thread's clock and written at 8 + 20 (i + 1) ms on
    # the run's (the warm-up's preprocessing and inference, 1 + 7 ms, come before the start, then 20 ms per write)
    assert s.latency_ms == pipeline.percentiles([8 + 20 * (i + 1) - 3 * (i + 1) for i in range(n)])
    assert (s.wall_s, s.fps) == (round(20 * n / 1e3, 4), round(n / round(20 * n / 1e3, 4), 3))


# -- the stages one at a time --
def test_a_live_capture_keeps_only_the_newest_frame_waiting() -> None:
    p = pipe(Listed(3, live=True), [])
    assert p.q_pre.maxsize == 1
    t = threading.Thread(target=p._capture, daemon=True)
    t.start()  # no consumer: each new frame replaces the one waiting, then the end marker waits for room
    deadline = time.monotonic() + 5.0
    while p.counts["dropped"] < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    t.join(0.3)
    assert t.is_alive() and p.counts["dropped"] == 2  # frames 0 and 1
    assert p.q_pre.get(timeout=1).index == 2 and p.q_pre.get(timeout=1) is _END
    t.join(2.0)
    assert not t.is_alive() and len(p.times["capture"]) == 3


def test_a_live_run_writes_the_frames_it_did_not_drop_in_order() -> None:
    class Camera(Listed):  # a frame every 50 ms: the stages keep up, so the frames go through the empty queue
        def read(self) -> np.ndarray | None:
            time.sleep(0.05)
            return super().read()

    sink = Recorder()
    s = finish(pipe(Camera(4, live=True), [sink]))
    got = [i for i, _, _ in sink.got]
    assert s.error is None and s.frames == len(got) >= 1 and s.frames + s.dropped == 4 and got == sorted(got)


def test_preprocess_numbers_the_frames_and_ends_every_worker() -> None:
    p = pipe(Listed(0), [], ThreadSafe(size=HW), workers=3)
    for i in (0, 2, 5):  # source positions with gaps
        p.q_pre.put(Item(i, frame(i), 0.0))
    p.q_pre.put(_END)
    out: list[object] = []
    p._put = lambda q, item: out.append(item) or True  # type: ignore[method-assign]
    p._preprocess()
    items = [x for x in out if isinstance(x, Item)]
    assert [(x.index, x.seq) for x in items] == [(0, 0), (2, 1), (5, 2)] and out[3:] == [_END] * 3
    assert all(x.pre is not None and x.pre.tensor.shape == (1, 3, *HW) for x in items)
    assert len(p.times["preprocess"]) == 3


def test_after_a_stop_the_stages_cancel_what_they_get_and_still_end() -> None:
    p = pipe(Listed(0), [])
    p.request_stop()
    out: list[object] = []
    p._put = lambda q, item: out.append(item) or True  # type: ignore[method-assign]
    for stage, q in ((p._preprocess, p.q_pre), (p._infer, p.q_inf)):
        q.put(Item(0, frame(0), 0.0))
        q.put(_END)
        stage()
    assert out == [_END, _END] and p.counts["cancelled"] == 2


def test_the_worker_takes_the_argmax_on_the_cpu_and_leaves_it_to_the_overlay_otherwise() -> None:
    class Local(FakeRunner):
        on_cpu = True  # type: ignore[assignment]

    for runner, in_worker in ((Local(size=HW), True), (FakeRunner(size=HW), False)):
        p = pipe(Listed(0), [], runner)
        assert p.argmax_in_worker is in_worker
        item = Item(0, frame(1), 0.0)
        out: list[object] = []
        p._put = lambda q, x, out=out: out.append(x) or True  # type: ignore[method-assign]
        p.q_pre.put(item)
        p.q_pre.put(_END)
        p._preprocess()
        p.q_inf.put(out.pop(0))
        p.q_inf.put(_END)
        out.clear()
        p._infer()
        (done, end) = out
        assert end is _END and isinstance(done, Item) and done.infer_ms > 0
        if in_worker:
            assert done.logits is None and done.mask is not None and (done.mask == 1).all()
        else:
            assert done.mask is None and done.logits is not None and done.logits.shape == (1, 3, *HW)


def test_overlay_emits_in_sequence_order_and_cancels_what_never_came_before() -> None:
    p = pipe(Listed(0), [], ThreadSafe(size=HW), workers=2, hud=False)
    p.q_post = queue.Queue()  # all five put up front
    items = {}
    for seq in (1, 0, 3):  # 2 never arrives: 3 waits for it and is cancelled at the end
        items[seq] = Item(seq, frame(seq), 0.0, mask=np.zeros(HW, np.uint8))
        items[seq].seq = seq
        p.q_post.put(items[seq])
    p.q_post.put(_END)
    p.q_post.put(_END)
    out: list[object] = []
    p._put = lambda q, x: out.append(x) or True  # type: ignore[method-assign]
    p._overlay()
    assert out == [items[0], items[1], _END] and p.counts["cancelled"] == 1
    assert p._overlay_ready.is_set() and len(p.times["overlay"]) == 2


def test_overlay_leaves_on_the_first_end_marker_after_an_abort() -> None:
    p = pipe(Listed(0), [], ThreadSafe(size=HW), workers=2)
    p.abort.set()
    p.q_post.put(_END)
    out: list[object] = []
    p._put = lambda q, x: out.append(x) or True  # type: ignore[method-assign]
    p._overlay()  # _get returns the end marker at once under the abort: without leaving, this would spin
    assert out == []


class Frames(FakeRunner):
    """A runner that takes frames itself (as PyTorch on CUDA): records the frames it was given."""

    thread_safe = True
    frames_on_device = True
    on_cpu = False

    def __init__(self) -> None:
        super().__init__(size=HW)
        self.frames: list[tuple[int, ...]] = []

    def infer_frame(self, frame_rgb: np.ndarray, at_frame_size: bool = False) -> np.ndarray:
        self.frames.append(frame_rgb.shape)
        return np.full(HW, int(frame_rgb[..., :3].reshape(-1, 3).sum(0).argmax()), np.uint8)


def test_preprocess_resizes_to_the_model_size_and_pads_to_its_own_stride() -> None:
    runner = FakeRunner(size=(24, 40))
    runner.meta.output_stride = 16  # not the default 8: the model's own stride pads the tensor
    p = pipe(Listed(0), [], runner)
    p.q_pre.put(Item(0, np.zeros((30, 50, 3), np.uint8), 0.0))
    p.q_pre.put(_END)
    out: list[object] = []
    p._put = lambda q, item: out.append(item) or True  # type: ignore[method-assign]
    p._preprocess()
    (item, _) = out
    assert isinstance(item, Item) and item.pre is not None
    assert item.pre.tensor.shape == (1, 3, 32, 48) and tuple(item.pre.valid_hw) == (24, 40)


def test_warm_up_runs_once_per_worker_at_the_sources_frame_size() -> None:
    runner = Frames()
    p = pipe(Listed(0, hw=(20, 30)), [], runner, workers=3)
    assert p.frames_on_device and p.warm_up() == [1, 3, *HW] and p.input_shape == (1, 3, *HW)
    assert runner.frames == [(20, 30, 3)] * 3
    runner = Frames()
    pipe(Listed(0), [], runner).warm_up()
    assert runner.frames == [(*HW, 3)]  # no size known before the first frame: the model's


def test_frames_on_device_skip_host_preprocessing() -> None:
    runner = Frames()
    sink = Recorder()
    s = finish(pipe(Listed(3), [sink], runner))
    assert [(i, (m == i % 3).all()) for i, _, m in sink.got] == [(0, True), (1, True), (2, True)]
    assert s.frames == 3 and runner.frames == [(*HW, 3)] * 4  # the warm-up and 3 frames


def test_a_runner_without_a_label_space_or_workers_is_refused() -> None:
    runner = FakeRunner(size=HW)
    with pytest.raises(ToolkitError, match="workers=0"):
        pipe(Listed(0), [], runner, workers=0)
    with pytest.raises(ToolkitError, match="not safe to call from several"):
        pipe(Listed(0), [], runner, workers=2)

    class NoMeta(FakeRunner):
        meta = None  # type: ignore[assignment]

    with pytest.raises(ToolkitError) as e:
        Pipeline(Listed(0), NoMeta(size=HW), Plain(["a"], [(0, 0, 0)]), [])
    assert str(e.value) == ("model 'fake' carries no label space (class names, palette, mean/std); export it with "
                            "the toolkit so its metadata travels with it")


def test_queue_sizes() -> None:
    p = pipe(Listed(0), [])
    assert (p.q_pre.maxsize, p.q_inf.maxsize, p.q_post.maxsize, p.q_out.maxsize) == (4, 4, 4, 4)  # the default
    p = pipe(Listed(0), [], ThreadSafe(size=HW), queue_size=3, workers=5)
    assert (p.q_pre.maxsize, p.q_inf.maxsize, p.q_post.maxsize, p.q_out.maxsize) == (3, 3, 5, 3)
    p = pipe(Listed(0), [], queue_size=0)
    assert (p.q_pre.maxsize, p.q_post.maxsize) == (1, 1)
    p = pipe(Listed(0, live=True), [], queue_size=8)
    assert (p.q_pre.maxsize, p.q_inf.maxsize, p.q_post.maxsize, p.q_out.maxsize) == (1, 1, 1, 1)


class Calls(Overlay):
    """Records what it was asked to draw."""

    def __init__(self, *args: object) -> None:
        super().__init__(*args)  # type: ignore[arg-type]
        self.calls: list[tuple[np.ndarray, np.ndarray, list[str]]] = []

    def __call__(self, frame: np.ndarray, mask: np.ndarray, hud: Sequence[str] = ()) -> np.ndarray:
        self.calls.append((frame, mask, list(hud)))
        return frame


@pytest.mark.parametrize("hud", [True, False])
def test_the_overlay_warm_up_draws_a_blank_model_size_frame_with_the_hud_text(hud: bool) -> None:
    runner = FakeRunner(size=HW).activate()
    ds = runner.meta.dataset
    overlay = Calls(ds.class_names, ds.palette)
    p = Pipeline(Listed(0), runner, overlay, [], hud=hud)
    p._warm_overlay()
    ((frame_, mask, lines),) = overlay.calls
    assert frame_.shape == (*HW, 3) and frame_.dtype == np.uint8 and not frame_.any()
    assert mask.shape == HW and mask.dtype == np.uint8 and not mask.any()
    assert lines == (p._hud_lines(None, 0.0, (1, 3, *HW)) if hud else [])


def test_warm_up_feeds_a_model_size_tensor_from_every_worker_thread() -> None:
    class Feeds(ThreadSafe):
        def _infer_impl(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
            (x,) = feed.values()
            seen.append((threading.current_thread().name.startswith("warm-up"), x.shape, float(np.abs(x).max())))
            return super()._infer_impl(feed)

    for workers in (1, 2):
        seen: list[tuple[bool, tuple[int, ...], float]] = []
        runner = Feeds(size=HW)
        p = pipe(Listed(0, hw=(40, 60)), [], runner, workers=workers)  # the frame size matters on the device only
        assert p.input_shape == (1, 3, *HW)  # the model's size until warm_up() measures it
        assert p.warm_up() == [1, 3, *HW]
        ds = runner.meta.dataset
        black = max(abs(m / s) for m, s in zip(ds.mean, ds.std, strict=True))  # a black frame, normalised
        assert seen == [(workers > 1, (1, 3, *HW), pytest.approx(black, rel=1e-6))] * workers


def test_warm_up_pads_to_the_models_own_stride() -> None:
    runner = FakeRunner(size=(24, 40))
    runner.meta.output_stride = 16
    p = pipe(Listed(0), [], runner)
    assert p.warm_up() == [1, 3, 32, 48] and p.input_shape == (1, 3, 32, 48)


def test_warm_up_calls_every_worker_at_once_even_past_the_thread_pools_default_size() -> None:
    """The point of the warm-up is the concurrent calls (each grows the runtime's buffers once); 33 workers is past
    ThreadPoolExecutor's default size on any machine (at most 32), so a pool of that default would never fill the
    barrier."""
    workers = 33
    barrier = threading.Barrier(workers, timeout=5.0)

    class Together(ThreadSafe):
        def _infer_impl(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
            barrier.wait()
            return super()._infer_impl(feed)

    assert pipe(Listed(0), [], Together(size=HW), workers=workers).warm_up() == [1, 3, *HW]


# -- a failure in any stage: the run ends with that error, and every thread it started has finished --
class Boom(RuntimeError):
    pass


def _failing(monkeypatch: pytest.MonkeyPatch, stage: str) -> tuple[FrameSource, FakeRunner, type[Overlay]]:
    """Source, runner and overlay class with ``stage`` failing on its 4th frame, after a pause in which the
    stages before it fill their queues (so a stage left blocked on a full queue would show)."""
    calls = {"n": 0}

    def fail_on_fourth() -> None:
        calls["n"] += 1
        if calls["n"] == 4:
            time.sleep(0.1)
            raise Boom(stage)

    class Source(Listed):
        def read(self) -> np.ndarray | None:
            if stage == "capture":
                fail_on_fourth()
            return super().read()

    class Runner(ThreadSafe):
        def _infer_impl(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
            if stage == "infer" and threading.current_thread().name.startswith("infer"):
                fail_on_fourth()
            return super()._infer_impl(feed)

    class Drawing(Plain):
        def __call__(self, frame: np.ndarray, mask: np.ndarray, hud: Sequence[str] = ()) -> np.ndarray:
            if stage == "overlay" and threading.current_thread().name == "overlay" and frame.shape[:2] == HW \
                    and frame.any():
                fail_on_fourth()
            return frame

    real = pipeline.FastPreprocess

    class Prep(real):  # type: ignore[misc, valid-type]
        def __call__(self, frame: np.ndarray):  # type: ignore[no-untyped-def]
            if stage == "preprocess":
                fail_on_fourth()
            return super().__call__(frame)

    monkeypatch.setattr(pipeline, "FastPreprocess", Prep)
    return Source(200), Runner(size=HW), Drawing


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("stage", ["capture", "preprocess", "infer", "overlay"])
def test_a_failing_stage_ends_the_run_with_its_error_and_no_thread_left(monkeypatch: pytest.MonkeyPatch,
                                                                        stage: str, workers: int) -> None:
    source, runner, drawing = _failing(monkeypatch, stage)
    runner.activate()
    ds = runner.meta.dataset
    sink = Recorder()
    p = Pipeline(source, runner, drawing(ds.class_names, ds.palette), [sink], queue_size=1, workers=workers)
    before = set(threading.enumerate())
    done: list[RunSummary] = []
    t = threading.Thread(target=lambda: done.append(p.run()), daemon=True)
    t.start()
    t.join(10.0)  # a stage that never passes its end marker on would leave run() waiting
    assert done, "run() did not return"
    (s,) = done
    left = [x.name for x in threading.enumerate() if x not in before and x is not t and x.is_alive()]
    assert left == []  # each stage drained its input and passed its end markers on: none blocked on a queue
    assert (s.stopped_by, s.error) == ("error", f"Boom: {stage}") and [type(e) for e in s.errors] == [Boom]
    assert p.stop_reason == "error" and sink.closed and len(sink.got) == s.frames <= 3


def test_each_stage_runs_in_a_daemon_thread_named_after_it(monkeypatch: pytest.MonkeyPatch) -> None:
    names: dict[str, set[str]] = {"read": set(), "prep": set(), "infer": set(), "draw": set(), "write": set()}
    daemon: set[bool] = set()  # a stage thread still blocked after run()'s joins must not keep the process alive

    class Source(Listed):
        def read(self) -> np.ndarray | None:
            names["read"].add(threading.current_thread().name)
            daemon.add(threading.current_thread().daemon)
            return super().read()

    class Runner(ThreadSafe):
        def _infer_impl(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
            names["infer"].add(threading.current_thread().name)
            return super()._infer_impl(feed)

    class Drawing(Plain):
        def __call__(self, frame: np.ndarray, mask: np.ndarray, hud: Sequence[str] = ()) -> np.ndarray:
            names["draw"].add(threading.current_thread().name)
            return frame

    class Writes(Recorder):
        def write(self, frame: np.ndarray, mask: np.ndarray, index: int) -> None:
            names["write"].add(threading.current_thread().name)
            super().write(frame, mask, index)

    real = pipeline.FastPreprocess

    class Prep(real):  # type: ignore[misc, valid-type]
        def __call__(self, frame: np.ndarray):  # type: ignore[no-untyped-def]
            names["prep"].add(threading.current_thread().name)
            return super().__call__(frame)

    monkeypatch.setattr(pipeline, "FastPreprocess", Prep)
    runner = Runner(size=HW).activate()
    ds = runner.meta.dataset
    # from the main thread, not finish()'s daemon one: a thread made without daemon=True would inherit it
    s = Pipeline(Source(4), runner, Drawing(ds.class_names, ds.palette), [Writes()], workers=2).run()
    assert s.frames == 4
    main = threading.main_thread().name  # warm_up() preprocesses its blank frame in the calling thread
    assert names["read"] == {"capture"} and names["prep"] == {"preprocess", main} and names["draw"] == {"overlay"}
    assert names["infer"] - {"warm-up_0", "warm-up_1"} <= {"infer0", "infer1"}
    assert names["write"] == {main} and daemon == {True}


def test_the_summary_dict_is_a_copy() -> None:
    s = finish(pipe(Listed(2), [Recorder()]))
    d = s.as_dict()
    d["stages"]["capture"]["n"] = 99
    d["unreadable_names"].append("x")
    assert s.stages["capture"]["n"] == 2 and s.unreadable_names == []


def test_when_one_worker_fails_the_frame_the_other_is_inferring_is_still_written() -> None:
    calls = {"n": 0}
    lock = threading.Lock()

    class Runner(ThreadSafe):
        def _infer_impl(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
            if threading.current_thread().name.startswith("infer"):
                with lock:
                    calls["n"] += 1
                    n = calls["n"]
                if n == 2:
                    time.sleep(0.3)  # the second frame is still in the model when the third one fails
                elif n == 3:
                    raise Boom("worker")
            return super()._infer_impl(feed)

    sink = Recorder()
    s = finish(pipe(Listed(50), [sink], Runner(size=HW), workers=2, queue_size=1))
    assert s.error == "Boom: worker" and sorted(i for i, _, _ in sink.got) == [0, 1] and s.frames == 2


def test_the_summary_counts_the_sources_reconnects_and_the_write_and_latency_times() -> None:
    class Slow(Recorder):
        def write(self, frame: np.ndarray, mask: np.ndarray, index: int) -> None:
            time.sleep(0.02)
            super().write(frame, mask, index)

    source = Listed(2)
    source.reconnects = 3
    t0 = time.perf_counter()
    s = finish(pipe(source, [Slow()]))
    took_ms = (time.perf_counter() - t0) * 1e3
    assert s.reconnects == 3
    assert 20 <= s.stages["write"]["p50_ms"] <= s.latency_ms["p50_ms"] <= took_ms  # a 20 ms write, in ms

    class Bare(FrameSource):  # no reconnects attribute: a source that cannot reconnect
        def read(self) -> np.ndarray | None:
            return None

    assert finish(pipe(Bare(), [])).reconnects == 0


def test_an_unexpected_error_is_logged_with_its_traceback_and_a_toolkit_error_is_not(
        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("ERROR", logger="toolkit.video.pipeline"):
        finish(pipe(Listed(2), [Recorder(close_error=ToolkitError("cannot rename"))]))
        assert caplog.records == []
        finish(pipe(Listed(2), [Recorder(close_error=OSError("gone"))]))
    (rec,) = caplog.records
    assert rec.getMessage() == "pipeline stage failed" and rec.exc_info is not None and rec.exc_info[0] is OSError
