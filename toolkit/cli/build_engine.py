"""``toolkit build-engine``: preflight an ONNX graph, then build a strongly typed TensorRT engine and its sidecar."""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from pathlib import Path

import typer

from toolkit.cli.common import examples, handle_errors, one_model
from toolkit.cli.options import (
    TORCH_DEVICES,
    choice_parser,
    device_option,
    model_option,
    output_option,
    plugin_option,
)
from toolkit.errors import ToolkitError

ENGINE_SUFFIXES = (".engine", ".plan")


class EngineBackend(str, Enum):
    """What ``build-engine`` builds: a TensorRT engine, or an AOTInductor package."""

    trt = "trt"
    aoti = "aoti"


def _progress_bars() -> tuple[Callable[[str, int, int], None], Callable[[], None]]:
    """One tqdm bar per builder phase (TensorRT's IProgressMonitor reports them; nested ones vanish when done)."""
    from tqdm import tqdm

    bars: dict[str, tqdm] = {}

    def progress(phase: str, step: int, total: int) -> None:
        if step >= total:  # phase done: close its bar (TensorRT may reuse the name for a later phase)
            done = bars.pop(phase, None)
            if done is not None:
                done.n = total
                done.close()
            return
        bar = bars.get(phase)
        if bar is None:
            bar = bars[phase] = tqdm(total=total, desc=phase[:40], unit="step", leave=False)
        bar.n = step
        bar.refresh()

    def close() -> None:
        for bar in bars.values():
            bar.close()

    return progress, close


@handle_errors
def build_engine(
    positional: Path | None = typer.Argument(None, hidden=True, metavar="MODEL", help="The old spelling of --model."),
    model: Path | None = model_option("ONNX model (fp32, fp16 or int8 Q/DQ)."),
    output: Path | None = output_option("Engine file to write (.engine or .plan); default: the ONNX name with "
                                        ".engine. A sidecar ENGINE.json goes beside it."),
    plugin: str | None = plugin_option("libsegnet_plugins.so for graphs exported with --unpool plugin (default: "
                                       "$SEGNET_PLUGIN_LIB, then build/engines/)."),
    shapes: str | None = typer.Option(None, "--shapes", help="Optimisation profile MIN:OPT:MAX, e.g. "
                                      "1x3x360x480:1x3x360x480:4x3x720x960 (default: the model's input size)."),
    timing_cache: Path | None = typer.Option(None, "--timing-cache", help="Timing cache file: read if it exists, "
                                             "written after the build (rebuilds become much faster)."),
    workspace: int | None = typer.Option(None, "--workspace", min=1, help="Workspace memory limit in MiB "
                                         "(default: TensorRT's, the GPU's memory)."),
    opt_level: int | None = typer.Option(None, "--opt-level", min=0, max=5, help="Builder optimisation level 0..5 "
                                         "(TensorRT default 3; higher builds longer, may run faster)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Preflight and plan only; needs no TensorRT or GPU."),
    backend: str = typer.Option("trt", "--backend", help="trt: a TensorRT engine from an ONNX model; aoti: an "
                                "AOTInductor package (.pt2) from a checkpoint or zoo name, for PyTorch without "
                                "TensorRT.", parser=choice_parser("--backend", list(EngineBackend)),
                                metavar="[trt|aoti]"),
    precision: str | None = typer.Option(None, "--precision", help="aoti: fp32 (default), fp16 or bf16 (trt: the "
                                         "ONNX's own precision).", metavar="[fp32|fp16|bf16]"),
    device: str = device_option("cpu", TORCH_DEVICES, help="aoti: the device the package is compiled for."),
    input_shape: str | None = typer.Option(None, "--input-shape", help="aoti: one static shape NxCxHxW instead of "
                                           "--shapes (default: batch 1..8 at the model's input size)."),
) -> None:
    """Build a TensorRT engine from an ONNX model (preflight first, precision from the ONNX, strongly typed), or
    with --backend aoti an AOTInductor package from a checkpoint."""
    if backend == EngineBackend.aoti.value:
        trt_only = {"--plugin": plugin, "--timing-cache": timing_cache, "--workspace": workspace,
                    "--opt-level": opt_level, "--dry-run": dry_run or None}
        for name, value in trt_only.items():
            if value is not None:
                raise ToolkitError(f"{name}: applies to TensorRT engines (--backend trt), not to --backend aoti")
        return _build_package(one_model(positional, model), output, precision or "fp32", device, shapes, input_shape)
    for name, value in (("--precision", precision), ("--input-shape", input_shape),
                        ("--device", None if device == "cpu" else device)):
        if value is not None:
            raise ToolkitError(f"{name} {value}: applies to --backend aoti; a TensorRT engine takes its precision "
                               "from the ONNX (toolkit quantize), its shapes from --shapes and builds on GPU 0")
    from toolkit.backend.trt.plugin_lib import find_plugin_library
    from toolkit.backend.trt.preflight import preflight, summary
    from toolkit.backend.trt.shapes import resolve_profile
    from toolkit.backend.trt.sidecar import model_meta_from_onnx_metadata
    from toolkit.core.names import OUTPUT_STRIDE
    from toolkit.files import refuse_output_over_input

    onnx_path = one_model(positional, model)
    if onnx_path is None:
        raise ToolkitError("no model given: pass --model MODEL.onnx")
    onnx_path = Path(onnx_path)
    output = output or onnx_path.with_suffix(".engine")
    refuse_output_over_input(output, [onnx_path, plugin], "--output")
    refuse_output_over_input(Path(f"{output}.json"), [onnx_path, plugin], "--output's sidecar")
    if output.suffix.lower() not in ENGINE_SUFFIXES:
        raise ToolkitError(f"-o {output}: engine files end in {' or '.join(ENGINE_SUFFIXES)} (so that parity, infer "
                           "and bench recognise them)")
    lib = find_plugin_library(plugin)
    report = preflight(onnx_path, lib)
    typer.echo(f"preflight {onnx_path.name}: {summary(report)}")
    for warning in report.warnings:
        typer.secho(f"warning: {warning}", err=True, fg=typer.colors.YELLOW)
    report.raise_if_failed(str(onnx_path))
    if len(report.inputs) != 1:
        raise ToolkitError(f"{onnx_path}: has inputs {sorted(report.inputs)}; the toolkit's models have exactly one")
    (input_name, dims), = report.inputs.items()
    meta = model_meta_from_onnx_metadata(report.metadata)
    profile = resolve_profile(shapes, dims, input_name, meta.input_size if meta else None,
                              meta.output_stride if meta else OUTPUT_STRIDE)
    plugins = [lib] if report.plugin_nodes and lib is not None else []
    typer.echo(f"plan: {output} ({report.precision}, strongly typed), input '{input_name}' profile "
               f"{profile.to_text()}" + (f", plugin {plugins[0]}" if plugins else ""))
    if dry_run:
        return
    from toolkit.backend.trt.compat import import_tensorrt
    from toolkit.backend.trt.loader import BuildEngine, NetworkFromOnnx, SaveEngine

    import_tensorrt()  # one clear line (exit 2) before anything else when TensorRT is missing
    progress, close = _progress_bars()
    try:
        built = BuildEngine(NetworkFromOnnx(onnx_path, plugins=plugins), profile, timing_cache=timing_cache,
                            workspace_mb=workspace, opt_level=opt_level, progress=progress)
        path = SaveEngine(built, output)()
    finally:
        close()
    typer.echo(f"wrote {path} and {path.name}.json (TensorRT version, GPU, precision, shapes); run it with "
               f"`toolkit parity|infer|bench --model {path}`")


def _build_package(spec: Path | None, output: Path | None, precision: str, device: str, shapes: str | None,
                   input_shape: str | None) -> None:
    """``--backend aoti``: checkpoint (or zoo name) -> MODEL.pt2 + MODEL.pt2.json."""
    import time

    from toolkit.backend.aoti.package import PACKAGE_SUFFIX, BuildPackage
    from toolkit.cli.common import pick_model
    from toolkit.files import refuse_output_over_input

    checkpoint = Path(pick_model(None, spec, device).model)
    if checkpoint.suffix.lower() != ".safetensors":
        raise ToolkitError(f"-m {checkpoint}: --backend aoti compiles a checkpoint (.safetensors or a zoo name), "
                           "not an ONNX file or engine")
    output = output or Path(checkpoint.with_suffix(PACKAGE_SUFFIX).name)
    refuse_output_over_input(output, [checkpoint], "--output")
    refuse_output_over_input(Path(f"{output}.json"), [checkpoint], "--output's sidecar")
    typer.echo(f"compiling {checkpoint.name} with AOTInductor ({precision}, {device}); this takes minutes")
    start = time.perf_counter()
    path = BuildPackage(checkpoint, output, precision=precision, device=device, shapes=shapes,
                        input_shape=input_shape)()
    typer.echo(f"wrote {path} and {path.name}.json (torch version, device, precision, shapes) in "
               f"{time.perf_counter() - start:.0f} s; run it with `toolkit parity|infer|bench --model {path}"
               f"{' --device cuda' if device.startswith('cuda') else ''}`")


def register(app: typer.Typer) -> None:
    app.command("build-engine", epilog=examples(
        "toolkit build-engine -m model_mask.onnx -o model.engine",
        "toolkit build-engine -m model_int8.onnx -o model_int8.engine --shapes 1x3x360x480:1x3x360x480:4x3x720x960 "
        "--timing-cache trt.cache",
        "toolkit build-engine -m model_plugin.onnx --plugin build/engines/libsegnet_plugins.so --dry-run",
        "toolkit build-engine -m enhanced-w64 --backend aoti --precision fp16 --device cuda -o enhanced-w64.pt2",
    ))(build_engine)
