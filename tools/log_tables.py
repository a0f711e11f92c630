"""The tables docs/RESULTS.md reads from training logs: training loss at chosen epochs, the first epoch under
a loss, the last epoch's per-class val IoU, and the mean val mIoU of the last epochs.

    python tools/log_tables.py ../shared/models/enhanced_w64_camvid.train_log.csv \
        ../shared/models/segnet_w64_camvid.train_log.csv --epochs 1,5,10,20,40,60,100,127 --thresholds 0.5,0.3,0.2
    python tools/log_tables.py runs/student_w16_180 runs/control_w16_180 runs/student_w16_240 --per-class --last 5

Each argument is a train_log.csv or a run folder holding one.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

CLASSES = ("Sky", "Building", "Pole", "Road", "Pavement", "Tree", "SignSymbol", "Fence", "Car", "Pedestrian",
           "Bicyclist")


def read_rows(path: Path) -> list[dict[str, str]]:
    log = path / "train_log.csv" if path.is_dir() else path
    return list(csv.DictReader(log.open()))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("logs", nargs="+", type=Path)
    p.add_argument("--epochs", default="", help="comma-separated epochs for the training-loss table")
    p.add_argument("--thresholds", default="", help="comma-separated losses: first epoch at or below each")
    p.add_argument("--per-class", action="store_true", help="last epoch's per-class val IoU (%%) and mIoU")
    p.add_argument("--last", type=int, default=0, help="mean val mIoU of the last N epochs")
    args = p.parse_args()
    runs = {str(path): read_rows(path) for path in args.logs}
    if args.epochs:
        epochs = [int(e) for e in args.epochs.split(",")]
        print("| run | " + " | ".join(map(str, epochs)) + " |")
        for name, rows in runs.items():
            print(f"| {name} | " + " | ".join(f"{float(rows[e - 1]['train_loss']):.3f}" for e in epochs) + " |")
    for t in [float(v) for v in args.thresholds.split(",") if v]:
        firsts = {n: next((r["epoch"] for r in rows if float(r["train_loss"]) <= t), "never")
                  for n, rows in runs.items()}
        print(f"train loss <= {t}: " + ", ".join(f"{n} epoch {e}" for n, e in firsts.items()))
    if args.per_class:
        print("| run | epoch | " + " | ".join(CLASSES) + " | mIoU | class avg acc | global acc |")
        for name, rows in runs.items():
            r = rows[-1]
            ious = " | ".join(f"{100 * float(r[f'iou_{c}']):.1f}" for c in CLASSES)
            print(f"| {name} | {r['epoch']} | {ious} | {100 * float(r['val_miou']):.1f} | "
                  f"{100 * float(r['val_class_avg_acc']):.1f} | {100 * float(r['val_global_acc']):.1f} |")
    if args.last:
        for name, rows in runs.items():
            values = [float(r["val_miou"]) for r in rows[-args.last:]]
            print(f"{name}: mean val mIoU of the last {len(values)} epochs {sum(values) / len(values):.4f} "
                  f"({', '.join(f'{v:.4f}' for v in values)})")


if __name__ == "__main__":
    main()
