"""Which layers cost INT8 accuracy: quantize with one Conv at a time kept in float and measure.

For an fp32 ONNX model, quantizes it once (all layers) and once per Conv with that Conv excluded,
then compares each against the fp32 model on the first N frames of a split (pixel agreement and
mIoU, through toolkit.compare). Calibration runs once (the cache key does not depend on --exclude).
Prints a Markdown table sorted by the agreement each exclusion recovers:

    python tools/experiments/int8_sensitivity.py segnet_mask.onnx --data ../shared/camvid --target tensorrt --frames 30
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import onnx

from toolkit.backend import make_runner
from toolkit.compare import Comparator
from toolkit.core.metadata import read_model_meta
from toolkit.core.onnx_file import load_onnx, save_onnx
from toolkit.data import CamVid
from toolkit.quant import ImageFeeds, calibration_images, quantize_int8


def measure(fp32: Path, model: onnx.ModelProto, data: CamVid) -> tuple[float, float]:
    """(pixel agreement %, delta mIoU) of ``model`` against the fp32 file; runners come from the one factory,
    which takes files, so the candidate is written to a temporary file first."""
    with tempfile.TemporaryDirectory(prefix="int8-sens-") as tmp:
        cand_path = save_onnx(model, Path(tmp) / "int8.onnx")
        ref, cand = make_runner(fp32, name="fp32"), make_runner(cand_path, name="int8")
        c = Comparator(ref, [cand]).run(data).candidates[0]
    return c.pixel_agreement, c.delta_miou


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", type=Path)
    p.add_argument("--data", default="../shared/camvid")
    p.add_argument("--split", default="val")
    p.add_argument("--frames", type=int, default=30)
    p.add_argument("--target", default="tensorrt")
    p.add_argument("--method", default="minmax")
    p.add_argument("--calib-size", type=int, default=None)
    p.add_argument("--exclude", default="", help="always keep these (comma-separated) in float")
    a = p.parse_args()
    fp32 = load_onnx(a.model)
    meta = read_model_meta(fp32)
    feeds = ImageFeeds(calibration_images(a.data, "train", a.calib_size), meta.dataset.mean, meta.dataset.std,
                       meta.input_size)
    data = CamVid(a.data, a.split, limit=a.frames)
    base = [e for e in a.exclude.split(",") if e]
    q, _ = quantize_int8(fp32, feeds, a.target, a.method, exclude=base)
    agree0, delta0 = measure(a.model, q, data)
    rows = []
    for node in [n.name for n in fp32.graph.node if n.op_type == "Conv" and n.name not in base]:
        q, _ = quantize_int8(fp32, feeds, a.target, a.method, exclude=[*base, node])
        agree, delta = measure(a.model, q, data)
        rows.append((agree - agree0, node, agree, delta))
        print(f"{node}: agreement {agree:.3f} %, delta mIoU {delta:+.3f}", file=sys.stderr)
    print(f"all layers int8 ({a.target}, {a.method}{', excluding ' + a.exclude if base else ''}): pixel agreement "
          f"{agree0:.3f} %, delta mIoU {delta0:+.3f} on {len(data)} {a.split} frames\n")
    print("| Conv kept in float | pixel agreement % | gain (points) | delta mIoU |\n|---|---|---|---|")
    for gain, node, agree, delta in sorted(rows, reverse=True):
        print(f"| {node} | {agree:.3f} | {gain:+.3f} | {delta:+.3f} |")


if __name__ == "__main__":
    main()
