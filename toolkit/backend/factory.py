"""The one runner factory: ``make_runner(model, RunnerOptions(...))`` for every command and tool.

The backend comes from the model: a ``.safetensors`` checkpoint (or None, the embedded default) runs in
PyTorch, ``.onnx`` in ONNX Runtime, ``.engine``/``.plan`` in TensorRT, ``.pt2`` (AOTInductor) in PyTorch,
``triton://`` on a Triton server.
The runner is returned inactive: nothing is
read or loaded before ``activate()`` (or ``with``), where the model's metadata is read, once.
Zoo names are resolved before this point (``toolkit.zoo.resolve_model``, ``toolkit.cli.common.pick_model``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from toolkit.backend.base import BaseRunner
from toolkit.backend.triton.client import is_triton_url
from toolkit.errors import DeviceError, ToolkitError

MODEL_SUFFIXES = {".safetensors": "torch", ".onnx": "onnxrt", ".engine": "trt", ".plan": "trt", ".pt2": "aoti"}


@dataclass(frozen=True)
class RunnerOptions:
    """How to run a model; each field says which backends use it (the others leave it unused, except
    ``threads``, which they refuse).

    ``graph_opt`` 'auto' is ``toolkit.backend.onnxrt.loader.ort_graph_optimization``'s measured choice;
    ``spin`` False makes idle ONNX Runtime threads sleep (where our own threads share the cores)."""

    device: str = "cpu"  # torch, aoti, onnxrt ('cpu', 'cuda', 'tensorrt' provider)
    threads: int | None = None  # torch (process-wide), onnxrt (intra-op)
    graph_opt: str = "auto"  # onnxrt: auto, all, extended, basic
    spin: bool = True  # onnxrt
    plugin_impl: str = "auto"  # onnxrt: how plugin nodes run (custom_ops.PLUGIN_IMPLS)
    plugin: str | Path | None = None  # trt: the plugin library
    no_sidecar_check: bool = False  # trt
    precision: str | None = None  # torch: None (fp32, the reference), auto, fp32, fp16, bf16; others: refused
    cuda_graph: bool | None = None  # torch, aoti (None: on for CUDA), trt (None: off)
    compile: bool = False  # torch: torch.compile the model first
    timeout_s: float = 60.0  # triton
    name: str | None = None  # every backend: the runner's name (default: backend:file name)


_DEFAULTS = RunnerOptions()
_THREADED = ("torch", "onnxrt", "aoti")


def backend_for(model: str | Path | None) -> str:
    """Backend name for a model path by its suffix; None (embedded default) is PyTorch."""
    if model is None:
        return "torch"
    if is_triton_url(model):
        return "triton"
    suffix = Path(model).suffix.lower()
    if suffix not in MODEL_SUFFIXES:
        raise ToolkitError(f"{model}: unknown model file type '{suffix}'; expected one of "
                           f"{', '.join(MODEL_SUFFIXES)}")
    return MODEL_SUFFIXES[suffix]


def _check_threads(model: str | Path | None, backend: str, threads: int | None) -> None:
    """A thread count is refused where the runtime takes none (TensorRT, Triton), not dropped: the user
    asked for something this model cannot do. Backend-specific tuning (``graph_opt``, ``plugin`` ...) is
    simply unused by the other backends, so one RunnerOptions serves a mixed list of models."""
    if threads is None:
        return
    if threads < 1:
        raise ToolkitError(f"--threads {threads}: expected 1 or more")
    if backend not in _THREADED:
        raise ToolkitError(f"{model}: the {backend} backend takes no thread count; leave --threads out")


def idle_cores() -> int:
    """The CPU cores not already busy: the core count less the 1-minute load average (rounded), at least 1.

    PyTorch eager's default is every core, and on a loaded machine that oversubscribes them: on the shared 2-core
    machine at load 3, enhanced-w16-kd at 176x240 took a p50 of 273 and 78 ms with 1 thread against 976 and
    634 ms with 2 (two alternating runs each, docs/BENCHMARKS.md). The load average is read, not probed: it costs
    nothing at start-up, where a timed probe would cost seconds and be as noisy as what it measures."""
    import os

    cores = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except OSError:  # not available on this platform
        return cores
    return max(1, min(cores, cores - int(load + 0.5)))


def default_torch_threads(device: str, threads: int | None) -> int | None:
    """``threads`` if given; on the CPU, else, ``idle_cores()``; None (PyTorch's own default) on a GPU."""
    if threads is not None or str(device).strip().lower().partition(":")[0] != "cpu":
        return threads
    return idle_cores()


def set_torch_threads(threads: int | None) -> None:
    """PyTorch's intra-op thread count is process-wide; None leaves it as is."""
    if threads is not None:
        import torch

        torch.set_num_threads(threads)


def split_precision(spec: str | Path) -> tuple[str, str | None]:
    """``'model@fp16'`` -> ``('model', 'fp16')``: a checkpoint run in PyTorch at another precision, as a parity
    or bench candidate. Only a known precision after the last '@' is split off; other names pass whole."""
    from toolkit.backend.torch.precision import PRECISION_CHOICES

    text = str(spec)
    model, sep, precision = text.rpartition("@")
    if sep and model and precision.lower() in PRECISION_CHOICES:
        return model, precision.lower()
    return text, None


def _check_torch_only(model: str | Path | None, backend: str, opts: RunnerOptions) -> None:
    """Asked-for behaviour that this model cannot have is refused rather than silently ignored: an ONNX
    file's or engine's precision is in the file (``toolkit quantize``/``export`` made it), torch.compile is
    PyTorch's, and CUDA graphs are PyTorch's and TensorRT's. 'auto' and --no-cuda-graph ask for nothing."""
    if backend == "torch":
        return
    if opts.precision is not None and opts.precision.strip().lower() != "auto":
        raise ToolkitError(f"{model}: --precision {opts.precision} applies to PyTorch checkpoints only; an ONNX "
                           "file's or engine's precision is set when it is made (toolkit export/quantize/build-engine)")
    if opts.compile:
        raise ToolkitError(f"{model}: --compile applies to PyTorch checkpoints only")
    if opts.cuda_graph and backend not in ("trt", "aoti"):
        raise ToolkitError(f"{model}: --cuda-graph applies to PyTorch checkpoints, AOTInductor packages and TensorRT "
                           "engines only")


def _check_tensorrt_device(model: str | Path | None, backend: str, device: str) -> None:
    """``--device tensorrt`` with a checkpoint used to get PyTorch's "valid choices: cpu, cuda" while --help
    lists tensorrt (issue 25): say what tensorrt is and which models take it."""
    if backend not in ("torch", "aoti") or str(device).strip().lower().partition(":")[0] != "tensorrt":
        return
    what = "a PyTorch checkpoint" if backend == "torch" else "an AOTInductor package"
    shown = Path(model).name if model else "the model"
    raise DeviceError(f"--device tensorrt: {shown} is {what}, which runs on cpu or cuda; tensorrt is "
                      "ONNX Runtime's TensorRT execution provider and takes ONNX files (toolkit export/quantize), "
                      "and a TensorRT engine (toolkit build-engine, .engine/.plan) runs in TensorRT itself: use "
                      "--device cuda, or -m with an ONNX file or engine")


def make_runner(model: str | Path | None = None, options: RunnerOptions | None = None,
                **overrides: Any) -> BaseRunner:
    """An inactive runner for a checkpoint (None: the embedded default), ONNX file, TensorRT engine or
    ``triton://`` URL. ``overrides`` are RunnerOptions fields: ``make_runner(m, threads=1)`` is
    ``make_runner(m, RunnerOptions(threads=1))``."""
    opts = replace(options or _DEFAULTS, **overrides)
    backend = backend_for(model)
    _check_threads(model, backend, opts.threads)
    _check_torch_only(model, backend, opts)
    _check_tensorrt_device(model, backend, opts.device)
    if backend == "triton":  # a served model, not a file
        from toolkit.backend.triton.runner import TritonRunner

        return TritonRunner(str(model), timeout_s=opts.timeout_s, name=opts.name)
    if model is not None and not Path(model).is_file():
        raise ToolkitError(f"{model}: model file not found")
    source = str(model) if model is not None else ""
    if backend == "torch":
        from toolkit.backend.torch.loader import LoadCheckpoint
        from toolkit.backend.torch.runner import TorchRunner

        set_torch_threads(default_torch_threads(opts.device, opts.threads))
        return TorchRunner(LoadCheckpoint(model), device=opts.device, source=source,
                           name=opts.name or f"torch:{Path(model or 'default').name}", precision=opts.precision,
                           cuda_graph=opts.cuda_graph, compile=opts.compile)
    if backend == "onnxrt":
        from toolkit.backend.onnxrt.loader import SessionFromOnnx, ort_graph_optimization
        from toolkit.backend.onnxrt.runner import OnnxrtRunner

        ort_graph_optimization("fp32", "", opts.device, opts.graph_opt)  # a typo is refused now, not on activate()
        session = SessionFromOnnx(model, device=opts.device, threads=opts.threads, plugin_impl=opts.plugin_impl,
                                  graph_optimization=opts.graph_opt, source=source, spin=opts.spin)
        return OnnxrtRunner(session, name=opts.name or f"onnxrt:{Path(source).name}", source=source)
    if backend == "aoti":
        from toolkit.backend.aoti.runner import AotiRunner, LoadPackage

        set_torch_threads(default_torch_threads(opts.device, opts.threads))
        return AotiRunner(LoadPackage(source, device=opts.device), device=opts.device, source=source,
                          name=opts.name or f"aoti:{Path(source).name}", cuda_graph=opts.cuda_graph)
    from toolkit.backend.trt.loader import EngineFromPath
    from toolkit.backend.trt.plugin_lib import find_plugin_library
    from toolkit.backend.trt.runner import TrtRunner

    lib = find_plugin_library(opts.plugin)
    loader = EngineFromPath(source, plugins=[lib] if lib else [], check_sidecar=not opts.no_sidecar_check)
    return TrtRunner(loader, name=opts.name or f"trt:{Path(source).name}", cuda_graph=bool(opts.cuda_graph),
                    source=source)
