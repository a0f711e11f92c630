"""Pipeline pieces the end-to-end video tests pass over without checking (from the mutation run over
toolkit/video/pipeline.py, docs/MUTATION.md): the timing summary, the HUD text and its FPS, the cancelled count,
the queue helpers' retry and abort, a failing stage's drain. Tiny frames, a fake runner, no video written."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from types import SimpleNamespace

import numpy as np
import pytest

from tests.helpers.video import FakeRunner
from toolkit.video import pipeline
from toolkit.video.overlay import Overlay
from toolkit.video.pipeline import _END, Item, Pipeline, percentiles
from toolkit.video.sources import FrameSource


class NoFrames(FrameSource):
    name, live = "none", False

    def read(self) -> np.ndarray | None:
        return None


def test_percentiles_of_nothing_and_of_known_values() -> None:
    assert percentiles([]) == {"p50_ms": 0.0, "p95_ms": 0.0, "mean_ms": 0.0, "n": 0}
    values = [float(v) for v in range(1, 101)]  # 1..100 ms: numpy's linear percentiles are 50.5 and 95.05
    assert percentiles(values) == {"p50_ms": 50.5, "p95_ms": 95.05, "mean_ms": 50.5, "n": 100}
    got = percentiles([1.23456, 2.34567, 9.87654])  # rounded to the microsecond (3 decimals of a ms)
    assert got == {"p50_ms": 2.346, "p95_ms": 9.123, "mean_ms": 4.486, "n": 3}


def _pipeline() -> Pipeline:
    runner = FakeRunner()
    ds = runner.meta.dataset
    return Pipeline(NoFrames(), runner, Overlay(ds.class_names, ds.palette), [])


def test_hud_lines() -> None:
    p = _pipeline()
    assert p._hud_lines(29.97, 12.345, (1, 3, 64, 96)) == ["FPS  30.0  model   12.3 ms", "fake fp32  64x96"]
    assert p._hud_lines(None, 1.0, (1, 3, 64, 96))[0] == "FPS   -    model    1.0 ms"  # no rate yet
    assert p._hud_lines(0.0, 1.0, (1, 3, 64, 96))[0] == "FPS   -    model    1.0 ms"


def test_cancelled_frames_add_up() -> None:
    p = _pipeline()
    p._cancel()
    p._cancel(3)
    assert p.counts["cancelled"] == 4


def test_a_model_size_class_map_is_scaled_to_the_frame_by_nearest_neighbour() -> None:
    p = _pipeline()
    p.hud = False
    mask = np.zeros((4, 6), np.uint8)
    mask[:, ::2] = 2  # classes 0 and 2 side by side: a linear resize would make 1s between them
    item = Item(0, np.zeros((8, 12, 3), np.uint8), 0.0, mask=mask)
    p._draw(item)
    np.testing.assert_array_equal(item.mask, np.repeat(np.repeat(mask, 2, 0), 2, 1))
    assert item.out is not None and item.out.shape == (8, 12, 3)


# -- the queue helpers: a stage blocked on a full or empty queue leaves on the abort (second Ctrl-C), not before --
POLL_S = 0.35  # a few of _put/_get's 0.1 s poll periods: long enough to see a helper still waiting


def _in_thread(fn: Callable[[], object]) -> tuple[threading.Thread, list[object]]:
    got: list[object] = []
    t = threading.Thread(target=lambda: got.append(fn()), daemon=True)  # daemon: a hung mutant cannot hang pytest
    t.start()
    return t, got


def test_put_on_a_full_queue_retries_until_there_is_room() -> None:
    p = _pipeline()
    q: queue.Queue = queue.Queue(1)
    q.put("first")
    t, got = _in_thread(lambda: p._put(q, "second"))
    t.join(POLL_S)
    assert t.is_alive() and got == []  # still waiting: not given up, not claimed done
    assert q.get() == "first"
    t.join(2.0)
    assert got == [True] and list(q.queue) == ["second"]


def test_put_on_a_full_queue_gives_up_on_the_abort() -> None:
    p = _pipeline()
    q: queue.Queue = queue.Queue(1)
    q.put("first")
    t, got = _in_thread(lambda: p._put(q, "second"))
    t.join(POLL_S)
    assert t.is_alive() and got == []
    p.abort.set()
    t.join(2.0)
    assert not t.is_alive() and got == [False] and list(q.queue) == ["first"]


def test_get_on_an_empty_queue_waits_for_an_item_or_the_abort() -> None:
    p = _pipeline()
    q: queue.Queue = queue.Queue(1)
    t, got = _in_thread(lambda: p._get(q))
    t.join(POLL_S)
    assert t.is_alive() and got == []
    q.put("item")
    t.join(2.0)
    assert got == ["item"]
    t, got = _in_thread(lambda: p._get(q))
    t.join(POLL_S)
    assert t.is_alive() and got == []
    p.abort.set()
    t.join(2.0)
    assert not t.is_alive() and got == [_END]


# -- a stage that raises: the error recorded, the run stopped, its inputs drained, the end markers passed on --
def test_a_failing_stage_drains_every_producers_input_and_ends_each_consumer() -> None:
    p = _pipeline()
    inq: queue.Queue = queue.Queue()
    for x in ("a", _END, "b", "c", _END, "after"):  # two producers (workers) end; "after" is never read
        inq.put(x)
    outq: queue.Queue = queue.Queue()
    boom = RuntimeError("boom")

    def fn() -> None:
        raise boom

    t, _ = _in_thread(p._stage(fn, inq, 2, outq, 3))
    t.join(2.0)
    assert not t.is_alive()
    assert p.errors == [boom] and p.stop_reason == "error" and p.stop.is_set()
    assert p.counts["cancelled"] == 3  # a, b, c
    assert list(inq.queue) == ["after"] and list(outq.queue) == [_END, _END, _END]


def test_a_failing_first_stage_reads_nothing_and_ends_its_consumer() -> None:
    p = _pipeline()
    outq: queue.Queue = queue.Queue()

    def fn() -> None:
        raise ValueError("no source")

    p._stage(fn, None, 0, outq, 1)()
    assert [type(e) for e in p.errors] == [ValueError] and list(outq.queue) == [_END]
    assert p.counts["cancelled"] == 0


def test_a_stage_that_ends_normally_passes_nothing_itself() -> None:
    p = _pipeline()
    inq, outq = queue.Queue(), queue.Queue()
    inq.put("x")
    p._stage(lambda: None, inq, 1, outq, 2)()
    assert p.errors == [] and p.stop_reason is None and list(inq.queue) == ["x"] and outq.empty()


def test_request_stop_keeps_the_first_reason() -> None:
    p = _pipeline()
    p.request_stop()
    p.request_stop("error")
    assert p.stop_reason == "stopped" and p.stop.is_set()


# -- the HUD's FPS: an exponential average (0.9 old, 0.1 new) of the rate between frames drawn, on a fake clock --
class HudRecorder(Overlay):
    def __init__(self, *args: object) -> None:
        super().__init__(*args)  # type: ignore[arg-type]
        self.huds: list[list[str]] = []

    def __call__(self, frame: np.ndarray, mask: np.ndarray, hud: Sequence[str] = ()) -> np.ndarray:
        self.huds.append(list(hud))
        return frame


def test_hud_fps_is_an_exponential_average_of_the_frame_rate(monkeypatch: pytest.MonkeyPatch) -> None:
    runner = FakeRunner()
    ds = runner.meta.dataset
    overlay = HudRecorder(ds.class_names, ds.palette)
    p = Pipeline(NoFrames(), runner, overlay, [])
    clock = iter([10.0, 10.1, 10.15, 10.15])  # frames 0.1 s then 0.05 s apart (10, 20 fps), then none between
    monkeypatch.setattr(pipeline, "time", SimpleNamespace(perf_counter=lambda: next(clock)))
    for _ in range(4):
        p._draw(Item(0, np.zeros((4, 6, 3), np.uint8), 0.0, mask=np.zeros((4, 6), np.uint8), infer_ms=2.0))
    fps = [hud[0].split("  model")[0] for hud in overlay.huds]
    # no rate before the second frame; then 10; 0.9 * 10 + 0.1 * 20 = 11; a zero gap counts as 1 us (1e6 fps)
    assert fps == ["FPS   -  ", "FPS  10.0", "FPS  11.0", f"FPS {0.9 * 11 + 0.1 * 1e6:5.1f}"]
    assert all(hud[0].endswith("model    2.0 ms") for hud in overlay.huds)


def test_no_hud_reads_no_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    runner = FakeRunner()
    ds = runner.meta.dataset
    overlay = HudRecorder(ds.class_names, ds.palette)
    p = Pipeline(NoFrames(), runner, overlay, [], hud=False)
    monkeypatch.setattr(pipeline, "time", SimpleNamespace())  # any clock read would raise
    p._draw(Item(0, np.zeros((4, 6, 3), np.uint8), 0.0, mask=np.zeros((4, 6), np.uint8)))
    assert overlay.huds == [[]]
