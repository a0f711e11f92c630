"""Soak test of ``toolkit infer``: a long generated clip through the real command, its memory sampled.

    python tools/soak_infer.py --frames 10000 --size 96x128 --out /tmp/soak

Writes a panning synthetic clip of ``--frames`` frames (streamed to disk, never held in memory), a tiny
random-weight checkpoint of that input size, then runs ``toolkit infer --source clip -o out.mp4 --json``
as a child process and samples its resident memory (VmRSS from /proc) every ``--every`` seconds.
Prints one JSON line: RSS once the first frames are through, at the end, the peak, and the run's summary
(frames, FPS, exit code); the output video is read back by the command itself before it is renamed.
Figures in docs/BAD_INPUT.md come from this script.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import cv2
import torch

from toolkit.checkpoint import save_checkpoint
from toolkit.core.meta import ModelMeta
from toolkit.data import synthetic_info
from toolkit.models import create_model
from toolkit.video.sample import panning_scene


def write_clip(path: Path, frames: int, size: tuple[int, int]) -> None:
    h, w = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), 30.0, (w, h))
    for image, _ in panning_scene(frames, size, num_classes=3):
        writer.write(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    writer.release()


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=10_000)
    ap.add_argument("--size", default="96x128")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--every", type=float, default=0.5, help="seconds between RSS samples")
    ap.add_argument("--warm-s", type=float, default=5.0, help="RSS 'start' sample taken this long after launch")
    args = ap.parse_args()
    h, w = (int(v) for v in args.size.split("x"))
    args.out.mkdir(parents=True, exist_ok=True)
    clip, ckpt = args.out / "clip.mp4", args.out / "tiny.safetensors"
    write_clip(clip, args.frames, (h, w))
    torch.manual_seed(0)
    save_checkpoint(ckpt, create_model("segnet", num_classes=3, width=4),
                    ModelMeta("segnet", 4, synthetic_info(3), input_size=(h, w)))
    cmd = [str(Path(sys.executable).with_name("toolkit")), "infer", "-m", str(ckpt), "-s",
           str(clip), "-o", str(args.out / "out.mp4"), "--json", str(args.out / "run.json"), "--no-progress"]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    samples: list[tuple[float, float]] = []
    while proc.poll() is None:
        mb = rss_mb(proc.pid)
        if mb is not None:
            samples.append((time.perf_counter() - t0, mb))
        time.sleep(args.every)
    err = proc.stderr.read() if proc.stderr else ""
    start = next((mb for t, mb in samples if t >= args.warm_s), samples[0][1] if samples else None)
    summary = json.loads((args.out / "run.json").read_text()) if (args.out / "run.json").is_file() else {}
    print(json.dumps({"frames": args.frames, "size": args.size, "exit_code": proc.returncode,
                      "stderr": err.strip()[-300:], "rss_mb_start": start,
                      "rss_mb_end": samples[-1][1] if samples else None,
                      "rss_mb_peak": max((mb for _, mb in samples), default=None), "samples": len(samples),
                      "frames_written": summary.get("frames"), "fps": summary.get("fps"),
                      "wall_s": round(time.perf_counter() - t0, 1)}))


if __name__ == "__main__":
    main()
