"""What ``toolkit infer``'s pipeline costs per frame besides the model (docs/BENCHMARKS.md, section 2).

    python tools/pipeline_costs.py [--size 180x240] [--frames 600] [--repeats 5] [--model int8.onnx]

Two measurements, both on this machine's CPU:

1. Each per-frame kernel of ``toolkit/video`` against the plain numpy/reference way of doing the same
   (single thread, warm cache, mean of many calls): normalisation, argmax, colouring, the whole
   overlay, mp4 encoding and decoding.
2. Two costs that decided where work happens: OpenCV's first text measurement in a new thread
   (font set-up, paid once per thread) against a later one, and the argmax of 184x240 logits read
   by the thread that just wrote them against logits written by another thread.
3. With ``--model``, when the first frame of a run through that model is written, against the
   steady frame period (``toolkit infer``'s warm-up exists to make the first one short).
4. The whole pipeline's process CPU time per frame with a runner that costs nothing (it returns
   fixed logits), on a clip of ``--frames`` frames, with the mp4 output and overlay as ``toolkit
   infer`` draws them, then without the output file, without the HUD, and without HUD and legend.
   Variants are interleaved in random order and the median of ``--repeats`` runs is printed. On a
   2-core CPU the model's own work cannot hide this: end to end FPS / model FPS is about
   model CPU / (model CPU + this).
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np


def per_call_ms(fn: Callable[[], object], seconds: float = 0.5) -> float:
    fn()
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn()
        n += 1
    return (time.perf_counter() - start) / n * 1e3


def panning_frames(size: tuple[int, int], n: int) -> list[np.ndarray]:
    """A pan across a smooth random texture: real motion for the codec (a repeated frame costs it nothing)."""
    h, w = size
    base = cv2.GaussianBlur(np.random.default_rng(1).integers(0, 256, (h, 2 * w, 3), np.uint8), (15, 15), 5)
    return [np.ascontiguousarray(base[:, (i * 3) % w:(i * 3) % w + w]) for i in range(n)]


def kernels(size: tuple[int, int], num_classes: int, meta: object) -> list[tuple[str, float, float | None]]:
    """(kernel, ms, reference ms or None) at one frame size."""
    from toolkit.evaluate import preprocess
    from toolkit.video.ops import FastPreprocess, argmax_classes
    from toolkit.video.overlay import Overlay, colorize, palette_table

    h, w = size
    rng = np.random.default_rng(0)
    frame = cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3), np.uint8), (9, 9), 3)
    ds = meta.dataset  # type: ignore[attr-defined]
    prep = FastPreprocess(ds.mean, ds.std, None)
    logits = rng.normal(size=(num_classes, h, w)).astype(np.float32)
    mask = argmax_classes(logits)
    table = palette_table(ds.palette)
    overlay = Overlay(ds.class_names, ds.palette)
    hud = ["FPS 100.0  model    8.0 ms", "onnxrt int8  184x240"]
    rows: list[tuple[str, float, float | None]] = [
        ("normalise + pad (cv2.LUT per channel)", per_call_ms(lambda: prep(frame)),
         per_call_ms(lambda: preprocess(frame, ds.mean, ds.std, None))),
        (f"argmax over {num_classes} classes (compare/max/copyTo)", per_call_ms(lambda: argmax_classes(logits)),
         per_call_ms(lambda: logits.argmax(0).astype(np.uint8))),
        ("colour the class map (LUT per channel + merge)", per_call_ms(lambda: colorize(mask, table)),
         per_call_ms(lambda: table[mask])),
        ("overlay: colour + blend + legend + HUD", per_call_ms(lambda: overlay(frame, mask, hud)), None),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "k.mp4")
        writer = cv2.VideoWriter(path, cv2.VideoWriter.fourcc(*"mp4v"), 30, (w, h))
        pan = panning_frames(size, 60)
        step = iter(range(10**9))
        rows.append(("mp4v encode (cv2.VideoWriter)", per_call_ms(lambda: writer.write(pan[next(step) % 60])), None))
        writer.release()
        cap = cv2.VideoCapture(path)
        n, start = 0, time.perf_counter()
        while cap.read()[0]:
            n += 1
        rows.append(("mp4v decode (cv2.VideoCapture)", (time.perf_counter() - start) / max(n, 1) * 1e3, None))
    return rows


def one_time_costs(num_classes: int, size: tuple[int, int]) -> list[tuple[str, float]]:
    """(what, ms): first vs later text measurement in a fresh thread; argmax on hot vs cross-thread logits."""
    import queue
    import threading

    from toolkit.core.shapes import pad_to_multiple
    from toolkit.video.ops import argmax_classes

    rows: list[tuple[str, float]] = []

    def text_in_new_thread() -> None:
        for label in ("first text measurement in a new thread", "the next one in that thread"):
            start = time.perf_counter()
            cv2.getTextSize("FPS  95.3  model   10.2 ms", cv2.FONT_HERSHEY_SIMPLEX, 0.45, 1)
            rows.append((label, (time.perf_counter() - start) * 1e3))

    thread = threading.Thread(target=text_in_new_thread)
    thread.start()
    thread.join()
    h, w = size
    base = np.random.default_rng(0).normal(size=(1, num_classes, *pad_to_multiple(h, w))).astype(np.float32)
    n = 200
    crop = base[0, :, :h, :w]
    rows.append(("argmax, logits written by this thread", per_call_ms(lambda: argmax_classes(crop))))
    handoff: queue.Queue = queue.Queue(4)

    def produce() -> None:
        for _ in range(n):
            handoff.put(base.copy())
        handoff.put(None)

    producer = threading.Thread(target=produce)
    producer.start()
    total = 0.0
    while (logits := handoff.get()) is not None:
        start = time.perf_counter()
        argmax_classes(logits[0, :, :h, :w])
        total += time.perf_counter() - start
    producer.join()
    rows.append((f"argmax, logits written by another thread ({n} calls)", total / n * 1e3))
    return rows


def first_frame(model: str, repeats: int) -> list[tuple[float, float]]:
    """(ms from the start to the first written frame, median ms between frames) per run of the sample clip."""
    from toolkit.backend import make_runner
    from toolkit.video import infer_video
    from toolkit.video.sample import make_sample_clip

    runs = []
    with tempfile.TemporaryDirectory() as tmp, make_runner(model, threads=1, spin=False) as runner:
        clip = make_sample_clip(Path(tmp) / "clip.mp4", frames=100, size=runner.meta.input_size,  # type: ignore[union-attr]
                                keep_frames=False)
        for _ in range(repeats):
            stamps: list[float] = []
            s = infer_video(runner, str(clip.path), output=Path(tmp) / "out.mp4", workers=2,
                            on_frame=lambda _n, stamps=stamps: stamps.append(time.perf_counter()))
            start = stamps[-1] - s.wall_s  # wall_s ends at the last write
            runs.append(((stamps[0] - start) * 1e3, float(np.median(np.diff(stamps))) * 1e3))
    return runs


def pipeline_cpu(size: tuple[int, int], frames: int, repeats: int, meta: object, num_classes: int
                 ) -> dict[str, list[float]]:
    """Process CPU ms per frame of infer_video with a free runner, per variant."""
    from toolkit.backend import BaseRunner
    from toolkit.core.description import ModelDescription
    from toolkit.core.names import OUTPUT_NAME
    from toolkit.core.shapes import pad_to_multiple
    from toolkit.video import OverlayStyle, infer_video

    class Free(BaseRunner):
        """Returns the same logits for every frame; claims the CPU like the ONNX Runtime runner."""

        backend = "onnxrt"
        thread_safe = True

        def __init__(self) -> None:
            super().__init__("free", description=ModelDescription(meta))
            h, w = size
            shape = (1, num_classes, *pad_to_multiple(h, w))
            self.out = {OUTPUT_NAME: np.random.default_rng(0).normal(size=shape).astype(np.float32)}

        @property
        def on_cpu(self) -> bool:
            return True

        def _activate_impl(self) -> ModelDescription:
            return self.description

        def _infer_impl(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
            return self.out

    variants = {"mp4 out, overlay, legend, HUD (as toolkit infer)": (True, OverlayStyle()),
                "no output file": (False, OverlayStyle()),
                "no output file, no HUD": (False, OverlayStyle(hud=False)),
                "no output file, no HUD, no legend": (False, OverlayStyle(hud=False, legend=False))}
    results: dict[str, list[float]] = {k: [] for k in variants}
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "clip.mp4"
        h, w = size
        writer = cv2.VideoWriter(str(clip), cv2.VideoWriter.fourcc(*"mp4v"), 30, (w, h))
        for frame in panning_frames(size, frames):
            writer.write(frame)
        writer.release()
        with Free() as runner:
            for _ in range(repeats):
                for name, (write, style) in random.sample(list(variants.items()), len(variants)):
                    start = time.process_time()
                    s = infer_video(runner, str(clip), output=Path(tmp) / "out.mp4" if write else None,
                                    style=style, workers=2)
                    results[name].append((time.process_time() - start) / s.frames * 1e3)
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="180x240", help="frame size HxW (the default model's input size)")
    ap.add_argument("--frames", type=int, default=600)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--model", default=None, help="also time the first written frame of runs through this model")
    args = ap.parse_args()

    from toolkit.assets import default_checkpoint_path
    from toolkit.checkpoint import read_checkpoint

    cv2.setNumThreads(1)  # per-call costs on one core, as the pipeline's stage threads mostly run
    h, w = (int(v) for v in args.size.split("x"))
    _, meta = read_checkpoint(default_checkpoint_path())
    k = len(meta.dataset.class_names)
    print(f"## per-frame kernels at {w}x{h} (one thread, warm cache)\n")
    print("| kernel | ms | reference ms | x faster |\n|---|---|---|---|")
    for name, ms, ref in kernels((h, w), k, meta):
        print(f"| {name} | {ms:.3f} | {f'{ref:.3f}' if ref else '-'} | {f'{ref / ms:.1f}' if ref else '-'} |")
    print("\n## one-time and placement costs\n")
    print("| what | ms |\n|---|---|")
    for name, ms in one_time_costs(k, (h, w)):
        print(f"| {name} | {ms:.3f} |")
    cv2.setNumThreads(-1)  # the pipeline as toolkit infer runs it
    if args.model:
        print(f"\n## first written frame, {args.model}, 100-frame sample clip, 2 workers x 1 thread\n")
        print("| run | first frame after start, ms | median frame period, ms |\n|---|---|---|")
        for i, (first, period) in enumerate(first_frame(args.model, args.repeats), 1):
            print(f"| {i} | {first:.1f} | {period:.2f} |")
    print(f"\n## pipeline CPU per frame, free runner, {args.frames} frames of {w}x{h}, 2 workers, "
          f"median of {args.repeats}\n")
    print("| variant | ms CPU per frame | runs |\n|---|---|---|")
    for name, values in pipeline_cpu((h, w), args.frames, args.repeats, meta, k).items():
        print(f"| {name} | {statistics.median(values):.2f} | {', '.join(f'{v:.2f}' for v in values)} |")


if __name__ == "__main__":
    main()
