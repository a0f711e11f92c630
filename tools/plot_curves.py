"""Loss and validation curves of several runs from their train_log.csv (docs/RESULTS.md's convergence figure).

    python tools/plot_curves.py runs/exp/enhanced_ce runs/exp/enhanced_bce runs/exp/segnet_ce runs/exp/segnet_bce \
        --out docs/figures/exp_curves.png
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

RARE = ("Pole", "SignSymbol", "Fence", "Pedestrian", "Bicyclist")  # CamVid classes under 2% of the pixels


def read_log(run: Path, rare: tuple[str, ...] = RARE) -> dict[str, list[float]]:
    rows = list(csv.DictReader((run / "train_log.csv").open()))
    log = {k: [float(r[k]) for r in rows] for k in ("epoch", "train_loss", "val_miou", "val_class_avg_acc")}
    cols = [f"iou_{c}" for c in rare if f"iou_{c}" in rows[0]]
    log["rare_miou"] = [sum(float(r[c] or 0) for c in cols) / max(len(cols), 1) for r in rows]
    return log


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", type=Path)
    p.add_argument("--out", type=Path, required=True)
    a = p.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from toolkit.files import atomic_write

    fig, axes = plt.subplots(1, 4, figsize=(15, 3.4))
    panels = (("train_loss", "training loss (each run's own loss)"), ("val_miou", "val mIoU"),
              ("val_class_avg_acc", "val class-average accuracy"),
              ("rare_miou", "val mean IoU of the 5 rare classes (<2% of pixels)"))
    for run in a.runs:
        log = read_log(run)
        style = "-" if "bce" in run.name else "--"
        for ax, (key, _) in zip(axes, panels, strict=True):
            ax.plot(log["epoch"], log[key], style, marker="o", markersize=3, label=run.name)
    for ax, (_, title) in zip(axes, panels, strict=True):
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    atomic_write(a.out, lambda tmp: fig.savefig(tmp, format="png", dpi=80))
    print(f"wrote {a.out}\n")
    print_convergence_table(a.runs)


def print_convergence_table(runs: list[Path], thresholds: tuple[float, ...] = (0.20, 0.23), first: int = 4) -> None:
    """docs/RESULTS.md's convergence table: epochs to reach val mIoU thresholds, means from epoch ``first``."""
    print("| run | " + " | ".join(f"first epoch with val mIoU >= {t:.2f}" for t in thresholds)
          + f" | mean val mIoU, epochs {first}-end | mean class-avg acc, epochs {first}-end |")
    print("| --- |" + " ---: |" * (len(thresholds) + 2))
    for run in runs:
        log = read_log(run)
        m, ca = log["val_miou"], log["val_class_avg_acc"]
        reach = [next((str(i + 1) for i, v in enumerate(m) if v >= t), "never") for t in thresholds]
        tail, tail_ca = m[first - 1:], ca[first - 1:]
        print(f"| {run.name} | " + " | ".join(reach)
              + f" | {sum(tail) / len(tail):.3f} | {sum(tail_ca) / len(tail_ca):.3f} |")


if __name__ == "__main__":
    main()
