"""PNG figures for evaluation reports: confusion-matrix heat map and per-class IoU bars (matplotlib, Agg).

matplotlib is imported only here and only when a plot is asked for (``pip install segnet-toolkit[plots]``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from toolkit.errors import ToolkitError
from toolkit.files import atomic_write


def require_matplotlib() -> None:
    """Fail before the work whose results would be plotted (an evaluation can take minutes), not after it."""
    _pyplot()


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise ToolkitError("--plots needs matplotlib: pip install 'segnet-toolkit[plots]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    def write(tmp: Path) -> None:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")

    try:
        return atomic_write(path, write)
    finally:
        _pyplot().close(fig)


def confusion_matrix_png(matrix: np.ndarray, class_names: Sequence[str], path: str | Path,
                         title: str = "Confusion matrix (rows: label, normalised per row)") -> Path:
    """Row-normalised confusion matrix as a heat map with the percentages written in the cells."""
    plt = _pyplot()
    m = np.asarray(matrix, np.float64)
    rows = m.sum(1, keepdims=True)
    norm = np.divide(m, rows, out=np.zeros_like(m), where=rows > 0)
    k = len(class_names)
    fig, ax = plt.subplots(figsize=(1.0 + 0.55 * k, 0.8 + 0.5 * k))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(k), class_names, rotation=60, ha="right")
    ax.set_yticks(range(k), class_names)
    ax.set_xlabel("prediction")
    ax.set_ylabel("label")
    ax.set_title(title, fontsize=9)
    for i in range(k):
        for j in range(k):
            if norm[i, j] >= 0.005:
                ax.text(j, i, f"{100 * norm[i, j]:.0f}", ha="center", va="center", fontsize=6,
                        color="white" if norm[i, j] > 0.5 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046)
    return _save(fig, Path(path))


def per_class_iou_png(ious: Sequence[float | None], class_names: Sequence[str], path: str | Path,
                      title: str = "Per-class IoU") -> Path:
    """Horizontal bars of each class's IoU (absent classes left empty) with the mIoU as a line."""
    plt = _pyplot()
    vals = np.array([np.nan if v is None else float(v) for v in ious])
    k = len(class_names)
    fig, ax = plt.subplots(figsize=(6, 0.9 + 0.32 * k))
    ax.barh(range(k), np.nan_to_num(vals), color="#4477aa")
    ax.set_yticks(range(k), class_names)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    miou = float(np.nanmean(vals)) if np.isfinite(vals).any() else float("nan")
    ax.axvline(miou, color="#cc6677", linestyle="--", label=f"mIoU {miou:.3f}")
    for i, v in enumerate(vals):
        if np.isfinite(v):
            ax.text(min(v + 0.01, 0.9), i, f"{v:.3f}", va="center", fontsize=7)
    ax.set_xlabel("IoU")
    ax.set_title(title, fontsize=9)
    ax.legend(loc="lower right", fontsize=8)
    return _save(fig, Path(path))
