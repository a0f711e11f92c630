"""``toolkit serve``: the model behind Triton Inference Server (through PyTriton), HTTP + gRPC + metrics."""

from __future__ import annotations

from enum import Enum

import typer

from toolkit.cli.common import examples, handle_errors
from toolkit.cli.options import device_option, run_precision_option
from toolkit.core import defaults
from toolkit.core.limits import RequestLimits


class ColorOrder(str, Enum):
    rgb = "rgb"
    bgr = "bgr"


@handle_errors
def serve(
    model: str | None = typer.Option(None, "--model", "-m",
                                     help="Zoo name or model file (.safetensors, .onnx, .engine, .pt2); none: "
                                          "the zoo's model for --device."),
    name: str = typer.Option(defaults.SERVE_NAME, "--name",
                             help="Model name on the server (frames); NAME_tensor takes tensors."),
    max_batch: int = typer.Option(defaults.SERVE_MAX_BATCH, "--max-batch", min=1,
                                   help="Largest batch one model call runs (Triton max_batch_size)."),
    runner_batch: int | None = typer.Option(
        None, "--runner-batch", min=1, help="Frames per model call inside a Triton batch (default: --max-batch); 1 "
        "suits backends that get slower per frame with batch size, as PyTorch/ONNX Runtime on CPU do here."),
    instances: int = typer.Option(defaults.SERVE_INSTANCES, "--instances", min=1,
                                   help="Model instances (one runner each) serving in parallel."),
    dynamic_batching: bool = typer.Option(True, "--dynamic-batching/--no-dynamic-batching",
                                          help="Let Triton merge concurrent requests into one batch."),
    max_queue_delay_us: int = typer.Option(defaults.SERVE_MAX_QUEUE_DELAY_US, "--max-queue-delay-us", min=0,
                                           help="How long the batcher may hold a request to fill a batch."),
    host: str = typer.Option(defaults.SERVE_HOST, "--host", help="Address to listen on (0.0.0.0 for all interfaces)."),
    http_port: int = typer.Option(defaults.SERVE_HTTP_PORT, "--http-port", min=1, max=65535,
                                  help="HTTP/REST port (KServe v2 protocol)."),
    grpc_port: int = typer.Option(defaults.SERVE_GRPC_PORT, "--grpc-port", min=1, max=65535, help="gRPC port."),
    metrics_port: int = typer.Option(defaults.SERVE_METRICS_PORT, "--metrics-port", min=1, max=65535,
                                     help="Prometheus metrics port."),
    color: ColorOrder = typer.Option(ColorOrder.rgb, "--color", help="Channel order of the uint8 frames clients send."),
    device: str = device_option(help="Device for PyTorch/ONNX Runtime models."),
    precision: str = run_precision_option(),
    threads: int | None = typer.Option(None, "--threads", min=1,
                                       help="Intra-op threads per instance (PyTorch/ONNX Runtime); default: theirs."),
    max_frame_pixels: int = typer.Option(
        RequestLimits.max_frame_pixels, "--max-frame-pixels",
        help="Largest frame accepted, H x W pixels (default: 3840x2160); larger ones are refused before any work."),
    max_request_pixels: int = typer.Option(
        RequestLimits.max_request_pixels, "--max-request-pixels",
        help="Largest request accepted, N x H x W pixels over its frames (default: four 3840x2160 frames)."),
    max_logits_mb: float = typer.Option(
        RequestLimits.max_logits_mb, "--max-logits-mb",
        help="Largest logits tensor one request may ask for, MiB (N x K x H x W float32); class maps are not "
             "limited by it."),
    drain_timeout: int = typer.Option(defaults.SERVE_DRAIN_TIMEOUT_S, "--drain-timeout", min=0,
                                      help="Seconds SIGTERM/Ctrl-C waits for accepted requests before exiting."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Print tritonserver's own log."),
) -> None:
    """Serve a model on Triton: NAME takes uint8 frames (N x H x W x 3) and returns class maps (and logits on
    request); NAME_tensor takes the normalised N x 3 x H x W tensor. Requests over --max-frame-pixels,
    --max-request-pixels or --max-logits-mb are refused with a message naming the limit. Stops cleanly on
    SIGTERM or Ctrl-C."""
    from toolkit.serve.server import ServeConfig, require_pytriton, serve_forever

    limits = RequestLimits(max_frame_pixels, max_request_pixels, max_logits_mb)  # cheap checks first
    require_pytriton()
    from toolkit.cli.common import pick_model

    resolved = pick_model(None, None if model in (None, "", "default") else model, device).model
    config = ServeConfig(model=str(resolved), name=name, max_batch=max_batch,
                         instances=instances, dynamic_batching=dynamic_batching,
                         max_queue_delay_us=max_queue_delay_us, host=host, http_port=http_port, grpc_port=grpc_port,
                         metrics_port=metrics_port, color=color.value, device=device, precision=precision,
                         drain_timeout_s=drain_timeout,
                         threads=threads, runner_batch=runner_batch,
                         limits=limits,
                         verbose=verbose)

    if not verbose:  # PyTriton's per-model INFO lines; ours say where the server is
        import logging

        logging.getLogger("pytriton").setLevel(logging.WARNING)

    def ready(_server: object) -> None:
        typer.echo(f"ready: http://{host}:{http_port} grpc {host}:{grpc_port} metrics "
                   f"http://{host}:{metrics_port}/metrics; models '{name}' (frames) and '{name}_tensor' "
                   f"(remote runner: triton://{host}:{http_port}/{name}_tensor)", err=True)

    serve_forever(config, on_ready=ready)
    typer.echo("stopped", err=True)


def register(app: typer.Typer) -> None:
    app.command(epilog=examples(
        "toolkit serve",
        "toolkit serve --model model.onnx --max-batch 8 --instances 2 --http-port 8000",
        "toolkit serve --model model.safetensors --color bgr --no-dynamic-batching --host 0.0.0.0",
        "toolkit serve --max-frame-pixels 2073600 --max-request-pixels 8294400 --max-logits-mb 64",
    ))(serve)
