"""``toolkit export``: checkpoint -> checked ONNX in one of three unpooling lowerings, with metadata."""

from __future__ import annotations

from pathlib import Path

import typer

from toolkit.cli.common import examples, handle_errors
from toolkit.cli.options import model_option, output_option, unpool_option


@handle_errors
def export(
    checkpoint: str | None = typer.Argument(None, hidden=True, metavar="MODEL", help="The old spelling of --model."),
    model: str | None = model_option("Zoo name or checkpoint (.safetensors); default: the zoo's CPU model."),
    output: Path = output_option("ONNX file to write.", default=...),
    unpool: str = unpool_option(help="Unpooling lowering: maxunpool (ONNX Runtime only), mask (TensorRT, no "
                                "plugin), plugin (one SegNetMaskUnpool node per unpooling, TensorRT plugin)."),
    opset: int = typer.Option(18, help="ONNX opset (18 or newer)."),
    dynamic: str = typer.Option("batch,hw", help="Dynamic axes: batch, hw, both (batch,hw) or none."),
    no_simplify: bool = typer.Option(False, "--no-simplify", help="Skip onnxslim simplification."),
    verify: bool = typer.Option(True, help="Run the ONNX file in ONNX Runtime and compare with PyTorch on one "
                                "random input."),
) -> None:
    """Export to ONNX: checker, shape inference, onnxslim, and the model's metadata (classes, palette,
    mean/std, input size, lowering, source hash) in metadata_props so later commands need no flags."""
    from toolkit.cli.common import pick_model
    from toolkit.core.onnx_file import op_counts, save_onnx
    from toolkit.export import export_checkpoint
    from toolkit.files import check_writable, refuse_output_over_input

    ckpt = Path(pick_model(checkpoint, model, "cpu").model)
    refuse_output_over_input(output, [ckpt], "--output")
    check_writable(output)
    onnx_model = export_checkpoint(ckpt, unpool=unpool, opset=opset, dynamic=dynamic.split(","),
                                   do_simplify=not no_simplify)
    save_onnx(onnx_model, output)
    ops = op_counts(onnx_model)
    typer.echo(f"wrote {output} ({output.stat().st_size / 1e6:.2f} MB, {unpool}, opset {opset}, "
               f"{sum(ops.values())} nodes: {', '.join(f'{k} {v}' for k, v in ops.most_common(6))})")
    if verify:
        diff, agree = _verify(ckpt, output)
        typer.echo(f"verified in ONNX Runtime vs PyTorch on one random input: max |logit diff| {diff:.2e}, "
                   f"argmax agreement {100 * agree:.3f} %")


def _verify(checkpoint: Path | None, onnx_path: Path) -> tuple[float, float]:
    """Max |logit diff| and argmax agreement of the file vs the checkpoint on one seeded input."""
    import numpy as np

    from toolkit.backend import make_runner
    from toolkit.core.shapes import pad_to_multiple

    with make_runner(checkpoint) as ref, make_runner(onnx_path) as cand:
        assert ref.meta is not None  # a checkpoint always carries its metadata
        h, w = pad_to_multiple(*ref.meta.input_size)
        x = np.random.default_rng(0).normal(size=(1, 3, h, w)).astype(np.float32)
        a, b = ref.infer({"input": x})["logits"], cand.infer({"input": x})["logits"]
    return float(np.abs(a - b).max()), float((a.argmax(1) == b.argmax(1)).mean())


def register(app: typer.Typer) -> None:
    app.command(epilog=examples(
        "toolkit export -o segnet_mask.onnx",
        "toolkit export -m runs/best.safetensors -o segnet_plugin.onnx --unpool plugin",
        "toolkit export -o segnet_static.onnx --unpool maxunpool --dynamic none",
    ))(export)
