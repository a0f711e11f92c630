"""Streaming confusion matrix and the segmentation scores derived from it (the one metrics module).

A class absent from both the labels and the predictions of everything seen has an undefined IoU
(0/0): it is reported as NaN and excluded from the mean, and ``absent_classes`` names it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from toolkit.errors import InvalidValueError


@dataclass
class SegScores:
    """Scores of one evaluation; ``per_class_iou``/``per_class_acc`` hold NaN where undefined."""

    miou: float
    global_acc: float
    class_avg_acc: float
    per_class_iou: np.ndarray
    per_class_acc: np.ndarray
    absent_classes: list[int]
    num_pixels: int

    def as_dict(self, class_names: Sequence[str] | None = None) -> dict:
        names = list(class_names) if class_names else [str(i) for i in range(len(self.per_class_iou))]
        nan_to_none = lambda v: None if np.isnan(v) else float(v)  # noqa: E731
        return {
            "miou": self.miou,
            "global_acc": self.global_acc,
            "class_avg_acc": self.class_avg_acc,
            "per_class_iou": {n: nan_to_none(v) for n, v in zip(names, self.per_class_iou, strict=True)},
            "per_class_acc": {n: nan_to_none(v) for n, v in zip(names, self.per_class_acc, strict=True)},
            "absent_classes": [names[i] for i in self.absent_classes],
            "num_pixels": self.num_pixels,
        }


class ConfusionMatrix:
    """K x K counts (rows: label, columns: prediction), pixels with the ignore label skipped."""

    def __init__(self, num_classes: int, ignore_index: int | None = 255) -> None:
        self.num_classes, self.ignore_index = num_classes, ignore_index
        self.matrix = np.zeros((num_classes, num_classes), dtype=np.int64)

    def reset(self) -> None:
        self.matrix[:] = 0

    def update(self, pred: np.ndarray | torch.Tensor, label: np.ndarray | torch.Tensor) -> None:
        """Add a batch of class-id maps (any matching shapes). Labels outside 0..K-1 other than the
        ignore label are an error; predictions outside it cannot happen from an argmax."""
        p = torch.as_tensor(pred).reshape(-1).long()
        t = torch.as_tensor(label).reshape(-1).long()
        if p.shape != t.shape:
            raise InvalidValueError(f"prediction has {p.numel()} pixels, label {t.numel()}")
        keep = t != self.ignore_index if self.ignore_index is not None else torch.ones_like(t, dtype=torch.bool)
        p, t = p[keep], t[keep]
        k = self.num_classes
        if t.numel() and (int(t.min()) < 0 or int(t.max()) >= k):
            raise InvalidValueError(f"label values must be 0..{k - 1} or the ignore label {self.ignore_index}")
        if p.numel() and (int(p.min()) < 0 or int(p.max()) >= k):
            raise InvalidValueError(f"prediction values must be 0..{k - 1}")
        self.matrix += torch.bincount(t * k + p, minlength=k * k).reshape(k, k).numpy()

    def merge(self, other: ConfusionMatrix) -> None:
        self.matrix += other.matrix

    def scores(self) -> SegScores:
        m = self.matrix.astype(np.float64)
        tp = np.diag(m)
        label_count, pred_count = m.sum(1), m.sum(0)
        union = label_count + pred_count - tp
        with np.errstate(invalid="ignore", divide="ignore"):
            iou = np.where(union > 0, tp / union, np.nan)
            acc = np.where(label_count > 0, tp / label_count, np.nan)
        total = m.sum()
        return SegScores(
            miou=float(np.nanmean(iou)) if np.any(union > 0) else float("nan"),
            global_acc=float(tp.sum() / total) if total else float("nan"),
            class_avg_acc=float(np.nanmean(acc)) if np.any(label_count > 0) else float("nan"),
            per_class_iou=iou,
            per_class_acc=acc,
            absent_classes=[int(i) for i in np.flatnonzero(union == 0)],
            num_pixels=int(total),
        )
