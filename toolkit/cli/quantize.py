"""``toolkit quantize``: fp32 ONNX -> FP16, or INT8 Q/DQ calibrated on real images (cached)."""

from __future__ import annotations

from pathlib import Path

import typer

from toolkit.cli.common import examples, handle_errors
from toolkit.cli.options import model_option, one_model, output_option, precision_option, target_option
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
    return vals  # type: ignore[return-value]


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
    calib_split: str = typer.Option("train", help="Split of a CamVid-layout --calib-data."),
    calib_size: int | None = typer.Option(None, help="Images to calibrate on, spread evenly (default: all)."),
    calib_method: str = typer.Option("percentile", help="percentile (clips the rare extremes; the most accurate "
                                     "on CamVid, docs/PARITY.md), minmax or entropy."),
    percentile: float = typer.Option(99.99, help="Percentile of |activation| kept by --calib-method percentile."),
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
) -> None:
    """Make an FP16 or INT8 (Q/DQ) ONNX model that TensorRT builds strongly typed and ONNX Runtime runs."""
    from toolkit.core.metadata import read_model_meta, read_props, write_props
    from toolkit.core.onnx_file import load_onnx, model_sha256, save_onnx
    from toolkit.files import check_writable, refuse_output_over_input

    model = one_model(positional, model)  # type: ignore[assignment]
    if model is None:
        raise ToolkitError("no model given: pass --model MODEL.onnx (the fp32 export)")
    model = Path(model)
    refuse_output_over_input(output, [model], "--output")
    check_writable(output)
    exclude_list = [e.strip() for e in exclude.split(",") if e.strip()]
    src = load_onnx(model)
    props = read_props(src)
    if props.get("precision", "fp32") != "fp32":
        raise ToolkitError(f"{model} is already {props['precision']}; quantize the fp32 export")
    extra = {"precision": precision, "parent_onnx_sha256": model_sha256(src), "excluded": ",".join(exclude_list)}
    if precision == "fp16":
        used = [n for n, v in (("--target", target), ("--calib-data", calib_data), ("--calib-size", calib_size),
                               ("--reduce-range", reduce_range)) if v is not None]
        if used:
            raise ToolkitError(f"{', '.join(used)} only apply to --precision int8")
        from toolkit.quant import convert_fp16

        out = convert_fp16(src, keep_io_types=True, exclude=exclude_list)
        summary = "fp16 weights and activations, fp32 input/output"
    else:
        out, summary = _int8(src, model, target or "tensorrt", calib_data, calib_split, calib_size, calib_method,
                             percentile, exclude_list, cache_dir, no_cache, per_channel, reduce_range,
                             (_floats(mean, "--mean"), _floats(std, "--std"), input_size), extra)
    write_props(out, {**props, **extra} if read_model_meta(src) else extra)
    save_onnx(out, output)
    _smoke_run(output)
    typer.echo(f"wrote {output} ({output.stat().st_size / 1e6:.2f} MB): {summary}")


def _int8(src, model: Path, target: str, calib_data: Path | None, split: str, size: int | None,
          method: str, percentile: float, exclude: list[str], cache_dir: Path | None, no_cache: bool,
          per_channel: bool, reduce_range: bool | None, overrides: tuple, extra: dict) -> tuple[object, str]:
    from toolkit.core.metadata import read_model_meta
    from toolkit.quant import ImageFeeds, calibration_images, quantize_int8

    if calib_data is None:
        raise ToolkitError("--precision int8 needs --calib-data DIR (real images, e.g. CamVid train: "
                           "--calib-data ../shared/camvid)")
    meta = read_model_meta(src, str(model))
    mean, std, size_text = overrides
    if meta is None and (mean is None or std is None):
        raise ToolkitError(f"{model} has no toolkit metadata; pass --mean R,G,B and --std R,G,B (and --input-size "
                           "HxW) so calibration images are preprocessed as in deployment")
    hw = None
    if size_text:
        from toolkit.cli.common import parse_shape

        dims = parse_shape(size_text)
        if len(dims) != 2:
            raise ToolkitError(f"--input-size '{size_text}': expected HxW, e.g. 360x480")
        hw = (dims[0], dims[1])
    feeds = ImageFeeds(calibration_images(calib_data, split, size),
                       mean or meta.dataset.mean, std or meta.dataset.std,  # type: ignore[union-attr]
                       hw or (meta.input_size if meta else None))
    from tqdm import tqdm

    bar: list[tqdm] = []  # opened on the first image: a cache hit shows no bar

    def on_image() -> None:
        if not bar:
            bar.append(tqdm(total=len(feeds), desc="calibrate", unit="img", leave=False))
        bar[0].update(1)

    try:
        out, rep = quantize_int8(src, feeds, target=target, method=method, exclude=exclude, cache_dir=cache_dir,
                                 per_channel=per_channel, reduce_range=reduce_range, use_cache=not no_cache,
                                 percentile=percentile, on_image=on_image)
    finally:
        for b in bar:
            b.close()
    shown = method + (f" {percentile}" if method == "percentile" else "")
    extra.update({"quant_target": target, "calib_method": shown, "calib_images": str(rep.images),
                  "calib_data_split": split})
    cache = "cache hit" if rep.cache_hit else "calibrated"
    return out, (f"int8 Q/DQ for {target} ({rep.quantized_nodes} Q nodes), {shown} on {rep.images} images "
                 f"({cache}: {rep.cache_file})")


def _smoke_run(path: Path) -> None:
    """The output must load and run in ONNX Runtime on the CPU (one small zero input)."""
    import numpy as np

    from toolkit.backend import make_runner

    with make_runner(path) as runner:
        runner.infer({s.name: np.zeros([d if d is not None else (1 if i == 0 else 32) for i, d in enumerate(s.shape)],
                                       s.dtype) for s in runner.input_specs()})


def register(app: typer.Typer) -> None:
    app.command(epilog=examples(
        "toolkit quantize -m segnet_mask.onnx --precision fp16 -o segnet_fp16.onnx",
        "toolkit quantize -m segnet_mask.onnx --precision int8 --calib-data ../shared/camvid -o segnet_int8_trt.onnx",
        "toolkit quantize -m segnet_mask.onnx --precision int8 --target cpu --calib-data ../shared/camvid "
        "--exclude encoder.stage1.0.0,head -o segnet_int8_cpu.onnx",
    ))(quantize)
