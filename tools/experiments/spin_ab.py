"""End-to-end FPS of ``toolkit infer``'s pipeline with ONNX Runtime's intra-op spinning on and off.

    python tools/experiments/spin_ab.py bench_out/int8_mask.onnx --workers 1 --threads 2 --repeats 3

Alternates, per repeat and per setting, a ``bench`` block and a pipeline run of the same clip with the
same runner, and prints the mean FPS of each and their ratio (docs/BENCHMARKS.md, section 2).
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--frames", type=int, default=100)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)

    from toolkit.backend import make_runner
    from toolkit.bench import bench_runners
    from toolkit.core.shapes import pad_to_multiple
    from toolkit.video import infer_video
    from toolkit.video.sample import make_sample_clip

    with tempfile.TemporaryDirectory(prefix="spin-ab-") as tmp:
        with make_runner(args.model) as probe:
            h, w = probe.meta.input_size  # type: ignore[union-attr]
        clip = make_sample_clip(Path(tmp) / "clip.mp4", frames=args.frames, size=(h, w), keep_frames=False)
        shape = (1, 3, *pad_to_multiple(h, w))
        results: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
        for _ in range(args.repeats):
            for spin in (True, False):
                with make_runner(args.model, threads=args.threads, spin=spin) as runner:
                    (b,) = bench_runners([runner], shape, warmup=1, iterations=clip.frames, rounds=1,
                                         streams=args.workers, pause_s=0.0)
                    s = infer_video(runner, str(clip.path), output=Path(tmp) / "out.mp4", workers=args.workers)
                    results[spin].append((b.throughput_fps, s.frames / s.wall_s))
    for spin, rows in results.items():
        a = np.array(rows)
        print(f"spinning {'on ' if spin else 'off'}: bench {a[:, 0].mean():.1f} FPS, infer {a[:, 1].mean():.1f} FPS, "
              f"ratio {a[:, 1].sum() / a[:, 0].sum():.2f}")


if __name__ == "__main__":
    main()
