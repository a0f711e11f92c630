"""``toolkit quantize``: fp32 ONNX -> FP16, or INT8 Q/DQ calibrated on real images (cached)."""

from __future__ import annotations

from pathlib import Path

import typer

from toolkit.cli.common import examples, handle_errors, one_model
from toolkit.cli.options import model_option, output_option, precision_option, target_option
from toolkit.core import defaults
from toolkit.errors import ToolkitError


def _floats(text: str | None, what: str) -> tuple[float, float, float] | None:
    if text is None:
        return None
    try:
        vals = tuple(float(v) for v in text.split(","))
    except ValueError:
        vals = ()
    if len(vals) != 3:
        raise ToolkitError(f"{what} '{text}': expected three comma-separated numbers (R,G,B), e.g. 0.41,0.43,0.43")
    return vals[0], vals[1], vals[2]


@handle_errors
def quantize(
    positional: Path | None = typer.Argument(None, hidden=True, metavar="MODEL", help="The old spelling of --model."),
    model: Path | None = model_option("fp32 ONNX model (from toolkit export)."),
    output: Path = output_option("ONNX file to write.", default=...),
    precision: str = precision_option(..., help="fp16 or int8."),
    target: str | None = target_option(help="int8 only: tensorrt (symmetric int8, zero points 0; the default) or "
                                       "cpu (uint8 activations + int8 weights, fast in ONNX Runtime)."),
    calib_data: Path | None = typer.Option(None, help="int8: CamVid-layout folder (uses --calib-split) or any "
                                           "folder of images."),
    calib_split: str = typer.Option(defaults.CALIB_SPLIT, help="Split of a CamVid-layout --calib-data."),
    calib_size: int | None = typer.Option(None, min=1, help="Images to calibrate on, spread evenly (default: all)."),
    calib_method: str = typer.Option(defaults.CALIB_METHOD,
                                     help="percentile (clips the rare extremes; the most accurate "
                                     "on CamVid, docs/PARITY.md), minmax or entropy."),
    percentile: float = typer.Option(defaults.CALIB_PERCENTILE, min=0.0, max=100.0,
                                     help="Percentile of |activation| kept by --calib-method percentile."),
    exclude: str = typer.Option("", help="Op types or node names kept in higher precision, comma-separated "
                                "(e.g. Concat,encoder.stage1.0.0: Convs are named after their modules)."),
    cache_dir: Path | None = typer.Option(None, help="Calibration cache folder (default: ~/.cache/segnet-toolkit/"
                                          "calibration or $TOOLKIT_CACHE)."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Recalibrate even when the cache has the ranges."),
    per_channel: bool = typer.Option(True, help="Per-channel weight scales (int8)."),
    reduce_range: bool | None = typer.Option(None, help="7-bit weights (int8); default on for --target cpu "
                                             "(no int16 saturation on CPUs without VNNI), off for tensorrt."),
    mean: str | None = typer.Option(None, help="R,G,B mean for a model without toolkit metadata."),
    std: str | None = typer.Option(None, help="R,G,B std for a model without toolkit metadata."),
    input_size: str | None = typer.Option(None, help="HxW the frames are resized to, for a model without "
                                          "toolkit metadata (default: each image's own size)."),
    max_miou_drop: float | None = typer.Option(None, min=0.0, help="int8 budget: plan the fewest layers kept in higher "
                                               "precision so the mIoU drop vs the fp32 graph on --tune-data stays "
                                               "within this many points (writes OUT.plan.json)."),
    max_class_drop: float | None = typer.Option(None, min=0.0, help="int8 budget: the largest per-class IoU loss "
                                                "allowed (points)."),
    max_band_drop: float | None = typer.Option(None, min=0.0, help="int8 budget: the boundary-band mIoU drop allowed "
                                               "(points; band as parity's --band 3)."),
    tune_data: Path | None = typer.Option(None, help="CamVid-layout folder the budget is measured on (needed "
                                          "with a budget)."),
    tune_split: str = typer.Option("val", help="Split of --tune-data (never a test split)."),
    tune_frames: int | None = typer.Option(None, min=1, help="First N frames of the split (default: all)."),
    max_kept: int | None = typer.Option(None, min=1, help="Keep at most this many layers in higher precision."),
    bench_iterations: int = typer.Option(defaults.PLAN_BENCH_ITERATIONS, min=0,
                                         help="With a budget: timed calls per model in the "
                                         "interleaved fp32 / full int8 / planned bench (0: skip)."),
) -> None:
    """Make an FP16 or INT8 (Q/DQ) ONNX model that TensorRT builds strongly typed and ONNX Runtime runs."""
    from toolkit.files import check_writable, refuse_output_over_input
    from toolkit.quant.quantize_file import quantize_file

    model = one_model(positional, model)
    if model is None:
        raise ToolkitError("no model given: pass --model MODEL.onnx (the fp32 export)")
    model = Path(model)
    refuse_output_over_input(output, [model], "--output")
    check_writable(output)
    if precision == "fp16":
        used = [n for n, v in (("--target", target), ("--calib-data", calib_data), ("--calib-size", calib_size),
                               ("--reduce-range", reduce_range)) if v is not None]
        if used:
            raise ToolkitError(f"{', '.join(used)} only apply to --precision int8")
    elif calib_data is None:
        raise ToolkitError("--precision int8 needs --calib-data DIR (real images, e.g. CamVid train: "
                           "--calib-data ../shared/camvid)")
    bar: list = []  # opened on the first image: a cache hit shows no bar
    calibration = None
    if calib_data is not None:
        calibration = _calibration(calib_data, calib_split, calib_size, calib_method, percentile, cache_dir,
                                   no_cache, mean, std, input_size, bar)
    budget_opts = (max_miou_drop, max_class_drop, max_band_drop)
    if any(v is not None for v in budget_opts) or tune_data is not None:
        return _planned(model, output, precision, target, calibration, budget_opts, tune_data, tune_split,
                        tune_frames, exclude, per_channel, reduce_range, max_kept, bench_iterations, cache_dir, bar)
    try:
        result = quantize_file(model, output, precision, target=target, calibration=calibration,
                               exclude=[e.strip() for e in exclude.split(",") if e.strip()], per_channel=per_channel,
                               reduce_range=reduce_range)
    finally:
        for b in bar:
            b.close()
    typer.echo(f"wrote {output} ({output.stat().st_size / 1e6:.2f} MB): {result.summary}")


def _planned(model: Path, output: Path, precision: str, target: str | None, calibration, budget_opts: tuple,
             tune_data: Path | None, tune_split: str, tune_frames: int | None, exclude: str, per_channel: bool,
             reduce_range: bool | None, max_kept: int | None, bench_iterations: int, cache_dir: Path | None,
             bar: list) -> None:
    """quantize with a budget: plan, write the graph and OUT.plan.json; exit 1 when no plan meets it."""
    from toolkit.data import CamVid
    from toolkit.errors import CheckFailedError
    from toolkit.quant.plan_file import plan_path, quantize_planned
    from toolkit.quant.planner import Budget

    budget = Budget(*budget_opts)
    if precision != "int8":
        raise ToolkitError("--max-miou-drop/--max-class-drop/--max-band-drop/--tune-data plan int8 layers; "
                           "use them with --precision int8")
    if tune_data is None or budget.empty:
        raise ToolkitError("a budget needs both --tune-data DIR and at least one of --max-miou-drop, "
                           "--max-class-drop, --max-band-drop (e.g. --tune-data ../shared/camvid --max-miou-drop 1)")
    dataset = CamVid(tune_data, tune_split, limit=tune_frames)
    tune = {"root": str(tune_data), "split": tune_split, "frames": len(dataset)}
    try:
        plan = quantize_planned(model, output, target or "tensorrt", calibration, budget, dataset, tune,
                                exclude=[e.strip() for e in exclude.split(",") if e.strip()], per_channel=per_channel,
                                reduce_range=reduce_range, max_kept=max_kept, bench_iterations=bench_iterations,
                                sensitivity_cache=None if cache_dir is None else cache_dir / "sensitivity",
                                progress=typer.echo)
    finally:
        for b in bar:
            b.close()
    before, after = plan.drift_before, plan.drift_after
    assert before is not None and after is not None  # quantize_planned measures both
    typer.echo(f"wrote {output} and {plan_path(output)}: {plan.reason}; kept {[k['node'] for k in plan.kept]}; "
               f"mIoU drop {before.miou_drop:.3f} -> {after.miou_drop:.3f}, class drop "
               f"{before.worst_class_drop:.3f} -> {after.worst_class_drop:.3f}; "
               f"{100 * plan.int8_share:.0f} % of layers int8")
    if not plan.met:
        raise CheckFailedError(plan.reason)


def _calibration(calib_data: Path, split: str, size: int | None, method: str, percentile: float,
                 cache_dir: Path | None, no_cache: bool, mean: str | None, std: str | None, input_size: str | None,
                 bar: list):
    """The int8 calibration the options describe (a progress bar opens on the first calibrated image)."""
    from toolkit.quant import calibration_images
    from toolkit.quant.quantize_file import Calibration

    hw = None
    if input_size:
        from toolkit.cli.common import parse_shape

        dims = parse_shape(input_size)
        if len(dims) != 2:
            raise ToolkitError(f"--input-size '{input_size}': expected HxW, e.g. 360x480")
        hw = (dims[0], dims[1])
    images = calibration_images(calib_data, split, size)

    def on_image() -> None:
        from tqdm import tqdm

        if not bar:
            bar.append(tqdm(total=len(images), desc="calibrate", unit="img", leave=False))
        bar[0].update(1)

    return Calibration(images, method=method, percentile=percentile, split=split, cache_dir=cache_dir,
                       use_cache=not no_cache, mean=_floats(mean, "--mean"), std=_floats(std, "--std"),
                       input_size=hw, on_image=on_image)


def register(app: typer.Typer) -> None:
    app.command(epilog=examples(
        "toolkit quantize -m segnet_mask.onnx --precision fp16 -o segnet_fp16.onnx",
        "toolkit quantize -m segnet_mask.onnx --precision int8 --calib-data ../shared/camvid -o segnet_int8_trt.onnx",
        "toolkit quantize -m segnet_mask.onnx --precision int8 --target cpu --calib-data ../shared/camvid "
        "--exclude encoder.stage1.0.0,head -o segnet_int8_cpu.onnx",
        "toolkit quantize -m segnet_mask.onnx --precision int8 --target cpu --calib-data ../shared/camvid "
        "--calib-size 32 --tune-data ../shared/camvid --tune-frames 20 --max-miou-drop 1 --max-class-drop 2 "
        "-o segnet_int8_plan.onnx",
    ))(quantize)
