"""The CPU model frontier of docs/RESULTS.md: `toolkit infer` FPS for arch x width x input size, fp32 and int8.

    python tools/frontier.py --out runs/frontier [--archs enhanced] [--widths 16,24,32]
                             [--sizes 180x240,240x320,360x480] [--frames 120] [--repeats 2] [--miou NAME=CKPT ...]
    python tools/frontier.py --out runs/s2 --candidate enhanced:16:180x240 --candidate enhanced_s2:16:360x480 \
                             --threads 2 --workers 1 --frames 60 --repeats 3

``--candidate ARCH:WIDTH:HxW`` (repeatable) replaces the archs x widths x sizes grid: e.g. the stride-2 stem
design (``enhanced_s2``, reads the 360x480 frame) next to ``enhanced`` on the 180x240 resize.
Speed does not depend on the weights, so every candidate is an untrained (seeded) SegNet of its
architecture with CamVid's label space at its input size. Each is exported as the `mask` lowering (what the demo
ships), quantized to INT8 Q/DQ `--target cpu` (calibrated on 4 CamVid train frames: the ranges do not
change the graph's cost), then run by the `toolkit infer` command itself, end to end, on the same
360x480 clip (mp4 in, mp4 out with overlay, legend and HUD; default workers and threads), `--repeats`
times alternating over all models; the table keeps the median FPS and each model's FPS as a ratio to the
first candidate's in the same run (the number to quote on a shared machine). `--miou` adds the val mIoU of
trained checkpoints (from their own provenance) to the plot. Writes OUT/frontier.json, OUT/frontier.md
and OUT/frontier.png.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
from pathlib import Path

Candidate = tuple[str, int, tuple[int, int]]  # (arch, width, (H, W))


def candidate_tag(arch: str, width: int, size: tuple[int, int]) -> str:
    """The file stem of a candidate (the plain ``enhanced`` keeps its historical ``w16_180x240`` tag)."""
    return f"{'' if arch == 'enhanced' else arch + '_'}w{width}_{size[0]}x{size[1]}"


def parse_candidate(text: str) -> Candidate:
    """'ARCH:WIDTH:HxW' -> (arch, width, (H, W))."""
    try:
        arch, width, size = text.split(":")
        h, w = (int(v) for v in size.split("x"))
        return arch, int(width), (h, w)
    except ValueError:
        raise SystemExit(f"--candidate {text}: expected ARCH:WIDTH:HxW, e.g. enhanced_s2:16:360x480") from None


def build_candidate(width: int, size: tuple[int, int], out: Path, calib: list[Path], arch: str = "enhanced"
                    ) -> dict[str, Path]:
    """Untrained checkpoint -> fp32 mask ONNX -> int8 (cpu) ONNX; returns the two files."""
    import torch

    from toolkit.checkpoint import read_checkpoint, save_checkpoint
    from toolkit.core.meta import ModelMeta
    from toolkit.core.metadata import write_props
    from toolkit.core.onnx_file import save_onnx
    from toolkit.export import export_checkpoint
    from toolkit.models import create_model
    from toolkit.quant import ImageFeeds, quantize_int8
    from toolkit.zoo import default_zoo_model

    tag = candidate_tag(arch, width, size)
    fp32, int8 = out / f"{tag}_fp32.onnx", out / f"{tag}_int8.onnx"
    if fp32.is_file() and int8.is_file():
        return {"fp32": fp32, "int8": int8}
    _, zoo_meta = read_checkpoint(default_zoo_model("cpu").verified_path())  # CamVid's label space
    torch.manual_seed(width * 1000 + size[0])
    model = create_model(arch, num_classes=zoo_meta.num_classes, width=width).eval()
    meta = ModelMeta(arch, width, zoo_meta.dataset, input_size=size, output_stride=model.output_stride,
                     provenance={"trained_by": "untrained (tools/frontier.py)"})
    ckpt = save_checkpoint(out / f"{tag}.safetensors", model, meta)
    onnx_model = export_checkpoint(ckpt, unpool="mask")
    save_onnx(onnx_model, fp32)
    feeds = ImageFeeds(calib, meta.dataset.mean, meta.dataset.std, meta.input_size, stride=model.output_stride)
    q, _ = quantize_int8(onnx_model, feeds, target="cpu", cache_dir=out / f".calibration_{tag}")
    save_onnx(write_props(q, {"precision": "int8"}), int8)
    return {"fp32": fp32, "int8": int8}


def infer_fps(model: Path, clip: Path, out: Path, extra: list[str] | None = None) -> dict:
    """Run the `toolkit infer` command as a user would; its --json summary. ``extra``: e.g. --threads 2."""
    report = out / f"{model.stem}.infer.json"
    # this interpreter's toolkit (python -m, so a PYTHONPATH checkout wins over an installed one)
    cmd = [sys.executable, "-m", "toolkit", "infer", "--model", str(model), "--source", str(clip),
           "--output", str(out / f"{model.stem}.mp4"), "--json", str(report), "--no-progress", *(extra or [])]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {proc.stderr.strip()[-500:]}")
    return json.loads(report.read_text())


def plot(rows: list[dict], trained: list[dict], path: Path, target_fps: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2 if trained else 1, figsize=(12 if trained else 6.5, 4.5), squeeze=False)
    ax = axes[0][0]
    for prec, marker in (("fp32", "o"), ("int8", "s")):
        pts = [r for r in rows if r["precision"] == prec]
        ax.scatter([r["gflops"] for r in pts], [r["fps"] for r in pts], marker=marker, label=f"ONNX Runtime {prec}")
        for r in pts if prec == "int8" else []:  # one label per configuration
            ax.annotate(f"{_short(r)}w{r['width']} {r['size']}", (r["gflops"], r["fps"]), fontsize=7, xytext=(3, 3),
                        textcoords="offset points")
    ax.axhline(target_fps, color="grey", linestyle="--", linewidth=1, label=f"target {target_fps:g} FPS")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("GFLOPs per frame (model input size)")
    ax.set_ylabel("toolkit infer FPS, 360x480 clip, 2 cores")
    ax.legend(fontsize=8)
    ax.set_title("speed frontier (untrained weights)")
    if trained:
        ax2 = axes[0][1]
        for t in trained:
            ax2.scatter(t["int8_fps"], t["val_miou"])
            ax2.annotate(t["name"], (t["int8_fps"], t["val_miou"]), fontsize=8, xytext=(3, 3),
                         textcoords="offset points")
        ax2.axvline(target_fps, color="grey", linestyle="--", linewidth=1)
        ax2.margins(x=0.35)  # room for the labels right of the points
        ax2.set_xlabel("toolkit infer FPS, int8, 360x480 clip, 2 cores")
        ax2.set_ylabel("val mIoU (CamVid)")
        ax2.set_title("trained candidates")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def _short(row: dict) -> str:
    """A plot label's architecture prefix ("" for the plain enhanced SegNet)."""
    arch = row.get("arch", "enhanced")
    return "" if arch == "enhanced" else f"{arch} "


def match_trained(specs: list[str], rows: list[dict]) -> list[dict]:
    """NAME=CKPT -> its val mIoU (checkpoint provenance) and the measured int8 FPS of its arch, width and size
    (rows without an arch, from before it was recorded, are ``enhanced``)."""
    from toolkit.checkpoint import read_checkpoint

    trained = []
    for spec in specs:
        name, ckpt = spec.split("=", 1)
        _, meta = read_checkpoint(ckpt)
        size = f"{meta.input_size[0]}x{meta.input_size[1]}"
        match = [r for r in rows if r.get("arch", "enhanced") == meta.arch and r["width"] == meta.width
                 and r["size"] == size and r["precision"] == "int8"]
        if match:
            trained.append({"name": name, "val_miou": meta.provenance.get("val_miou"), "int8_fps": match[0]["fps"]})
    return trained


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path("runs/frontier"))
    p.add_argument("--archs", default="enhanced", help="architectures of the grid (e.g. enhanced,enhanced_s2)")
    p.add_argument("--candidate", action="append", default=[], metavar="ARCH:WIDTH:HxW",
                   help="one candidate (repeatable); replaces the --archs x --widths x --sizes grid")
    p.add_argument("--threads", type=int, default=None, help="toolkit infer --threads (default: its own)")
    p.add_argument("--workers", type=int, default=None, help="toolkit infer --workers (default: its own)")
    p.add_argument("--widths", default="16,24,32")
    p.add_argument("--sizes", default="180x240,240x320,360x480")
    p.add_argument("--frames", type=int, default=120, help="frames of the 360x480 clip")
    p.add_argument("--repeats", type=int, default=2, help="infer runs per model, alternating over models")
    p.add_argument("--target-fps", type=float, default=25.0)
    p.add_argument("--replot", action="store_true", help="redraw OUT/frontier.png from OUT/frontier.json, adding "
                   "the --miou checkpoints (matched to the measured int8 FPS of their width and input size)")
    p.add_argument("--build-only", action="store_true", help="export and quantize the candidates, time nothing "
                   "(the timing run then reuses the files)")
    p.add_argument("--miou", action="append", default=[], metavar="NAME=CKPT",
                   help="a trained checkpoint whose val mIoU (provenance) joins the plot, matched by width/size")
    args = p.parse_args()
    for noisy in ("onnx_ir", "onnxscript", "torch.onnx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    from toolkit.models import create_model
    from toolkit.models.complexity import conv_macs_at
    from toolkit.quant import calibration_images
    from toolkit.sysinfo import system_info
    from toolkit.video.sample import find_camvid, make_sample_clip

    args.out.mkdir(parents=True, exist_ok=True)
    if args.replot:
        saved = json.loads((args.out / "frontier.json").read_text())
        trained = match_trained(args.miou, saved["rows"])
        saved["trained"] = trained
        (args.out / "frontier.json").write_text(json.dumps(saved, indent=2) + "\n")
        plot(saved["rows"], trained, args.out / "frontier.png", args.target_fps)
        return
    camvid = find_camvid(None)
    if camvid is None:
        raise SystemExit("CamVid not found (set TOOLKIT_CAMVID): the clip and the calibration frames come from it")
    calib = calibration_images(camvid, "train", 4)
    clip = args.out / "clip_360x480.mp4"
    if not clip.is_file():
        make_sample_clip(clip, frames=args.frames, size=(360, 480), camvid=camvid, keep_frames=False)
    if args.candidate:
        candidates = [parse_candidate(c) for c in args.candidate]
    else:
        sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]
        candidates = [(a, int(w), s) for a in args.archs.split(",") for w in args.widths.split(",")
                      for s in sizes]  # type: ignore[misc]
    files: dict[tuple[str, int, str, str], Path] = {}
    for arch, w, s in candidates:
        print(f"building {arch} w={w} {s[0]}x{s[1]}", flush=True)
        for prec, f in build_candidate(w, s, args.out, calib, arch).items():
            files[(arch, w, f"{s[0]}x{s[1]}", prec)] = f
    if args.build_only:
        return
    extra = [*(["--threads", str(args.threads)] if args.threads else []),
             *(["--workers", str(args.workers)] if args.workers is not None else [])]
    fps: dict[tuple[str, int, str, str], list[float]] = {k: [] for k in files}
    for rep in range(args.repeats):
        for key, f in files.items():
            summary = infer_fps(f, clip, args.out, extra)
            fps[key].append(summary["fps"])
            print(f"repeat {rep + 1}: {f.name}: {summary['fps']:.2f} FPS (load {os.getloadavg()[0]:.2f})", flush=True)
    rows = []
    first = {prec: fps[next(k for k in fps if k[3] == prec)] for prec in ("fp32", "int8")}
    for (arch, w, size, prec), values in fps.items():
        h, wd = (int(v) for v in size.split("x"))
        net = create_model(arch, num_classes=11, width=w, unpool="mask").eval()
        gflops = 2 * conv_macs_at(net, h, wd) / 1e9
        # per repeat, against the first candidate's run of the same repeat (they ran minutes apart at most)
        ratios = [v / b for v, b in zip(values, first[prec], strict=True) if b > 0]
        rows.append({"arch": arch, "width": w, "size": size, "precision": prec, "gflops": round(gflops, 2),
                     "fps": round(statistics.median(values), 2), "fps_runs": values,
                     "ratio_to_first": round(statistics.median(ratios), 3) if ratios else None})
    trained = match_trained(args.miou, rows)
    info = system_info()
    report = {"command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]), "cpu": info["cpu"],
              "cpu_threads": info["cpu_threads"], "cpu_flags": info["cpu_flags"], "onnxruntime": info["onnxruntime"],
              "clip": str(clip), "infer_args": extra, "load_avg_end": os.getloadavg()[0], "rows": rows,
              "trained": trained}
    (args.out / "frontier.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = ["| arch | width | input | GFLOPs | fp32 FPS | fp32 x first | int8 FPS | int8 x first | "
             "int8 meets target |", "|---|---|---|---|---|---|---|---|---|"]
    for arch, w, s in candidates:
        key = (arch, w, f"{s[0]}x{s[1]}")
        r32 = next(r for r in rows if (r["arch"], r["width"], r["size"], r["precision"]) == (*key, "fp32"))
        r8 = next(r for r in rows if (r["arch"], r["width"], r["size"], r["precision"]) == (*key, "int8"))
        lines.append(f"| {arch} | {w} | {key[2]} | {r32['gflops']:.2f} | {r32['fps']:.1f} | "
                     f"{r32['ratio_to_first']:.2f} | {r8['fps']:.1f} | {r8['ratio_to_first']:.2f} | "
                     f"{'yes' if r8['fps'] >= args.target_fps else 'no'} |")
    (args.out / "frontier.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    plot(rows, trained, args.out / "frontier.png", args.target_fps)


if __name__ == "__main__":
    main()
