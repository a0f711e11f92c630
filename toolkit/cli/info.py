"""``toolkit info``: versions, hardware, and a model's parameters and FLOPs."""

from __future__ import annotations

import json

import typer

from toolkit.cli.common import examples, handle_errors, parse_shape
from toolkit.cli.options import input_shape_option


@handle_errors
def info(
    model: str | None = typer.Option(None, "--model", "-m", help="Zoo model (sized at its own width and input "
                                     "size) or architecture name (enhanced, segnet) to size."),
    width: int = typer.Option(64, min=1, help="Base width w of the architecture."),
    num_classes: int = typer.Option(11, min=1, help="Number of classes of the classifier."),
    input_shape: str = input_shape_option(help="Shape NxCxHxW for the FLOP count."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of text."),
) -> None:
    """Report library versions, GPU and CPU features; with --model, parameter count and FLOPs per frame."""
    from toolkit.backend.trt.compat import tensorrt_status
    from toolkit.sysinfo import system_info
    from toolkit.zoo import default_zoo_model, describe, get_zoo_model, zoo_names

    report: dict = {"system": system_info()}
    report["system"]["tensorrt"] = tensorrt_status()  # whether it imports, not only whether a wheel is there
    here = default_zoo_model("cuda" if report["system"]["cuda_available"] else "cpu")
    report["default_model"] = {"name": here.name, "why": "a CUDA GPU is visible to PyTorch" if here.default_on
                               == "cuda" else "no CUDA GPU visible to PyTorch: the CPU model"}
    if model in zoo_names():
        report["model"] = describe(get_zoo_model(model))
    elif model is not None:
        from toolkit.models import create_model
        from toolkit.models.complexity import count_conv_macs, count_parameters
        from toolkit.models.segnet import check_input_hw

        shape = parse_shape(input_shape)
        if len(shape) != 4:
            raise typer.BadParameter("--input-shape must be NxCxHxW")
        net = create_model(model, num_classes=num_classes, width=width, unpool="mask").eval()
        check_input_hw(shape[2], shape[3], net.output_stride)
        macs = count_conv_macs(net, shape)
        report["model"] = {"name": model, "width": width, "num_classes": num_classes,
                           "input_shape": list(shape), "params": count_parameters(net),
                           "macs": macs, "flops": 2 * macs, "gflops": round(2 * macs / 1e9, 3)}
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    s = report["system"]
    flags = ", ".join(k for k, v in s["cpu_flags"].items() if v) or "none detected"
    for key in ("toolkit", "python", "torch", "onnx", "onnxruntime", "tensorrt"):
        typer.echo(f"{key:<13}{s[key]}")
    typer.echo(f"{'cuda':<13}{', '.join(s['gpus']) if s['cuda_available'] else 'no GPU'}")
    typer.echo(f"{'cpu':<13}{s['cpu']} ({s['cpu_threads']} threads); {flags}")
    d = report["default_model"]
    typer.echo(f"{'default':<13}{d['name']} ({d['why']}; `toolkit models` lists the zoo)")
    if "model" in report:
        m = report["model"]
        shape = m.get("input_shape") or [1, 3, *m["input_size"]]
        typer.echo(f"{'model':<13}{m['name']} w={m['width']} classes={m.get('num_classes', len(m.get('classes', [])))}"
                   f": {m['params'] / 1e6:.3f} M params, {m['gflops']:.2f} GFLOPs per "
                   f"{'x'.join(map(str, shape))} frame")


def register(app: typer.Typer) -> None:
    app.command(epilog=examples("toolkit info", "toolkit info --model enhanced-w64",
                                "toolkit info --model segnet --width 32 --input-shape 1x3x180x240 --json"))(info)
