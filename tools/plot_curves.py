"""Loss and validation curves of several runs from their train_log.csv (docs/RESULTS.md's convergence figure).

    python tools/plot_curves.py runs/exp/enhanced_ce runs/exp/enhanced_bce runs/exp/segnet_ce runs/exp/segnet_bce \
        --out docs/figures/exp_curves.png
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path


def read_log(run: Path) -> dict[str, list[float]]:
    rows = list(csv.DictReader((run / "train_log.csv").open()))
    return {k: [float(r[k]) for r in rows] for k in ("epoch", "train_loss", "val_miou", "val_class_avg_acc")}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", type=Path)
    p.add_argument("--out", type=Path, required=True)
    a = p.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from toolkit.checkpoint import atomic_write

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    panels = (("train_loss", "training loss (each run's own loss)"), ("val_miou", "val mIoU"),
              ("val_class_avg_acc", "val class-average accuracy"))
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
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
