"""Evaluate finished runs on a split and print docs/RESULTS.md's tables (per-class IoU in the paper's
Table II layout, then the budget of each row), every number computed here.

    python tools/results_table.py runs/exp/segnet_ce runs/exp/segnet_bce runs/exp/enhanced_ce \
        runs/exp/enhanced_bce --data ../shared/camvid --checkpoint last
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", type=Path)
    p.add_argument("--data", required=True)
    p.add_argument("--split", default="val")
    p.add_argument("--checkpoint", default="last", choices=("last", "best"))
    p.add_argument("--json", type=Path, help="also write all scores here")
    a = p.parse_args()
    from toolkit.checkpoint import read_checkpoint
    from toolkit.evaluate import evaluate_model

    table, budget, dump = [], [], {}
    names: list[str] = []
    for run in a.runs:
        ckpt = run / f"{a.checkpoint}.safetensors"
        scores, _, meta, ds = evaluate_model(str(ckpt), a.data, a.split)
        names = list(ds.info.class_names)
        d = scores.as_dict(names)
        cfg = read_checkpoint(ckpt)[1].provenance.get("config", {})
        rows = list(csv.DictReader((run / "train_log.csv").open()))
        wall = sum(float(r["train_seconds"]) + float(r["val_seconds"]) for r in rows)
        label = f"{meta.arch} + {cfg.get('loss', '?')}"
        iou = [d["per_class_iou"][n] for n in names]
        table.append(f"| {label} | " + " | ".join("-" if v is None else f"{100 * v:.1f}" for v in iou)
                     + f" | **{100 * d['miou']:.1f}** | {100 * d['class_avg_acc']:.1f} | {100 * d['global_acc']:.1f} |")
        size = cfg.get("size") or meta.input_size
        budget.append(f"| {label} | {meta.width} | {size[0]}x{size[1]} | {'x'.join(map(str, cfg.get('crop', [])))} | "
                      f"{len(rows)} (ckpt: epoch {read_checkpoint(ckpt)[1].provenance.get('epoch')}) | "
                      f"{cfg.get('batch_size')} | {wall / 60:.0f} min | {run} |")
        dump[str(run)] = {"checkpoint": str(ckpt), "scores": d, "epochs": len(rows), "wall_seconds": wall}
    print(f"Per-class IoU (%) on {a.split}, {a.checkpoint} checkpoint of each run\n")
    print("| model + loss | " + " | ".join(names) + " | mIoU | class avg acc | global acc |")
    print("| --- |" + " ---: |" * (len(names) + 3))
    print("\n".join(table))
    print("\n| model + loss | width | frames | crop | epochs | batch | wall time | run |")
    print("| --- | ---: | --- | --- | --- | ---: | ---: | --- |")
    print("\n".join(budget))
    if a.json:
        a.json.write_text(json.dumps(dump, indent=1))


if __name__ == "__main__":
    main()
