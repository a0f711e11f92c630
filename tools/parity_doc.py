"""Produce docs/PARITY.md's tables: export, quantize and compare a checkpoint on CamVid val.

Runs the real CLI commands (so the commands printed in the document are the ones that made the
numbers), then renders the parity JSON as Markdown:

    python tools/parity_doc.py --checkpoint toolkit/assets/enhanced-w16.safetensors --data ../shared/camvid \
        --work /tmp/parity > /tmp/parity/tables.md

``--render-only parity.json`` re-renders an existing report.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path


def run(cmd: list[str], log: list[str]) -> None:
    shown = " ".join(shlex.quote(c) for c in ["toolkit" if cmd[0].endswith("/toolkit") else cmd[0], *cmd[1:]])
    print(f"$ {shown}", file=sys.stderr)
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    sys.stderr.write(proc.stdout[-2000:] + proc.stderr[-2000:])
    if proc.returncode not in (0, 1):  # 1 = a parity tolerance failed: still render the report
        raise SystemExit(f"command failed ({proc.returncode}): {shown}")
    log.append(f"{shown}  # {time.perf_counter() - start:.0f} s, exit {proc.returncode}")


def pipeline(ckpt: str, data: str, work: Path, calib_size: int | None, mixed: str) -> tuple[Path, list[str]]:
    work.mkdir(parents=True, exist_ok=True)
    tk = [str(Path(sys.executable).with_name("toolkit"))]
    log: list[str] = []
    fp32, fp16 = work / "segnet_mask.onnx", work / "segnet_fp16.onnx"
    calib = ["--calib-data", data, "--calib-split", "train"] + (["--calib-size", str(calib_size)] if calib_size else [])
    run([*tk, "export", ckpt, "-o", str(fp32), "--unpool", "mask"], log)
    run([*tk, "quantize", str(fp32), "--precision", "fp16", "-o", str(fp16)], log)
    cands = [fp32, fp16]
    for target in ("tensorrt", "cpu"):
        short = "trt" if target == "tensorrt" else "cpu"
        variants = [(f"segnet_int8_{short}.onnx", [])]
        if mixed:
            variants.append((f"segnet_int8_{short}_mixed.onnx", ["--exclude", mixed]))
        for name, extra in variants:
            run([*tk, "quantize", str(fp32), "--precision", "int8", "--target", target, *calib, *extra,
                 "-o", str(work / name)], log)
            cands.append(work / name)
    report = work / "parity.json"
    run([*tk, "parity", "--reference", ckpt, *[a for c in cands for a in ("-c", str(c))], "--data", data,
         "--split", "val", "--json", str(report)], log)
    return report, log


def render(report_path: Path, log: list[str]) -> str:
    r = json.loads(report_path.read_text())
    ref = r["reference"]
    lines = [f"Reference: `{ref['name']}` (PyTorch fp32), mIoU {ref['miou']:.2f} on {r['dataset'].get('split')} "
             f"({r['dataset']['images']} images).", "",
             "| model | precision | unpool | mIoU | Δ mIoU | pixel agreement % | max \\|Δ logit\\| "
             "| mean \\|Δ logit\\| | tolerance (drop / agreement) | result |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for c in r["candidates"]:
        t = c["tolerance"]
        lines.append(f"| {Path(c['path']).name} | {c['precision']} | {c['lowering']} | {c['miou']:.2f} | "
                     f"{c['delta_miou']:+.3f} | {c['pixel_agreement']:.3f} | {c['max_abs_logit_diff']:.2e} | "
                     f"{c['mean_abs_logit_diff']:.2e} | ≤ {t['max_miou_drop']} / ≥ {t['min_pixel_agreement']} | "
                     f"{'pass' if c['passed'] else 'FAIL'} |")
    names = r["class_names"]
    lines += ["", "Per-class IoU of the reference and Δ IoU (points) of each candidate:", "",
              "| class | reference | " + " | ".join(Path(c["path"]).name for c in r["candidates"]) + " |",
              "|---|---|" + "---|" * len(r["candidates"])]
    for n in names:
        ref_iou = ref["per_class_iou"][n]
        cells = [f"{d:+.3f}" if (d := c["per_class_delta_iou"][n]) is not None else "-" for c in r["candidates"]]
        lines.append(f"| {n} | {ref_iou:.2f} | " + " | ".join(cells) + " |" if ref_iou is not None
                     else f"| {n} | - | " + " | ".join(cells) + " |")
    if log:
        lines += ["", "Commands (as run, with wall time on this machine):", "", "```bash", *log, "```"]
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default="toolkit/assets/enhanced-w16.safetensors")
    p.add_argument("--data", default="../shared/camvid")
    p.add_argument("--work", type=Path, default=Path("/tmp/parity"))
    p.add_argument("--calib-size", type=int, default=None)
    p.add_argument("--mixed", default="encoder.stage1.0.0,head",
                   help="layers kept in float for the mixed-precision int8 variants ('' for none)")
    p.add_argument("--render-only", type=Path, default=None)
    a = p.parse_args()
    if a.render_only:
        print(render(a.render_only, []), end="")
        return
    report, log = pipeline(a.checkpoint, a.data, a.work, a.calib_size, a.mixed)
    print(render(report, log), end="")


if __name__ == "__main__":
    main()
