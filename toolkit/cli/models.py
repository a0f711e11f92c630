"""``toolkit models``: the model zoo, the trained checkpoints shipped inside the package."""

from __future__ import annotations

import json

import typer

from toolkit.cli.common import examples, handle_errors


@handle_errors
def models(
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list of objects (name, arch, width, ...)."),
    verify: bool = typer.Option(False, "--verify", help="Also check every file: present, its sha256 recomputed "
                                "and compared with zoo.json's, and its weights loaded into its architecture "
                                "(a safetensors read, no pickle); one line per model says what held."),
) -> None:
    """List the shipped models: architecture, width, input size, parameters, GFLOPs, val mIoU, size, sha256,
    where each is the default and where its numbers come from. Any command's --model takes these names."""
    from toolkit.sysinfo import cuda_available
    from toolkit.zoo import default_zoo_model, describe, list_zoo

    rows = [describe(e) for e in list_zoo()]
    verified = [_verify(e) for e in list_zoo()] if verify else []
    if as_json and verify:
        for row, line in zip(rows, verified, strict=True):
            row["verified"] = line
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    header = f"{'name':<16}{'arch':<10}{'w':>4}  {'input':<9}{'params':>8}{'GFLOPs':>8}{'val mIoU':>10}{'MB':>6}  " \
             f"{'weights':<9}{'sha256':<14}default on"
    typer.echo(header)
    for r in rows:
        miou = "-" if r["val_miou"] is None else f"{r['val_miou']:.3f}"
        typer.echo(f"{r['name']:<16}{r['arch']:<10}{r['width']:>4}  {'x'.join(map(str, r['input_size'])):<9}"
                   f"{r['params'] / 1e6:>7.2f}M{r['gflops']:>8.2f}{miou:>10}{r['size_mb']:>6.1f}  "
                   f"{r['weights_dtype'].replace('float', 'fp'):<9}{r['sha256'][:12]:<14}{r['default_on'] or ''}")
    for r in rows:
        typer.echo(f"\n{r['name']}: {r['summary']}\n  trained: {r['trained']}\n  val mIoU: {r['val_miou_source']}")
    for line in verified:
        typer.echo(f"verified {line}")
    here = default_zoo_model("cuda" if cuda_available() else "cpu")
    typer.echo(f"\ndefault here: {here.name} ({'a CUDA GPU' if cuda_available() else 'no CUDA GPU'} seen by PyTorch); "
               "--device cuda picks the GPU default, --model NAME any of the above")


def _verify(entry) -> str:
    """What --verify checked of one zoo model, as a line (issue 25: it used to say nothing); a failed check
    raises the CheckpointError that names the file."""
    from toolkit.checkpoint import load_checkpoint

    path = entry.verified_path()  # present, and its sha256 (recomputed) is zoo.json's
    net, meta = load_checkpoint(path)
    tensors = len(net.state_dict())
    return (f"{entry.name}: {path.name} present, sha256 {entry.sha256[:12]}... recomputed and equal to zoo.json's, "
            f"header and metadata read ({meta.arch} w={meta.width}, {meta.dataset.num_classes} classes), "
            f"{tensors} tensors loaded into the architecture as safetensors (no pickle)")


def register(app: typer.Typer) -> None:
    app.command(epilog=examples("toolkit models", "toolkit models --json",
                                "toolkit infer --model enhanced-w64 --device cuda --source clip.mp4"))(models)
