"""``toolkit parity``: mIoU drift of ONNX/TensorRT candidates against the PyTorch fp32 reference."""

from __future__ import annotations

from pathlib import Path

import typer

from toolkit.cli.common import command_line, examples, handle_errors
from toolkit.cli.options import device_option
from toolkit.core import defaults


@handle_errors
def parity(
    ctx: typer.Context,
    reference: Path | None = typer.Option(None, help="Zoo name or PyTorch checkpoint (.safetensors); default: "
                                          "the zoo's CPU model."),
    candidate: list[str] = typer.Option(..., "--candidate", "-c", help="ONNX model, TensorRT engine, or a "
                                        "checkpoint/zoo name with @fp16 or @bf16 (PyTorch at that precision); "
                                        "repeat for several."),
    data: Path | None = typer.Option(None, help="CamVid-layout dataset folder (or --video)."),
    video: str | None = typer.Option(None, "--video", help="Compare on a clip instead of a split: a video file, "
                                     "an image sequence ('frames/*.png') or a folder of frames in name order. "
                                     "Adds the temporal flip rate (share of pixels whose class changes between "
                                     "consecutive frames), its excess over the reference, boundary/interior "
                                     "parts and the optical-flow-compensated rates."),
    labels: Path | None = typer.Option(None, "--labels", help="With --video: label PNGs named like the frames "
                                       "(per-frame mIoU); default: <folder>annot beside a frame folder, if "
                                       "there (CamVid's layout), else none."),
    split: str = typer.Option("val", help="Split to compare on (the whole split)."),
    limit: int | None = typer.Option(None, min=1, help="Only the first N frames (quick look; not a parity result)."),
    max_miou_drop: float | None = typer.Option(None, min=0.0,
                                               help="Fail when a candidate's mIoU is more than this many "
                                                    "points below the reference (default per precision: fp32 0.01, "
                                                    "fp16 0.1, int8 1.0)."),
    min_agreement: float | None = typer.Option(None, min=0.0,
                                               help="Fail below this pixel agreement in percent "
                                                    "(default: fp32 99.9, fp16 99, int8 98)."),
    device: str = device_option(help="Device for the candidates."),
    json_out: Path | None = typer.Option(None, "--json", help="Write the full report (per-class IoU too) here."),
    per_class: bool = typer.Option(True, help="Also print the per-class delta IoU table."),
    report_out: Path | None = typer.Option(None, "--report", help="Write a self-contained HTML report here: "
                                           "per-class delta IoU, confusion difference, worst frames, boundary vs "
                                           "interior (opens offline)."),
    worst: int = typer.Option(defaults.DRIFT_WORST_FRAMES, "--worst", min=0, max=20,
                              help="Lowest-agreement frames kept per candidate for "
                              "the report."),
    band: int = typer.Option(defaults.DRIFT_BAND_PX, "--band", min=1, max=50,
                             help="Boundary band half-width in label pixels "
                             "(boundary share of the changes, band mIoU)."),
    bench: bool = typer.Option(False, "--bench", help="Also time the reference and every candidate in one "
                               "interleaved run (toolkit bench's measurement) for the report and JSON."),
    bench_iterations: int = typer.Option(20, "--bench-iterations", min=1, help="Timed calls per model with "
                                         "--bench."),
    layers: bool = typer.Option(False, "--layers", help="Also compare every ONNX candidate's intermediate tensors "
                                "with the fp32 ONNX reference's: per-layer relative error and SNR (boundary vs "
                                "interior), PyTorch module names, and first_divergence (docs/PARITY.md)."),
    reference_onnx: Path | None = typer.Option(None, help="fp32 ONNX reference for --layers (default: the "
                                               "reference checkpoint exported on the fly)."),
    layers_frames: int = typer.Option(2, min=1, help="First N frames of the split that --layers runs on."),
) -> None:
    """Compare every candidate with the same PyTorch fp32 reference on a whole split: mIoU, delta mIoU,
    per-class delta IoU, pixel agreement, max/mean |logit difference|, and where the class maps changed
    (boundary vs interior, class transitions, worst frames). Exit 1 when a tolerance fails.

    With --video CLIP instead of --data: the same on the clip's frames, plus per candidate how much it flickers.
    flip % is the share of pixels whose class changes between consecutive frames, over all pairs; reference %
    the same for the reference; excess = flip - reference (percentage points: the flicker the candidate
    adds). Boundary/interior split it by a band of --band px around the reference's class boundaries. The
    flow-compensated rates first warp the previous class map along OpenCV's dense optical flow of the frames
    themselves, so camera and object motion no longer count as flips; what is left is flicker motion does not
    explain. mIoU per frame is in --json where the frames have labels. The flip rate is reported, not judged:
    the exit code depends on the mIoU/agreement tolerances only."""
    from toolkit.cli.common import pick_model
    from toolkit.compare import DriftOptions, compare_files, measure_speed
    from toolkit.compare.comparator import preflight_candidate
    from toolkit.data import CamVid
    from toolkit.errors import CheckFailedError, ToolkitError
    from toolkit.files import check_writable, refuse_output_over_input

    for option, path in (("--json", json_out), ("--report", report_out)):
        refuse_output_over_input(path, [reference, *candidate], option)
        check_writable(path)
    if (data is None) == (video is None):
        raise ToolkitError(f"got {'both --data and --video' if data else 'neither --data nor --video'}: give one "
                           "(a CamVid-layout folder to compare on a split, or a clip to measure flicker too)")
    for spec in candidate:  # before the reference loads: a bad '@', a foreign ONNX graph (issue 25)
        preflight_candidate(spec)
    if video is not None:
        from toolkit.video.clip import VideoClip, camvid_labels_beside

        labels = labels if labels is not None else camvid_labels_beside(video)
        dataset = VideoClip(video, labels, limit=limit)
        info = {"root": video, "split": "clip", "limit": limit, "labels": str(labels) if labels else None}
    else:
        dataset = CamVid(data, split, limit=limit)
        info = {"root": str(data), "split": split, "limit": limit}
    ref = pick_model(None, None if reference is None else str(reference), "cpu").model
    report = compare_files(Path(ref), candidate, dataset, device=device, max_miou_drop=max_miou_drop,
                           min_pixel_agreement=min_agreement, progress=True, dataset_info=info,
                           drift=DriftOptions(band_px=band, worst_frames=worst), temporal=video is not None)
    if video is not None:
        report.dataset["labelled_frames"] = dataset.labelled
    report.command = command_line(ctx)
    if layers:
        from toolkit.compare.layers_report import attach_layers

        for line in attach_layers(report, Path(ref), reference_onnx, candidate, data, split, layers_frames, band):
            typer.echo(line)
    if bench:
        report.speed = measure_speed(Path(ref), candidate, device=device, iterations=bench_iterations)
    _print(report, per_class)
    if video is not None:
        _print_temporal(report)
    if json_out is not None:
        report.save(json_out)
        typer.echo(f"wrote {json_out}")
    if report_out is not None:
        from toolkit.compare.html import write_html

        write_html(report, report_out)
        typer.echo(f"wrote {report_out}")
    if not report.passed:
        failed = [f"{c.name}: {'; '.join(c.failures)}" for c in report.candidates if not c.passed]
        raise CheckFailedError("parity failed: " + " | ".join(failed))


def _print(report, per_class: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(Console().width, 130))
    ref = report.reference
    t = Table(title=f"parity on {report.dataset.get('split', '')} ({report.dataset['images']} images) vs "
                    f"{ref['name']} (mIoU {ref['miou']:.2f})")
    for col in ("candidate", "precision", "unpool", "mIoU", "Δ mIoU", "agree %", "max |Δ|", "mean |Δ|",
                "max drop / min agree", "result"):
        t.add_column(col, justify="left" if col in ("candidate", "precision", "unpool") else "right")
    for c in report.candidates:
        tol = f"{c.tolerance.max_miou_drop} / {c.tolerance.min_pixel_agreement}"
        t.add_row(c.name, c.precision, c.lowering, f"{c.miou:.2f}", f"{c.delta_miou:+.3f}", f"{c.pixel_agreement:.3f}",
                  f"{c.max_abs_logit_diff:.2e}", f"{c.mean_abs_logit_diff:.2e}", tol,
                  "[green]pass[/]" if c.passed else "[red]FAIL[/]")
    console.print(t)
    for c in report.candidates:
        if c.source_matches is False:
            console.print(f"[yellow]note: {c.name} was exported from another checkpoint than the reference "
                          "(source_sha256 differs): this measures two models, not one model's drift[/]")
    if report.candidates and all(c.drift for c in report.candidates):
        band = report.reference.get("band_px")
        w = Table(title=f"where the class maps changed (boundary: within {band} px of a reference class boundary)")
        for col in ("candidate", "changed px", "on a boundary %", "boundary area %", "band mIoU", "Δ band mIoU"):
            w.add_column(col, justify="left" if col == "candidate" else "right")
        for c in report.candidates:
            d = c.drift
            share, band_miou, delta = d["boundary_share"], d["miou_band"], d["delta_miou_band"]
            w.add_row(c.name, f"{d['changed_pixels']:,}", "-" if share is None else f"{share:.1f}",
                      f"{d['band_area']:.1f}", "-" if band_miou is None else f"{band_miou:.2f}",
                      "-" if delta is None else f"{delta:+.3f}")
        console.print(w)
    if per_class and report.candidates:
        pc = Table(title="per-class IoU (reference) and Δ IoU (points)")
        pc.add_column("class")
        pc.add_column("reference", justify="right")
        for c in report.candidates:
            pc.add_column(c.name, justify="right")
        for name in report.class_names:
            r = ref["per_class_iou"][name]
            cells = [f"{d:+.3f}" if (d := c.per_class_delta_iou[name]) is not None else "-" for c in report.candidates]
            pc.add_row(name, f"{r:.2f}" if r is not None else "-", *cells)
        console.print(pc)


def _print_temporal(report) -> None:
    """Flicker per candidate: raw and flow-compensated flip rates next to the reference's, and the excess."""
    from rich.console import Console
    from rich.table import Table

    def f(v: float | None, fmt: str = ".3f") -> str:
        return "-" if v is None else format(v, fmt)

    first = report.candidates[0].temporal if report.candidates else None
    if not first:
        return
    t = Table(title=f"flicker over {first['pairs']} frame pairs: % of pixels changing class between consecutive "
                    f"frames (boundary: within {first['band_px']} px of a reference class boundary, "
                    f"{f(first['boundary_area'], '.1f')} % of pixels)")
    for col in ("candidate", "flip %", "reference %", "excess", "boundary excess", "interior excess",
                "flow-comp. flip %", "flow-comp. ref. %", "flow-comp. excess", "mIoU", "worst pair"):
        t.add_column(col, justify="left" if col == "candidate" else "right")
    for c in report.candidates:
        d = c.temporal
        pair = d["largest_excess_pair"]
        t.add_row(c.name, f(d["flip_rate"]), f(d["reference_flip_rate"]), f(d["excess_flip_rate"], "+.3f"),
                  f(d["excess_boundary_flip_rate"], "+.3f"), f(d["excess_interior_flip_rate"], "+.3f"),
                  f(d["compensated_flip_rate"]), f(d["reference_compensated_flip_rate"]),
                  f(d["excess_compensated_flip_rate"], "+.3f"), "-" if d["per_frame_miou"] is None else
                  f(c.miou, ".2f"), "-" if pair is None else " -> ".join(pair["frames"]))
    Console(width=max(Console().width, 150)).print(t)


def register(app: typer.Typer) -> None:
    app.command(epilog=examples(
        "toolkit parity --candidate segnet_fp16.onnx --data ../shared/camvid",
        "toolkit parity --reference best.safetensors -c segnet.onnx -c segnet_int8.onnx --data ../shared/camvid "
        "--json parity.json",
        "toolkit parity -c segnet_fp16.onnx -c segnet_int8.onnx --data ../shared/camvid --report parity.html "
        "--bench",
        "toolkit parity -c segnet_int8.onnx --data ../shared/camvid --max-miou-drop 0.5",
        "toolkit parity --reference enhanced-w64 -c enhanced-w64@fp16 --device cuda --data ../shared/camvid",
        "toolkit parity -c segnet_fp16.onnx -c segnet_int8.onnx --video ../shared/camvid/val --json temporal.json "
        "--report temporal.html",
        "toolkit parity -c segnet_int8_cpu.onnx --data ../shared/camvid --layers --json parity.json --report p.html",
    ))(parity)
