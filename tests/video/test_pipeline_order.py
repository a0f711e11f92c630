"""With two workers finishing out of order, the written video and the masks keep the source's order: the
reorder buffer in the overlay stage is what makes it so (masks alone would not show it: they are named by the
source index whatever order they arrive in)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import ClassVar

import cv2
import numpy as np
from video_helpers import HW, FakeRunner

from toolkit.video import OverlayStyle, infer_video
from toolkit.video.overlay import Overlay
from toolkit.video.sources import FrameSource

N = 9


def coloured(i: int) -> np.ndarray:
    """Frame i: one channel (i % 3) lit at a level of its own, so the class map (the fake's argmax over the
    normalised channels) is class i % 3 and every frame's overlay differs from the others'."""
    frame = np.zeros((*HW, 3), np.uint8)
    frame[..., i % 3] = 60 + 18 * i
    return frame


class Frames(FrameSource):
    name = "coloured"
    live = False

    def __init__(self) -> None:
        self.n = 0

    def read(self) -> np.ndarray | None:
        if self.n >= N:
            return None
        self.n += 1
        return coloured(self.n - 1)


class EvenFramesSlow(FakeRunner):
    """Frames 0, 2, 4 ... take 60 ms, the others none: with two workers the odd ones finish first."""

    thread_safe = True
    finished: ClassVar[list[int]] = []

    def _infer_impl(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        (x,) = feed.values()
        channel = int(x[0, :, 0, 0].argmax())
        level = x[0, channel, 0, 0]
        index = next((i for i in range(N) if i % 3 == channel and np.isclose(level, self._level(i, channel))), -1)
        if index % 2 == 0:
            time.sleep(0.06)
        self.finished.append(index)
        return super()._infer_impl(feed)

    def _level(self, i: int, channel: int) -> float:
        ds = self.meta.dataset
        return ((60 + 18 * i) / 255.0 - ds.mean[channel]) / ds.std[channel]


def test_two_workers_keep_the_source_order_in_the_video_and_the_masks(tmp_path: Path) -> None:
    style = OverlayStyle(legend=False, hud=False)
    out, masks = tmp_path / "out.mp4", tmp_path / "masks"
    EvenFramesSlow.finished.clear()  # a class attribute: a second run in one process (mutmut) starts afresh
    with EvenFramesSlow() as runner:
        s = infer_video(runner, Frames(), output=out, masks=masks, workers=2, style=style)
        meta = runner.meta
    assert s.frames == N and s.error is None
    done = [i for i in EvenFramesSlow.finished if i >= 0]
    assert sorted(done) == list(range(N)) and done != sorted(done)  # the workers did finish out of order

    for i in range(N):  # each mask is its own frame's class map
        mask = cv2.imread(str(masks / f"{i:06d}.png"), cv2.IMREAD_UNCHANGED)
        assert mask.shape == HW and (mask == i % 3).all()

    overlay = Overlay(meta.dataset.class_names, meta.dataset.palette, style)
    expected = [overlay(coloured(i), np.full(HW, i % 3, np.uint8), []).astype(np.float32) for i in range(N)]
    cap = cv2.VideoCapture(str(out))
    order = []
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB).astype(np.float32)
        # the closest expected frame (mp4 is lossy; neighbouring frames differ by 18 levels on one channel
        # before blending, far more than the codec's error on flat colour)
        order.append(int(np.argmin([np.abs(rgb - e).mean() for e in expected])))
    cap.release()
    assert order == list(range(N))
