"""The demo's flicker step: every precision against the PyTorch fp32 reference on consecutive clip frames
(``toolkit parity --video``'s measurement, ``toolkit.compare.temporal``), as a markdown table for the demo folder.

Apart from the parity step because that one samples frames across the clip (for mIoU), and a flip rate needs
frames that follow each other."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from toolkit.compare.results import ParityReport
from toolkit.core.meta import ModelMeta

FLICKER_FRAMES = 24  # consecutive frames (23 pairs): 1.6 s of CamVid's 15 Hz val clip


def measure_flicker(ckpt: Path, candidates: Sequence[Path], images: Sequence[np.ndarray],
                    labels: Sequence[np.ndarray] | None, meta: ModelMeta, threads: int | None) -> ParityReport:
    """``toolkit parity --video``'s comparison (``compare_with_provenance`` over a temporal Comparator) on
    ``images`` (in clip order); without labels only flicker and agreement mean something (the labels are all
    ``ignore_index``)."""
    from toolkit.backend import make_runner
    from toolkit.compare import Comparator, compare_with_provenance
    from toolkit.core.dataset import FrameSet

    ignore = meta.dataset.ignore_index if meta.dataset.ignore_index is not None else 255
    labels = list(labels) if labels is not None else [np.full(im.shape[:2], ignore, np.uint8) for im in images]
    reference = make_runner(ckpt, threads=threads)
    runners = [make_runner(path, threads=threads) for path in candidates]
    return compare_with_provenance(Comparator(reference, runners, temporal=True), ckpt, candidates,
                                   FrameSet(list(images), labels, meta.dataset),
                                   dataset_info={"split": "sample clip, consecutive frames"})


def flicker_table(report: ParityReport) -> str:
    """Markdown: per candidate its flip rate, the reference's and the excess, raw and flow-compensated."""
    first = report.candidates[0].temporal if report.candidates else None
    if not first:
        return "no candidates"
    rows = [f"flicker on {first['frames']} consecutive clip frames ({first['pairs']} pairs): % of pixels whose "
            "class changes from one frame to the next; excess = candidate - reference (points); flow-compensated: "
            "after warping the previous map along the frames' optical flow", "",
            "| model | flip % | reference flip % | excess | boundary excess | interior excess | "
            "flow-comp. flip % | flow-comp. excess |", "|---|---|---|---|---|---|---|---|"]

    def f(v: float | None, fmt: str = ".3f") -> str:
        return "-" if v is None else format(v, fmt)

    for c in report.candidates:
        t = c.temporal or {}
        rows.append(f"| {c.name} | {f(t.get('flip_rate'))} | {f(t.get('reference_flip_rate'))} | "
                    f"{f(t.get('excess_flip_rate'), '+.3f')} | {f(t.get('excess_boundary_flip_rate'), '+.3f')} | "
                    f"{f(t.get('excess_interior_flip_rate'), '+.3f')} | {f(t.get('compensated_flip_rate'))} | "
                    f"{f(t.get('excess_compensated_flip_rate'), '+.3f')} |")
    return "\n".join(rows)
