"""``toolkit serve``: any runner behind Triton Inference Server, through PyTriton.

PyTriton starts the real ``tritonserver`` binary (HTTP, gRPC, Prometheus metrics, dynamic batching,
model instances) and forwards each batch to a Python callable in this process; that callable is a
``SegmentationHandler`` around a runner from ``toolkit.backend.make_runner``, so every backend the toolkit
has (PyTorch, ONNX Runtime, TensorRT) serves the same way.

Two models are bound (see handler.py): ``NAME`` takes uint8 frames, ``NAME_tensor`` takes the
normalised float tensor of the exported ONNX model. Their config carries ``color_order`` and the
model's metadata (``toolkit_meta``, JSON) as parameters, which the remote runner reads.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import sys
import sysconfig
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from toolkit.backend.base import BaseRunner
from toolkit.backend.triton.client import INSTALL_HINT
from toolkit.core import defaults
from toolkit.core.limits import LIMITS_PARAM, RequestLimits
from toolkit.core.names import INPUT_NAME, OUTPUT_NAME
from toolkit.errors import ToolkitError
from toolkit.serve.handler import CLASSES_NAME, IMAGE_NAME, SegmentationHandler

log = logging.getLogger(__name__)

TENSOR_SUFFIX = "_tensor"
META_PARAM = "toolkit_meta"
COLOR_PARAM = "color_order"
# error lines tritonserver logs on every CPU-only start under PyTriton; not the reason for a failure
BENIGN_LOG_LINES = ("config modification time", "NVML", "DCGM", "GPU metrics")


@dataclass
class ServeConfig:
    """Everything ``toolkit serve`` takes; defaults are Triton's usual ports on the loopback address."""

    model: str | None = None
    name: str = defaults.SERVE_NAME
    max_batch: int = defaults.SERVE_MAX_BATCH
    instances: int = defaults.SERVE_INSTANCES
    dynamic_batching: bool = True
    max_queue_delay_us: int = defaults.SERVE_MAX_QUEUE_DELAY_US
    host: str = defaults.SERVE_HOST
    http_port: int = defaults.SERVE_HTTP_PORT
    grpc_port: int = defaults.SERVE_GRPC_PORT
    metrics_port: int = defaults.SERVE_METRICS_PORT
    color: str = "rgb"
    device: str = "cpu"
    precision: str | None = None  # PyTorch checkpoints: None (fp32), auto, fp32, fp16, bf16
    drain_timeout_s: int = defaults.SERVE_DRAIN_TIMEOUT_S
    verbose: bool = False
    threads: int | None = None  # intra-op threads per runner (None: the backend's default)
    runner_batch: int | None = None  # frames per runner call within a Triton batch (None: max_batch)
    limits: RequestLimits = field(default_factory=RequestLimits)  # largest frame / request / logits accepted
    runner_kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def tensor_name(self) -> str:
        return self.name + TENSOR_SUFFIX

    def ports(self) -> dict[str, int]:
        return {"http": self.http_port, "grpc": self.grpc_port, "metrics": self.metrics_port}


def require_pytriton() -> None:
    """One clear line when PyTriton is not installed (or cannot load on this platform)."""
    try:
        import pytriton.triton  # noqa: F401
    except ImportError as e:
        raise ToolkitError(f"toolkit serve needs PyTriton, which is not importable here ({e}); {INSTALL_HINT}; "
                           "PyTriton ships Linux x86-64/arm64 wheels with glibc >= 2.35 only") from None


def stub_library_path(environ: Mapping[str, str] | None = None) -> str:
    """LD_LIBRARY_PATH with this interpreter's own lib dir first.

    Triton's Python-backend stub (which runs PyTriton's proxy model) links to ``libpython3.X.so`` and
    finds whichever one the loader sees first. When that is the system's library but the interpreter
    is another build (pyenv, conda), the stub runs this interpreter's stdlib on a foreign libpython and
    every request fails (``'_thread.RLock' object has no attribute '_recursion_count'`` on 3.11.7).
    """
    environ = os.environ if environ is None else environ
    libdir = sysconfig.get_config_var("LIBDIR") or os.path.join(sys.base_prefix, "lib")
    rest = [p for p in environ.get("LD_LIBRARY_PATH", "").split(os.pathsep) if p and p != libdir]
    return os.pathsep.join([libdir, *rest])


def child_environment(triton: Any, change: Callable[[dict[str, str]], dict[str, str]]) -> None:
    """Give tritonserver (and the Python-backend stubs it forks, which inherit its environment) the
    environment ``change(env)`` makes of the one PyTriton prepares; this process's own stays as it is.

    PyTriton 0.7 has no public field for this: ``Triton.run`` creates a ``TritonServer`` (in
    ``_initialize_server``) whose ``_get_env`` copies ``os.environ`` (plus its own libs dir) for the child.
    """
    def wrap(server: Any) -> None:
        prepare = server._get_env
        server._get_env = lambda: change(prepare())

    if getattr(triton, "_triton_server", None) is not None:  # PyTriton versions that create it up front
        wrap(triton._triton_server)
        return
    initialize = triton._initialize_server

    def initialize_then_wrap() -> None:
        initialize()
        wrap(triton._triton_server)

    triton._initialize_server = initialize_then_wrap


def check_ports_free(host: str, ports: Mapping[str, int]) -> None:
    """Fail early, in one line, when a port is taken (tritonserver would only log it and exit)."""
    if len(set(ports.values())) != len(ports):
        raise ToolkitError(f"ports must differ: {', '.join(f'{k} {v}' for k, v in ports.items())}")
    for kind, port in ports.items():
        if not 0 < port < 65536:
            raise ToolkitError(f"{kind} port {port}: expected 1..65535")
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((host, port))
            except OSError as e:
                raise ToolkitError(f"{kind} port {port} on {host} is not free ({e.strerror}); pick another with "
                                   f"--{kind}-port or stop the process that holds it") from None


class SegmentationServer:
    """Start Triton with the frame and tensor models bound; a context manager that stops it (draining)."""

    def __init__(self, config: ServeConfig, runner_factory: Callable[[], BaseRunner] | None = None) -> None:
        self.config = config
        self._runner_factory = runner_factory
        self.runners: list[BaseRunner] = []
        self.triton: Any = None
        self.log_dir: Path | None = None

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self) -> SegmentationServer:
        cfg = self.config
        require_pytriton()
        if cfg.instances < 1 or cfg.max_batch < 1 or (cfg.runner_batch is not None and cfg.runner_batch < 1):
            raise ToolkitError(f"--instances {cfg.instances}, --max-batch {cfg.max_batch} and --runner-batch "
                               f"{cfg.runner_batch}: each must be >= 1")
        check_ports_free(cfg.host, cfg.ports())
        handlers = self._make_handlers()
        # PyTriton 0.7 races when several instances start under load: the second instance's stub may connect
        # to the first one's handshake socket before it listens (ConnectionRefusedError in initialize).
        attempts = 3 if cfg.instances > 1 else 1
        for attempt in range(1, attempts + 1):
            try:
                self._launch(handlers)
                break
            except Exception as e:
                from toolkit.backend.triton.client import error_line

                logs, reason = self._server_logs(), error_line(e)
                self._stop_triton()
                if attempt < attempts and "handshake" in str(e):
                    log.warning("Triton start failed on PyTriton's instance handshake race; retrying (%d/%d)",
                                attempt + 1, attempts)
                    continue
                self.stop()
                raise ToolkitError(f"Triton did not start: {reason}{logs}") from None
        log.info("serving %s (frames) and %s (tensors): http %s:%d, grpc %s:%d, metrics %s:%d", cfg.name,
                 cfg.tensor_name, cfg.host, cfg.http_port, cfg.host, cfg.grpc_port, cfg.host, cfg.metrics_port)
        return self

    def _launch(self, handlers: list[SegmentationHandler]) -> None:
        """Create the Triton object, bind both models, start tritonserver and wait until they are ready."""
        from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor
        from pytriton.triton import Triton, TritonConfig

        cfg = self.config
        # tritonserver's own log goes to a file (PyTriton would print it and keep it all in memory)
        self.log_dir = Path(tempfile.mkdtemp(prefix="toolkit-serve-"))
        triton_config = TritonConfig(
            http_address=cfg.host, http_port=cfg.http_port, grpc_address=cfg.host, grpc_port=cfg.grpc_port,
            metrics_address=cfg.host, metrics_port=cfg.metrics_port, exit_timeout_secs=cfg.drain_timeout_s,
            log_verbose=1 if cfg.verbose else 0, strict_readiness=True,
            log_file=None if cfg.verbose else self.log_dir / "tritonserver.log", allow_http=False)
        warnings.filterwarnings("ignore", message=".*doesn't support timeout", module="pytriton")
        self.triton = Triton(config=triton_config)
        child_environment(self.triton, lambda env: {**env, "LD_LIBRARY_PATH": stub_library_path(env)})
        # PyTriton loads the models through HTTP when HTTP is on; the stub processes Triton forks meanwhile
        # inherit those connections, and on shutdown Triton then waits the whole exit timeout for them.
        # Created with HTTP off, PyTriton talks gRPC; HTTP is switched back on before the server starts.
        self.triton._triton_server_config["allow-http"] = True
        batcher = DynamicBatcher(max_queue_delay_microseconds=cfg.max_queue_delay_us) if cfg.dynamic_batching else None
        model_config = ModelConfig(batching=True, max_batch_size=cfg.max_batch, batcher=batcher)
        k = handlers[0].meta.num_classes
        self.triton.bind(
            model_name=cfg.name, infer_func=[_frames_fn(h) for h in handlers],
            inputs=[Tensor(name=IMAGE_NAME, dtype=np.uint8, shape=(-1, -1, 3))],
            outputs=[Tensor(name=CLASSES_NAME, dtype=np.uint8, shape=(-1, -1)),
                     Tensor(name=OUTPUT_NAME, dtype=np.float32, shape=(k, -1, -1))],
            config=model_config)
        self.triton.bind(
            model_name=cfg.tensor_name, infer_func=[_tensors_fn(h) for h in handlers],
            inputs=[Tensor(name=INPUT_NAME, dtype=np.float32, shape=(3, -1, -1))],
            outputs=[Tensor(name=OUTPUT_NAME, dtype=np.float32, shape=(k, -1, -1))],
            config=model_config)
        self._add_parameters(handlers[0])
        self.triton.run()

    def _stop_triton(self) -> None:
        if self.triton is not None:
            self.triton.stop()
            self.triton = None
        if self.log_dir is not None:
            shutil.rmtree(self.log_dir, ignore_errors=True)
            self.log_dir = None

    def stop(self) -> None:
        """Stop Triton: it refuses new work, finishes accepted requests (up to drain_timeout_s), then exits."""
        self._stop_triton()
        for r in self.runners:
            r.deactivate()
        self.runners = []

    def __enter__(self) -> SegmentationServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def is_alive(self) -> bool:
        return self.triton is not None and self.triton.is_alive()

    def tritonserver_pid(self) -> int | None:
        """Process id of the tritonserver child (for checks of its environment and memory)."""
        server = getattr(self.triton, "_triton_server", None)
        cmd = getattr(server, "_tritonserver_running_cmd", None)
        return getattr(cmd, "pid", None)

    # -- internals --------------------------------------------------------------------------------
    def _make_handlers(self) -> list[SegmentationHandler]:
        from toolkit.backend import make_runner

        cfg = self.config
        factory = self._runner_factory or (lambda: make_runner(cfg.model, device=cfg.device, threads=cfg.threads,
                                                               precision=cfg.precision, **cfg.runner_kwargs))
        handlers = []
        for _ in range(cfg.instances):  # one runner per instance: TensorRT contexts are not shareable
            runner = factory().activate()
            self.runners.append(runner)
            if runner.meta is None:
                self.stop()
                raise ToolkitError(f"{cfg.model}: the model carries no metadata (classes, mean/std, input size); "
                                   "serve a toolkit checkpoint or an ONNX file exported by `toolkit export`")
            handlers.append(SegmentationHandler(runner, runner.meta, cfg.color, cfg.runner_batch or cfg.max_batch,
                                                cfg.limits))
        return handlers

    def _add_parameters(self, handler: SegmentationHandler) -> None:
        """Put color order, metadata and request limits into both models' config.pbtxt ``parameters`` (read by
        clients).

        PyTriton 0.7 has no public field for this; its per-model config object keeps a
        ``backend_parameters`` dict that it writes out as ``parameters``.
        """
        params = {COLOR_PARAM: handler.color.upper(), META_PARAM: handler.meta.to_json(),
                  LIMITS_PARAM: handler.limits.to_json()}
        for model in self.triton._model_manager.models:
            model._get_triton_model_config().backend_parameters.update(params)

    def server_log(self) -> str:
        """tritonserver's log so far (empty with --verbose, where it goes to stdout)."""
        path = self.log_dir / "tritonserver.log" if self.log_dir else None
        return path.read_text(errors="replace") if path is not None and path.is_file() else ""

    def _server_logs(self) -> str:
        text = self.server_log()
        errors = [ln.split("] ", 1)[-1].strip() for ln in text.splitlines() if ln.startswith("E")
                  and not any(benign in ln for benign in BENIGN_LOG_LINES)]
        return f"; tritonserver says: {errors[-1][:300]}" if errors else ""


def _wants_logits(request: Any) -> bool:
    names = getattr(request, "requested_output_names", None)
    return OUTPUT_NAME in names if names is not None else True


def _frames_fn(handler: SegmentationHandler) -> Callable[[list[Any]], list[dict[str, np.ndarray]]]:
    def infer_frames(requests: list[Any]) -> list[dict[str, np.ndarray]]:
        return handler.infer_frames([r[IMAGE_NAME] for r in requests], [_wants_logits(r) for r in requests])

    return infer_frames


def _tensors_fn(handler: SegmentationHandler) -> Callable[[list[Any]], list[dict[str, np.ndarray]]]:
    def infer_tensors(requests: list[Any]) -> list[dict[str, np.ndarray]]:
        return handler.infer_tensors([r[INPUT_NAME] for r in requests])

    return infer_tensors


def serve_forever(config: ServeConfig, on_ready: Callable[[SegmentationServer], None] | None = None) -> None:
    """Serve until SIGTERM or Ctrl-C, then drain and stop; returns normally after a clean stop."""
    stop = threading.Event()
    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}

    def _on_signal(signum: int, _frame: object) -> None:
        log.info("%s received: finishing accepted requests (up to %d s), then stopping",
                 signal.Signals(signum).name, config.drain_timeout_s)
        stop.set()

    for s in previous:
        signal.signal(s, _on_signal)
    try:
        with SegmentationServer(config) as server:
            if on_ready is not None:
                on_ready(server)
            while not stop.wait(0.5):
                if not server.is_alive():
                    raise ToolkitError("tritonserver exited unexpectedly" + server._server_logs())
            started = time.monotonic()
        log.info("Triton stopped in %.1f s", time.monotonic() - started)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
