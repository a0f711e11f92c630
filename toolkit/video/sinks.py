"""Where annotated frames go: a video file, per-frame mask PNGs, a window.

The video is written to a hidden temp file beside the target and renamed over it only once the
writer is closed and the file reads back, so the output path only ever holds a complete, playable file:
an interrupted run (Ctrl-C, a lost camera) still closes the writer and renames, a crash leaves the old
file untouched. OpenCV's VideoWriter reports no write errors (a full disk gives a file without its
index, "moov atom not found"), hence the read-back: reopen, frame count, last frame decodes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np

from toolkit.errors import ToolkitError, WriteError
from toolkit.files import make_folder, output_mode, write_error

log = logging.getLogger(__name__)

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
        self.written = False  # True once the file is checked and renamed into place
        self._probe()

    def _probe(self) -> None:
        """Create and remove the temp file now: a read-only or missing folder is named as such, before the
        model runs (VideoWriter would only say it could not open, which reads like a missing encoder)."""
        make_folder(self.path.parent, self.path)
        try:
            with open(self.tmp, "wb"):
                pass
            self.tmp.unlink()
        except OSError as e:
            raise write_error(self.path, e) from None

    def write(self, frame: np.ndarray, mask: np.ndarray, index: int) -> None:
        h, w = frame.shape[:2]
        if self._writer is None:
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
        """Finish the file, check it reads back whole, then rename it into place; else remove it and raise."""
        if self._writer is None:
            return
        self._writer.release()
        self._writer = None
        try:
            with open(self.tmp, "rb+") as f:
                os.fsync(f.fileno())
            check_video(self.tmp, self.frames, self.path)
            os.chmod(self.tmp, output_mode(self.path))
            os.replace(self.tmp, self.path)
            self.written = True
        except OSError as e:
            self.tmp.unlink(missing_ok=True)
            raise write_error(self.path, e) from None
        except WriteError:
            self.tmp.unlink(missing_ok=True)
            raise
        log.debug("wrote %s (%d frames)", self.path, self.frames)


@contextlib.contextmanager
def _stderr_silenced() -> Iterator[None]:
    """Point fd 2 at /dev/null for a moment. FFmpeg logs from C straight to fd 2, and OpenCV's log level
    does not reach it once FFmpeg is initialised; only called after the pipeline's threads are done."""
    sys.stderr.flush()
    saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def check_video(path: Path, frames: int, shown: Path | None = None) -> None:
    """Raise a WriteError unless ``path`` opens as a video of exactly ``frames`` frames whose last one decodes."""
    shown = shown or path
    size = path.stat().st_size
    with _stderr_silenced():  # FFmpeg's own "moov atom not found": the WriteError below says it in one line
        cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise WriteError(f"cannot write {shown}: the {frames}-frame video ({size} bytes) does not read back "
                             "(disk full or file size limit?); the partial file was removed")
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        cap.set(cv2.CAP_PROP_POS_FRAMES, max(frames - 1, 0))
        last_ok = cap.read()[0]
    finally:
        cap.release()
    if count != frames or not last_ok:
        raise WriteError(f"cannot write {shown}: {frames} frames were written but {count} read back"
                         f"{'' if last_ok else ' and the last one does not decode'} (disk full or file size "
                         "limit?); the partial file was removed")


class MaskSink(Sink):
    """One PNG of class indices per frame, each written to a temp name then renamed. Named after the input
    image where the source has names (``name_for(index)``: frames/a.jpg -> masks/a.png), else by the
    frame's position in the source (``000042.png``; a video's unreadable frames leave their numbers out)."""

    def __init__(self, folder: str | Path, name_for: Callable[[int], str | None] | None = None) -> None:
        self.folder = Path(folder)
        self.name_for = name_for
        if self.folder.exists() and not self.folder.is_dir():
            raise ToolkitError(f"--masks {self.folder}: exists and is not a folder")
        make_folder(self.folder)
        self.frames = 0

    def write(self, frame: np.ndarray, mask: np.ndarray, index: int) -> None:
        ok, buf = cv2.imencode(".png", mask)
        if not ok:
            raise ToolkitError(f"could not encode the mask of frame {index} as PNG")
        path = self.mask_path(index)
        tmp = path.with_name(f".{path.name}.tmp")
        try:
            tmp.write_bytes(buf.tobytes())
            os.replace(tmp, path)
        except OSError as e:
            tmp.unlink(missing_ok=True)
            raise write_error(path, e) from None
        self.frames += 1


    def mask_path(self, index: int) -> Path:
        name = self.name_for(index) if self.name_for is not None else None
        return self.folder / f"{name if name is not None else f'{index:06d}'}.png"


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
