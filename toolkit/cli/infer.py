"""``toolkit infer``: real-time segmentation of a webcam, video file, stream URL or image folder."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from toolkit.cli.common import examples, exit_code, handle_errors, print_error
from toolkit.cli.options import compile_option, cuda_graph_option, device_option, run_precision_option
from toolkit.errors import ToolkitError

if TYPE_CHECKING:
    from toolkit.video.pipeline import RunSummary
from toolkit.core import defaults

UNREADABLE_SHOWN = 5  # names in the printed summary (--json keeps up to 20, and the count)


def print_summary(summary: dict) -> None:
    """The end-of-run report: counts, end-to-end FPS, per-stage p50/p95."""
    s = summary
    typer.echo(f"{s['frames']} frames ({s['dropped']} dropped, {s['unreadable']} unreadable, "
               f"{s['cancelled']} cancelled at stop) in {s['wall_s']:.2f} s: {s['fps']:.2f} FPS end to end; "
               f"stopped by {s['stopped_by']}")
    if s["unreadable_names"]:
        shown = s["unreadable_names"][:UNREADABLE_SHOWN]
        more = s["unreadable"] - len(shown)
        typer.echo(f"unreadable: {', '.join(shown)}{f' and {more} more' if more > 0 else ''}")
    typer.echo(f"model {s.get('model_choice') or s['model']} ({s['backend']} {s['precision']}, input "
               f"{'x'.join(map(str, s['input_shape']))})")
    typer.echo(f"{'stage':<12}{'p50 ms':>10}{'p95 ms':>10}{'mean ms':>10}")
    for name, st in s["stages"].items():
        typer.echo(f"{name:<12}{st['p50_ms']:>10.1f}{st['p95_ms']:>10.1f}{st['mean_ms']:>10.1f}")
    lat = s["latency_ms"]
    typer.echo(f"{'latency':<12}{lat['p50_ms']:>10.1f}{lat['p95_ms']:>10.1f}{lat['mean_ms']:>10.1f}"
               "   (capture to written)")
    t = s.get("temporal") or {}
    if t.get("flip_rate") is not None:
        typer.echo(f"flicker: {t['flip_rate']:.3f} % of pixels changed class between consecutive frames "
                   f"({t['pairs']} pairs; within {t['band_px']} px of a class boundary "
                   f"{t['boundary_flip_rate'] or 0:.3f} %, elsewhere {t['interior_flip_rate'] or 0:.3f} %)")
    for out in s["outputs"]:
        typer.echo(f"wrote {out}")


@handle_errors
def infer(
    source: str = typer.Option(..., "--source", "-s",
                               help="Webcam index (0), video file, rtsp:// or http:// URL, image folder or glob."),
    model: str | None = typer.Option(None, "--model", "-m",
                                     help="Zoo name (`toolkit models`), checkpoint (.safetensors), ONNX file, "
                                          "TensorRT engine or AOTInductor package (.pt2); default: the zoo's model "
                                          "for --device."),
    output: str | None = typer.Option(None, "--output", "-o", help="Annotated video to write (.mp4, .avi, .mkv)."),
    masks: str | None = typer.Option(None, "--masks", help="Folder for one class-index PNG per frame."),
    show: bool = typer.Option(False, "--show/--no-show", help="Show a window (needs an OpenCV build with a GUI)."),
    json_path: str | None = typer.Option(None, "--json", help="Write the run summary to this JSON file "
                                            "(frames, FPS, stage times, and `temporal`: the flip rate, % of pixels "
                                            "whose class changed between consecutive frames, boundary/interior "
                                            "split)."),
    alpha: float = typer.Option(defaults.OVERLAY_ALPHA, "--alpha", min=0.0, max=1.0,
                                help="Weight of the class colours in the blend, 0..1."),
    legend: bool = typer.Option(True, "--legend/--no-legend", help="Draw the class legend."),
    hud: bool = typer.Option(True, "--hud/--no-hud", help="Draw FPS, model latency and backend/precision."),
    side_by_side: bool = typer.Option(False, "--side-by-side", help="Write frame | overlay side by side."),
    graph_opt: str = typer.Option("auto", "--graph-opt", help="ONNX Runtime graph optimisation: auto (extended "
                                  "for CPU int8 maxunpool graphs, else all), all, extended, basic."),
    device: str = device_option(help="Device for PyTorch/ONNX Runtime models."),
    precision: str = run_precision_option(),
    cuda_graph: bool | None = cuda_graph_option(),
    compile_model: bool = compile_option(),
    threads: int | None = typer.Option(None, "--threads", min=1, help="Intra-op threads of the model's runtime "
                                                               "(default: the runtime's own, or cores / workers)."),
    workers: int = typer.Option(0, "--workers", help="Concurrent inferences (frames stay in order); 0: 2 for files "
                                                     "and images on a multi-core CPU or with PyTorch on CUDA, 1 "
                                                     "for live sources."),
    max_frames: int | None = typer.Option(None, "--max-frames", min=1, help="Stop after this many frames."),
    retries: int = typer.Option(defaults.SOURCE_RETRIES, "--retries", min=0,
                                help="Reconnect attempts for a live source that drops out."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Progress bar for file sources."),
) -> None:
    """Segment every frame of a source and overlay the classes; Ctrl-C or SIGTERM stops cleanly (the output stays
    playable, exit 130)."""
    from tqdm import tqdm

    from toolkit.backend import RunnerOptions, make_runner
    from toolkit.cli.common import pick_model
    from toolkit.files import check_writable, folders_made_by, refuse_output_over_input, write_json
    from toolkit.video import OverlayStyle, infer_video
    from toolkit.video.pipeline import Pipeline
    from toolkit.video.sources import open_source
    from toolkit.video.workers import workers_threads

    choice = pick_model(None, model, device, quiet=True)  # resolved, not loaded: its line comes after the source
    model = str(choice.model)
    for option, path in (("--output", output), ("--json", json_path)):
        refuse_output_over_input(path, [source, model], option)
    check_writable(json_path)
    new_folders = folders_made_by(masks)
    style = OverlayStyle(alpha=alpha, legend=legend, hud=hud, side_by_side=side_by_side)
    bar: list[tqdm] = []

    def on_start(pipe: Pipeline) -> None:
        total = pipe.source.frame_count
        if max_frames is not None and total is not None:
            total = min(total, max_frames)
        if progress and not pipe.source.live:
            bar.append(tqdm(total=total, unit="frame", desc="infer", leave=False))

    src = open_source(source, retries=retries)  # a bad source fails fast, before the model loads
    if choice.name is not None:
        typer.secho(f"model: {choice.describe()}", err=True, fg=typer.colors.BRIGHT_BLACK)
    workers, threads = workers_threads(workers, threads, src.live, model, device)
    try:
        # spin=False: busy-waiting ONNX Runtime threads would take the cores decode, overlay and encode need
        options = RunnerOptions(device=device, threads=threads, graph_opt=graph_opt, spin=False,
                                precision=precision, cuda_graph=cuda_graph, compile=compile_model)
        with make_runner(model, options) as runner:
            summary = infer_video(runner, src, output=output, masks=masks, show=show, style=style,
                                  workers=workers, max_frames=max_frames, retries=retries, on_start=on_start,
                                  on_frame=lambda n: bar[0].update(1) if bar else None)
    finally:
        src.close()
        for b in bar:
            b.close()
    failure = summary.failure or refuse_no_frames(summary, source, new_folders)
    error = summary.error if summary.error is not None else (str(failure) if failure is not None else None)
    code = exit_code(failure, summary.interrupted)
    report = run_report(summary, error, code, choice.describe())
    if json_path is not None:
        write_json(json_path, report)
    if summary.frames:  # a run that read nothing has nothing to summarise; its error says why
        print_summary(report)
    if error is not None:
        print_error(error)
    if code:  # Ctrl-C: the outputs are complete, the exit status says the run was cut short
        raise typer.Exit(code)


def run_report(summary: RunSummary, error: str | None, code: int, model_choice: str) -> dict:
    """--json: the run's summary with the error it ended on and, after it, the exit status."""
    report: dict = {}
    for key, value in summary.as_dict().items():
        report[key] = error if key == "error" else value
        if key == "error":
            report["exit_code"] = code
    return {**report, "model_choice": model_choice}


def refuse_no_frames(summary: RunSummary, source: str, new_folders: list[Path]) -> ToolkitError | None:
    """A run that read no frame did nothing: a usage error (2), not success (issue 25); None when the run
    processed frames or ended on an error or a stop of its own."""
    if summary.frames or summary.failure is not None or summary.interrupted:
        return None
    why = f"all {summary.unreadable} images were unreadable" if summary.unreadable else "the source gave no frame"
    from toolkit.files import remove_empty

    remove_empty(new_folders)
    return ToolkitError(f"--source {source}: no frame was processed ({why}); no video or masks were written")


def register(app: typer.Typer) -> None:
    app.command(epilog=examples(
        "toolkit infer --source clip.mp4 --output out.mp4",
        "toolkit infer --model segnet_int8.onnx --source 0 --show",
        "toolkit infer --device cuda --source clip.mp4 --output out.mp4   # enhanced-w64, fp16, CUDA graph",
        "toolkit infer --source 'frames/*.png' --masks masks/ --side-by-side --output out.mp4 --json run.json",
    ))(infer)
