"""Source parsing and opening: files, image folders and globs, cameras that are absent, live reconnects."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from toolkit.errors import SourceError, SourceLostError
from toolkit.video.sources import CaptureSource, FrameSource, ImageSource, RetryingSource, UnreadableFrame, open_source


def _read_all(src: FrameSource) -> tuple[int, int]:
    frames = bad = 0
    while True:
        try:
            f = src.read()
        except UnreadableFrame:
            bad += 1
            continue
        if f is None:
            return frames, bad
        assert f.dtype == np.uint8 and f.ndim == 3
        frames += 1


def test_video_file_source(clip: Path) -> None:
    src = open_source(str(clip))
    assert isinstance(src, CaptureSource) and not src.live and src.frame_count == 6
    hw = src.frame_hw  # from the header, before any frame is read
    first = src.read()
    assert first is not None and hw == first.shape[:2]
    assert _read_all(src) == (5, 0)
    src.close()


def test_image_folder_and_glob_skip_unreadable(tmp_path: Path) -> None:
    for i in range(3):
        cv2.imwrite(str(tmp_path / f"f{i}.png"), np.full((16, 24, 3), 40 * i, np.uint8))
    (tmp_path / "f3.png").write_bytes(b"not a png")
    (tmp_path / "notes.txt").write_text("ignored")
    src = open_source(str(tmp_path))
    assert isinstance(src, ImageSource) and src.frame_count == 4 and src.frame_hw is None  # sizes may differ
    assert _read_all(src) == (3, 1)
    assert _read_all(open_source(str(tmp_path / "f[01].png"))) == (2, 0)
    assert _read_all(open_source(str(tmp_path / "f2.png"))) == (1, 0)


def test_bad_sources_give_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="camera index 57 could not be opened"):
        open_source("57")
    with pytest.raises(SourceError, match="not a camera index, URL, folder, glob or existing file"):
        open_source(str(tmp_path / "missing.mp4"))
    with pytest.raises(SourceError, match="no images found"):
        open_source(str(tmp_path))
    (tmp_path / "junk.mp4").write_bytes(b"\0" * 100)
    with pytest.raises(SourceError, match="cannot open as a video file"):
        open_source(str(tmp_path / "junk.mp4"))


class FlakyLive(FrameSource):
    """A live source that delivers ``good`` frames, then fails ``failures`` reads/reopens, then recovers."""

    live = True
    name = "fake camera"

    def __init__(self, good: int, failures: int, total: int = 100) -> None:
        self.good, self.failures, self.total, self.reads, self.opens = good, failures, total, 0, 0

    def open(self) -> FlakyLive:
        self.opens += 1
        return self

    def read(self) -> np.ndarray | None:
        self.reads += 1
        if self.reads > self.total:
            return None
        if self.good < self.reads <= self.good + self.failures:
            raise SourceLostError("no frame received")
        return np.zeros((8, 8, 3), np.uint8)


def test_retrying_source_reconnects_then_gives_up() -> None:
    sleeps: list[float] = []
    src = RetryingSource(FlakyLive(good=2, failures=2), retries=3, delay_s=0.1, sleep=sleeps.append).open()
    assert _read_all(src) == (98, 0) and src.reconnects == 1 and sleeps == [0.1, 0.2]
    dead = RetryingSource(FlakyLive(good=2, failures=10**6), retries=3, delay_s=0.1, sleep=sleeps.append).open()
    dead.read(), dead.read()
    with pytest.raises(SourceLostError, match="did not come back after 3 reconnect attempts"):
        dead.read()
