"""A real network source: an MJPEG-over-HTTP camera served on loopback, read through OpenCV's FFmpeg.

What an IP camera does to ``toolkit infer``: frames arrive over HTTP, the connection drops, the
camera comes back (reconnect) or stays away (a clear error after the retries, and the output file
still playable with every frame written so far). A server that accepts and never answers must time out.
"""

from __future__ import annotations

import http.server
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.helpers.video import HW, FakeRunner, count_frames
from toolkit.errors import SourceError
from toolkit.video import infer_video
from toolkit.video.sources import CaptureSource, open_source


class MjpegCamera(http.server.ThreadingHTTPServer):
    """Serves ``per_connection[i]`` JPEG frames on the i-th connection, then closes it; later connections
    get 503 (the camera is gone). Frame k is a flat image of value 10 * (k % 20) + 5."""

    daemon_threads = True

    def __init__(self, per_connection: list[int]) -> None:
        self.per_connection, self.connections, self.sent = per_connection, 0, 0
        super().__init__(("127.0.0.1", 0), MjpegHandler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/stream.mjpg"


class MjpegHandler(http.server.BaseHTTPRequestHandler):
    server: MjpegCamera

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        cam = self.server
        i, cam.connections = cam.connections, cam.connections + 1
        if i >= len(cam.per_connection):
            self.send_error(503, "camera offline")
            return
        self.send_response(200)
        self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
        self.end_headers()
        for _ in range(cam.per_connection[i]):
            value = 10 * (cam.sent % 20) + 5
            ok, jpg = cv2.imencode(".jpg", np.full((*HW, 3), value, np.uint8))
            assert ok
            try:
                self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(jpg))
                self.wfile.write(jpg.tobytes() + b"\r\n")
                self.wfile.flush()
            except OSError:  # the reader went away
                return
            cam.sent += 1
            time.sleep(0.005)


@pytest.fixture
def camera(request: pytest.FixtureRequest) -> Iterator[MjpegCamera]:
    cam = MjpegCamera(request.param)
    thread = threading.Thread(target=cam.serve_forever, daemon=True)
    thread.start()
    yield cam
    cam.shutdown()
    cam.server_close()


@pytest.mark.parametrize("camera", [[12]], indirect=True)
def test_stream_frames_arrive_in_order(camera: MjpegCamera) -> None:
    src = open_source(camera.url, retries=0)
    assert src.live  # a URL is a live source: stale frames may be dropped, losses are retried
    values = []
    for _ in range(12):
        frame = src.read()
        assert frame is not None and frame.shape == (*HW, 3)
        values.append(round(float(frame.mean())))
    src.close()
    assert values == [10 * k + 5 for k in range(12)]  # JPEG of a flat image decodes to the same value


@pytest.mark.parametrize("camera", [[8, 8]], indirect=True)
def test_dropped_stream_reconnects_and_the_run_goes_on(camera: MjpegCamera, tmp_path: Path) -> None:
    out = tmp_path / "cam.mp4"
    with FakeRunner(delay_s=0.001) as runner:
        s = infer_video(runner, camera.url, output=out, max_frames=12, retries=3)
    assert s.reconnects == 1 and camera.connections == 2 and s.error is None
    assert s.frames + s.dropped + s.unreadable <= 12 and s.frames >= 6 and count_frames(out) == s.frames


@pytest.mark.parametrize("camera", [[6]], indirect=True)
def test_camera_that_disappears_ends_the_run_with_one_line_and_a_playable_file(camera: MjpegCamera,
                                                                                 tmp_path: Path) -> None:
    out = tmp_path / "cam.mp4"
    t = time.perf_counter()
    with FakeRunner() as runner:
        s = infer_video(runner, camera.url, output=out, retries=2)
    assert s.stopped_by == "error" and "did not come back after 2 reconnect attempts" in (s.error or "")
    assert "\n" not in (s.error or "") and camera.connections == 3  # the first, then two refused reconnects
    assert 1 <= s.frames <= 6 and count_frames(out) == s.frames
    assert time.perf_counter() - t < 10  # back-off of 0.5 s + 1 s, not a hang


def test_server_that_never_answers_times_out_with_a_clear_error() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/stream.mjpg"
        t = time.perf_counter()
        with pytest.raises(SourceError, match="cannot open as a video stream"):
            CaptureSource(url, live=True, open_timeout_s=1.0).open()
        assert time.perf_counter() - t < 5
