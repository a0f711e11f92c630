"""Bounded load test of `toolkit serve` on this machine, beside the in-process backend, in one run.

    python tools/loadtest.py --json runs/loadtest.json            # random width-16 model, 360x480 frames
    python tools/loadtest.py --model model.onnx --requests 30 --soak 1000

1. In process: the same handler the server runs (preprocess -> runner -> postprocess, uint8 frame in,
   class map out) at batch sizes 1, 2, 4, 8, and the bare runner at those sizes: frames/s.
2. `toolkit serve` started as a subprocess on free ports of 127.0.0.1, once without and once with
   dynamic batching; for 1, 2, 4, 8 concurrent clients (threads, one HTTP connection each), each sends
   M single-frame requests back to back: throughput, p50/p95/p99 latency. Every phase is capped in time.
3. Optional soak: N more requests (every 10th a bad one, which must be refused with a clear error);
   resident memory of the server and its child processes after warm-up, midway and at the end.

Traffic only ever goes to 127.0.0.1, to the server this script started; every loop is bounded in count
and time, and the server is stopped (SIGTERM) at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
HOST = "127.0.0.1"  # the only address this tool sends to


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind((HOST, 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def percentiles(lat: list[float]) -> dict[str, float]:
    a = np.asarray(lat) * 1000
    return {f"p{q}_ms": round(float(np.percentile(a, q)), 1) for q in (50, 95, 99)} if len(a) else {}


def make_model(width: int, hw: tuple[int, int], out: Path) -> Path:
    import torch

    from toolkit.checkpoint import ModelMeta, save_checkpoint
    from toolkit.data import synthetic_info
    from toolkit.models import create_model

    torch.manual_seed(0)
    info = synthetic_info()
    model = create_model("enhanced", num_classes=info.num_classes, width=width).eval()
    return save_checkpoint(out, model, ModelMeta("enhanced", width, info, input_size=hw))


def in_process(model: str, frame: np.ndarray, sizes: list[int], cap_s: float, iters: int,
               threads: int | None) -> list[dict]:
    """Frames/s of the server's handler (full frame path) and of the bare runner, per batch size."""
    from toolkit.bench import open_runner
    from toolkit.evaluate import preprocess
    from toolkit.serve.handler import SegmentationHandler

    rows = []
    with open_runner(model, threads=threads) as runner:
        handler = SegmentationHandler(runner, runner.meta, "rgb", max_batch=max(sizes))
        ds = runner.meta.dataset
        x1 = preprocess(frame, ds.mean, ds.std, runner.meta.input_size).tensor
        handler.infer_frames([frame[None]], [False])  # warm-up
        for b in sizes:
            batch = np.repeat(frame[None], b, axis=0)
            xb = np.repeat(x1, b, axis=0)
            row = {"batch": b}
            for key, fn in (("handler_fps", lambda batch=batch: handler.infer_frames([batch], [False])),
                            ("runner_fps", lambda xb=xb: runner.infer({"input": xb}))):
                fn()
                n, start = 0, time.perf_counter()
                while n < iters and time.perf_counter() - start < cap_s:
                    fn()
                    n += 1
                row[key] = round(n * b / (time.perf_counter() - start), 2)
            rows.append(row)
            print(f"  in-process batch {b}: handler {row['handler_fps']} frames/s, runner {row['runner_fps']}",
                  flush=True)
    return rows


class Server:
    """`toolkit serve` in a subprocess on free loopback ports; stopped with SIGTERM."""

    def __init__(self, model: str, max_batch: int, instances: int, dynamic: bool, delay_us: int,
                 threads: int | None) -> None:
        self.http, self.grpc, self.metrics = free_ports(3)
        cmd = [sys.executable, "-c", "from toolkit.cli.app import main; main()", "serve", "--model", model,
               "--host", HOST, "--http-port", str(self.http), "--grpc-port", str(self.grpc),
               "--metrics-port", str(self.metrics), "--max-batch", str(max_batch), "--instances", str(instances),
               "--max-queue-delay-us", str(delay_us), "--dynamic-batching" if dynamic else "--no-dynamic-batching",
               *(["--threads", str(threads)] if threads else [])]
        self.proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                     env={**os.environ, "PYTHONPATH": str(REPO)})
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            if line.startswith("ready:") or not line:
                break
        if self.proc.poll() is not None or not line.startswith("ready:"):
            self.stop()
            raise SystemExit(f"server did not start: {line.strip()}")
        threading.Thread(target=self.proc.stderr.read, daemon=True).start()  # keep the pipe drained

    def rss_mb(self) -> float:
        """Resident memory of the server process and all its descendants (tritonserver, stubs)."""
        pids, total = [self.proc.pid], 0.0
        while pids:
            pid = pids.pop()
            try:
                status = Path(f"/proc/{pid}/status").read_text()
                total += int(next(ln.split()[1] for ln in status.splitlines() if ln.startswith("VmRSS:"))) / 1024
                children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            except (OSError, StopIteration):
                continue
            pids.extend(int(c) for c in children)
        return round(total, 1)

    def stop(self) -> float:
        start = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=90)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return round(time.monotonic() - start, 1)


def load(url: str, frame: np.ndarray, clients: int, requests: int, cap_s: float) -> dict:
    """`clients` threads, each `requests` single-frame requests back to back (stops early at cap_s)."""
    from toolkit.serve import client as tc

    u = tc.parse_triton_url(url)
    lat: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + cap_s

    def run() -> None:
        c = tc.connect(u)
        try:
            for _ in range(requests):
                if time.monotonic() > stop_at:
                    break
                t = time.perf_counter()
                try:
                    tc.infer(c, u, {"image": frame[None]}, ["classes"])
                except Exception as e:
                    with lock:
                        errors.append(str(e)[:200])
                    continue
                with lock:
                    lat.append(time.perf_counter() - t)
        finally:
            c.close()

    threads = [threading.Thread(target=run) for _ in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(cap_s + 120)
    wall = time.perf_counter() - start
    return {"clients": clients, "requests": len(lat), "errors": len(errors), "first_error": errors[:1],
            "throughput_fps": round(len(lat) / wall, 2), **percentiles(lat), "wall_s": round(wall, 1)}


def soak(server: Server, url: str, frame: np.ndarray, n: int, cap_s: float) -> dict:
    """n sequential requests, every 10th a bad one (H not a multiple of 8), and the server's RSS around them.

    RSS is read after a short warm-up (the first requests fill allocator pools), at the middle and at the end.
    """
    from toolkit.errors import ToolkitError
    from toolkit.serve import client as tc

    u = tc.parse_triton_url(url)
    t = tc.parse_triton_url(url.replace("/segnet", "/segnet_tensor"))
    bad = np.zeros((1, 3, 60, 96), np.float32)
    c = tc.connect(u)
    for _ in range(20):
        tc.infer(c, u, {"image": frame[None]}, ["classes"])
    rss = {"after_warmup": server.rss_mb()}
    ok = refused = failed = 0
    start = time.monotonic()
    for i in range(n):
        if time.monotonic() - start > cap_s:
            break
        try:
            if i % 10 == 9:
                tc.infer(c, t, {"input": bad}, ["logits"])
            else:
                tc.infer(c, u, {"image": frame[None]}, ["classes"])
                ok += 1
        except ToolkitError as e:
            if i % 10 == 9 and "multiples of 8" in str(e):
                refused += 1
            else:
                failed += 1
        if i == n // 2:
            rss["middle"] = server.rss_mb()
    c.close()
    rss["end"] = server.rss_mb()
    return {"requests": ok + refused + failed, "answered": ok, "bad_refused_clearly": refused, "failed": failed,
            "seconds": round(time.monotonic() - start, 1), "rss_mb": rss}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", help="checkpoint/ONNX to serve; default: a random enhanced model of --width")
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--frame", default="360x480", help="HxW of the uint8 frames sent (and the model input size)")
    ap.add_argument("--clients", default="1,2,4,8")
    ap.add_argument("--requests", type=int, default=16, help="requests per client per level")
    ap.add_argument("--time-cap", type=float, default=60.0, help="seconds per load level / in-process size")
    ap.add_argument("--max-batch", type=int, default=8)
    ap.add_argument("--instances", type=int, default=1)
    ap.add_argument("--max-queue-delay-us", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None,
                    help="intra-op threads, the same in process and in the server (default: the backend's)")
    ap.add_argument("--iters", type=int, default=12, help="in-process calls per batch size")
    ap.add_argument("--soak", type=int, default=0, help="extra sequential requests for the memory check")
    ap.add_argument("--json", help="write all results here")
    args = ap.parse_args()

    h, w = (int(v) for v in args.frame.lower().split("x"))
    clients = [int(c) for c in args.clients.split(",")]
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"loadtest-{os.getpid()}"
    tmp.mkdir(parents=True, exist_ok=True)
    model = args.model or str(make_model(args.width, (h, w), tmp / f"random_w{args.width}.safetensors"))
    frame = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
    import torch

    report: dict = {"command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]), "model": args.model or
                    f"random enhanced w={args.width}", "frame": [h, w], "cpu_count": os.cpu_count(),
                    "threads": args.threads or torch.get_num_threads(), "loadavg_start": os.getloadavg(),
                    "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    print("in-process (handler = the server's frame path; runner = bare model call)", flush=True)
    report["in_process"] = in_process(model, frame, clients, args.time_cap, args.iters, args.threads)
    report["served"] = {}
    for dynamic in (False, True):
        key = "dynamic_batching" if dynamic else "no_batching"
        t0 = time.monotonic()
        server = Server(model, args.max_batch, args.instances, dynamic, args.max_queue_delay_us, args.threads)
        print(f"{key}: server up in {time.monotonic() - t0:.1f} s", flush=True)
        url = f"triton://{HOST}:{server.http}/segnet"
        try:
            load(url, frame, 1, 2, args.time_cap)  # warm-up
            rows = []
            for c in clients:
                row = load(url, frame, c, args.requests, args.time_cap)
                rows.append(row)
                print(f"  {c} clients: {row['throughput_fps']} frames/s, p50 {row.get('p50_ms')} ms, "
                      f"p95 {row.get('p95_ms')} ms, p99 {row.get('p99_ms')} ms, errors {row['errors']}", flush=True)
            report["served"][key] = rows
            if dynamic and args.soak:
                report["soak"] = soak(server, url, frame, args.soak, max(args.time_cap, 900.0))
                print(f"  soak: {report['soak']}", flush=True)
        finally:
            report.setdefault("stop_s", {})[key] = server.stop()
    report["loadavg_end"] = os.getloadavg()
    report["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    inproc = {r["batch"]: r for r in report["in_process"]}
    print("\n| clients | in-process handler fps (batch=clients) | served, no batching fps | served, dynamic "
          "batching fps | ratio (dyn / in-process) | p50 / p95 / p99 ms (dyn) |")
    print("|---|---|---|---|---|---|")
    for nb, db in zip(report["served"]["no_batching"], report["served"]["dynamic_batching"], strict=True):
        ip = inproc.get(db["clients"], {}).get("handler_fps")
        ratio = f"{db['throughput_fps'] / ip:.2f}" if ip else "-"
        print(f"| {db['clients']} | {ip} | {nb['throughput_fps']} | {db['throughput_fps']} | {ratio} | "
              f"{db.get('p50_ms')} / {db.get('p95_ms')} / {db.get('p99_ms')} |")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
