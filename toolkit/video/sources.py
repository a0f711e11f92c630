"""Frame sources: webcam index, video file, RTSP/HTTP URL, image folder or glob, behind one interface.

A source yields RGB uint8 frames. ``read()`` returns a frame, ``None`` at the end, or raises
``UnreadableFrame`` (the caller skips and counts it) or ``SourceLostError`` (a live source that stayed
down through every reconnect). Live sources (cameras, URLs) reconnect with a back-off before giving up,
so a camera unplugged for a second does not end a recording.
"""

from __future__ import annotations

import glob as globlib
import logging
import re
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from toolkit.core import defaults
from toolkit.errors import SourceError, SourceLostError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
URL_RE = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)


class UnreadableFrame(Exception):  # a per-frame condition the pipeline skips and counts
    """One frame could not be decoded; the source itself is still usable. ``what`` names it for the
    summary (an image's path, or "frame N" of a video)."""

    def __init__(self, message: str, what: str | None = None) -> None:
        super().__init__(message)
        self.what = what or message


class FrameSource:
    """open() -> read() ... -> close(); ``live`` sources may drop frames, file sources never do."""

    live = False
    name = "source"

    def open(self) -> FrameSource:
        return self

    def read(self) -> np.ndarray | None:
        raise NotImplementedError

    def close(self) -> None:
        pass

    @property
    def frame_count(self) -> int | None:
        """Number of frames when known in advance (files, image folders), else None."""
        return None

    @property
    def fps(self) -> float | None:
        """Nominal frame rate, when the source has one."""
        return None

    @property
    def frame_hw(self) -> tuple[int, int] | None:
        """(height, width) of the frames when known before the first one is read (a video's header)."""
        return None

    def frame_name(self, index: int) -> str | None:
        """A file-name stem for frame ``index``'s outputs (an image's own name), or None: number it."""
        return None

    def __enter__(self) -> FrameSource:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()


class CaptureSource(FrameSource):
    """cv2.VideoCapture over a camera index, a video file or a stream URL."""

    def __init__(self, spec: int | str, live: bool | None = None, open_timeout_s: float = 10.0,
                 read_timeout_s: float = 5.0) -> None:
        self.spec = spec
        self.open_timeout_s, self.read_timeout_s = open_timeout_s, read_timeout_s
        self.live = isinstance(spec, int) if live is None else live
        self.name = f"camera {spec}" if isinstance(spec, int) else str(spec)
        self._cap = None
        self._count: int | None = None
        self._fps: float | None = None
        self._hw: tuple[int, int] | None = None
        self._pos = 0
        self._bad_run = 0

    def open(self) -> CaptureSource:
        import cv2

        from toolkit.video.cvlog import opencv_errors_only

        with opencv_errors_only():  # our message replaces OpenCV's warnings
            if isinstance(self.spec, str) and URL_RE.match(self.spec):  # a stalled stream must not hang us
                cap = cv2.VideoCapture(self.spec, cv2.CAP_FFMPEG,
                                       [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(self.open_timeout_s * 1000),
                                        cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(self.read_timeout_s * 1000)])
            else:
                cap = cv2.VideoCapture(self.spec)
        if not cap.isOpened():
            cap.release()
            if isinstance(self.spec, int):
                raise SourceError(f"camera index {self.spec} could not be opened (no such device, or it is busy); "
                                  "list cameras with 'ls /dev/video*' or pass a video file, URL or image folder")
            raise SourceError(f"{self.spec}: cannot open as a video {'stream' if self.live else 'file'} "
                              "(unreachable, wrong URL or a codec OpenCV's FFmpeg lacks)")
        self._cap = cap
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        self._count = n if n > 0 and not self.live else None
        fps = float(cap.get(cv2.CAP_PROP_FPS))
        self._fps = fps if 0 < fps < 1000 else None
        h, w = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)), int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        self._hw = (h, w) if h > 0 and w > 0 else None
        return self

    def read(self) -> np.ndarray | None:
        import cv2

        if self._cap is None:
            raise SourceError(f"{self.name}: read() before open()")
        ok, frame = self._cap.read()
        if ok and frame is not None:
            self._pos += 1
            self._bad_run = 0
            return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        if self.live:
            raise SourceLostError(f"{self.name}: no frame received")
        # A file: the end, or a frame FFmpeg could not decode? Past the known count (or after many
        # consecutive failures) it is the end; before it, skip the frame and go on.
        self._pos += 1
        self._bad_run += 1
        if self._count is None or self._pos >= self._count or self._bad_run > 50:
            return None
        raise UnreadableFrame(f"{self.name}: frame {self._pos - 1} could not be decoded", f"frame {self._pos - 1}")

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    @property
    def frame_count(self) -> int | None:
        return self._count

    @property
    def fps(self) -> float | None:
        return self._fps

    @property
    def frame_hw(self) -> tuple[int, int] | None:
        return self._hw


class ImageSource(FrameSource):
    """Images from a folder (sorted by name) or a glob pattern; an unreadable file is skipped and counted."""

    def __init__(self, paths: list[Path], name: str) -> None:
        if not paths:
            raise SourceError(f"{name}: no images found (looked for {', '.join(IMAGE_SUFFIXES)})")
        self.paths, self.name, self._i = paths, name, 0
        self.stems = unique_stems(paths)

    @classmethod
    def from_spec(cls, spec: str) -> ImageSource:
        p = Path(spec)
        if p.is_dir():
            files = sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file())
        else:
            files = sorted(Path(f) for f in globlib.glob(spec) if Path(f).suffix.lower() in IMAGE_SUFFIXES)
        return cls(files, spec)

    def read(self) -> np.ndarray | None:
        import cv2

        if self._i >= len(self.paths):
            return None
        path = self.paths[self._i]
        self._i += 1
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if img is None:
            raise UnreadableFrame(f"{path}: not a readable image", str(path))
        return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)

    @property
    def frame_count(self) -> int | None:
        return len(self.paths)

    def frame_name(self, index: int) -> str | None:
        return self.stems[index] if 0 <= index < len(self.stems) else None


def unique_stems(paths: list[Path]) -> list[str]:
    """Output names that keep the link to each input: the stem (a.png -> a), the whole name where stems
    repeat (a.png and a.jpg -> a.png, a.jpg), numbered as well where names repeat too (a glob over folders)."""
    for names in ([p.stem for p in paths], [p.name for p in paths]):
        if len(set(names)) == len(names):
            return names
    return [f"{i:06d}_{p.name}" for i, p in enumerate(paths)]


class RetryingSource(FrameSource):
    """Wraps a live source: on a lost connection, reopen it up to ``retries`` times with a growing delay."""

    def __init__(self, inner: FrameSource, retries: int = defaults.SOURCE_RETRIES, delay_s: float = 0.5,
                 max_delay_s: float = 5.0, sleep: Callable[[float], None] = time.sleep) -> None:
        self.inner, self.retries, self.delay_s, self.max_delay_s = inner, retries, delay_s, max_delay_s
        self.live, self.name = inner.live, inner.name
        self.reconnects = 0
        self._sleep = sleep

    def open(self) -> RetryingSource:
        self.inner.open()
        return self

    def read(self) -> np.ndarray | None:
        try:
            return self.inner.read()
        except (SourceLostError, SourceError) as first:
            last: Exception = first
        delay = self.delay_s
        for attempt in range(1, self.retries + 1):
            log.warning("%s: lost (%s); reconnecting, attempt %d/%d in %.1f s", self.name, last, attempt,
                        self.retries, delay)
            self._sleep(delay)
            delay = min(delay * 2, self.max_delay_s)
            self.inner.close()
            try:
                self.inner.open()
                frame = self.inner.read()
            except (SourceLostError, SourceError) as e:
                last = e
                continue
            self.reconnects += 1
            return frame
        raise SourceLostError(f"{self.name}: stopped delivering frames and did not come back after "
                              f"{self.retries} reconnect attempts ({last}); check the cable, network or URL")

    def close(self) -> None:
        self.inner.close()

    @property
    def frame_count(self) -> int | None:
        return self.inner.frame_count

    @property
    def fps(self) -> float | None:
        return self.inner.fps

    @property
    def frame_hw(self) -> tuple[int, int] | None:
        return self.inner.frame_hw

    def frame_name(self, index: int) -> str | None:
        return self.inner.frame_name(index)


def open_source(spec: str | int, retries: int = defaults.SOURCE_RETRIES) -> FrameSource:
    """Parse a --source value and open it: '0' camera, URL stream, folder/glob of images, video or image file."""
    text = str(spec).strip()
    if text.isdigit():
        src: FrameSource = RetryingSource(CaptureSource(int(text)), retries=retries)
    elif URL_RE.match(text):
        src = RetryingSource(CaptureSource(text, live=True), retries=retries)
    elif Path(text).is_dir() or any(c in text for c in "*?["):
        src = ImageSource.from_spec(text)
    elif Path(text).is_file():
        src = ImageSource([Path(text)], text) if Path(text).suffix.lower() in IMAGE_SUFFIXES else CaptureSource(text)
    else:
        raise SourceError(f"source '{text}': not a camera index, URL, folder, glob or existing file; "
                          "examples: 0, clip.mp4, rtsp://host/stream, frames/, 'frames/*.png'")
    return src.open()
