"""``toolkit export``: checkpoint -> checked ONNX in one of three unpooling lowerings, with metadata."""

from __future__ import annotations

from pathlib import Path

import typer

from toolkit.cli.common import examples, handle_errors
from toolkit.cli.options import model_option, output_option, unpool_option
from toolkit.core import defaults


@handle_errors
def export(
    checkpoint: str | None = typer.Argument(None, hidden=True, metavar="MODEL", help="The old spelling of --model."),
    model: str | None = model_option("Zoo name or checkpoint (.safetensors); default: the zoo's CPU model."),
    output: Path = output_option("ONNX file to write.", default=...),
    unpool: str = unpool_option(help="Unpooling lowering: maxunpool (ONNX Runtime only), mask (TensorRT, no "
                                "plugin), plugin (one SegNetMaskUnpool node per unpooling, TensorRT plugin)."),
    opset: int = typer.Option(defaults.ONNX_OPSET, help="ONNX opset: 18 up to the newest the installed onnx "
                              "package knows (another value is refused, naming the range)."),
    dynamic: str = typer.Option("batch,hw", help="Dynamic axes: batch, hw, both (batch,hw) or none."),
    no_simplify: bool = typer.Option(False, "--no-simplify", help="Skip onnxslim simplification."),
    verify: bool = typer.Option(True, help="Run the ONNX file in ONNX Runtime and compare with PyTorch on one "
                                "random input."),
) -> None:
    """Export to ONNX: checker, shape inference, onnxslim, and the model's metadata (classes, palette,
    mean/std, input size, lowering, source hash) in metadata_props so later commands need no flags."""
    from toolkit.cli.common import pick_model
    from toolkit.core.onnx_file import op_counts
    from toolkit.export import export_file
    from toolkit.export.onnx_export import check_opset
    from toolkit.files import check_writable, refuse_output_over_input

    check_opset(opset)  # before the model loads
    ckpt = Path(pick_model(checkpoint, model, "cpu").model)
    refuse_output_over_input(output, [ckpt], "--output")
    check_writable(output)
    onnx_model = export_file(ckpt, output, unpool=unpool, opset=opset, dynamic=dynamic.split(","),
                             do_simplify=not no_simplify)
    from toolkit.export.onnx_export import written_opset

    ops = op_counts(onnx_model)
    typer.echo(f"wrote {output} ({output.stat().st_size / 1e6:.2f} MB, {unpool}, opset {written_opset(onnx_model)}, "
               f"{sum(ops.values())} nodes: {', '.join(f'{k} {v}' for k, v in ops.most_common(6))})")
    if verify:
        from toolkit.compare.spot_check import spot_check

        check = spot_check(ckpt, output)
        typer.echo(f"verified in ONNX Runtime vs PyTorch on one random input: max |logit diff| "
                   f"{check.max_abs_logit_diff:.2e}, argmax agreement {100 * check.argmax_agreement:.3f} %")


def register(app: typer.Typer) -> None:
    app.command(epilog=examples(
        "toolkit export -o segnet_mask.onnx",
        "toolkit export -m runs/best.safetensors -o segnet_plugin.onnx --unpool plugin",
        "toolkit export -o segnet_static.onnx --unpool maxunpool --dynamic none",
    ))(export)
