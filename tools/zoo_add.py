"""Add (or replace) a trained checkpoint in the model zoo: copy it into toolkit/assets, optionally as fp16,
measure its val mIoU with `toolkit eval`, and write its entry (sha256, figures, provenance) to zoo.json.

    python tools/zoo_add.py CKPT --name enhanced-w64 --summary "..." --trained "command, machine, time" \
        [--fp16] [--default-on cuda|cpu] [--data ../shared/camvid] [--skip-eval]

`--fp16` rounds every float tensor to fp16 (half the file; load_checkpoint casts back to fp32), after
checking on `--check-frames` val frames that the argmax does not move by more than a few pixels.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT / "toolkit" / "assets"


def write_fp16(src: Path, dst: Path) -> None:
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    from toolkit.checkpoint import METADATA_KEY
    from toolkit.files import atomic_write, file_sha256

    with safe_open(str(src), framework="pt") as f:
        meta = json.loads((f.metadata() or {})[METADATA_KEY])
    tensors = {k: (v.half() if v.is_floating_point() else v) for k, v in load_file(str(src)).items()}
    meta["provenance"]["weights_dtype"] = "float16"
    meta["provenance"]["converted_from_sha256"] = file_sha256(src)
    header = {METADATA_KEY: json.dumps(meta)}
    atomic_write(dst, lambda tmp: save_file(tensors, str(tmp), metadata=header))


def fp16_agreement(src: Path, half: Path, data: str, frames: int) -> float:
    """Pixel agreement of the argmax of the fp32 and fp16-stored weights on the first val frames."""
    import numpy as np
    import torch

    from toolkit.checkpoint import load_checkpoint
    from toolkit.data import CamVid, EvalTransform

    a, meta = load_checkpoint(src)
    b, _ = load_checkpoint(half)
    ds = CamVid(data, "val", limit=frames)
    ds.transform = EvalTransform(meta.dataset.mean, meta.dataset.std, meta.input_size)
    same = total = 0
    with torch.inference_mode():
        for i in range(len(ds)):
            x = ds[i][0][None]
            pa, pb = a(x).argmax(1).numpy(), b(x).argmax(1).numpy()
            same += int((pa == pb).sum())
            total += int(np.prod(pa.shape))
    return same / total


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--name", required=True)
    p.add_argument("--summary", required=True)
    p.add_argument("--trained", required=True, help="how it was trained: command, machine, wall time")
    p.add_argument("--fp16", action="store_true")
    p.add_argument("--check-frames", type=int, default=8)
    p.add_argument("--default-on", choices=("cuda", "cpu"), default=None)
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "camvid"))
    p.add_argument("--skip-eval", action="store_true", help="keep the entry's val mIoU empty")
    args = p.parse_args()
    from toolkit.checkpoint import read_checkpoint
    from toolkit.files import file_sha256

    read_checkpoint(args.checkpoint)  # one clear error for a bad file
    dst = ASSETS / f"{args.name}.safetensors"
    if args.fp16:
        write_fp16(args.checkpoint, dst)
        agree = fp16_agreement(args.checkpoint, dst, args.data, args.check_frames)
        print(f"fp16 weights: argmax agreement with fp32 on {args.check_frames} val frames: {100 * agree:.4f} %")
    else:
        dst.write_bytes(args.checkpoint.read_bytes())
    dst.chmod(0o644)
    miou = None
    if not args.skip_eval:
        out = ASSETS.parent.parent / "runs" / "zoo" / f"{args.name}_val.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        toolkit = str(Path(sys.executable).parent / "toolkit")
        subprocess.run([toolkit, "eval", str(dst), "--data", args.data, "--json", str(out)], check=True)
        miou = round(json.loads(out.read_text())["miou"], 4)
    zoo_file = ASSETS / "zoo.json"
    zoo = json.loads(zoo_file.read_text())
    if args.default_on:
        for entry in zoo.values():
            if entry.get("default_on") == args.default_on:
                entry["default_on"] = None
    zoo[args.name] = {"file": dst.name, "sha256": file_sha256(dst), "default_on": args.default_on,
                      "summary": args.summary, "trained": args.trained, "val_miou": miou,
                      "val_miou_source": f"toolkit eval {args.name} --data ../shared/camvid (CamVid val, PNG, CPU)"}
    zoo_file.write_text(json.dumps(zoo, indent=2) + "\n")
    print(f"{args.name}: {dst} ({dst.stat().st_size / 1e6:.2f} MB), val mIoU {miou}, written to {zoo_file}")


if __name__ == "__main__":
    main()
