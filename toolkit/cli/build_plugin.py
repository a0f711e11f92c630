"""``toolkit build-plugin``: compile the unpooling plugin (engines/) with CMake + nvcc against the user's TensorRT."""

from __future__ import annotations

from pathlib import Path

import typer

from toolkit.cli.common import examples, handle_errors


@handle_errors
def build_plugin(
    tensorrt_root: Path | None = typer.Option(None, "--tensorrt-root", help="TensorRT folder with include/ "
                                              "(default: $TENSORRT_ROOT, the pip package, /usr/include/..., "
                                              "/usr/local/TensorRT, /opt/tensorrt)."),
    build_dir: Path | None = typer.Option(None, "--build-dir", help="CMake build folder (default: build/engines "
                                          "of the source checkout, where --plugin is looked up by default)."),
    cuda_arch: str | None = typer.Option(None, "--cuda-arch", help="CUDA architectures, e.g. 87 (Jetson Orin), "
                                         "86,89 or native (default: 75..90, plus 100,120 with CUDA >= 12.8)."),
    jobs: int | None = typer.Option(None, "--jobs", "-j", min=1, help="Parallel compile jobs (default: CPU count)."),
) -> None:
    """Build libsegnet_plugins.so (the SegNetMaskUnpool TensorRT plugin) for this machine's CUDA and TensorRT."""
    from toolkit.backend.trt.plugin_lib import ENV_PLUGIN_LIB
    from toolkit.backend.trt.plugin_lib import build_plugin as build

    lib = build(tensorrt_root=tensorrt_root, build_dir=build_dir, cuda_archs=cuda_arch, jobs=jobs)
    typer.echo(f"built {lib}")
    typer.echo(f"use it with --plugin {lib}, or export {ENV_PLUGIN_LIB}={lib}")


def register(app: typer.Typer) -> None:
    app.command("build-plugin", epilog=examples(
        "toolkit build-plugin",
        "toolkit build-plugin --tensorrt-root /opt/TensorRT-10.13 --cuda-arch 86",
        "toolkit build-plugin --cuda-arch 87 --build-dir /tmp/segnet-plugin   # Jetson Orin",
    ))(build_plugin)
