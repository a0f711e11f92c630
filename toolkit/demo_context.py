"""The demo's context and what its report is built from (``toolkit.demo`` runs the steps over it).

``DemoContext`` holds the options, the checkpoint and its metadata, the candidates and each step's result
object once it ran (the parity run's ``ParityReport`` and ``CandidateResult`` per candidate, the flicker
run's, the ``BenchResult``s); ``candidate_entry`` and ``parity_table`` turn them into report.json's entries
and parity.md, once, at the end.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from toolkit.backend.base import BaseRunner
from toolkit.bench import BenchResult
from toolkit.compare.results import CandidateResult, ParityReport
from toolkit.core.meta import ModelMeta

if TYPE_CHECKING:
    from toolkit.video.sample import SampleClip

INT8_NOTE = ("int8-cpu: uint8 activations + int8 weights, the form ONNX Runtime's CPU kernels run fast; "
             "int8-trt: symmetric int8 Q/DQ, the form `toolkit build-engine` takes for a TensorRT engine "
             "(on the CPU it runs slower).")


@dataclass
class DemoOptions:
    """What a demo run takes (``toolkit demo``'s options; ``command`` is the command line as the CLI saw it)."""

    out_dir: str | Path = "toolkit-demo"
    model: str | Path | None = None  # a checkpoint; None: the zoo's default CPU checkpoint
    data: str | Path | None = None
    use_camvid: bool = True
    frames: int = 60
    parity_frames: int = 12
    calib_images: int = 16
    bench_iterations: int = 10
    threads: int | None = None
    lowering: str = "mask"
    model_label: str | None = None  # which model this is and why (the CLI passes the zoo's description)
    command: str | None = None  # recorded in parity.json and the HTML report


@dataclass
class StepResult:
    name: str
    status: str  # "ok", "skipped", "failed"
    seconds: float
    detail: str = ""


@dataclass
class Candidate:
    """One model the demo may run the video through, with the result objects of the steps it went through."""

    name: str
    path: Path | None  # None: the checkpoint itself through PyTorch (the reference)
    precision: str
    parity: CandidateResult | None = None  # its entry in the parity run (None: the reference, or no parity)
    flicker: CandidateResult | None = None  # its entry in the flicker run (toolkit.demo_flicker)
    speed: BenchResult | None = None
    runner: BaseRunner | None = None

    @property
    def reference(self) -> bool:
        return self.path is None


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


@dataclass
class DemoContext:
    """Everything the steps share: the inputs, and each step's result object once it ran."""

    options: DemoOptions
    out: Path
    ckpt: Path
    meta: ModelMeta
    camvid: Path | None
    report: DemoReport
    say: Callable[[str], None]
    candidates: list[Candidate] = field(default_factory=list)
    calibration: list[Path] = field(default_factory=list)
    clip: SampleClip | None = None
    parity: ParityReport | None = None  # compare_with_provenance's report
    labels_basis: str = "ground truth"
    flicker: ParityReport | None = None
    chosen: Candidate | None = None

    @property
    def sample(self) -> SampleClip:
        assert self.clip is not None, "the sample clip step is required and runs first"
        return self.clip

    @property
    def has_gt(self) -> bool:
        """The clip's labels are in the model's label space (CamVid val, or synthetic for a synthetic model)."""
        return self.sample.origin == "camvid val" or (self.sample.origin == "synthetic" and is_synthetic_space(
            self.meta))

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (1, 3, *self.meta.padded_input_size)

    def passed(self, c: Candidate) -> bool:
        """Passed parity (the reference does by definition, once the parity step ran)."""
        return self.parity is not None and (c.reference or (c.parity is not None and c.parity.passed))


def parity_entry(ctx: DemoContext, c: Candidate) -> dict:
    """report.json's parity figures of one candidate ({} when the parity step did not run)."""
    if ctx.parity is None:
        return {}
    if c.reference:
        return {"miou": ctx.parity.reference["miou"], "delta_miou": 0.0, "pixel_agreement": 100.0,
                "passed": True, "reference": True, "labels": ctx.labels_basis}
    r = c.parity
    assert r is not None
    return {"miou": r.miou, "delta_miou": r.delta_miou, "pixel_agreement": r.pixel_agreement,
            "max_abs_logit_diff": r.max_abs_logit_diff, "max_miou_drop": r.tolerance.max_miou_drop,
            "min_pixel_agreement": r.tolerance.min_pixel_agreement, "passed": r.passed, "failures": r.failures,
            "labels": ctx.labels_basis}


def candidate_entry(ctx: DemoContext, c: Candidate) -> dict:
    return {"name": c.name, "path": str(c.path) if c.path else str(ctx.ckpt), "precision": c.precision,
            "parity": parity_entry(ctx, c), "speed": c.speed.as_dict() if c.speed is not None else {},
            "temporal": (c.flicker.temporal or {}) if c.flicker is not None else {}}


def parity_table(ctx: DemoContext) -> str:
    """parity.md: one row per candidate from the parity report's results."""
    assert ctx.parity is not None
    rows = [f"parity on {ctx.parity.dataset['images']} clip frames; labels: {ctx.labels_basis}", "",
            "| model | precision | mIoU % | Δ mIoU (pts) | pixel agreement % | max abs logit diff | "
            "max drop / min agreement | result |", "|---|---|---|---|---|---|---|---|"]
    for c in ctx.candidates:
        r = c.parity
        if c.reference:
            rows.append(f"| {c.name} | {c.precision} | {ctx.parity.reference['miou']:.2f} | reference | 100 | 0 | - | "
                        "reference |")
        elif r is not None:
            rows.append(f"| {c.name} | {c.precision} | {r.miou:.2f} | {r.delta_miou:+.3f} | "
                        f"{r.pixel_agreement:.3f} | {r.max_abs_logit_diff:.2e} | {r.tolerance.max_miou_drop} / "
                        f"{r.tolerance.min_pixel_agreement} | "
                        f"{'pass' if r.passed else 'FAIL: ' + '; '.join(r.failures)} |")
    if any(c.parity is not None and c.precision == "int8" for c in ctx.candidates):
        rows += ["", INT8_NOTE]
    return "\n".join(rows)


def is_synthetic_space(meta: ModelMeta) -> bool:
    """The model's classes are the synthetic scenes' first k (the procedural clip's labels mean something)."""
    from toolkit.data.synthetic import SYNTHETIC_CLASSES

    k = meta.num_classes
    return 2 <= k <= len(SYNTHETIC_CLASSES) and tuple(meta.dataset.class_names) == SYNTHETIC_CLASSES[:k]
