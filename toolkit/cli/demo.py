"""``toolkit demo``: export, FP16, INT8, parity, speed and an annotated video from the zoo's model for this machine."""

from __future__ import annotations

from pathlib import Path

import typer

from toolkit.cli.common import command_line, examples, handle_errors
from toolkit.cli.options import output_option, unpool_option


@handle_errors
def demo(
    ctx: typer.Context,
    out: str = output_option("Folder for every artefact of the run.", default="toolkit-demo"),
    model: str | None = typer.Option(None, "--model", "-m", help="Zoo name or checkpoint to start from; default: "
                                     "the zoo's model for this machine (w=64 with a CUDA GPU, else the CPU one)."),
    data: str | None = typer.Option(None, "--data", help="CamVid folder for the clip, labels and calibration; "
                                                         "default: $TOOLKIT_CAMVID or ../shared/camvid if present."),
    camvid: bool = typer.Option(True, "--camvid/--synthetic", help="Use CamVid when found, or force the "
                                                                   "procedural clip."),
    frames: int = typer.Option(60, "--frames", min=1, help="Frames in the sample clip."),
    parity_frames: int = typer.Option(12, "--parity-frames", min=1, help="Clip frames the parity check runs on."),
    calib_images: int = typer.Option(16, "--calib-images", min=1, help="Images to calibrate INT8 on."),
    iterations: int = typer.Option(10, "--iterations", min=1, help="Timed inferences per model in the speed table."),
    threads: int | None = typer.Option(None, "--threads", min=1, help="Intra-op threads of every runtime."),
    unpool: str = unpool_option(help="Unpooling form in the ONNX: mask (TensorRT parses it; on ONNX Runtime "
                                     "CPU as fast as maxunpool in fp32 and faster in int8), maxunpool or plugin."),
) -> None:
    """The main job in one command: export, FP16/INT8, parity, speed, annotated video; prints where it all is."""
    from toolkit.cli.common import pick_model
    from toolkit.demo import run_demo
    from toolkit.demo_context import DemoOptions
    from toolkit.errors import CheckFailedError
    from toolkit.files import no_empty_folder_on_failure
    from toolkit.sysinfo import cuda_available

    resolved = pick_model(None, model, "cuda" if cuda_available() else "cpu")
    options = DemoOptions(out, model=str(resolved.model), data=data, use_camvid=camvid, frames=frames,
                          parity_frames=parity_frames, calib_images=calib_images, bench_iterations=iterations,
                          threads=threads, lowering=unpool, model_label=resolved.describe(),
                          command=command_line(ctx))
    with no_empty_folder_on_failure(out):  # a refused demo leaves no empty --output behind
        report = run_demo(options, say=typer.echo)
    typer.echo("")
    for name in ("parity.md", "speed.md"):
        path = Path(report.out_dir) / name
        typer.echo(path.read_text() if path.is_file() else f"({name} not written)")
    failed = [s for s in report.steps if s.status != "ok"]
    typer.echo(f"model: {report.model}")
    typer.echo(f"chosen model: {report.chosen}; everything is in {report.out_dir}/ (demo.mp4, parity.md, "
               f"parity_report.html, parity.json, speed.md, report.json) after {report.total_s:.0f} s")
    for s in failed:
        typer.echo(f"{s.status}: {s.name}: {s.detail}")
    if any(s.status == "failed" for s in failed) or not any(s.name == "video" and s.status == "ok"
                                                            for s in report.steps):
        raise CheckFailedError("the demo did not complete every step (see above)")


def register(app: typer.Typer) -> None:
    app.command(epilog=examples(
        "toolkit demo",
        "toolkit demo --output /tmp/demo --frames 30 --synthetic",
        "toolkit demo --model runs/best.safetensors --data ../shared/camvid --threads 2",
    ))(demo)
