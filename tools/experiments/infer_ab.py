"""A/B of ``toolkit infer``'s end-to-end/bench ratio between two versions of the code, side by side.

    python tools/experiments/infer_ab.py OLD_REV [--new NEW_REV] --model bench_out/int8_mask.onnx \\
        --workers 2 --threads 1

Checks OLD_REV (and NEW_REV, default: this working tree) out into temporary git worktrees and runs
the same measurement in alternating processes, one per version per round: ``--repeats`` alternations
of a ``bench`` block and a pipeline run of the sample clip with the same runner, whose ratio of
totals is the figure docs/BENCHMARKS.md reports for ``toolkit infer``. This guest's speed drifts by
up to 25 % within an hour, so only versions measured in the same interleaved run are compared.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

# Runs inside each checkout, against that checkout's toolkit (APIs common to both sides only).
MEASURE = r"""
import logging, sys, tempfile
from pathlib import Path
try:  # checkouts from before the one runner factory (toolkit.backend.make_runner with RunnerOptions)
    from toolkit.bench import open_runner as make_runner
except ImportError:
    from toolkit.backend import make_runner
from toolkit.bench import bench_runners
from toolkit.video import infer_video
from toolkit.video.sample import make_sample_clip
logging.basicConfig(level=logging.WARNING)
model, repeats, workers, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
with tempfile.TemporaryDirectory() as tmp:
    with make_runner(model) as probe:
        h, w = probe.meta.input_size
    clip = make_sample_clip(Path(tmp) / "clip.mp4", frames=100, size=(h, w), keep_frames=False)
    shape = (1, 3, h + (-h) % 8, w + (-w) % 8)  # written out: older checkouts lack pad_to_multiple
    bench_s = infer_s = 0.0
    bench_n = infer_n = 0
    with make_runner(model, threads=threads, spin=False) as runner:
        for _ in range(repeats):
            (b,) = bench_runners([runner], shape, warmup=1, iterations=clip.frames, rounds=1, streams=workers,
                                 pause_s=0.0)
            bench_s += b.iterations / b.throughput_fps
            bench_n += b.iterations
            s = infer_video(runner, str(clip.path), output=Path(tmp) / "out.mp4", workers=workers)
            infer_s += s.wall_s
            infer_n += s.frames
    print(f"{bench_n / bench_s:.2f} {infer_n / infer_s:.2f}")
"""


def worktree(repo: Path, rev: str, where: Path) -> Path:
    subprocess.run(["git", "-C", str(repo), "worktree", "add", "-q", "--detach", str(where), rev], check=True)
    return where


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("old", help="git revision of the A side")
    ap.add_argument("--new", default=None, help="git revision of the B side (default: the working tree)")
    ap.add_argument("--model", required=True, help="ONNX file or checkpoint, the same for both sides")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=4, help="bench/infer alternations per process")
    args = ap.parse_args()
    repo = Path(__file__).resolve().parents[2]  # the checkout this script is in
    model = str(Path(args.model).resolve())
    with tempfile.TemporaryDirectory(prefix="infer-ab-") as tmp:
        sides = {f"A {args.old}": worktree(repo, args.old, Path(tmp) / "a")}
        sides[f"B {args.new or 'working tree'}"] = worktree(repo, args.new, Path(tmp) / "b") if args.new else repo
        ratios: dict[str, list[float]] = {k: [] for k in sides}
        try:
            for r in range(args.rounds):
                for name, root in sides.items():
                    env = {**os.environ, "PYTHONPATH": str(root)}
                    out = subprocess.run([sys.executable, "-c", MEASURE, model, str(args.repeats), str(args.workers),
                                          str(args.threads)], cwd=root, env=env, check=True, capture_output=True,
                                         text=True).stdout.split()
                    bench, e2e = float(out[-2]), float(out[-1])
                    ratios[name].append(e2e / bench)
                    print(f"round {r + 1} {name}: bench {bench:.1f} FPS, infer {e2e:.1f} FPS, ratio {e2e / bench:.3f}",
                          flush=True)
        finally:
            for root in sides.values():
                if root != repo:
                    subprocess.run(["git", "-C", str(repo), "worktree", "remove", "--force", str(root)], check=False)
    for name, values in ratios.items():
        print(f"{name}: mean ratio {statistics.mean(values):.3f} (runs: {', '.join(f'{v:.3f}' for v in values)})")


if __name__ == "__main__":
    main()
