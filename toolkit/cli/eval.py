"""``toolkit eval``: a checkpoint's mIoU, per-class IoU and accuracies on one split, at full label resolution."""

from __future__ import annotations

from pathlib import Path

import typer

from toolkit.cli.common import examples, handle_errors
from toolkit.cli.options import device_option, model_option

# --json's keys, in order; model and dataset say what was scored, as parity's reference and dataset do (issue 25)
JSON_KEYS = ("miou", "per_class_iou", "global_acc", "class_avg_acc", "num_images", "model", "dataset")


@handle_errors
def eval_command(
    checkpoint: str | None = typer.Argument(None, hidden=True, metavar="MODEL", help="The old spelling of --model."),
    model: str | None = model_option("Zoo name or checkpoint (.safetensors), also ONNX/engine; default: the zoo's "
                                     "model for --device."),
    data: str = typer.Option(..., "--data", "-d", help="CamVid-layout folder (or 'synthetic')."),
    split: str = typer.Option("val", "--split", "-s", help="Split (list file name) to evaluate."),
    json_out: Path | None = typer.Option(None, "--json", help="Write the scores as JSON to this file."),
    plots: Path | None = typer.Option(None, "--plots", help="Folder for confusion-matrix and per-class IoU PNGs."),
    device: str = device_option(),
    limit: int | None = typer.Option(None, "--limit", min=1, help="Only the first N images of the split."),
    tta: bool = typer.Option(False, "--tta", help="Also score with test-time augmentation (flips x --tta-scales, "
                             "softmax averaged) as a separate row; the plain score stays the reference."),
    tta_scales: str = typer.Option("0.75,1.0,1.25", "--tta-scales", help="Input scales of --tta (of the model's "
                                   "input size)."),
) -> None:
    """Per-class IoU table, mIoU, global and class-average accuracy (labels at full resolution, void ignored)."""
    from toolkit.cli.common import pick_model
    from toolkit.files import check_writable, refuse_output_over_input, write_json

    resolved = pick_model(checkpoint, model, device)
    refuse_output_over_input(json_out, [resolved.model], "--json")
    check_writable(json_out)
    if plots is not None:
        from toolkit.plots import require_matplotlib

        require_matplotlib()
    from toolkit.evaluate import evaluate_model

    scales = _scales(tta_scales) if tta else ()

    scores, matrix, meta, ds = evaluate_model(str(resolved.model), data, split, device, limit, progress=True)
    names = list(ds.info.class_names)
    full = scores.as_dict(names)
    report = {"miou": full["miou"], "per_class_iou": full["per_class_iou"], "global_acc": full["global_acc"],
              "class_avg_acc": full["class_avg_acc"], "num_images": len(ds),
              "model": _model_record(resolved, meta), "dataset": {"root": str(data), "split": split, "limit": limit,
                                                                  "images": len(ds), "name": ds.info.name}}
    source = resolved.name or str(resolved.model)
    typer.echo(f"{source}: {meta.arch} w={meta.width} input {meta.input_size[0]}x{meta.input_size[1]}, "
               f"{split} ({len(ds)} images)")
    typer.echo(f"{'class':<14}{'IoU':>8}{'acc':>8}")
    for n in names:
        iou, acc = full["per_class_iou"][n], full["per_class_acc"][n]
        typer.echo(f"{n:<14}{'absent' if iou is None else f'{iou:.4f}':>8}{'' if acc is None else f'{acc:.4f}':>8}")
    typer.echo(f"{'mIoU':<14}{scores.miou:>8.4f}\n{'global acc':<14}{scores.global_acc:>8.4f}\n"
               f"{'class avg acc':<14}{scores.class_avg_acc:>8.4f}")
    if tta:
        from toolkit.tta import evaluate_tta

        tta_scores, _ = evaluate_tta(str(resolved.model), data, split, device, limit, scales, progress=True)
        typer.echo(f"{'mIoU (TTA)':<14}{tta_scores.miou:>8.4f}   flips x scales {','.join(map(str, scales))}, "
                   "softmax averaged (not the default; infer/parity are single-scale)")
        tta_full = tta_scores.as_dict(names)
        report["tta"] = {"scales": list(scales), "flip": True, "miou": tta_full["miou"],
                         "per_class_iou": tta_full["per_class_iou"], "global_acc": tta_full["global_acc"],
                         "class_avg_acc": tta_full["class_avg_acc"]}
    if json_out is not None:
        write_json(json_out, report)
    if plots is not None:
        from toolkit.plots import confusion_matrix_png, per_class_iou_png

        confusion_matrix_png(matrix, names, plots / "confusion_matrix.png")
        per_class_iou_png(list(full["per_class_iou"].values()), names, plots / "per_class_iou.png",
                          title=f"Per-class IoU, {split} ({Path(source).name})")


def _scales(text: str) -> tuple[float, ...]:
    from toolkit.errors import InputShapeError
    from toolkit.tta import check_scales

    try:
        return check_scales([float(v) for v in text.split(",")])
    except ValueError:
        raise InputShapeError(f"--tta-scales '{text}': expected comma-separated factors, e.g. 0.75,1.0,1.25") from None


def _model_record(resolved, meta) -> dict:
    """Which model was scored: its zoo name (None for a file), path, sha256 (None for a served model), arch."""
    from toolkit.files import file_sha256

    path = Path(str(resolved.model))
    return {"name": resolved.name or path.name, "zoo": resolved.name is not None, "path": str(resolved.model),
            "sha256": file_sha256(path) if path.is_file() else None, "arch": meta.arch, "width": meta.width,
            "input_size": list(meta.input_size)}


def register(app: typer.Typer) -> None:
    app.command("eval", epilog=examples(
        "toolkit eval --data ../shared/camvid",
        "toolkit eval -m runs/e16/best.safetensors --data ../shared/camvid --split val --json val.json",
        "toolkit eval -m runs/e16/best.safetensors --data ../shared/camvid --plots figures/",
        "toolkit eval -m enhanced-w64 --data ../shared/camvid --tta --tta-scales 0.75,1.0,1.25,1.5",
    ))(eval_command)
