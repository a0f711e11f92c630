"""OpenCV's and FFmpeg's own logging, quietened the same way on OpenCV 4.x and 5.x (issue 25).

OpenCV 5 (and some 4.x builds) expose ``cv2.utils.logging.setLogLevel``; the 4.x wheels that PyTriton's
numpy<2 pin brings (and JetPack's system OpenCV) only have ``cv2.setLogLevel``. FFmpeg's messages (``moov atom
not found``, ``Connection refused``) go through its own logger, which OpenCV sets up from
``OPENCV_FFMPEG_LOGLEVEL`` when it first opens a file: ``toolkit.cli.logs.quiet_native_logs`` sets that (and
OpenCV's level) once where the CLI starts (the process environment is the CLI's, issue 27), so our one
``error:`` line is the only one; a user who wants them back sets the variables themselves.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

LOG_LEVEL_ERROR = 2  # cv2.utils.logging.LOG_LEVEL_ERROR, the same number in every OpenCV since 4.0


def _level_api(cv2):
    """(get, set) of OpenCV's log level on this build, or None where it has neither."""
    api = getattr(getattr(cv2, "utils", None), "logging", None)
    if api is not None and hasattr(api, "setLogLevel"):
        return api.getLogLevel, api.setLogLevel
    if hasattr(cv2, "setLogLevel") and hasattr(cv2, "getLogLevel"):
        return cv2.getLogLevel, cv2.setLogLevel
    return None


def set_log_level(level: int) -> int | None:
    """Set OpenCV's log level; returns the previous one (None where the build cannot change it)."""
    import cv2

    api = _level_api(cv2)
    if api is None:
        return None
    previous = api[0]()
    api[1](level)
    return previous


@contextlib.contextmanager
def opencv_errors_only() -> Iterator[None]:
    """OpenCV's warnings hidden inside the block (our message replaces them), the level restored after."""
    previous = set_log_level(LOG_LEVEL_ERROR)
    try:
        yield
    finally:
        if previous is not None:
            set_log_level(previous)
