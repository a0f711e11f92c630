"""``toolkit export-triton``: a native Triton model repository (ONNX Runtime and TensorRT backends)."""

from __future__ import annotations

from enum import Enum

import typer

from toolkit.cli.common import examples, handle_errors
from toolkit.cli.options import output_option, plugin_option
from toolkit.core import defaults


class Kind(str, Enum):
    cpu = "cpu"
    gpu = "gpu"


@handle_errors
def export_triton(
    models: list[str] = typer.Argument(..., help="ONNX files (.onnx) and TensorRT engines (.engine/.plan)."),
    output: str = output_option("Repository folder (created; one sub-folder per model).", default=...),
    name: str = typer.Option(defaults.SERVE_NAME, "--name", help="Model name prefix: NAME_onnx, NAME_trt."),
    max_batch: int = typer.Option(defaults.SERVE_MAX_BATCH, "--max-batch", min=1,
                                  help="max_batch_size where the batch dimension is dynamic."),
    instances: int = typer.Option(defaults.SERVE_INSTANCES, "--instances", min=1,
                                  help="Instances per model (instance_group count)."),
    dynamic_batching: bool = typer.Option(True, "--dynamic-batching/--no-dynamic-batching",
                                          help="Write a dynamic_batching block."),
    max_queue_delay_us: int = typer.Option(defaults.SERVE_MAX_QUEUE_DELAY_US, "--max-queue-delay-us", min=0,
                                           help="Batcher queue delay in microseconds."),
    device: Kind = typer.Option(Kind.cpu, "--device", help="Instance kind of the ONNX models (engines are GPU)."),
    plugin: str | None = plugin_option("TensorRT plugin library to copy into REPO/plugins/."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace model folders that exist."),
) -> None:
    """Write a Triton model repository: config.pbtxt (from the model's own tensors and metadata), labels.txt and
    version folder 1/ per model; check each config with Triton's protobuf when tritonclient is installed."""
    from toolkit.serve.triton_repo import parse_config, plan_models, write_repository

    planned = plan_models(models, name=name, max_batch=max_batch, device=device.value, plugin_lib=plugin)
    try:
        import tritonclient.grpc.model_config_pb2  # noqa: F401

        check, checked = parse_config, " (configs parsed with Triton's model_config protobuf)"
    except ImportError:
        check, checked = None, " (configs not checked: tritonclient[grpc] is not installed)"
    # each config is parsed before its folder is put in place: a failed check leaves no repository behind
    configs = write_repository(planned, output, instances=instances, dynamic_batching=dynamic_batching,
                               max_queue_delay_us=max_queue_delay_us, overwrite=overwrite, check=check)
    for m, c in zip(planned, configs, strict=True):
        typer.echo(f"{m.name}: {m.platform} -> {c.parent}")
    typer.echo(f"repository {output}{checked}; serve it with: tritonserver --model-repository={output}")
    if any(m.platform == "tensorrt_plan" for m in planned):
        typer.echo(f"TensorRT models need the unpool plugin loaded: LD_PRELOAD={output}/plugins/<lib>.so tritonserver "
                   "... (see docs/SERVING.md)")


def register(app: typer.Typer) -> None:
    app.command(name="export-triton", epilog=examples(
        "toolkit export-triton model.onnx -o triton_repo",
        "toolkit export-triton model.onnx model_fp16.engine --plugin engines/build/libsegnet_plugins.so -o repo",
        "toolkit export-triton model.onnx -o repo --max-batch 16 --instances 2 --device gpu",
    ))(export_triton)
