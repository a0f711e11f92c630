"""Bounded load test of `toolkit serve` on this machine, beside the in-process backend, in one run.

    python tools/loadtest.py --json runs/loadtest.json            # random width-16 model, 360x480 frames
    python tools/loadtest.py --model model.onnx --requests 30 --soak 1000

1. In process: the same handler the server runs (preprocess -> runner -> postprocess, uint8 frame in,
   class map out) at batch sizes 1, 2, 4, 8, and the bare runner at those sizes: frames/s.
2. `toolkit serve` twice, as subprocesses on free ports of 127.0.0.1: without and with dynamic
   batching. For 1, 2, 4, 8 concurrent clients (threads, one HTTP connection each), each sends
   single-frame requests back to back: throughput, p50/p95/p99 latency, and from Triton's own counters
   where the server's time goes (queue, compute, mean batch size).
   Each level runs in rounds that interleave the three modes, so background load hits them alike;
   every phase is capped in time.
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
TOOLKIT = str(Path(sys.executable).with_name("toolkit"))  # the installed command of this interpreter's venv
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

    from toolkit.checkpoint import save_checkpoint
    from toolkit.core.meta import ModelMeta
    from toolkit.data import synthetic_info
    from toolkit.models import create_model

    torch.manual_seed(0)
    info = synthetic_info()
    model = create_model("enhanced", num_classes=info.num_classes, width=width).eval()
    return save_checkpoint(out, model, ModelMeta("enhanced", width, info, input_size=hw))


class InProcess:
    """The server's frame handler (preprocess -> runner -> postprocess) and the bare runner, in this process."""

    def __init__(self, model: str, frame: np.ndarray, max_batch: int, threads: int | None) -> None:
        from toolkit.backend import make_runner
        from toolkit.evaluate import preprocess
        from toolkit.serve.handler import SegmentationHandler

        self.runner = make_runner(model, threads=threads).activate()
        self.handler = SegmentationHandler(self.runner, self.runner.meta, "rgb", max_batch=max_batch)
        ds = self.runner.meta.dataset
        self.frame, self.x1 = frame, preprocess(frame, ds.mean, ds.std, self.runner.meta.input_size).tensor
        self.handler.infer_frames([frame[None]], [False])  # warm-up

    def measure(self, batch: int, calls: int, cap_s: float) -> dict[str, tuple[int, float]]:
        """(frames, seconds) of ``calls`` handler calls (at most ``cap_s``) and of as many bare runner calls at
        this batch size; the runner's are ``toolkit bench``'s measurement (``toolkit.bench.bench_runners``)."""
        from toolkit.bench import bench_runners

        frames = np.repeat(self.frame[None], batch, axis=0)
        n, start = 0, time.perf_counter()
        while n < calls and time.perf_counter() - start < cap_s:
            self.handler.infer_frames([frames], [False])
            n += 1
        out = {"handler": (n * batch, time.perf_counter() - start)}
        h, w = self.x1.shape[-2:]
        (r,) = bench_runners([self.runner], (batch, 3, h, w), warmup=0, iterations=max(n, 1), rounds=1, pause_s=0.0)
        out["runner"] = (r.iterations * batch, r.iterations * batch / r.throughput_fps)
        return out

    def close(self) -> None:
        self.runner.deactivate()


class Server:
    """`toolkit serve` in a subprocess on free loopback ports; stopped with SIGTERM."""

    def __init__(self, model: str, max_batch: int, instances: int, dynamic: bool, delay_us: int,
                 threads: int | None, runner_batch: int | None = None, extra: tuple[str, ...] = ()) -> None:
        self.http, self.grpc, self.metrics = free_ports(3)
        cmd = [TOOLKIT, "serve", "--model", model,
               "--host", HOST, "--http-port", str(self.http), "--grpc-port", str(self.grpc),
               "--metrics-port", str(self.metrics), "--max-batch", str(max_batch), "--instances", str(instances),
               "--max-queue-delay-us", str(delay_us), "--dynamic-batching" if dynamic else "--no-dynamic-batching",
               *(["--threads", str(threads)] if threads else []),
               *(["--runner-batch", str(runner_batch)] if runner_batch else []), *extra]
        self.proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
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


def triton_counters(metrics_port: int, model: str = "segnet") -> dict[str, float]:
    """Triton's Prometheus counters of one model (request/queue/compute durations in microseconds)."""
    import urllib.request

    with urllib.request.urlopen(f"http://{HOST}:{metrics_port}/metrics", timeout=10) as r:
        text = r.read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("nv_inference_") and f'model="{model}"' in line:
            out[line.split("{", 1)[0]] = float(line.rsplit(" ", 1)[1])
    return out


def where_time_goes(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """Per-request server time split from the counter deltas: queue, compute, and the rest (HTTP, I/O)."""
    d = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after}
    n, execs = d.get("nv_inference_count", 0.0), d.get("nv_inference_exec_count", 0.0)
    if not n or not execs:
        return {}
    return {"mean_batch": round(n / execs, 2),
            "server_request_ms": round(d["nv_inference_request_duration_us"] / n / 1000, 1),
            "queue_ms": round(d["nv_inference_queue_duration_us"] / n / 1000, 1),
            "compute_input_ms": round(d["nv_inference_compute_input_duration_us"] / n / 1000, 1),
            "compute_infer_ms": round(d["nv_inference_compute_infer_duration_us"] / n / 1000, 1),
            "compute_output_ms": round(d["nv_inference_compute_output_duration_us"] / n / 1000, 1)}


def load(url: str, frame: np.ndarray, clients: int, requests: int, cap_s: float) -> dict:
    """`clients` threads, each `requests` single-frame requests back to back (stops early at cap_s)."""
    from toolkit.backend.triton import client as tc

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
            "wall_s": wall, "latencies": lat}


def soak(server: Server, url: str, frame: np.ndarray, n: int, cap_s: float) -> dict:
    """n sequential requests, every 10th a bad one (H not a multiple of 8), and the server's RSS around them.

    RSS is read after a short warm-up (the first requests fill allocator pools), at the middle and at the end.
    """
    from toolkit.backend.triton import client as tc
    from toolkit.errors import ToolkitError

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
    ap.add_argument("--runner-batch", type=int, default=None, help="the server's --runner-batch")
    ap.add_argument("--rounds", type=int, default=2, help="interleaved rounds per level")
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
    modes = ["in_process", "no_batching", "dynamic_batching"]
    inproc = InProcess(model, frame, max(clients), args.threads)
    servers: dict[str, Server] = {}
    try:
        for key in modes[1:]:
            t0 = time.monotonic()
            servers[key] = Server(model, args.max_batch, args.instances, key == "dynamic_batching",
                                  args.max_queue_delay_us, args.threads, args.runner_batch)
            print(f"{key}: server up in {time.monotonic() - t0:.1f} s", flush=True)
            load(f"triton://{HOST}:{servers[key].http}/segnet", frame, 1, 2, args.time_cap)  # warm-up
        # Every level is measured in rounds that interleave the three modes (order reversed every other
        # round), so a change in the machine's background load hits all three alike.
        acc: dict = {m: {c: {"frames": 0, "seconds": 0.0, "lat": [], "errors": 0, "runner_frames": 0,
                             "runner_seconds": 0.0, "before": {}, "after": {}} for c in clients} for m in modes}
        for c in clients:
            for r in range(args.rounds):
                for mode in (modes if r % 2 == 0 else modes[::-1]):
                    a = acc[mode][c]
                    if mode == "in_process":
                        got = inproc.measure(c, max(1, args.iters // args.rounds), args.time_cap)
                        a["frames"] += got["handler"][0]
                        a["seconds"] += got["handler"][1]
                        a["runner_frames"] += got["runner"][0]
                        a["runner_seconds"] += got["runner"][1]
                        continue
                    srv = servers[mode]
                    before = triton_counters(srv.metrics)
                    row = load(f"triton://{HOST}:{srv.http}/segnet", frame, c, max(1, args.requests // args.rounds),
                               args.time_cap)
                    after = triton_counters(srv.metrics)
                    for k, v in after.items():
                        a["after"][k] = a["after"].get(k, 0.0) + v
                        a["before"][k] = a["before"].get(k, 0.0) + before.get(k, 0.0)
                    a["frames"] += len(row["latencies"])
                    a["seconds"] += row["wall_s"]
                    a["lat"] += row["latencies"]
                    a["errors"] += row["errors"]
            line = []
            for mode in modes:
                a = acc[mode][c]
                line.append(f"{mode} {a['frames'] / max(a['seconds'], 1e-9):.2f}")
            print(f"  {c} clients / batch {c}: frames/s " + ", ".join(line), flush=True)
        if args.soak:
            report["soak"] = soak(servers["dynamic_batching"], f"triton://{HOST}:{servers['dynamic_batching'].http}"
                                  "/segnet", frame, args.soak, max(args.time_cap, 900.0))
            print(f"  soak: {report['soak']}", flush=True)
    finally:
        inproc.close()
        for key, srv in servers.items():
            report.setdefault("stop_s", {})[key] = srv.stop()
    rows = []
    for c in clients:
        ip, nb, db = (acc[m][c] for m in modes)
        row = {"clients": c,
               "in_process_handler_fps": round(ip["frames"] / ip["seconds"], 2),
               "in_process_runner_fps": round(ip["runner_frames"] / ip["runner_seconds"], 2)}
        for key, a in (("no_batching", nb), ("dynamic_batching", db)):
            row[key] = {"requests": a["frames"], "errors": a["errors"],
                        "throughput_fps": round(a["frames"] / a["seconds"], 2), **percentiles(a["lat"]),
                        "server": where_time_goes(a["before"], a["after"])}
        rows.append(row)
    report["levels"] = rows
    report["loadavg_end"] = os.getloadavg()
    report["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    print("\n| clients (= in-process batch) | in-process fps | served fps, no batching | served fps, dynamic "
          "batching | dynamic / in-process | p50 / p95 / p99 ms, no batching | p50 / p95 / p99 ms, dynamic | "
          "mean batch (dynamic) |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        nb, db = r["no_batching"], r["dynamic_batching"]
        print(f"| {r['clients']} | {r['in_process_handler_fps']} | {nb['throughput_fps']} | {db['throughput_fps']} | "
              f"{db['throughput_fps'] / r['in_process_handler_fps']:.2f} | "
              f"{nb.get('p50_ms')} / {nb.get('p95_ms')} / {nb.get('p99_ms')} | "
              f"{db.get('p50_ms')} / {db.get('p95_ms')} / {db.get('p99_ms')} | {db['server'].get('mean_batch')} |")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
