"""``toolkit demo``: the whole deployment path on the zoo's model for this machine, in one folder, in a few minutes
on a CPU.

checkpoint -> sample clip -> ONNX fp32 -> FP16 and INT8 -> parity (``toolkit.compare``'s Comparator, the
same judge as ``toolkit parity``) -> speed (one interleaved bench) -> the HTML parity report (where each
precision changed the class maps, and its speed) -> the video through the fastest model that passed parity.
Every step reports what it did, or that it was skipped and why; nothing is faked. Export and
quantization are the library functions behind ``toolkit export``/``toolkit quantize``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from toolkit.backend import make_runner
from toolkit.backend.base import BaseRunner
from toolkit.bench import BenchResult, bench_runners, format_table
from toolkit.checkpoint import read_checkpoint
from toolkit.compare.results import ParityReport
from toolkit.core.meta import ModelMeta
from toolkit.core.shapes import pad_to_multiple
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
INT8_NOTE = ("int8-cpu: uint8 activations + int8 weights, the form ONNX Runtime's CPU kernels run fast; "
             "int8-trt: symmetric int8 Q/DQ, the form `toolkit build-engine` takes for a TensorRT engine "
             "(on the CPU it runs slower).")


@dataclass
class StepResult:
    name: str
    status: str  # "ok", "skipped", "failed"
    seconds: float
    detail: str = ""


@dataclass
class Candidate:
    """One model the demo may run the video through."""

    name: str
    path: Path | None  # None: the checkpoint itself through PyTorch
    precision: str
    parity: dict = field(default_factory=dict)
    speed: dict = field(default_factory=dict)
    temporal: dict = field(default_factory=dict)  # flicker on consecutive clip frames (toolkit.demo_flicker)
    runner: BaseRunner | None = None


@dataclass
class DemoReport:
    out_dir: str
    model: str
    clip: dict = field(default_factory=dict)
    steps: list[StepResult] = field(default_factory=list)
    candidates: list[dict] = field(default_factory=list)
    chosen: str | None = None
    video: dict = field(default_factory=dict)
    total_s: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)


class _Steps:
    """Runs named steps, timing them and turning a ToolkitError into a 'failed' entry (the demo goes on)."""

    def __init__(self, report: DemoReport, say: Callable[[str], None]) -> None:
        self.report, self.say = report, say

    def run(self, name: str, fn: Callable[[], str], required: bool = False) -> bool:
        self.say(f"[{len(self.report.steps) + 1}] {name} ...")
        start = time.perf_counter()
        try:
            detail, status = fn(), "ok"
        except ToolkitError as e:
            if required or isinstance(e, WriteError):  # a full disk or read-only folder fails every later step
                raise
            detail, status = str(e), "failed"
        except ImportError as e:
            detail, status = f"not available in this install ({e.name or e})", "skipped"
        secs = round(time.perf_counter() - start, 2)
        self.report.steps.append(StepResult(name, status, secs, detail))
        self.say(f"    {status} in {secs:.1f} s{': ' + detail if detail else ''}")
        return status == "ok"

    def skip(self, name: str, why: str) -> None:
        self.report.steps.append(StepResult(name, "skipped", 0.0, why))
        self.say(f"[{len(self.report.steps)}] {name}: skipped ({why})")


def _parity(cands: list[Candidate], ckpt: Path, images: list[np.ndarray], labels: list[np.ndarray] | None,
            meta: ModelMeta, threads: int | None) -> tuple[str, ParityReport]:
    """toolkit.compare's Comparator: every candidate against the PyTorch fp32 reference on the clip frames."""
    from toolkit.compare import Comparator
    from toolkit.core.dataset import FrameSet
    from toolkit.files import file_sha256

    reference = make_runner(ckpt, threads=threads)
    basis = "ground truth"
    if labels is None:  # the reference's own class maps stand in for labels; judged on pixel agreement
        with reference:
            labels = [predict_logits(reference, im, meta.dataset.mean, meta.dataset.std, meta.input_size)
                      .argmax(0).astype(np.uint8) for im in images]
        basis = "PyTorch fp32 class maps (no ground truth in this label space)"
    runners = [make_runner(c.path, threads=threads) for c in cands[1:]]
    report = Comparator(reference, runners, max_miou_drop=None if basis == "ground truth" else NO_GT_MAX_DROP
                        ).run(FrameSet(images, labels, meta.dataset), dataset_info={"frames": len(images),
                                                                                    "split": "sample clip",
                                                                                    "labels": basis})
    report.reference["sha256"] = file_sha256(ckpt)
    for c, res in zip(cands[1:], report.candidates, strict=True):
        res.sha256 = file_sha256(c.path) if c.path is not None else None
    cands[0].parity = {"miou": report.reference["miou"], "delta_miou": 0.0, "pixel_agreement": 100.0,
                       "passed": True, "reference": True, "labels": basis}
    for c, res in zip(cands[1:], report.candidates, strict=True):
        c.parity = {"miou": res.miou, "delta_miou": res.delta_miou, "pixel_agreement": res.pixel_agreement,
                    "max_abs_logit_diff": res.max_abs_logit_diff, "max_miou_drop": res.tolerance.max_miou_drop,
                    "min_pixel_agreement": res.tolerance.min_pixel_agreement, "passed": res.passed,
                    "failures": res.failures, "labels": basis}
    return basis, report


def parity_table(cands: list[Candidate], basis: str, frames: int) -> str:
    rows = [f"parity on {frames} clip frames; labels: {basis}", "",
            "| model | precision | mIoU % | Δ mIoU (pts) | pixel agreement % | max abs logit diff | "
            "max drop / min agreement | result |", "|---|---|---|---|---|---|---|---|"]
    for c in cands:
        p = c.parity
        if not p:
            continue
        if p.get("reference"):
            rows.append(f"| {c.name} | {c.precision} | {p['miou']:.2f} | reference | 100 | 0 | - | reference |")
            continue
        rows.append(f"| {c.name} | {c.precision} | {p['miou']:.2f} | {p['delta_miou']:+.3f} | "
                    f"{p['pixel_agreement']:.3f} | {p['max_abs_logit_diff']:.2e} | {p['max_miou_drop']} / "
                    f"{p['min_pixel_agreement']} | {'pass' if p['passed'] else 'FAIL: ' + '; '.join(p['failures'])} |")
    if any(c.parity and c.precision == "int8" for c in cands):
        rows += ["", INT8_NOTE]
    return "\n".join(rows)


def _export_variants(ckpt: Path | None, out: Path, lowering: str, calib: list[Path], calib_split: str,
                     steps: _Steps, cands: list[Candidate]) -> None:
    """ONNX fp32, then fp16 and int8 from it; each a separate step so a failure skips only what needs it.
    The files are made by ``toolkit export``'s and ``toolkit quantize``'s library functions, so they carry
    the same metadata and provenance as the CLI's."""
    fp32 = out / "model_fp32.onnx"

    def export() -> str:
        from toolkit.export import export_file

        export_file(ckpt, fp32, unpool=lowering)
        cands.append(Candidate("onnxrt fp32", fp32, "fp32"))
        return f"model_fp32.onnx ({lowering} unpooling)"

    if not steps.run("export ONNX", export):
        steps.skip("FP16", "needs the fp32 ONNX model")
        steps.skip("INT8", "needs the fp32 ONNX model")
        return

    def fp16() -> str:
        from toolkit.quant import quantize_file

        quantize_file(fp32, out / "model_fp16.onnx", "fp16")
        cands.append(Candidate("onnxrt fp16", out / "model_fp16.onnx", "fp16"))
        return "model_fp16.onnx (fp16 weights and activations, fp32 I/O)"

    def int8() -> str:
        """Both int8 forms: the CPU one is what ONNX Runtime runs fast here, the TensorRT one is the only
        one `toolkit build-engine` accepts (symmetric int8, no uint8 Q/DQ)."""
        from toolkit.quant import Calibration, quantize_file

        calibration = Calibration(calib, split=calib_split, cache_dir=out / ".calibration")
        for target, (label, file) in INT8_FORMS.items():
            quantize_file(fp32, out / file, "int8", target=target, calibration=calibration)
            cands.append(Candidate(f"onnxrt {label}", out / file, "int8"))
        return (f"{INT8_FORMS['cpu'][1]} (uint8 activations, for ONNX Runtime on the CPU) and "
                f"{INT8_FORMS['tensorrt'][1]} (symmetric int8 Q/DQ, for toolkit build-engine); "
                f"{calibration.shown} calibration on {len(calib)} images")

    steps.run("FP16", fp16)
    steps.run("INT8", int8)


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


def run_demo(out_dir: str | Path = "toolkit-demo", model: str | Path | None = None, data: str | Path | None = None,
             use_camvid: bool = True, frames: int = 60, parity_frames: int = 12, calib_images: int = 16,
             bench_iterations: int = 10, threads: int | None = None, lowering: str = "mask",
             say: Callable[[str], None] = log.info, model_label: str | None = None) -> DemoReport:
    """Run every step into ``out_dir``; returns the report (also written as report.json). ``model_label``
    says which model this is and why it was chosen (the CLI passes the zoo's description)."""
    from toolkit.video import OverlayStyle, infer_video
    from toolkit.video.sample import find_camvid, make_sample_clip

    t0 = time.perf_counter()
    for noisy in ("onnx_ir", "onnxscript", "torch.onnx"):  # the exporter's pass-by-pass INFO lines
        logging.getLogger(noisy).setLevel(logging.WARNING)
    out = make_folder(out_dir)
    if model is None:
        from toolkit.assets import default_checkpoint_path

        ckpt: Path | None = default_checkpoint_path()
    else:
        ckpt = Path(model)
        if ckpt.suffix != ".safetensors":
            raise ToolkitError(f"--model {ckpt}: the demo starts from a checkpoint (.safetensors); "
                               "for an ONNX file or engine use toolkit infer / toolkit bench")
    _, meta = read_checkpoint(ckpt)
    report = DemoReport(str(out), model_label or (str(model) if model else "zoo default (CPU)"))
    steps = _Steps(report, say)
    camvid = find_camvid(data) if use_camvid else None
    if camvid is not None and tuple(meta.dataset.class_names) != tuple(_camvid_classes(camvid)):
        camvid = None  # a model of another label space: CamVid labels would mean nothing to it

    clip_holder: dict = {}

    def clip() -> str:
        c = make_sample_clip(out / "sample.mp4", frames=frames, size=meta.input_size, camvid=camvid,
                             use_camvid=camvid is not None,
                             num_classes=meta.num_classes if _is_synthetic_space(meta) else 6)
        clip_holder["clip"] = c
        report.clip = {"path": str(c.path), "frames": c.frames, "size": list(c.size), "origin": c.origin}
        return f"sample.mp4: {c.frames} frames of {c.origin} at {c.size[1]}x{c.size[0]}"

    steps.run("sample clip", clip, required=True)
    sample = clip_holder["clip"]
    cands = [Candidate("pytorch fp32", None, "fp32")]
    calib = calibration_set(camvid, out, meta, calib_images)
    _export_variants(ckpt, out, lowering, calib, "train" if camvid is not None else "synthetic", steps, cands)

    idx = np.linspace(0, sample.frames - 1, min(parity_frames, sample.frames)).round().astype(int)
    images = [sample.images[i] for i in idx]
    has_gt = sample.origin == "camvid val" or (sample.origin == "synthetic" and _is_synthetic_space(meta))
    labels = [sample.labels[i] for i in idx] if has_gt else None
    assert ckpt is not None
    parity_state: dict = {}
    steps.run("parity", lambda: _parity_step(cands, ckpt, images, labels, meta, threads, out, parity_state))
    steps.run("flicker", lambda: _flicker_step(cands, ckpt, sample, has_gt, meta, threads, out, parity_state))
    opened: list[Candidate] = []
    try:
        for c in cands:
            try:
                c.runner = make_runner(c.path or ckpt, threads=threads).activate()
                opened.append(c)
            except (ToolkitError, ImportError) as e:
                steps.skip(f"open {c.name}", str(e))
        shape = (1, 3, *pad_to_multiple(*meta.input_size))
        steps.run("speed", lambda: _speed_step(opened, shape, bench_iterations, threads, out))
        if "report" in parity_state:
            steps.run("parity report", lambda: _report_step(parity_state["report"], cands, out))
        else:
            steps.skip("parity report", "needs the parity step")
        passing = [c for c in opened if c.parity.get("passed") and c.speed]
        chosen = max(passing, key=lambda c: c.speed["throughput_fps"]) if passing else opened[0]
        report.chosen = chosen.name

        def video() -> str:
            assert chosen.runner is not None
            # Like with like: the model's own throughput with as many concurrent calls as the video has
            # workers, timed right before the video on the same runner (not the speed table's short run).
            own = bench_runners([chosen.runner], shape, warmup=2, iterations=max(20, bench_iterations), rounds=1,
                                threads=threads, streams=VIDEO_WORKERS)[0]
            s = infer_video(chosen.runner, str(sample.path), output=out / "demo.mp4", workers=VIDEO_WORKERS,
                            style=OverlayStyle(side_by_side=True))
            report.video = {**s.as_dict(), "workers": VIDEO_WORKERS, "model_fps": own.throughput_fps}
            write_json(out / "run.json", s.as_dict())
            if s.error:
                raise ToolkitError(s.error)
            pct = f" = {100 * s.fps / own.throughput_fps:.0f}%" if own.throughput_fps else ""
            return (f"demo.mp4 through {chosen.name}: {s.frames} frames at {s.fps:.2f} FPS end to end with "
                    f"{VIDEO_WORKERS} worker{pct} of the model alone at {VIDEO_WORKERS} stream "
                    f"({own.throughput_fps:.2f} FPS, {own.iterations} calls just before)")

        steps.run("video", video)
    finally:
        for c in opened:
            if c.runner is not None:
                c.runner.deactivate()
    report.candidates = [{"name": c.name, "path": str(c.path) if c.path else str(ckpt), "precision": c.precision,
                          "parity": c.parity, "speed": c.speed, "temporal": c.temporal} for c in cands]
    report.total_s = round(time.perf_counter() - t0, 1)
    write_json(out / "report.json", report.as_dict())
    return report


def _parity_step(cands: list[Candidate], ckpt: Path, images: list[np.ndarray], labels: list[np.ndarray] | None,
                 meta: ModelMeta, threads: int | None, out: Path, state: dict) -> str:
    basis, state["report"] = _parity(cands, ckpt, images, labels, meta, threads)
    table = parity_table(cands, basis, len(images))
    atomic_write(out / "parity.md", lambda p: p.write_text(table + "\n"))
    passed = [c.name for c in cands[1:] if c.parity.get("passed")]
    return f"parity.md: {len(passed)}/{len(cands) - 1} candidates passed on {len(images)} frames"


def _flicker_step(cands: list[Candidate], ckpt: Path, sample: object, has_gt: bool, meta: ModelMeta,
                  threads: int | None, out: Path, state: dict) -> str:
    """flicker.md: each precision's flip rate on the clip's first consecutive frames; the same figures go into
    report.json and, when the parity step ran, into parity_report.html's flicker section."""
    from toolkit.demo_flicker import FLICKER_FRAMES, flicker_table, measure_flicker

    n = min(FLICKER_FRAMES, sample.frames)  # type: ignore[attr-defined]
    labels = sample.labels[:n] if has_gt else None  # type: ignore[attr-defined]
    found = measure_flicker(ckpt, [c.path for c in cands[1:] if c.path is not None], sample.images[:n], labels,
                            meta, threads)  # type: ignore[attr-defined]
    for c, res in zip(cands[1:], found.candidates, strict=True):  # the parity step's runners, in its order
        c.temporal = res.temporal or {}
    if "report" in state:  # the HTML report's flicker section
        parity = state["report"]
        for mine, res in zip(parity.candidates, found.candidates, strict=True):
            mine.temporal = res.temporal
        parity.flicker_pairs = found.flicker_pairs
    atomic_write(out / "flicker.md", lambda p: p.write_text(flicker_table(found) + "\n"))
    worst = max(found.candidates, key=lambda r: r.temporal["excess_flip_rate"], default=None)
    return (f"flicker.md: {n} consecutive frames; largest excess {worst.name} "
            f"{worst.temporal['excess_flip_rate']:+.3f} points" if worst else "flicker.md: no candidates")


def _report_step(report: ParityReport, cands: list[Candidate], out: Path) -> str:
    """parity_report.html: the parity run's where-it-changed report, with the speed table of the same run;
    parity.json: the same figures as ``toolkit parity --json`` writes them."""
    import shlex
    import sys

    from toolkit.compare.html import write_html

    report.speed = [c.speed for c in cands if c.speed]
    typed = Path(sys.argv[0]).name == "toolkit"
    argv = ["toolkit", *sys.argv[1:]] if typed else ["toolkit", "demo", "--output", str(out)]
    report.command = shlex.join(argv)
    write_html(report, out / "parity_report.html", title="Parity report: toolkit demo")
    report.save(out / "parity.json")
    return f"parity_report.html, parity.json ({len(report.candidates)} candidates, {report.dataset['images']} frames)"


def _speed_step(cands: list[Candidate], shape: tuple[int, ...], iterations: int, threads: int | None,
                out: Path) -> str:
    runners = [c.runner for c in cands if c.runner is not None]
    results: list[BenchResult] = bench_runners(runners, shape, warmup=1, iterations=iterations, rounds=2,
                                               threads=threads)
    for c, r in zip(cands, results, strict=True):
        r.name = c.name
        c.speed = r.as_dict()
    table = format_table(results, compare=True)
    note = f"\n{INT8_NOTE}\n" if any(c.precision == "int8" for c in cands) else ""
    atomic_write(out / "speed.md", lambda p: p.write_text(f"input {'x'.join(map(str, shape))}\n\n{table}\n{note}"))
    best = max(results, key=lambda r: r.throughput_fps)
    return f"speed.md: fastest {best.name} at {best.throughput_fps:.2f} FPS"


def _camvid_classes(root: Path) -> tuple[str, ...]:
    from toolkit.core.dataset_info import load_classes_json

    return load_classes_json(root / "classes.json").class_names


def _is_synthetic_space(meta: ModelMeta) -> bool:
    from toolkit.data.synthetic import SYNTHETIC_CLASSES

    k = meta.num_classes
    return 2 <= k <= len(SYNTHETIC_CLASSES) and tuple(meta.dataset.class_names) == SYNTHETIC_CLASSES[:k]
