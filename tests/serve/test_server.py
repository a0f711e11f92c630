"""`toolkit serve` end to end: Triton (through PyTriton) on free localhost ports with a tiny model.

Requests go over HTTP and gRPC and are compared bit for bit with the local backend; bad requests get a
clear Triton error while the server keeps serving; the last test stops the server with a request in
flight and checks that it completes. Skipped, with the reason, where the serve extra is not installed.
"""

from __future__ import annotations

import os
import socket
import sysconfig
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.serve.conftest import free_ports, needs_serve
from toolkit.backend import make_runner
from toolkit.backend.base import BaseRunner
from toolkit.core.description import ModelDescription
from toolkit.evaluate import predict_logits

pytestmark = needs_serve

# small enough that oversized requests stay cheap to send; every good request of this module fits them
SMALL_LIMITS_ARGS = {"max_frame_pixels": 256 * 256, "max_request_pixels": 3 * 256 * 256, "max_logits_mb": 2.0}


class DelayRunner(BaseRunner):
    """Passes through to a real runner; sleeps first while ``delay`` is set (for the drain test)."""

    backend = "delay"

    def __init__(self, inner: BaseRunner) -> None:
        super().__init__("delay")
        self.inner, self.delay, self.entered = inner, 0.0, threading.Event()

    def _activate_impl(self) -> ModelDescription:
        self.inner.activate()
        return self.inner.description

    def _deactivate_impl(self) -> None:
        self.inner.deactivate()

    def _infer_impl(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.entered.set()
        if self.delay:
            time.sleep(self.delay)
        return self.inner.infer(feed)


@pytest.fixture(scope="module")
def server(tiny_checkpoint: Path) -> Iterator[object]:
    from toolkit.core.limits import RequestLimits
    from toolkit.serve.server import SegmentationServer, ServeConfig

    http, grpc, metrics = free_ports(3)
    config = ServeConfig(model=str(tiny_checkpoint), max_batch=4, instances=2, http_port=http, grpc_port=grpc,
                         metrics_port=metrics, drain_timeout_s=10, limits=RequestLimits(**SMALL_LIMITS_ARGS))
    srv = SegmentationServer(config, runner_factory=lambda: DelayRunner(make_runner(str(tiny_checkpoint))))
    with srv:
        yield srv


@pytest.fixture(scope="module")
def local(tiny_checkpoint: Path) -> Iterator[BaseRunner]:
    with make_runner(str(tiny_checkpoint)) as runner:
        yield runner


def url(srv: object, protocol: str, model: str = "segnet") -> str:
    port = srv.config.http_port if protocol == "http" else srv.config.grpc_port  # type: ignore[attr-defined]
    return f"triton://127.0.0.1:{port}/{model}" + ("?protocol=grpc" if protocol == "grpc" else "")


def counts(srv: object, model: str = "segnet") -> dict[str, float]:
    """Triton's Prometheus counters of one model (the statistics API needs PyTriton's access token)."""
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{srv.config.metrics_port}/metrics", timeout=10) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if line.startswith("nv_inference_") and f'model="{model}"' in line:
            out[line.split("{", 1)[0]] = float(line.rsplit(" ", 1)[1])
    return out


def frames(n: int, h: int = 70, w: int = 100, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_health_readiness_metrics(server: object, protocol: str) -> None:
    from toolkit.backend.triton import client as tc

    u = tc.parse_triton_url(url(server, protocol))
    c = tc.connect(u)
    assert c.is_server_live() and c.is_server_ready()
    assert c.is_model_ready("segnet") and c.is_model_ready("segnet_tensor")
    c.close()
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{server.config.metrics_port}/metrics", timeout=10) as r:
        assert b"nv_inference_request_success" in r.read()


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_frames_bit_for_bit_with_local_backend(server: object, local: BaseRunner, protocol: str) -> None:
    from toolkit.backend.triton import client as tc

    u = tc.parse_triton_url(url(server, protocol))
    c = tc.connect(u)
    meta = local.meta
    for seed, (h, w) in enumerate([(64, 96), (70, 100), (33, 47)]):  # model size, larger, odd: all resized
        img = frames(1, h, w, seed)
        out = tc.infer(c, u, {"image": img}, ["classes", "logits"])
        ref = predict_logits(local, img[0], meta.dataset.mean, meta.dataset.std, meta.input_size)
        assert np.array_equal(out["logits"][0], ref)
        assert np.array_equal(out["classes"][0], ref.argmax(0).astype(np.uint8))
    only = tc.infer(c, u, {"image": frames(1)}, ["classes"])
    assert set(only) == {"classes"} and only["classes"].dtype == np.uint8
    c.close()


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_remote_runner_bit_for_bit(server: object, local: BaseRunner, protocol: str) -> None:
    x = np.random.default_rng(3).standard_normal((6, 3, 64, 96)).astype(np.float32)
    with make_runner(url(server, protocol, "segnet_tensor")) as remote:
        assert remote.meta is not None and remote.meta.to_json() == local.meta.to_json()
        assert remote.max_batch == 4  # a 6-frame batch goes as requests of 4 and 2
        got = remote.infer({"input": x})["logits"]
        ref = np.concatenate([local.infer({"input": x[:4]})["logits"], local.infer({"input": x[4:]})["logits"]])
        assert np.array_equal(got, ref)
        # the whole infer path through the server equals the local one
        img = frames(1, 90, 120, seed=5)[0]
        ds = local.meta.dataset
        assert np.array_equal(predict_logits(remote, img, ds.mean, ds.std, local.meta.input_size),
                              predict_logits(local, img, ds.mean, ds.std, local.meta.input_size))


def test_remote_runner_works_from_worker_threads(server: object, local: BaseRunner) -> None:
    """`infer` activates the runner in one thread and calls it from workers (HTTP clients must not cross)."""
    x = np.random.default_rng(4).standard_normal((1, 3, 64, 96)).astype(np.float32)
    ref = local.infer({"input": x})["logits"]
    with make_runner(url(server, "http", "segnet_tensor")) as remote:
        got: list = []
        workers = [threading.Thread(target=lambda: got.append(remote.infer({"input": x})["logits"])) for _ in range(3)]
        for t in workers:
            t.start()
        for t in workers:
            t.join(30)
        assert len(got) == 3
        for g in got:  # the three may be batched together by Triton: last-bit differences (see the concurrency test)
            # 1e-4: float32 rounding of another accumulation order on logits of magnitude ~10 (~1e-6 each, summed over
            # the layers); a wrong or swapped batch item is off by O(1)
            np.testing.assert_allclose(g, ref, rtol=0, atol=1e-4)


def test_model_config_says_color_order_and_metadata(server: object, local: BaseRunner) -> None:
    from toolkit.backend.triton import client as tc

    u = tc.parse_triton_url(url(server, "http"))
    c = tc.connect(u)
    cfg = c.get_model_config("segnet")
    c.close()  # an open HTTP connection would hold the final stop for the whole drain timeout
    assert cfg["parameters"]["color_order"]["string_value"] == "RGB"
    assert cfg["max_batch_size"] == 4 and "dynamic_batching" in cfg
    assert cfg["instance_group"][0]["count"] == 2
    assert [(i["name"], i["data_type"], i["dims"]) for i in cfg["input"]] == [("image", "TYPE_UINT8", [-1, -1, 3])]
    with pytest.raises(Exception, match="runner needs 'input'.*segnet_tensor"):
        make_runner(url(server, "http", "segnet")).activate()


def test_bad_requests_get_clear_errors_and_server_keeps_serving(server: object, local: BaseRunner) -> None:
    import tritonclient.http as th

    from toolkit.backend.triton import client as tc
    from toolkit.errors import ToolkitError

    u = tc.parse_triton_url(url(server, "http"))
    c = tc.connect(u)

    def raw(inputs: list) -> str:
        with pytest.raises(th.InferenceServerException) as e:
            c.infer("segnet", inputs)
        return tc.error_line(e.value)

    assert "FP32" in raw([tc.make_input("http", "image", np.zeros((1, 8, 8, 3), np.float32))])  # wrong dtype
    assert "shape" in raw([tc.make_input("http", "image", np.zeros((1, 8, 8, 4), np.uint8))]).lower()  # 4 channels
    assert "input" in raw([]).lower()  # empty request: no inputs
    assert "unexpected inference input" in raw([tc.make_input("http", "pixels", np.zeros((1, 8, 8, 3), np.uint8))])
    assert "cannot cast view with zeros" in raw([tc.make_input("http", "image", np.zeros((1, 0, 8, 3), np.uint8))])
    with pytest.raises(ToolkitError, match="is empty; send at least one frame"):  # our client says it first
        tc.infer(c, u, {"image": np.zeros((1, 0, 8, 3), np.uint8)}, ["classes"])
    tu = tc.parse_triton_url(url(server, "http", "segnet_tensor"))
    with pytest.raises(ToolkitError, match="multiples of 8; pad to 64x104"):
        tc.infer(c, tu, {"input": np.zeros((1, 3, 64, 100), np.float32)}, ["logits"])
    # a client that sends half a request body and hangs up
    with socket.create_connection(("127.0.0.1", server.config.http_port), timeout=5) as s:
        s.sendall(b"POST /v2/models/segnet/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 100000\r\n\r\n{\"inputs\": [{\"name\": \"image\", \"shape\": [1, 64")
    # a gRPC client that gives up before the answer
    g = tc.parse_triton_url(url(server, "grpc"))
    server.runners[0].delay = server.runners[1].delay = 1.0
    gc = tc.connect(g)
    try:
        with pytest.raises(ToolkitError, match="Deadline"):
            tc.infer(gc, g, {"image": frames(1)}, ["classes"], timeout_s=0.2)
    finally:
        server.runners[0].delay = server.runners[1].delay = 0.0
        gc.close()
    img = frames(1)
    out = tc.infer(c, u, {"image": img}, ["classes"])  # still serving, same answer
    ds = local.meta.dataset
    ref = predict_logits(local, img[0], ds.mean, ds.std, local.meta.input_size).argmax(0)
    assert np.array_equal(out["classes"][0], ref)
    assert server.is_alive()
    c.close()


def test_concurrent_clients_are_batched_and_answered(server: object, local: BaseRunner) -> None:
    """8 clients at once: all answers right; Triton merged some requests (execution count < request count)."""
    from toolkit.backend.triton import client as tc

    u = tc.parse_triton_url(url(server, "http"))
    imgs = frames(8, 64, 96, seed=9)
    results: dict[int, dict] = {}

    def client(i: int) -> None:
        c = tc.connect(u)
        for _ in range(3):
            results[i] = tc.infer(c, u, {"image": imgs[i:i + 1]}, ["classes", "logits"])
        c.close()

    before = counts(server)
    threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    after = counts(server)
    ds = local.meta.dataset
    for i in range(8):
        ref = predict_logits(local, imgs[i], ds.mean, ds.std, local.meta.input_size)
        # a frame batched with others may differ in the last bits (oneDNN picks kernels per batch size)
        # 1e-4: the same float32 reordering bound as above; a wrong or swapped batch item is off by O(1)
        np.testing.assert_allclose(results[i]["logits"][0], ref, rtol=0, atol=1e-4)
    requests = after["nv_inference_count"] - before["nv_inference_count"]
    executions = after["nv_inference_exec_count"] - before["nv_inference_exec_count"]
    assert requests == 24 and 1 <= executions <= requests


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_oversized_requests_are_refused_naming_the_limit(server: object, local: BaseRunner, protocol: str) -> None:
    """Over each limit: one clear line naming it and its option; the server keeps serving; the limits are in the
    model config, and the triton:// runner refuses a tensor over them without sending it."""
    from toolkit.backend.triton import client as tc
    from toolkit.errors import ToolkitError

    u = tc.parse_triton_url(url(server, protocol))
    c = tc.connect(u)
    k = local.meta.num_classes
    with pytest.raises(ToolkitError, match=r"frame 300x300 \(0\.1 MP\) is over this server's limit .*"
                                           r"\(--max-frame-pixels 65536\)"):
        tc.infer(c, u, {"image": frames(1, 300, 300)}, ["classes"])
    with pytest.raises(ToolkitError, match=r"4 frames of 200x250 .*\(--max-request-pixels 196608\); send at most 3"):
        tc.infer(c, u, {"image": frames(4, 200, 250)}, ["classes"])
    assert 3 * k * 250 * 250 * 4 > 2 * 2**20  # the next request is over the logits limit only
    with pytest.raises(ToolkitError, match=r"\(--max-logits-mb 2\); ask for 'classes' only"):
        tc.infer(c, u, {"image": frames(3, 250, 250)}, ["classes", "logits"])
    out = tc.infer(c, u, {"image": frames(3, 250, 250)}, ["classes"])  # the same frames without logits: served
    assert out["classes"].shape == (3, 250, 250)
    img = frames(1)
    ref = predict_logits(local, img[0], local.meta.dataset.mean, local.meta.dataset.std, local.meta.input_size)
    assert np.array_equal(tc.infer(c, u, {"image": img}, ["classes"])["classes"][0], ref.argmax(0))
    c.close()
    from toolkit.core.limits import RequestLimits

    with make_runner(url(server, protocol, "segnet_tensor")) as remote:
        assert remote.limits == RequestLimits(**SMALL_LIMITS_ARGS)
        failures = counts(server, "segnet_tensor").get("nv_inference_request_failure", 0.0)
        with pytest.raises(ToolkitError, match=r"tensor 264x264 .*\(--max-frame-pixels 65536\)"):
            remote.infer({"input": np.zeros((1, 3, 264, 264), np.float32)})
        assert counts(server, "segnet_tensor").get("nv_inference_request_failure", 0.0) == failures  # never sent
    assert server.is_alive()


def test_stub_runs_with_this_interpreters_libdir_first(server: object) -> None:
    pid = server.tritonserver_pid()
    env = dict(kv.split("=", 1) for kv in Path(f"/proc/{pid}/environ").read_text().split("\0") if "=" in kv)
    assert env["LD_LIBRARY_PATH"].split(os.pathsep)[0] == sysconfig.get_config_var("LIBDIR")


def tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants (here: pytest + tritonserver + stubs)."""
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        try:
            status = Path(f"/proc/{p}/status").read_text()
            total += int(next(ln.split()[1] for ln in status.splitlines() if ln.startswith("VmRSS:"))) / 1024
            todo.extend(int(c) for c in Path(f"/proc/{p}/task/{p}/children").read_text().split())
        except (OSError, StopIteration):
            continue
    return total


@pytest.mark.slow
def test_soak_memory_is_flat(server: object) -> None:
    """1,000 requests, every 10th a bad one: all answered or clearly refused; memory flat after warm-up."""
    from toolkit.backend.triton import client as tc
    from toolkit.errors import ToolkitError

    u, t = (tc.parse_triton_url(url(server, "grpc", m)) for m in ("segnet", "segnet_tensor"))
    c = tc.connect(u)
    img, bad = frames(1, 64, 96), np.zeros((1, 3, 60, 96), np.float32)
    for _ in range(100):
        tc.infer(c, u, {"image": img}, ["classes"])
    before = tree_rss_mb(os.getpid())
    refused = 0
    for i in range(1000):
        if i % 10 == 9:
            with pytest.raises(ToolkitError, match="multiples of 8"):
                tc.infer(c, t, {"input": bad}, ["logits"])
            refused += 1
        else:
            assert tc.infer(c, u, {"image": img}, ["classes"])["classes"].shape == (1, 64, 96)
    growth = tree_rss_mb(os.getpid()) - before
    c.close()
    assert refused == 100 and growth < 30, f"RSS grew {growth:.1f} MB over 1,000 requests"


def test_stop_drains_a_request_in_flight(server: object) -> None:
    """Runs last in this module: stop() while a request executes; the request still gets its answer."""
    from toolkit.backend.triton import client as tc

    u = tc.parse_triton_url(url(server, "grpc"))
    for r in server.runners:
        r.delay = 2.0
        r.entered.clear()
    answer: dict = {}

    def request() -> None:
        try:
            answer["out"] = tc.infer(tc.connect(u), u, {"image": frames(1)}, ["classes"])
        except Exception as e:
            answer["error"] = e

    t = threading.Thread(target=request)
    t.start()
    deadline = time.monotonic() + 20
    while not any(r.entered.is_set() for r in server.runners) and time.monotonic() < deadline:
        time.sleep(0.02)
    started = time.monotonic()
    server.stop()
    t.join(30)
    assert "out" in answer, answer.get("error")
    assert answer["out"]["classes"].shape == (1, 70, 100)
    assert time.monotonic() - started < 30 and not server.is_alive()  # 2 s request + unloading, on a busy machine
