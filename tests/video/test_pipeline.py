"""The threaded pipeline end to end: every frame in order, playable outputs on every kind of stop, summaries."""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import cv2
import numpy as np
import pytest

from tests.helpers.video import HW, NUM_CLASSES, FakeRunner, count_frames
from toolkit.backend import make_runner
from toolkit.errors import SourceLostError, ToolkitError
from toolkit.evaluate import predict_logits
from toolkit.video import OverlayStyle, RetryingSource, infer_video
from toolkit.video.overlay import Overlay
from toolkit.video.pipeline import STAGES, Pipeline, RunSummary
from toolkit.video.sinks import MaskSink, Sink, VideoFileSink
from toolkit.video.sources import FrameSource


class Endless(FrameSource):
    """A file-like (non-live) source of numbered frames; pixel (0, 0) carries the frame number."""

    name = "endless"

    def __init__(self, live: bool = False, limit: int = 10**6) -> None:
        self.live, self.limit, self.n = live, limit, 0

    def read(self) -> np.ndarray | None:
        if self.n >= self.limit:
            return None
        frame = np.full((*HW, 3), 50, np.uint8)
        frame[0, 0] = self.n % 256
        self.n += 1
        return frame


def _check_summary(s: RunSummary) -> None:
    assert set(s.stages) == set(STAGES)
    for stage in STAGES:
        assert s.stages[stage]["p95_ms"] >= s.stages[stage]["p50_ms"] >= 0
    assert s.fps > 0 and s.wall_s > 0 and s.latency_ms["n"] == s.frames
    json.dumps(s.as_dict())


def test_file_to_video_and_masks_match_reference(clip: Path, tiny_checkpoint: Path, tmp_path: Path) -> None:
    out, masks = tmp_path / "out.mp4", tmp_path / "masks"
    with make_runner(tiny_checkpoint) as runner:
        s = infer_video(runner, str(clip), output=out, masks=masks, workers=2,
                        style=OverlayStyle(side_by_side=True))
        _check_summary(s)
        assert (s.frames, s.dropped, s.unreadable, s.cancelled, s.error) == (6, 0, 0, 0, None)
        assert s.stopped_by == "end of source" and s.backend == "torch" and s.input_shape == [1, 3, *HW]
        assert count_frames(out) == 6 and not list(tmp_path.glob(".*partial*"))
        cap = cv2.VideoCapture(str(out))
        assert (cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (2 * HW[1], HW[0])
        # masks in source order, equal to the evaluation path's argmax on the same decoded frames
        files = sorted(masks.glob("*.png"))
        assert [f.name for f in files] == [f"{i:06d}.png" for i in range(6)]
        src = cv2.VideoCapture(str(clip))
        meta = runner.meta
        for f in files:
            _ok, bgr = src.read()
            ref = predict_logits(runner, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), meta.dataset.mean, meta.dataset.std,
                                 meta.input_size).argmax(0)
            got = cv2.imread(str(f), cv2.IMREAD_UNCHANGED)
            assert got.dtype == np.uint8 and got.max() < NUM_CLASSES and np.array_equal(got, ref)
        # the run's flip rate is the share of pixels whose class changed between consecutive written masks
        maps = [cv2.imread(str(f), cv2.IMREAD_UNCHANGED) for f in files]
        flips = sum(int((a != b).sum()) for a, b in itertools.pairwise(maps))
        t = s.temporal
        assert t is not None and t["pairs"] == 5 and t["gaps"] == 0
        assert t["flip_rate"] == pytest.approx(100 * flips / (5 * maps[0].size))


@pytest.mark.parametrize("on_cpu", [True, False])
def test_argmax_in_the_worker_or_the_overlay_thread_gives_the_same_masks(clip: Path, tmp_path: Path,
                                                                         on_cpu: bool) -> None:
    class Runner(FakeRunner):  # CPU models: the worker takes the argmax; GPU/remote: the overlay thread
        pass

    Runner.on_cpu = on_cpu  # type: ignore[assignment]
    with Runner() as runner:
        s = infer_video(runner, str(clip), masks=tmp_path / "m")
        files = sorted((tmp_path / "m").glob("*.png"))
        assert s.frames == len(files) == 6 and s.stages["overlay"]["n"] == 6
        src, meta = cv2.VideoCapture(str(clip)), runner.meta
        for f in files:
            _ok, bgr = src.read()
            ref = predict_logits(runner, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), meta.dataset.mean, meta.dataset.std,
                                 meta.input_size).argmax(0)
            assert np.array_equal(cv2.imread(str(f), cv2.IMREAD_UNCHANGED), ref)


def test_image_folder_with_unreadable_file(tmp_path: Path) -> None:
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(4):
        cv2.imwrite(str(folder / f"{i:03d}.png"), np.full((40, 60, 3), 30 * i, np.uint8))  # resized to 64x96
    (folder / "002b.png").write_bytes(b"garbage")
    with FakeRunner() as runner:
        s = infer_video(runner, str(folder), output=tmp_path / "o.avi", masks=tmp_path / "m")
    assert (s.frames, s.unreadable) == (4, 1) and count_frames(tmp_path / "o.avi") == 4
    assert s.unreadable_names == [str(folder / "002b.png")]
    # each mask is named after its input (not 000000.png ... with a gap where 002b.png was)
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["000.png", "001.png", "002.png", "003.png"]
    assert cv2.imread(str(tmp_path / "m" / "000.png"), cv2.IMREAD_UNCHANGED).shape == (40, 60)


def test_masks_keep_the_input_names_and_never_overwrite_an_input(tmp_path: Path) -> None:
    folder = tmp_path / "frames"
    folder.mkdir()
    for name in ("street.png", "street.jpg", "alley.bmp"):
        cv2.imwrite(str(folder / name), np.full((40, 60, 3), 100, np.uint8))
    for i in range(7):
        (folder / f"broken{i}.png").write_bytes(b"garbage")
    with FakeRunner() as runner:
        s = infer_video(runner, str(folder), masks=tmp_path / "m")
    # stems repeat (street.png, street.jpg): whole names keep them apart
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["alley.bmp.png", "street.jpg.png",
                                                                    "street.png.png"]
    assert s.unreadable == 7 and s.unreadable_names == [str(folder / f"broken{i}.png") for i in range(7)]
    only_png = tmp_path / "png"
    only_png.mkdir()
    cv2.imwrite(str(only_png / "a.png"), np.full((40, 60, 3), 100, np.uint8))
    with FakeRunner() as runner, pytest.raises(ToolkitError, match=r"--masks .*a\.png is the input"):
        infer_video(runner, str(only_png), masks=only_png)  # masks/a.png would replace the input a.png
    assert cv2.imread(str(only_png / "a.png")) is not None


def test_stop_request_flushes_a_playable_file(tmp_path: Path) -> None:
    """Ctrl-C simulated through the stop event from the frame callback: the file closes, nothing truncated."""
    out = tmp_path / "stopped.mp4"
    handle: dict[str, Pipeline] = {}

    def on_frame(n: int) -> None:
        if n == 3:
            handle["p"].request_stop("interrupted (Ctrl-C)")

    with FakeRunner(delay_s=0.01) as runner:
        s = infer_video(runner, Endless(), output=out, on_start=lambda p: handle.update(p=p), on_frame=on_frame)
    # what had passed the model when the stop came is still written: at most two queues of 4 and two in hand
    assert s.stopped_by == "interrupted (Ctrl-C)" and s.error is None and 3 <= s.frames <= 3 + 2 * 4 + 2
    assert count_frames(out) == s.frames


class InterruptingSink(Sink):
    def __init__(self, at: int) -> None:
        self.at, self.n = at, 0

    def write(self, frame: np.ndarray, mask: np.ndarray, index: int) -> None:
        self.n += 1
        if self.n == self.at:
            raise KeyboardInterrupt


def test_keyboard_interrupt_in_main_thread(tmp_path: Path) -> None:
    out = tmp_path / "ki.mp4"
    with FakeRunner() as runner:
        from toolkit.video.overlay import Overlay

        video = VideoFileSink(out, fps=10)
        pipe = Pipeline(Endless(), runner, Overlay(runner.meta.dataset.class_names, runner.meta.dataset.palette),
                        [video, InterruptingSink(at=5)])
        s = pipe.run()
    assert s.stopped_by == "interrupted (Ctrl-C)" and s.frames >= 4
    assert count_frames(out) == video.frames >= 5


def test_live_source_lost_mid_stream_is_retried_then_reported(tmp_path: Path) -> None:
    class Dying(Endless):
        live = True

        def read(self) -> np.ndarray | None:
            if self.n >= 4:
                raise SourceLostError("no frame received")
            return super().read()

    src = RetryingSource(Dying(live=True), retries=2, delay_s=0.0)
    out = tmp_path / "live.mp4"
    with FakeRunner() as runner:
        s = infer_video(runner, src, output=out)
    assert s.stopped_by == "error" and "did not come back after 2 reconnect attempts" in (s.error or "")
    assert 1 <= s.frames <= 4 and count_frames(out) == s.frames


def test_live_source_drops_stale_frames() -> None:
    with FakeRunner(delay_s=0.02) as runner:
        s = infer_video(runner, Endless(live=True, limit=200))
    assert s.dropped > 0 and s.frames + s.dropped + s.cancelled <= 200 and s.frames > 0


def test_stage_failure_still_closes_output(tmp_path: Path) -> None:
    class Broken(FakeRunner):
        def _infer_impl(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
            self.calls = getattr(self, "calls", 0) + 1
            if self.calls > 3:  # warm-up + 2 frames, then the model fails
                raise ToolkitError("model exploded")
            return super()._infer_impl(feed)

    out = tmp_path / "broken.mp4"
    with Broken() as runner:
        s = infer_video(runner, Endless(limit=50), output=out)
    assert s.stopped_by == "error" and s.error == "model exploded" and count_frames(out) == s.frames == 2
    # issue 27: the run reports what happened (the error itself), the CLI picks the exit code from it
    assert isinstance(s.failure, ToolkitError) and str(s.failure) == "model exploded" and not s.interrupted
    assert "exit_code" not in s.as_dict() and "errors" not in s.as_dict() and s.as_dict()["error"] == s.error


def test_warm_up_calls_every_worker_concurrently_before_the_frames() -> None:
    class Recording(FakeRunner):
        thread_safe = True  # the pipeline may call it from two workers
        threads: ClassVar[list[str]] = []  # one class per test; list.append is atomic under concurrent calls

        def _infer_impl(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
            self.threads.append(threading.current_thread().name)
            return super()._infer_impl(feed)

    with Recording() as runner:
        s = infer_video(runner, Endless(limit=5), workers=2)
    assert s.frames == 5 and len(runner.threads) == 2 + 5
    assert all(n.startswith("warm-up") for n in runner.threads[:2])  # one per worker, before any frame
    assert {n for n in runner.threads[2:]} <= {"infer0", "infer1"}


def test_overlay_warm_up_failure_ends_the_run_with_its_error(tmp_path: Path) -> None:
    class BrokenOverlay(Overlay):
        def __call__(self, frame: np.ndarray, mask: np.ndarray, hud: Sequence[str] = ()) -> np.ndarray:
            raise ToolkitError("cannot draw")

    out = tmp_path / "o.mp4"
    with FakeRunner() as runner:
        info = runner.meta.dataset
        pipe = Pipeline(Endless(limit=20), runner, BrokenOverlay(info.class_names, info.palette),
                        [VideoFileSink(out)])
        s = pipe.run()  # the overlay thread fails before the clock starts: no hang, no frame, no file
    assert (s.stopped_by, s.error, s.frames) == ("error", "cannot draw", 0) and not out.exists()


def test_workers_need_a_thread_safe_runner() -> None:
    with FakeRunner() as runner, pytest.raises(ToolkitError, match="not safe to call from several threads"):
        infer_video(runner, Endless(limit=2), workers=2)


def test_video_sink_is_atomic_and_checks_suffix(tmp_path: Path) -> None:
    out = tmp_path / "a.mp4"
    sink = VideoFileSink(out, fps=5)
    frame = np.zeros((*HW, 3), np.uint8)
    sink.write(frame, frame[..., 0], 0)
    assert not out.exists()  # only the hidden temp file exists while writing
    sink.close()
    assert count_frames(out) == 1
    with pytest.raises(ToolkitError, match="unsupported video type '.gif'"):
        VideoFileSink(tmp_path / "a.gif")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ToolkitError, match="not a folder"):
        MaskSink(tmp_path / "file")


def test_frames_on_device_route_gives_the_host_paths_masks(clip: Path, tiny_checkpoint: Path, tmp_path: Path) -> None:
    """A runner that takes uint8 frames itself (PyTorch on CUDA) skips host preprocessing and hands back class
    maps. Its device logic (``TorchRunner._frame_fn``) runs here on the CPU (tests/helpers/cpu_frames.py) and
    must give the masks of the host route on the same fp32 model, exactly."""
    from tests.helpers.cpu_frames import CpuFramesRunner
    from toolkit.backend.torch.loader import LoadCheckpoint

    with make_runner(tiny_checkpoint) as host:
        infer_video(host, str(clip), masks=tmp_path / "host")
    with CpuFramesRunner(LoadCheckpoint(tiny_checkpoint)) as runner:
        assert runner.info.frames_on_device
        s = infer_video(runner, str(clip), masks=tmp_path / "device", output=tmp_path / "o.mp4")
        calls = runner.frame_calls
    assert s.frames == 6 and len(calls) == 7 and s.input_shape == [1, 3, *HW]  # 6 frames + warm-up
    assert all(c == ((*HW, 3), None) for c in calls)  # class maps at the model size; the overlay scales them
    host_masks, device_masks = sorted((tmp_path / "host").glob("*.png")), sorted((tmp_path / "device").glob("*.png"))
    assert [f.name for f in host_masks] == [f.name for f in device_masks] and len(host_masks) == 6
    for a, b in zip(host_masks, device_masks, strict=True):
        assert np.array_equal(cv2.imread(str(a), cv2.IMREAD_UNCHANGED), cv2.imread(str(b), cv2.IMREAD_UNCHANGED))
