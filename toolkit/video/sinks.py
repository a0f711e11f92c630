"""Where annotated frames go: a video file, per-frame mask PNGs, a window.

The video is written to a hidden temp file beside the target and renamed over it only once the
writer is closed, so the output path only ever holds a complete, playable file: an interrupted run
(Ctrl-C, a lost camera) still closes the writer and renames, a crash leaves the old file untouched.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import cv2
import numpy as np

from toolkit.errors import ToolkitError

log = logging.getLogger("toolkit.video")

FOURCC_BY_SUFFIX = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "XVID"}


class Sink:
    """write(frame_rgb, mask, index) ... close(); ``stop_requested`` lets a window end the run."""

    stop_requested = False

    def write(self, frame: np.ndarray, mask: np.ndarray, index: int) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


class VideoFileSink(Sink):
    """An annotated video file, opened on the first frame (its size), renamed into place on close()."""

    def __init__(self, path: str | Path, fps: float = 30.0) -> None:
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in FOURCC_BY_SUFFIX:
            raise ToolkitError(f"--output {self.path}: unsupported video type '{suffix or '(none)'}'; "
                               f"use one of {', '.join(FOURCC_BY_SUFFIX)}")
        if self.path.is_dir():
            raise ToolkitError(f"--output {self.path} is a folder; give a file name such as out.mp4")
        self.fourcc = FOURCC_BY_SUFFIX[suffix]
        self.fps = fps if fps and fps > 0 else 30.0
        self.tmp = self.path.with_name(f".{self.path.stem}.partial{suffix}")
        self._writer: cv2.VideoWriter | None = None
        self._size: tuple[int, int] | None = None
        self.frames = 0

    def write(self, frame: np.ndarray, mask: np.ndarray, index: int) -> None:
        h, w = frame.shape[:2]
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = cv2.VideoWriter(str(self.tmp), cv2.VideoWriter.fourcc(*self.fourcc), self.fps, (w, h))
            if not self._writer.isOpened():
                self._writer = None
                raise ToolkitError(f"cannot write {self.path}: OpenCV has no '{self.fourcc}' encoder for "
                                   f"{self.path.suffix}; try --output out.avi")
            self._size = (w, h)
        if (w, h) != self._size:  # frame size changed mid-stream (a camera that reconnected at another size)
            frame = cv2.resize(frame, self._size, interpolation=cv2.INTER_AREA)
        self._writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        self.frames += 1

    def close(self) -> None:
        if self._writer is None:
            return
        self._writer.release()
        self._writer = None
        with open(self.tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(self.tmp, self.path)
        log.debug("wrote %s (%d frames)", self.path, self.frames)


class MaskSink(Sink):
    """One PNG of class indices per frame (``000000.png`` ...), each written to a temp name then renamed."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        if self.folder.exists() and not self.folder.is_dir():
            raise ToolkitError(f"--masks {self.folder}: exists and is not a folder")
        self.folder.mkdir(parents=True, exist_ok=True)
        self.frames = 0

    def write(self, frame: np.ndarray, mask: np.ndarray, index: int) -> None:
        ok, buf = cv2.imencode(".png", mask)
        if not ok:
            raise ToolkitError(f"could not encode the mask of frame {index} as PNG")
        path = self.folder / f"{index:06d}.png"
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(buf.tobytes())
        os.replace(tmp, path)
        self.frames += 1


def gui_available() -> bool:
    """Whether this OpenCV build can open windows (opencv-python-headless cannot)."""
    info = cv2.getBuildInformation()
    for line in info.splitlines():
        if line.strip().startswith("GUI:"):
            return line.split(":", 1)[1].strip().upper() != "NONE"
    return True


class DisplaySink(Sink):
    """A window showing the annotated frames; 'q' or Esc ends the run like Ctrl-C."""

    def __init__(self, title: str = "toolkit infer") -> None:
        if not gui_available():
            raise ToolkitError("--show needs an OpenCV build with a GUI; this install has "
                               "opencv-python-headless. Use --output out.mp4, or pip install opencv-python")
        self.title = title

    def write(self, frame: np.ndarray, mask: np.ndarray, index: int) -> None:
        cv2.imshow(self.title, cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
            self.stop_requested = True

    def close(self) -> None:
        cv2.destroyWindow(self.title)
