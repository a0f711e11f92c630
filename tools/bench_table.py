"""The tables of docs/BENCHMARKS.md: the speed targets measured in one run, side by side.

    python tools/bench_table.py [--model ckpt.safetensors] [--out bench_out] [--threads 2] [--iterations 30]

Builds the ONNX variants of the model (fp32 in the maxunpool and mask lowerings, INT8 Q/DQ for the
CPU; FP16 of the mask form too), benchmarks them against PyTorch eager in one interleaved
``bench_runners`` call, then runs ``toolkit infer``'s pipeline on a sample clip through the mask-form
ONNX Runtime models (the lowering ``toolkit demo`` exports; 1 worker with N threads,
and 2 workers with N/2 threads, each compared with ``bench`` in the same configuration) and prints the
markdown tables with the ratios the targets ask for.
Everything it measures is also written to OUT/bench.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import time
from pathlib import Path


def build_variants(ckpt: Path | None, out: Path, calib: int) -> dict[str, Path]:
    from toolkit.checkpoint import read_checkpoint
    from toolkit.core.metadata import write_props
    from toolkit.core.onnx_file import save_onnx
    from toolkit.export import export_checkpoint
    from toolkit.quant import ImageFeeds, convert_fp16, quantize_int8
    from toolkit.video.sample import find_camvid

    for noisy in ("onnx_ir", "onnxscript", "torch.onnx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    from toolkit.assets import default_checkpoint_path

    path = ckpt or default_checkpoint_path()
    _, meta = read_checkpoint(path)
    files: dict[str, Path] = {}
    models = {}
    for lowering in ("maxunpool", "mask"):
        f = out / f"fp32_{lowering}.onnx"
        models[lowering] = export_checkpoint(path, unpool=lowering)
        save_onnx(models[lowering], f)
        files[f"onnxrt fp32 ({lowering})"] = f
    f = out / "fp16_mask.onnx"
    save_onnx(write_props(convert_fp16(models["mask"]), {"precision": "fp16"}), f)
    files["onnxrt fp16 (mask)"] = f
    camvid = find_camvid(None)
    if camvid is not None:
        from toolkit.quant import calibration_images

        images = calibration_images(camvid, "train", calib)
    else:
        from toolkit.demo import calibration_set

        images = calibration_set(None, out, meta, calib)
    feeds = ImageFeeds(images, meta.dataset.mean, meta.dataset.std, meta.input_size, stride=meta.output_stride)
    for lowering in ("maxunpool", "mask"):
        q, _ = quantize_int8(models[lowering], feeds, target="cpu", cache_dir=out / ".calibration")
        f = out / f"int8_{lowering}.onnx"
        save_onnx(write_props(q, {"precision": "int8"}), f)
        files[f"onnxrt int8 ({lowering})"] = f
    return files


def bench_section(args: argparse.Namespace, files: dict[str, Path], ckpt: Path | None,
                  shape: tuple[int, ...]) -> tuple[list, list]:
    """Table 1: every variant against PyTorch eager in one interleaved run; then 2 concurrent callers."""
    from toolkit.backend import RunnerOptions, make_runner
    from toolkit.bench import bench_runners, format_table

    load = os.getloadavg()
    entries = [("pytorch fp32 (eager)", ckpt, "auto")]
    for name, f in files.items():
        entries.append((name, f, "auto"))
        if "int8" in name:  # the level 'auto' does not pick, to show what the choice buys
            other = "all" if "maxunpool" in name else "extended"
            entries.append((name.replace(")", f", graph opt {other})"), f, other))
    runners = [make_runner(p, RunnerOptions(threads=args.threads, graph_opt=g, name=name)).activate()
               for name, p, g in entries]
    t0 = time.time()
    results = bench_runners(runners, shape, warmup=2, iterations=args.iterations, rounds=args.rounds,
                            threads=args.threads)
    bench_s = time.time() - t0
    for r in runners:
        r.deactivate()
    print(f"## bench: {'x'.join(map(str, shape))}, {args.threads} threads, {args.iterations} iterations "
          f"in {args.rounds} interleaved rounds ({bench_s:.0f} s); load average before: "
          f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}\n")
    print(format_table(results, compare=True))
    # the same ONNX Runtime models as 2 concurrent callers of 1 thread each (what infer --workers 2 does)
    streams = []
    if not args.skip_infer:
        onnx_fast = [n for n in files if "fp16" not in n]
        conc = [make_runner(files[n], RunnerOptions(threads=max(1, args.threads // 2), name=n)).activate()
                for n in onnx_fast]
        streams = bench_runners(conc, shape, warmup=1, iterations=args.iterations, rounds=args.rounds,
                                threads=max(1, args.threads // 2), streams=2)
        for r in conc:
            r.deactivate()
        print(f"\n## bench, 2 concurrent callers x {max(1, args.threads // 2)} thread\n")
        print(format_table(streams, compare=False))
    return results, streams


def infer_section(args: argparse.Namespace, files: dict[str, Path], input_size: tuple[int, int]) -> list[dict]:
    """Table 2: ``toolkit infer``'s pipeline against ``bench`` of the same runner, alternating."""
    from toolkit.backend import RunnerOptions, make_runner
    from toolkit.bench import bench_runners
    from toolkit.core.shapes import pad_to_multiple
    from toolkit.video import infer_video
    from toolkit.video.sample import make_sample_clip

    out = Path(args.out)
    h, w = input_size
    own_shape = (1, 3, *pad_to_multiple(h, w))  # what toolkit infer feeds the model
    clip = make_sample_clip(out / "clip.mp4", frames=args.clip_frames, size=input_size, keep_frames=False)
    rows = []
    for name in [n for n in files if "(mask" in n and "fp16" not in n]:  # the lowering the demo exports
        for workers, threads in ((1, args.threads), (2, max(1, args.threads // 2))):
            bench_s = infer_s = 0.0
            bench_n = infer_n = 0
            # spinning off, as toolkit infer opens it
            with make_runner(files[name], RunnerOptions(threads=threads, spin=False, name=name)) as runner:
                # alternate bench blocks and pipeline runs of about the same length, so the load drift
                # of this shared machine hits both alike; ratio of the totals
                for _ in range(args.repeats):
                    (b,) = bench_runners([runner], own_shape, warmup=1, iterations=clip.frames, rounds=1,
                                         streams=workers, pause_s=0.0)
                    bench_s += b.iterations / b.throughput_fps
                    bench_n += b.iterations
                    s = infer_video(runner, str(clip.path), output=out / "infer.mp4", workers=workers)
                    infer_s += s.wall_s
                    infer_n += s.frames
            own, e2e = bench_n / bench_s, infer_n / infer_s
            rows.append({"model": name, "workers": workers, "threads": threads, "fps": round(e2e, 3),
                         "frames": infer_n, "bench_fps": round(own, 3), "ratio": round(e2e / own, 3),
                         "repeats": args.repeats, "stages": s.stages})
    print(f"\n## toolkit infer on {clip.frames} frames of {clip.origin} ({clip.size[1]}x{clip.size[0]}, the "
          f"model's input size; model input {'x'.join(map(str, own_shape))}), mp4 output, overlay + HUD + "
          "legend\n")
    print(f"{args.repeats} alternations of a bench block and a pipeline run of {clip.frames} frames each\n")
    print("| model | workers x threads | end-to-end FPS | bench FPS, same config | ratio |\n"
          "|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['model']} | {row['workers']} x {row['threads']} | {row['fps']:.2f} | "
              f"{row['bench_fps']:.2f} | {row['ratio']:.2f} |")
    return rows


def print_targets(fps: dict[str, float]) -> None:
    base = fps["pytorch fp32 (eager)"]
    print("\n## targets\n")
    print(f"- ORT fp32 mask / ORT fp32 maxunpool = "
          f"{fps['onnxrt fp32 (mask)'] / fps['onnxrt fp32 (maxunpool)']:.2f} (target >= 1: no slower)")
    for lowering in ("maxunpool", "mask"):
        f32, i8 = fps[f"onnxrt fp32 ({lowering})"], fps[f"onnxrt int8 ({lowering})"]
        print(f"- {lowering}: ORT fp32 / PyTorch fp32 = {f32 / base:.2f} (target >= 1.3); "
              f"ORT int8 / ORT fp32 = {i8 / f32:.2f} (target >= 2)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="checkpoint (default: the embedded model)")
    ap.add_argument("--out", default="bench_out")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--shape", default="1x3x360x480", help="bench input shape (infer runs at the model's own size)")
    ap.add_argument("--iterations", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--clip-frames", type=int, default=100)
    ap.add_argument("--calib", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=3, help="bench/infer alternations per configuration")
    ap.add_argument("--skip-build", action="store_true", help="reuse the ONNX files already in --out")
    ap.add_argument("--skip-bench", action="store_true", help="only the infer table (and no targets)")
    ap.add_argument("--skip-infer", action="store_true")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)

    from toolkit.assets import default_checkpoint_path
    from toolkit.checkpoint import read_checkpoint
    from toolkit.core.shapes import pad_to_multiple
    from toolkit.sysinfo import system_info

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt = Path(args.model) if args.model else None
    if args.skip_build:
        files = {k: out / v for k, v in json.loads((out / "files.json").read_text()).items()}
    else:
        files = build_variants(ckpt, out, args.calib)
        (out / "files.json").write_text(json.dumps({k: v.name for k, v in files.items()}))
    _, meta = read_checkpoint(ckpt or default_checkpoint_path())
    shape = tuple(int(v) for v in args.shape.split("x"))
    load = os.getloadavg()
    results, streams = ([], []) if args.skip_bench else bench_section(args, files, ckpt, shape)
    infer_rows = [] if args.skip_infer else infer_section(args, files, meta.input_size)
    if results:
        print_targets({r.name: r.throughput_fps for r in results})
    info = system_info()
    h, w = meta.input_size
    report = {"shape": list(shape), "infer_shape": [1, 3, *pad_to_multiple(h, w)], "threads": args.threads,
              "load_before": load, "cpu": platform.processor(),
              "system": {k: info[k] for k in ("torch", "onnxruntime", "cpu_threads")},
              "bench": [r.as_dict() for r in results], "bench_streams": [r.as_dict() for r in streams],
              "infer": infer_rows}
    (out / "bench.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
