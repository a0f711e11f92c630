"""``toolkit demo``: the whole deployment path on the zoo's model for this machine, in one folder, in a few minutes
on a CPU.

checkpoint -> sample clip -> ONNX fp32 -> FP16 and INT8 -> parity (``toolkit.compare``'s Comparator, the
same judge as ``toolkit parity``) -> speed (one interleaved bench) -> the HTML parity report (where each
precision changed the class maps, and its speed) -> the video through the fastest model that passed parity.
Every step reports what it did, or that it was skipped and why; nothing is faked.

The demo is a sequence of named steps over one ``DemoContext`` (``toolkit.demo_context``); each step
calls the library function the matching command calls (``export_file``, ``quantize_file``,
``compare_with_provenance`` as ``toolkit parity`` does, ``bench_runners``, ``infer_video``) and keeps its
result object. The command line is the CLI's to build and pass in (``DemoOptions.command``); the report
files are written from the result objects at the end.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from toolkit.backend import make_runner
from toolkit.bench import bench_runners, format_table
from toolkit.checkpoint import read_checkpoint
from toolkit.core.meta import ModelMeta
from toolkit.demo_context import (
    INT8_NOTE,
    Candidate,
    DemoContext,
    DemoOptions,
    DemoReport,
    StepResult,
    candidate_entry,
    is_synthetic_space,
    parity_table,
)
from toolkit.errors import ToolkitError, WriteError
from toolkit.evaluate import predict_logits
from toolkit.files import atomic_write, make_folder, write_json

log = logging.getLogger(__name__)

# Without ground truth in the model's label space (a CamVid model on the synthetic clip), the labels are
# the PyTorch fp32 reference's own class maps and a candidate is judged by pixel agreement alone.
NO_GT_MAX_DROP = 100.0
VIDEO_WORKERS = 1  # the demo's video: one inference at a time, compared with a one-stream bench
# quantize --target -> (name in the tables, file): the demo makes both int8 forms
INT8_FORMS = {"cpu": ("int8-cpu", "model_int8_cpu.onnx"), "tensorrt": ("int8-trt", "model_int8_trt.onnx")}


Step = Callable[[DemoContext], str]


def run_step(ctx: DemoContext, name: str, step: Step, required: bool = False) -> bool:
    """Run one named step, timed; a ToolkitError becomes a 'failed' entry (the demo goes on)."""
    report = ctx.report
    ctx.say(f"[{len(report.steps) + 1}] {name} ...")
    start = time.perf_counter()
    try:
        detail, status = step(ctx), "ok"
    except ToolkitError as e:
        if required or isinstance(e, WriteError):  # a full disk or read-only folder fails every later step
            raise
        detail, status = str(e), "failed"
    except ImportError as e:
        detail, status = f"not available in this install ({e.name or e})", "skipped"
    secs = round(time.perf_counter() - start, 2)
    report.steps.append(StepResult(name, status, secs, detail))
    ctx.say(f"    {status} in {secs:.1f} s{': ' + detail if detail else ''}")
    return status == "ok"


def skip_step(ctx: DemoContext, name: str, why: str) -> None:
    ctx.report.steps.append(StepResult(name, "skipped", 0.0, why))
    ctx.say(f"[{len(ctx.report.steps)}] {name}: skipped ({why})")


def run_demo(options: DemoOptions | None = None, say: Callable[[str], None] = log.info) -> DemoReport:
    """Run every step into ``options.out_dir``; returns the report (also written as report.json)."""
    t0 = time.perf_counter()
    ctx = start(options or DemoOptions(), say)
    run_step(ctx, "sample clip", make_clip, required=True)
    ctx.calibration = calibration_set(ctx.camvid, ctx.out, ctx.meta, ctx.options.calib_images)
    if run_step(ctx, "export ONNX", export_onnx):
        run_step(ctx, "FP16", quantize_fp16)
        run_step(ctx, "INT8", quantize_int8)
    else:
        skip_step(ctx, "FP16", "needs the fp32 ONNX model")
        skip_step(ctx, "INT8", "needs the fp32 ONNX model")
    run_step(ctx, "parity", parity)
    run_step(ctx, "flicker", flicker)
    try:
        opened = open_runners(ctx)
        run_step(ctx, "speed", speed)
        if ctx.parity is not None:
            run_step(ctx, "parity report", parity_report)
        else:
            skip_step(ctx, "parity report", "needs the parity step")
        passing = [c for c in opened if ctx.passed(c) and c.speed is not None]
        ctx.chosen = max(passing, key=lambda c: c.speed.throughput_fps if c.speed else 0.0) if passing else opened[0]
        ctx.report.chosen = ctx.chosen.name
        run_step(ctx, "video", video)
    finally:
        for c in ctx.candidates:
            if c.runner is not None:
                c.runner.deactivate()
                c.runner = None
    ctx.report.candidates = [candidate_entry(ctx, c) for c in ctx.candidates]
    ctx.report.total_s = round(time.perf_counter() - t0, 1)
    write_json(ctx.out / "report.json", ctx.report.as_dict())
    return ctx.report


def start(options: DemoOptions, say: Callable[[str], None]) -> DemoContext:
    """The checkpoint, its metadata, the output folder and whether CamVid fits the model's label space."""
    from toolkit.video.sample import find_camvid

    if options.model is None:
        from toolkit.assets import default_checkpoint_path

        ckpt = default_checkpoint_path()
    else:
        ckpt = Path(options.model)
        if ckpt.suffix != ".safetensors":
            raise ToolkitError(f"--model {ckpt}: the demo starts from a checkpoint (.safetensors); "
                               "for an ONNX file or engine use toolkit infer / toolkit bench")
    _, meta = read_checkpoint(ckpt)
    camvid = find_camvid(options.data) if options.use_camvid else None
    if camvid is not None and tuple(meta.dataset.class_names) != tuple(_camvid_classes(camvid)):
        camvid = None  # a model of another label space: CamVid labels would mean nothing to it
    out = make_folder(options.out_dir)  # once the model and --data are checked: a refused demo makes no folder
    label = options.model_label or (str(options.model) if options.model else "zoo default (CPU)")
    return DemoContext(options, out, ckpt, meta, camvid, DemoReport(str(out), label), say,
                       candidates=[Candidate("pytorch fp32", None, "fp32")])


# -- the steps: each takes the context, calls the library, keeps the result object, returns one line ----------
def make_clip(ctx: DemoContext) -> str:
    from toolkit.video.sample import make_sample_clip

    meta = ctx.meta
    c = ctx.clip = make_sample_clip(ctx.out / "sample.mp4", frames=ctx.options.frames, size=meta.input_size,
                                    camvid=ctx.camvid, use_camvid=ctx.camvid is not None,
                                    num_classes=meta.num_classes if is_synthetic_space(meta) else 6)
    ctx.report.clip = {"path": str(c.path), "frames": c.frames, "size": list(c.size), "origin": c.origin}
    return f"sample.mp4: {c.frames} frames of {c.origin} at {c.size[1]}x{c.size[0]}"


def export_onnx(ctx: DemoContext) -> str:
    """``toolkit export``'s library function, so the file carries the same metadata and provenance."""
    from toolkit.export import export_file

    fp32 = ctx.out / "model_fp32.onnx"
    export_file(ctx.ckpt, fp32, unpool=ctx.options.lowering)
    ctx.candidates.append(Candidate("onnxrt fp32", fp32, "fp32"))
    return f"model_fp32.onnx ({ctx.options.lowering} unpooling)"


def quantize_fp16(ctx: DemoContext) -> str:
    """``toolkit quantize --precision fp16``'s library function."""
    from toolkit.quant import quantize_file

    quantize_file(ctx.out / "model_fp32.onnx", ctx.out / "model_fp16.onnx", "fp16")
    ctx.candidates.append(Candidate("onnxrt fp16", ctx.out / "model_fp16.onnx", "fp16"))
    return "model_fp16.onnx (fp16 weights and activations, fp32 I/O)"


def quantize_int8(ctx: DemoContext) -> str:
    """Both int8 forms: the CPU one is what ONNX Runtime runs fast here, the TensorRT one is the only one
    `toolkit build-engine` accepts (symmetric int8, no uint8 Q/DQ)."""
    from toolkit.quant import Calibration, quantize_file

    calib = ctx.calibration
    calibration = Calibration(calib, split="train" if ctx.camvid is not None else "synthetic",
                              cache_dir=ctx.out / ".calibration")
    for target, (label, file) in INT8_FORMS.items():
        quantize_file(ctx.out / "model_fp32.onnx", ctx.out / file, "int8", target=target, calibration=calibration)
        ctx.candidates.append(Candidate(f"onnxrt {label}", ctx.out / file, "int8"))
    return (f"{INT8_FORMS['cpu'][1]} (uint8 activations, for ONNX Runtime on the CPU) and "
            f"{INT8_FORMS['tensorrt'][1]} (symmetric int8 Q/DQ, for toolkit build-engine); "
            f"{calibration.shown} calibration on {len(calib)} images")


def parity(ctx: DemoContext) -> str:
    """Every candidate against the PyTorch fp32 reference on frames across the clip: ``toolkit parity``'s
    comparison (``compare_with_provenance``); parity.md from its report."""
    from toolkit.compare import Comparator, compare_with_provenance
    from toolkit.core.dataset import FrameSet

    sample, meta, threads = ctx.sample, ctx.meta, ctx.options.threads
    idx = np.linspace(0, sample.frames - 1, min(ctx.options.parity_frames, sample.frames)).round().astype(int)
    images = [sample.images[i] for i in idx] if sample.images is not None else []
    reference = make_runner(ctx.ckpt, threads=threads)
    if ctx.has_gt and sample.labels is not None:
        labels, ctx.labels_basis = [sample.labels[i] for i in idx], "ground truth"
    else:  # the reference's own class maps stand in for labels; judged on pixel agreement
        with reference:
            labels = [predict_logits(reference, im, meta.dataset.mean, meta.dataset.std, meta.input_size)
                      .argmax(0).astype(np.uint8) for im in images]
        ctx.labels_basis = "PyTorch fp32 class maps (no ground truth in this label space)"
    files = [c.path for c in ctx.candidates[1:] if c.path is not None]
    comparator = Comparator(reference, [make_runner(f, threads=threads) for f in files],
                            max_miou_drop=None if ctx.labels_basis == "ground truth" else NO_GT_MAX_DROP)
    report = compare_with_provenance(comparator, ctx.ckpt, files, FrameSet(images, labels, meta.dataset),
                                     dataset_info={"frames": len(images), "split": "sample clip",
                                                   "labels": ctx.labels_basis})
    for c, res in zip(ctx.candidates[1:], report.candidates, strict=True):
        c.parity = res
    ctx.parity = report
    table = parity_table(ctx)
    atomic_write(ctx.out / "parity.md", lambda p: p.write_text(table + "\n"))
    passed = [c.name for c in ctx.candidates[1:] if ctx.passed(c)]
    return f"parity.md: {len(passed)}/{len(ctx.candidates) - 1} candidates passed on {len(images)} frames"


def flicker(ctx: DemoContext) -> str:
    """flicker.md: each precision's flip rate on the clip's first consecutive frames; the same figures go into
    report.json and, when the parity step ran, into parity_report.html's flicker section."""
    from toolkit.demo_flicker import FLICKER_FRAMES, flicker_table, measure_flicker

    sample = ctx.sample
    n = min(FLICKER_FRAMES, sample.frames)
    labels = sample.labels[:n] if ctx.has_gt and sample.labels is not None else None
    found = measure_flicker(ctx.ckpt, [c.path for c in ctx.candidates[1:] if c.path is not None],
                            (sample.images or [])[:n], labels, ctx.meta, ctx.options.threads)
    for c, res in zip(ctx.candidates[1:], found.candidates, strict=True):  # the parity step's order
        c.flicker = res
    ctx.flicker = found
    if ctx.parity is not None:  # the HTML report's flicker section
        for mine, res in zip(ctx.parity.candidates, found.candidates, strict=True):
            mine.temporal = res.temporal
        ctx.parity.flicker_pairs = found.flicker_pairs
    atomic_write(ctx.out / "flicker.md", lambda p: p.write_text(flicker_table(found) + "\n"))
    worst = max(found.candidates, key=lambda r: (r.temporal or {})["excess_flip_rate"], default=None)
    return (f"flicker.md: {n} consecutive frames; largest excess {worst.name} "
            f"{(worst.temporal or {})['excess_flip_rate']:+.3f} points" if worst else "flicker.md: no candidates")


def open_runners(ctx: DemoContext) -> list[Candidate]:
    """Each candidate's runner, activated once for the speed table and the video; one that cannot open is
    a skipped entry of its own."""
    opened = []
    for c in ctx.candidates:
        try:
            c.runner = make_runner(c.path or ctx.ckpt, threads=ctx.options.threads).activate()
            opened.append(c)
        except (ToolkitError, ImportError) as e:
            skip_step(ctx, f"open {c.name}", str(e))
    return opened


def speed(ctx: DemoContext) -> str:
    """``toolkit bench``'s interleaved measurement of every opened candidate; speed.md."""
    opened = [c for c in ctx.candidates if c.runner is not None]
    shape = ctx.input_shape
    results = bench_runners([c.runner for c in opened if c.runner is not None], shape, warmup=1,
                            iterations=ctx.options.bench_iterations, rounds=2, threads=ctx.options.threads)
    for c, r in zip(opened, results, strict=True):
        r.name = c.name
        c.speed = r
    table = format_table(results, compare=True)
    note = f"\n{INT8_NOTE}\n" if any(c.precision == "int8" for c in opened) else ""
    atomic_write(ctx.out / "speed.md", lambda p: p.write_text(f"input {'x'.join(map(str, shape))}\n\n{table}\n{note}"))
    best = max(results, key=lambda r: r.throughput_fps)
    return f"speed.md: fastest {best.name} at {best.throughput_fps:.2f} FPS"


def parity_report(ctx: DemoContext) -> str:
    """parity_report.html: the parity run's where-it-changed report, with the speed table of the same run;
    parity.json: the same figures as ``toolkit parity --json`` writes them."""
    import shlex

    from toolkit.compare.html import write_html

    report = ctx.parity
    assert report is not None, "run only after the parity step"
    report.speed = [c.speed.as_dict() for c in ctx.candidates if c.speed is not None]
    report.command = ctx.options.command or shlex.join(["toolkit", "demo", "--output", str(ctx.out)])
    write_html(report, ctx.out / "parity_report.html", title="Parity report: toolkit demo")
    report.save(ctx.out / "parity.json")
    return f"parity_report.html, parity.json ({len(report.candidates)} candidates, {report.dataset['images']} frames)"


def video(ctx: DemoContext) -> str:
    """The clip through the fastest model that passed parity: ``toolkit infer``'s run (``infer_video``)."""
    from toolkit.video import OverlayStyle, infer_video

    chosen, iterations = ctx.chosen, ctx.options.bench_iterations
    assert chosen is not None and chosen.runner is not None
    # Like with like: the model's own throughput with as many concurrent calls as the video has
    # workers, timed right before the video on the same runner (not the speed table's short run).
    own = bench_runners([chosen.runner], ctx.input_shape, warmup=2, iterations=max(20, iterations), rounds=1,
                        threads=ctx.options.threads, streams=VIDEO_WORKERS)[0]
    s = infer_video(chosen.runner, str(ctx.sample.path), output=ctx.out / "demo.mp4", workers=VIDEO_WORKERS,
                    style=OverlayStyle(side_by_side=True))
    ctx.report.video = {**s.as_dict(), "workers": VIDEO_WORKERS, "model_fps": own.throughput_fps}
    write_json(ctx.out / "run.json", s.as_dict())
    if s.error:
        raise ToolkitError(s.error)
    pct = f" = {100 * s.fps / own.throughput_fps:.0f}%" if own.throughput_fps else ""
    return (f"demo.mp4 through {chosen.name}: {s.frames} frames at {s.fps:.2f} FPS end to end with "
            f"{VIDEO_WORKERS} worker{pct} of the model alone at {VIDEO_WORKERS} stream "
            f"({own.throughput_fps:.2f} FPS, {own.iterations} calls just before)")


def calibration_set(camvid: Path | None, out: Path, meta: ModelMeta, n: int) -> list[Path]:
    """CamVid train images when at hand (never the clip's val frames), else synthetic scenes written as PNG."""
    if camvid is not None:
        from toolkit.quant import calibration_images

        return calibration_images(camvid, "train", n)
    import cv2

    from toolkit.data import make_scene
    from toolkit.files import write_png

    folder = out / "calibration_images"
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        image, _ = make_scene(1000 + i, meta.input_size, num_classes=min(6, max(2, meta.num_classes)))
        paths.append(write_png(folder / f"{i:03d}.png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR)))
    return paths


def _camvid_classes(root: Path) -> tuple[str, ...]:
    from toolkit.core.dataset_info import load_classes_json

    return load_classes_json(root / "classes.json").class_names
