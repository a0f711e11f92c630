"""Helpers for the video tests: a fake runner, tiny clips, frame counting (64x96 frames, a few of them)."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np

from toolkit.backend.base import BaseRunner
from toolkit.core.description import ModelDescription
from toolkit.core.meta import ModelMeta
from toolkit.core.names import OUTPUT_NAME
from toolkit.data import make_scene, synthetic_info

HW = (64, 96)
NUM_CLASSES = 3


class FakeRunner(BaseRunner):
    """Deterministic logits (a function of the input), optionally slow: for pipeline mechanics."""

    backend = "fake"

    def __init__(self, delay_s: float = 0.0, size: tuple[int, int] = HW) -> None:
        super().__init__("fake", description=ModelDescription(ModelMeta("segnet", 4, synthetic_info(NUM_CLASSES),
                                                                        input_size=size)))
        self.delay_s = delay_s

    def _activate_impl(self) -> ModelDescription:
        return self.description

    def _infer_impl(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        (x,) = feed.values()
        if self.delay_s:
            time.sleep(self.delay_s)
        return {OUTPUT_NAME: np.concatenate([x[:, :NUM_CLASSES]], axis=1)}


def write_clip(path: Path, n: int, hw: tuple[int, int] = HW, fps: float = 10.0) -> Path:
    h, w = hw
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), fps, (w, h))
    assert writer.isOpened()
    for i in range(n):
        writer.write(cv2.cvtColor(make_scene(i, hw, num_classes=NUM_CLASSES)[0], cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def count_frames(path: Path) -> int:
    """Frames decodable from a video file (reads them all; a truncated mp4 gives 0 or fails to open)."""
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.isOpened():
        ok, _ = cap.read()
        if not ok:
            break
        n += 1
    cap.release()
    return n
