"""Parity results: one record per candidate, a report that is truthy when every candidate passed,
and JSON that can be saved and reloaded (``candidates[i].miou``, ``.delta_miou``, ``.pixel_agreement``,
``.passed``). mIoU and deltas are in percentage points; pixel agreement in percent."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from toolkit.files import atomic_write


@dataclass(frozen=True)
class Tolerance:
    """A candidate passes when its mIoU drop and pixel agreement are within these bounds."""

    max_miou_drop: float  # percentage points below the reference
    min_pixel_agreement: float  # percent of pixels whose class equals the reference's


# Per precision (fp16 and int8 are the targets; fp32 allows only float rounding).
DEFAULT_TOLERANCES = {
    "fp32": Tolerance(max_miou_drop=0.01, min_pixel_agreement=99.9),
    "fp16": Tolerance(max_miou_drop=0.1, min_pixel_agreement=99.0),
    # bf16 keeps 8 significant bits to fp16's 11: between fp16 and int8
    "bf16": Tolerance(max_miou_drop=0.5, min_pixel_agreement=98.5),
    "int8": Tolerance(max_miou_drop=1.0, min_pixel_agreement=98.0),
}


def _clean(v: float | None) -> float | None:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else v


@dataclass
class CandidateResult:
    """How one candidate compares with the reference over the whole split."""

    name: str
    path: str
    backend: str
    precision: str
    lowering: str
    miou: float
    delta_miou: float
    pixel_agreement: float
    max_abs_logit_diff: float
    mean_abs_logit_diff: float
    per_class_iou: dict[str, float | None]
    per_class_delta_iou: dict[str, float | None]
    tolerance: Tolerance
    passed: bool = False
    failures: list[str] = field(default_factory=list)
    source_matches: bool | None = None  # exported from the reference checkpoint itself (sha256), if known
    sha256: str | None = None  # of the candidate file, when it is one
    drift: dict | None = None  # where it changed: toolkit.compare.drift's summary
    temporal: dict | None = None  # flicker over a clip (parity --video): toolkit.compare.temporal's summary
    layers: list[dict] | None = None  # parity --layers: per-layer error vs the fp32 ONNX (toolkit.compare.layers)
    first_divergence: dict | None = None  # parity --layers: the first layer whose error jumps, and the rule
    plan: dict | None = None  # the mixed-precision plan the candidate's metadata carries (toolkit quantize)

    def judge(self) -> CandidateResult:
        """Set ``passed`` and ``failures`` from the tolerance."""
        self.failures = []
        if -self.delta_miou > self.tolerance.max_miou_drop:
            self.failures.append(f"mIoU drop {-self.delta_miou:.3f} > {self.tolerance.max_miou_drop}")
        if self.pixel_agreement < self.tolerance.min_pixel_agreement:
            self.failures.append(f"pixel agreement {self.pixel_agreement:.3f} % < "
                                 f"{self.tolerance.min_pixel_agreement} %")
        self.passed = not self.failures
        return self


@dataclass
class ParityReport:
    """Reference scores, dataset, and one CandidateResult per candidate."""

    reference: dict
    dataset: dict
    candidates: list[CandidateResult]
    class_names: list[str]
    palette: list[list[int]] = field(default_factory=list)  # RGB per class, to draw class maps
    command: str = ""  # the command line that produced the report
    speed: list[dict] = field(default_factory=list)  # toolkit.bench results, reference first (--bench)
    # Per candidate, its lowest-agreement frames with their maps (toolkit.compare.drift.WorstFrame), for
    # the HTML report; not in the JSON (the JSON has their indices and numbers in each candidate's drift).
    worst_frames: list[list] = field(default_factory=list, repr=False, compare=False)
    # Per candidate, the frame pair it flickered most on beyond the reference (toolkit.compare.temporal's
    # FlickerPair or None), for the HTML report's temporal section; parity --video only.
    flicker_pairs: list = field(default_factory=list, repr=False, compare=False)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.candidates)

    def __bool__(self) -> bool:
        return self.passed

    def to_dict(self) -> dict:
        cands = []
        for c in self.candidates:
            d = asdict(c)
            d["per_class_iou"] = {k: _clean(v) for k, v in c.per_class_iou.items()}
            d["per_class_delta_iou"] = {k: _clean(v) for k, v in c.per_class_delta_iou.items()}
            d["miou"], d["delta_miou"] = _clean(c.miou), _clean(c.delta_miou)  # NaN: an unlabelled clip
            cands.append(d)
        return {"passed": self.passed, "command": self.command, "reference": self.reference, "dataset": self.dataset,
                "class_names": self.class_names, "palette": self.palette, "candidates": cands, "speed": self.speed}

    def save(self, path: str | Path) -> Path:
        text = json.dumps(self.to_dict(), indent=2)
        return atomic_write(path, lambda tmp: tmp.write_text(text))

    @classmethod
    def load(cls, path: str | Path) -> ParityReport:
        d = json.loads(Path(path).read_text())
        cands = [CandidateResult(**{**c, "tolerance": Tolerance(**c["tolerance"])}) for c in d["candidates"]]
        return cls(d["reference"], d["dataset"], cands, d["class_names"], d.get("palette", []), d.get("command", ""),
                   d.get("speed", []))
