"""Hostile-client load test of `toolkit serve`: the good clients keep being answered while others misbehave.

    python tools/hostile_clients.py --json docs/serving/hostile_clients.json       # CPU default model, 60 s
    python tools/hostile_clients.py --model tiny.safetensors --duration 8 --max-frame-pixels 65536 \\
        --max-request-pixels 196608 --max-logits-mb 2                                   # as tests/serve runs it
    python tools/hostile_clients.py --measure --duration 0                           # memory of the largest request

One `toolkit serve` subprocess on free ports of 127.0.0.1. For --duration seconds, at the same time:
- 8 good clients (HTTP and gRPC alternately) send real frames (CamVid val frames when ../shared/camvid is
  there, else synthetic scenes) back to back; every class map is checked against the same model run in this
  process (equal, but at pixels whose two best classes are within 2e-4: a frame batched with others differs in
  the last bits of its logits, up to 1e-4 measured, tests/serve/test_server.py);
- one bad client of each kind, in a loop: an oversized frame (over --max-frame-pixels), too many pixels in one
  request, logits over --max-logits-mb, wrong shapes (4 channels; FP32), a truncated body (a Content-Length
  larger than what is sent, then a hang-up), a slow upload (a valid request sent in pieces over ~2 s, which
  must then be answered), an abandoned request (sent whole, the socket closed before the answer);
- a monitor: /v2/health/ready every 0.2 s and the resident memory of the server's process tree.
Then SIGTERM: the server must exit 0. Pass: every good request answered correctly, every bad one refused with
the expected message, ready throughout, the tree's RSS never over its idle RSS + --rss-bound-mb, a clean stop.

--measure also sends, alone, one accepted request of the largest frame (--max-frame-pixels, classes only) and
one refused 9000x12000 frame, and records the tree's peak RSS growth and the time of each.

Traffic goes only to 127.0.0.1, to the server this script started; every loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import json
import math
import socket
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loadtest import HOST, REPO, Server, percentiles

TIE_TOLERANCE = 2e-4  # two logits each off by up to 1e-4 (batched vs alone) can swap classes within this
SLOW_UPLOAD_S = 2.0


def real_frames(n: int, hw: tuple[int, int]) -> tuple[list[np.ndarray], str]:
    """CamVid val frames resized to ``hw`` where the data set is beside the repo, else synthetic scenes."""
    import cv2

    camvid = REPO.parent / "shared" / "camvid"
    if (camvid / "val.txt").is_file():
        from toolkit.data.camvid import CamVid

        ds = CamVid(camvid, "val")
        picks = [ds.load(i)[0] for i in range(0, len(ds), max(1, len(ds) // n))][:n]
        return [cv2.resize(f, (hw[1], hw[0]), interpolation=cv2.INTER_AREA) for f in picks], "camvid val"
    from toolkit.data.synthetic import make_scene

    return [make_scene(i, hw)[0] for i in range(n)], "synthetic scenes"


class Reference:
    """The served model in this process: the logits each good frame must agree with."""

    def __init__(self, model: str, frames: list[np.ndarray]) -> None:
        from toolkit.backend import make_runner
        from toolkit.evaluate import predict_logits

        with make_runner(model) as runner:
            meta = runner.meta
            self.num_classes = meta.num_classes
            self.logits = [predict_logits(runner, f, meta.dataset.mean, meta.dataset.std, meta.input_size)
                           for f in frames]

    def correct(self, i: int, classes: np.ndarray) -> bool:
        ref = self.logits[i]
        if classes.shape != ref.shape[1:]:
            return False
        diff = classes != ref.argmax(0)
        if not diff.any():
            return True
        top2 = np.sort(ref[:, diff], axis=0)[-2:]
        return bool(((top2[1] - top2[0]) <= TIE_TOLERANCE).all())


class Tally:
    """Thread-safe counts per client kind and outcome, and the good clients' latencies."""

    def __init__(self) -> None:
        self.lock, self.counts, self.latency, self.unexpected = threading.Lock(), Counter(), [], []

    def add(self, kind: str, outcome: str, detail: str = "", latency: float | None = None) -> None:
        with self.lock:
            self.counts[f"{kind}:{outcome}"] += 1
            if latency is not None:
                self.latency.append(latency)
            if outcome == "unexpected" and len(self.unexpected) < 20:
                self.unexpected.append(f"{kind}: {detail[:300]}")


def good_client(i: int, server: Server, frames: list[np.ndarray], ref: Reference, stop_at: float,
                tally: Tally) -> None:
    from toolkit.backend.triton import client as tc

    protocol = "grpc" if i % 2 else "http"
    port = server.grpc if protocol == "grpc" else server.http
    u = tc.parse_triton_url(f"triton://{HOST}:{port}/segnet" + ("?protocol=grpc" if protocol == "grpc" else ""))
    c = tc.connect(u, timeout_s=60)
    k = i
    try:
        while time.monotonic() < stop_at:
            idx = k % len(frames)
            k += 1
            t = time.perf_counter()
            try:
                out = tc.infer(c, u, {"image": frames[idx][None]}, ["classes"], timeout_s=60)
                ok = ref.correct(idx, out["classes"][0])
                tally.add("good", "answered" if ok else "unexpected", "" if ok else "wrong class map",
                          time.perf_counter() - t)
            except Exception as e:
                tally.add("good", "unexpected", str(e))
    finally:
        c.close()


def refused_client(kind: str, make: Callable[[], tuple[dict[str, np.ndarray], list[str]]], expect: str,
                   server: Server, stop_at: float, tally: Tally, protocol: str = "http") -> None:
    """Sends requests that must be refused, each answer checked for ``expect`` in the error line."""
    from toolkit.backend.triton import client as tc

    port = server.grpc if protocol == "grpc" else server.http
    u = tc.parse_triton_url(f"triton://{HOST}:{port}/segnet" + ("?protocol=grpc" if protocol == "grpc" else ""))
    c = tc.connect(u, timeout_s=60)
    try:
        while time.monotonic() < stop_at:
            inputs, outputs = make()
            try:
                tc.infer(c, u, inputs, outputs, timeout_s=60)
                tally.add(kind, "unexpected", "answered instead of refused")
            except Exception as e:
                ok = expect in str(e)
                tally.add(kind, "refused" if ok else "unexpected", str(e))
            time.sleep(0.05)
    finally:
        c.close()


def http_request_bytes(port: int, frame: np.ndarray) -> bytes:
    """A complete binary KServe-v2 HTTP request for one frame (what tritonclient would send)."""
    import tritonclient.http as th

    inp = th.InferInput("image", list(frame[None].shape), "UINT8")
    inp.set_data_from_numpy(frame[None], binary_data=True)
    out = th.InferRequestedOutput("classes", binary_data=True)
    body, json_size = th.InferenceServerClient.generate_request_body([inp], [out])
    head = (f"POST /v2/models/segnet/infer HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
            f"Content-Type: application/octet-stream\r\nInference-Header-Content-Length: {json_size}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    return head + body


def read_status(s: socket.socket) -> int:
    data = b""
    while b"\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    line = data.split(b"\r\n", 1)[0].split()
    return int(line[1]) if len(line) > 1 and line[1].isdigit() else 0


def socket_client(kind: str, server: Server, frame: np.ndarray, stop_at: float, tally: Tally) -> None:
    """Truncated bodies, slow uploads and abandoned requests, over raw sockets."""
    request = http_request_bytes(server.http, frame)
    while time.monotonic() < stop_at:
        try:
            with socket.create_connection((HOST, server.http), timeout=30) as s:
                if kind == "truncated":
                    s.sendall(request[: len(request) // 2])  # the header promises twice as much
                    tally.add(kind, "sent")
                elif kind == "abandoned":
                    s.sendall(request)
                    tally.add(kind, "sent")  # closed without reading the answer
                else:  # slow: the whole request, in pieces over SLOW_UPLOAD_S, then the answer must come
                    pieces = 20
                    step = math.ceil(len(request) / pieces)
                    for j in range(pieces):
                        s.sendall(request[j * step:(j + 1) * step])
                        time.sleep(SLOW_UPLOAD_S / pieces)
                    status = read_status(s)
                    tally.add(kind, "answered" if status == 200 else "unexpected", f"HTTP {status}")
        except OSError as e:
            tally.add(kind, "unexpected", f"{type(e).__name__}: {e}")
        time.sleep(0.1)


class Monitor:
    """Readiness every 0.2 s and the RSS of the server's process tree."""

    def __init__(self, server: Server) -> None:
        self.server, self.stop = server, threading.Event()
        self.probes = self.not_ready = 0
        self.slowest_probe_s = 0.0
        self.rss: list[float] = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        url = f"http://{HOST}:{self.server.http}/v2/health/ready"
        while not self.stop.is_set():
            t = time.perf_counter()
            try:
                with urllib.request.urlopen(url, timeout=10) as r:
                    ready = r.status == 200
            except OSError:
                ready = False
            self.slowest_probe_s = max(self.slowest_probe_s, time.perf_counter() - t)
            self.probes += 1
            self.not_ready += not ready
            self.rss.append(self.server.rss_mb())
            self.stop.wait(0.2)

    def __enter__(self) -> Monitor:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join(15)


def bad_requests(limits: dict[str, float], max_batch: int, k: int
                 ) -> dict[str, tuple[Callable[[], tuple[dict[str, np.ndarray], list[str]]], str]]:
    """Per refused kind: a request maker and the text its refusal must hold (kinds that cannot be made under
    these limits, e.g. a request-pixel overflow that needs more frames than --max-batch, are left out)."""
    frame_px, request_px, logits_b = limits["max_frame_pixels"], limits["max_request_pixels"], limits["max_logits_mb"]
    side = math.isqrt(int(frame_px)) + 1  # a square frame just over the frame limit
    out: dict[str, tuple[Callable[[], tuple[dict[str, np.ndarray], list[str]]], str]] = {
        "oversized": (lambda: ({"image": np.zeros((1, side, side, 3), np.uint8)}, ["classes"]), "--max-frame-pixels"),
        "four_channels": (lambda: ({"image": np.zeros((1, 8, 8, 4), np.uint8)}, ["classes"]), "shape"),
        "fp32": (lambda: ({"image": np.zeros((1, 8, 8, 3), np.float32)}, ["classes"]), "FP32"),
    }
    fs = math.isqrt(int(frame_px))  # frames under the frame limit, enough of them to pass the request limit
    n = int(request_px // (fs * fs)) + 1
    if n <= max_batch:
        out["request_pixels"] = (lambda: ({"image": np.zeros((n, fs, fs, 3), np.uint8)}, ["classes"]),
                                 "--max-request-pixels")
    need = logits_b * 2**20 / (k * 4)  # pixels whose logits pass the logits limit
    if need < min(frame_px, request_px):
        ls = math.isqrt(int(need)) + 1
        out["logits"] = (lambda: ({"image": np.zeros((1, ls, ls, 3), np.uint8)}, ["classes", "logits"]),
                         "--max-logits-mb")
    return out


def measure_largest(server: Server, limits: dict[str, float]) -> dict[str, Any]:
    """Alone on the server: one accepted request of the largest frame and one refused 9000x12000 frame."""
    from toolkit.backend.triton import client as tc

    u = tc.parse_triton_url(f"triton://{HOST}:{server.http}/segnet")
    out: dict[str, Any] = {}
    w = 3840 if limits["max_frame_pixels"] >= 3840 * 2160 else math.isqrt(int(limits["max_frame_pixels"]))
    h = int(limits["max_frame_pixels"] // w)
    rng = np.random.default_rng(0)
    for name, shape in (("largest_accepted", (1, h, w, 3)), ("refused_9000x12000", (1, 9000, 12000, 3))):
        frame = rng.integers(0, 256, shape, dtype=np.uint8)
        idle = server.rss_mb()
        peak, done = [idle], threading.Event()

        def sample(peak: list[float] = peak, done: threading.Event = done) -> None:
            while not done.is_set():
                peak.append(server.rss_mb())
                done.wait(0.05)

        t = threading.Thread(target=sample, daemon=True)
        t.start()
        c = tc.connect(u, timeout_s=300)
        start = time.perf_counter()
        try:
            res = tc.infer(c, u, {"image": frame}, ["classes"], timeout_s=300)
            outcome = f"answered {res['classes'].shape}"
        except Exception as e:
            outcome = f"refused: {str(e)[:160]}"
        seconds = time.perf_counter() - start
        c.close()
        done.set()
        t.join(5)
        out[name] = {"frame": f"{shape[1]}x{shape[2]}", "body_mb": round(frame.nbytes / 2**20, 1),
                     "outcome": outcome, "seconds": round(seconds, 2), "idle_rss_mb": idle,
                     "peak_rss_mb": max(peak), "growth_mb": round(max(peak) - idle, 1)}
        del frame
        time.sleep(1.0)
    return out


def run(model: str, duration: float, limits: dict[str, float], rss_bound_mb: float, max_batch: int = 8,
        frame_hw: tuple[int, int] = (360, 480), measure: bool = False, good_clients: int = 8) -> dict[str, Any]:
    """The whole test; returns the report (``passed`` and ``failures`` say the verdict)."""
    frames, source = real_frames(8, frame_hw)
    ref = Reference(model, frames)
    extra = ("--max-frame-pixels", str(int(limits["max_frame_pixels"])),
             "--max-request-pixels", str(int(limits["max_request_pixels"])),
             "--max-logits-mb", str(limits["max_logits_mb"]), "--drain-timeout", "15")
    server = Server(model, max_batch, 1, True, 0, None, extra=extra)
    report: dict[str, Any] = {"model": model, "frames": f"{source}, {frame_hw[0]}x{frame_hw[1]}",
                              "duration_s": duration, "limits": limits, "rss_bound_mb": rss_bound_mb}
    try:
        time.sleep(0.5)
        idle = server.rss_mb()
        tally = Tally()
        stop_at = time.monotonic() + duration
        threads = [threading.Thread(target=good_client, args=(i, server, frames, ref, stop_at, tally))
                   for i in range(good_clients)]
        for kind, (make, expect) in bad_requests(limits, max_batch, ref.num_classes).items():
            threads.append(threading.Thread(target=refused_client, args=(kind, make, expect, server, stop_at, tally,
                                                                         "grpc" if kind == "fp32" else "http")))
        for kind in ("truncated", "slow", "abandoned"):
            threads.append(threading.Thread(target=socket_client, args=(kind, server, frames[0], stop_at, tally)))
        with Monitor(server) as mon:
            for t in threads:
                t.start()
            for t in threads:
                t.join(duration + 120)
        report.update({"idle_rss_mb": idle, "peak_rss_mb": max(mon.rss, default=idle),
                       "readiness_probes": mon.probes, "not_ready": mon.not_ready,
                       "slowest_probe_s": round(mon.slowest_probe_s, 2),
                       "counts": dict(sorted(tally.counts.items())), "unexpected": tally.unexpected,
                       "good_latency": percentiles(tally.latency)})
        if measure:
            report["measure"] = measure_largest(server, limits)
    finally:
        report["stop_s"] = server.stop()
        report["exit_code"] = server.proc.returncode
    failures = []
    if report.get("unexpected"):
        failures.append(f"{len(report['unexpected'])}+ unexpected outcomes, first: {report['unexpected'][0]}")
    if not report.get("counts", {}).get("good:answered"):
        failures.append("no good request was answered")
    if report.get("not_ready"):
        failures.append(f"not ready in {report['not_ready']} of {report['readiness_probes']} probes")
    if report.get("peak_rss_mb", 0) > report.get("idle_rss_mb", 0) + rss_bound_mb:
        failures.append(f"RSS peak {report['peak_rss_mb']} MB over idle {report['idle_rss_mb']} + {rss_bound_mb} MB")
    if report["exit_code"] != 0:
        failures.append(f"server exited {report['exit_code']} on SIGTERM")
    report["failures"], report["passed"] = failures, not failures
    return report


def main() -> None:
    from toolkit.core.limits import RequestLimits

    d = RequestLimits()
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", help="model to serve; default: the zoo's CPU default")
    ap.add_argument("--duration", type=float, default=60.0, help="seconds of mixed traffic")
    ap.add_argument("--frame", default="360x480", help="HxW of the good clients' frames")
    ap.add_argument("--max-batch", type=int, default=8)
    ap.add_argument("--max-frame-pixels", type=int, default=d.max_frame_pixels)
    ap.add_argument("--max-request-pixels", type=int, default=d.max_request_pixels)
    ap.add_argument("--max-logits-mb", type=float, default=d.max_logits_mb)
    ap.add_argument("--rss-bound-mb", type=float, default=2500.0,
                    help="the tree's RSS may grow at most this much over its idle RSS (default: the 1.8 GB measured "
                         "under the default limits on 2 busy cores, docs/SERVING.md, plus a third)")
    ap.add_argument("--measure", action="store_true", help="also the memory of the largest accepted request")
    ap.add_argument("--json", help="write the report here")
    args = ap.parse_args()
    model = args.model
    if model is None:
        from toolkit.zoo import resolve_model_path

        model = str(resolve_model_path(None, "cpu"))
    h, w = (int(v) for v in args.frame.lower().split("x"))
    limits = {"max_frame_pixels": args.max_frame_pixels, "max_request_pixels": args.max_request_pixels,
              "max_logits_mb": args.max_logits_mb}
    report = run(model, args.duration, limits, args.rss_bound_mb, args.max_batch, (h, w), args.measure)
    text = json.dumps(report, indent=1)
    print(text)
    if args.json:
        from toolkit.files import atomic_write

        atomic_write(args.json, lambda tmp: tmp.write_text(text + "\n"))
    sys.exit(0 if report["passed"] else 1)


if __name__ == "__main__":
    main()
