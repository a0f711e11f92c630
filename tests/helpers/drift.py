"""Tiny label maps and one frame through the DriftAccumulator, for the drift tests."""

from __future__ import annotations

import numpy as np

from toolkit.compare.drift import DriftAccumulator, DriftOptions
from toolkit.metrics import ConfusionMatrix

NAMES = ["a", "b", "c"]


def halves(h: int = 8, w: int = 10) -> np.ndarray:
    """Class 0 in columns 0-4, class 1 in columns 5-9."""
    m = np.zeros((h, w), np.int64)
    m[:, w // 2:] = 1
    return m


def run(label: np.ndarray, ref: np.ndarray, preds: list[np.ndarray], band_px: int = 1,
        keep: int = 3) -> tuple[dict, DriftAccumulator]:
    """One frame through the accumulator, with the confusion matrices the Comparator would keep."""
    acc = DriftAccumulator(3, 255, 1, DriftOptions(band_px=band_px, worst_frames=keep))
    ref_cm, cand_cm = ConfusionMatrix(3, 255), ConfusionMatrix(3, 255)
    for i, pred in enumerate(preds):
        image = np.zeros((*label.shape, 3), np.uint8)
        acc.frame(i, f"f{i}", image, label, ref)
        acc.add(0, pred)
        ref_cm.update(ref, label)
        cand_cm.update(pred, label)
    (summary,) = acc.summaries([cand_cm], ref_cm, NAMES)
    return summary, acc
