"""``toolkit bench``: latency p50/p90/p99 and throughput of several models in one run, with ratios."""

from __future__ import annotations

import typer

from toolkit.cli.common import examples, handle_errors, parse_shape
from toolkit.cli.options import (
    compile_option,
    cuda_graph_option,
    device_option,
    input_shape_option,
    io_option,
    run_precision_option,
)
from toolkit.core import defaults


@handle_errors
def bench(
    model: list[str] | None = typer.Option(None, "--model", "-m",
                                           help="Zoo name or model file (.safetensors, .onnx, .engine, .pt2); repeat "
                                                "to compare. 'default' or none: the zoo's model for --device."),
    shape: str = input_shape_option(),
    threads: int | None = typer.Option(None, "--threads", min=1, help="Intra-op threads for every runtime "
                                       "(default: PyTorch on the CPU takes the cores the load average leaves "
                                       "idle; ONNX Runtime its own)."),
    warmup: int = typer.Option(defaults.BENCH_WARMUP, "--warmup", min=0,
                               help="Uncounted calls before each timed block."),
    iterations: int = typer.Option(defaults.BENCH_ITERATIONS, "--iterations", "-n", min=1,
                                   help="Timed calls per model."),
    rounds: int = typer.Option(defaults.BENCH_ROUNDS, "--rounds", min=1,
                               help="Interleaved blocks the timed calls are split into."),
    streams: int = typer.Option(defaults.BENCH_STREAMS, "--streams", min=1,
                                help="Concurrent callers (like toolkit infer --workers)."),
    compare: bool = typer.Option(False, "--compare", help="Add throughput ratios against the first model."),
    graph_opt: str = typer.Option("auto", "--graph-opt", help="ONNX Runtime graph optimisation: auto (extended "
                                  "for CPU int8 maxunpool graphs, else all), all, extended, basic."),
    device: str = device_option(help="Device for PyTorch/ONNX Runtime models."),
    precision: str = run_precision_option(),
    cuda_graph: bool | None = cuda_graph_option(),
    compile_model: bool = compile_option(),
    io: str = io_option(),
    json_path: str | None = typer.Option(None, "--json", help="Write the results (and the command) to JSON."),
) -> None:
    """Time each model on the same random input, warm-up first, interleaved so ratios are fair."""
    import sys

    from toolkit.bench import bench_models, format_table
    from toolkit.errors import InputShapeError
    from toolkit.files import check_writable, refuse_output_over_input, write_json
    from toolkit.sysinfo import system_info

    dims = parse_shape(shape)
    if len(dims) != 4:
        raise InputShapeError(f"--input-shape {shape}: expected NxCxHxW, e.g. 1x3x360x480")
    check_shape(shape, dims)
    from toolkit.cli.checks import input_fits, out_of_memory
    from toolkit.cli.common import pick_model

    input_fits("--input-shape", shape, dims)

    models = [pick_model(None, None if m in ("default", "") else m, device).model for m in (model or [None])]
    refuse_output_over_input(json_path, models, "--json")
    check_writable(json_path)
    try:
        results = bench_models(models, dims, device=device, threads=threads, warmup=warmup, iterations=iterations,
                               rounds=rounds, streams=streams, graph_opt=graph_opt,
                               precision=precision, cuda_graph=cuda_graph, compile=compile_model, io=io)
    except MemoryError as e:
        raise out_of_memory("--input-shape", shape, e) from None
    typer.echo(format_table(results, compare=compare))
    if json_path is not None:
        info = system_info()
        report = {"command": " ".join(["toolkit", *sys.argv[1:]]) if sys.argv else "toolkit bench",
                  "system": {k: info.get(k) for k in ("cpu", "cpu_threads", "torch", "onnxruntime", "tensorrt")},
                  "results": [r.as_dict() for r in results]}
        write_json(json_path, report)


def check_shape(text: str, dims: tuple[int, ...]) -> None:
    """H and W multiples of 8 (every SegNet's least output stride), checked before any model is opened; each
    model's own stride (16 for a stride-2 stem) is checked by ``toolkit.bench.bench_runners`` once it is
    loaded. ONNX Runtime and TensorRT would otherwise fail deep inside their runtimes with a long traceback."""
    from toolkit.core.shapes import check_multiple

    n, c, h, w = dims
    check_multiple(h, w, what="--input-shape", prefix=f"{n}x{c}x")


def register(app: typer.Typer) -> None:
    app.command(epilog=examples(
        "toolkit bench",
        "toolkit bench -m model.safetensors -m model.onnx -m model_int8.onnx --compare --threads 2",
        "toolkit bench -m model.onnx --input-shape 1x3x720x960 --iterations 50 --json bench.json",
        "toolkit bench -m enhanced-w64 --device cuda -n 200 --compare   # fp16, CUDA graph",
        "toolkit bench -m enhanced-w64 -m enhanced-w64 --device cuda --precision fp32 --no-cuda-graph",
    ))(bench)
