"""TensorRT loaders (Polygraphy style): parse ONNX, build a strongly typed engine, save it, load it back.

    built = BuildEngine(NetworkFromOnnx("m.onnx", plugins=[lib]), shapes=profile, timing_cache="t.cache")
    SaveEngine(built, "m.engine")()            # writes m.engine and its sidecar m.engine.json
    engine, sidecar = EngineFromPath("m.engine", plugins=[lib])()

Each loader stores its arguments and works only when called; each has a snake_case function twin.
Written against the TensorRT 10/11 Python API documentation; not executed on our machines (no
TensorRT, no GPU there): see docs/TENSORRT.md.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import toolkit
from toolkit.backend.trt import sidecar as sc
from toolkit.backend.trt.compat import GpuInfo, current_gpu, import_tensorrt, network_creation_flags, trt_major
from toolkit.backend.trt.plugin_lib import load_plugin_library
from toolkit.backend.trt.shapes import ShapeProfile, format_shape
from toolkit.core.loader import BaseLoader, resolve
from toolkit.core.onnx_file import detect_precision, load_onnx, onnx_metadata
from toolkit.errors import EngineBuildError, EngineMismatchError, ToolkitError
from toolkit.files import atomic_write, file_sha256

log = logging.getLogger(__name__)

# progress(phase, step, num_steps): called from TensorRT's builder threads while it optimises; a phase is
# done when step == num_steps (its finish repeats that call, so a display may see it twice).
ProgressFn = Callable[[str, int, int], None]


def _logger(trt: Any) -> Any:
    return trt.Logger(trt.Logger.WARNING)


@dataclass
class ParsedNetwork:
    """What NetworkFromOnnx gives: keep builder and parser alive as long as the network."""

    builder: Any
    network: Any
    parser: Any
    logger: Any
    onnx_path: Path
    plugins: list[Path]
    strongly_typed: bool


class NetworkFromOnnx(BaseLoader[ParsedNetwork]):
    """Parse an ONNX file into a strongly typed TensorRT network, loading plugin libraries first."""

    def __init__(self, path: str | Path, plugins: Sequence[str | Path] = ()) -> None:
        self.path, self.plugins = Path(path), [Path(p) for p in plugins]

    def _call_impl(self) -> ParsedNetwork:
        trt = import_tensorrt()
        for lib in self.plugins:
            load_plugin_library(trt, lib)
        logger = _logger(trt)
        builder = trt.Builder(logger)
        flags = network_creation_flags(trt)
        network = builder.create_network(flags)
        parser = trt.OnnxParser(network, logger)
        if not parser.parse_from_file(str(self.path)):
            errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
            raise EngineBuildError(f"{self.path}: TensorRT's ONNX parser failed: " + " | ".join(errors[:5]))
        return ParsedNetwork(builder, network, parser, logger, self.path, self.plugins, strongly_typed=True)


def network_from_onnx(path: str | Path, plugins: Sequence[str | Path] = ()) -> ParsedNetwork:
    """Function twin of NetworkFromOnnx."""
    return NetworkFromOnnx(path, plugins)()


def _progress_monitor(trt: Any, progress: ProgressFn) -> Any:
    """A trt.IProgressMonitor forwarding to ``progress``; Ctrl-C in a callback cancels the build."""

    class _Monitor(trt.IProgressMonitor):
        def __init__(self) -> None:
            trt.IProgressMonitor.__init__(self)
            self.cancelled = False
            self.steps: dict[str, int] = {}

        def phase_start(self, phase_name: str, parent_phase: str | None, num_steps: int) -> None:
            self.steps[phase_name] = num_steps
            self._call(phase_name, 0, num_steps)

        def step_complete(self, phase_name: str, step: int) -> bool:
            if phase_name in self.steps:
                self._call(phase_name, step + 1, self.steps[phase_name])
            return not self.cancelled

        def phase_finish(self, phase_name: str) -> None:  # may come before the last step (errors, cancel)
            total = self.steps.pop(phase_name, 0)
            self._call(phase_name, total, total)

        def _call(self, phase: str, step: int, total: int) -> None:
            try:
                progress(phase, step, total)
            except KeyboardInterrupt:
                self.cancelled = True
            except Exception:  # a progress display must never break a build
                log.debug("progress callback failed", exc_info=True)

    return _Monitor()


@dataclass
class BuiltEngine:
    """A serialized engine and the sidecar describing it."""

    data: bytes
    sidecar: sc.Sidecar


class BuildEngine(BaseLoader[BuiltEngine]):
    """Build a serialized engine from a ParsedNetwork (or a loader of one) with one optimisation profile."""

    def __init__(self, network: ParsedNetwork | BaseLoader, shapes: ShapeProfile,
                 timing_cache: str | Path | None = None, workspace_mb: int | None = None,
                 opt_level: int | None = None, progress: ProgressFn | None = None,
                 gpu: GpuInfo | None = None) -> None:
        if workspace_mb is not None and workspace_mb <= 0:
            raise ToolkitError(f"--workspace {workspace_mb}: must be a positive number of MiB")
        if opt_level is not None and not 0 <= opt_level <= 5:
            raise ToolkitError(f"--opt-level {opt_level}: TensorRT's builder optimization level is 0..5 (default 3)")
        self.network, self.shapes, self.timing_cache = network, shapes, timing_cache
        self.workspace_mb, self.opt_level, self.progress, self.gpu = workspace_mb, opt_level, progress, gpu

    def _call_impl(self) -> BuiltEngine:
        trt = import_tensorrt()
        parsed: ParsedNetwork = resolve(self.network)
        builder, network = parsed.builder, parsed.network
        if network.num_inputs != 1:
            names = [network.get_input(i).name for i in range(network.num_inputs)]
            raise EngineBuildError(f"the network has inputs {names}; the toolkit's models have exactly one")
        inp = network.get_input(0)
        config = builder.create_builder_config()
        if self.workspace_mb is not None:
            config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(self.workspace_mb) << 20)
        if self.opt_level is not None:
            config.builder_optimization_level = int(self.opt_level)
        profile = builder.create_optimization_profile()
        profile.set_shape(inp.name, self.shapes.min, self.shapes.opt, self.shapes.max)
        config.add_optimization_profile(profile)
        cache = self._load_timing_cache(config)
        monitor = None
        if self.progress is not None and hasattr(trt, "IProgressMonitor"):
            monitor = _progress_monitor(trt, self.progress)
            config.progress_monitor = monitor
        log.info("building a strongly typed TensorRT %s engine for %s, profile %s", trt.__version__,
                 parsed.onnx_path.name, self.shapes.to_text())
        serialized = builder.build_serialized_network(network, config)
        if monitor is not None and monitor.cancelled:
            raise KeyboardInterrupt
        if serialized is None:
            raise EngineBuildError(f"TensorRT failed to build an engine for {parsed.onnx_path} (see its log above); "
                                   f"input '{inp.name}' {format_shape(inp.shape)}, profile {self.shapes.to_text()}")
        if cache is not None and self.timing_cache is not None:
            blob = bytes(config.get_timing_cache().serialize())
            atomic_write(self.timing_cache, lambda tmp: tmp.write_bytes(blob))
            log.info("timing cache saved to %s", self.timing_cache)
        return BuiltEngine(bytes(serialized), self._sidecar(trt, parsed, inp.name))

    def _load_timing_cache(self, config: Any) -> Any:
        if self.timing_cache is None:
            return None
        path = Path(self.timing_cache)
        blob = path.read_bytes() if path.is_file() else b""
        log.info("timing cache %s (%s)", path, f"{len(blob)} bytes, reused" if blob else "new")
        cache = config.create_timing_cache(blob)
        if not config.set_timing_cache(cache, ignore_mismatch=False):
            raise EngineBuildError(f"timing cache {path} was written by another TensorRT version or GPU; delete it "
                                   "or pass another --timing-cache file")
        return cache

    def _sidecar(self, trt: Any, parsed: ParsedNetwork, input_name: str) -> sc.Sidecar:
        model = load_onnx(parsed.onnx_path, external_data=False)
        gpu = self.gpu or current_gpu()
        plugin = None
        if parsed.plugins:
            plugin = {"path": str(parsed.plugins[0].resolve()), "sha256": file_sha256(parsed.plugins[0])}
        return sc.Sidecar(
            tensorrt_version=trt.__version__, gpu=gpu.to_dict(), precision=detect_precision(model),
            shapes={input_name: self.shapes.to_dict()},
            onnx={"path": str(parsed.onnx_path.resolve()), "sha256": file_sha256(parsed.onnx_path)},
            plugin_library=plugin, onnx_metadata=onnx_metadata(model), toolkit_version=toolkit.__version__,
            build={"strongly_typed": parsed.strongly_typed,
                   "network_flag": "STRONGLY_TYPED" if trt_major(trt.__version__) < 11 else "none (TensorRT 11)",
                   "workspace_mb": self.workspace_mb, "opt_level": self.opt_level,
                   "timing_cache": str(self.timing_cache) if self.timing_cache else None})


def build_engine(network: ParsedNetwork | BaseLoader, shapes: ShapeProfile, **kwargs: Any) -> BuiltEngine:
    """Function twin of BuildEngine."""
    return BuildEngine(network, shapes, **kwargs)()


class SaveEngine(BaseLoader[Path]):
    """Write the engine and then its sidecar (both atomically); returns the engine path."""

    def __init__(self, engine: BuiltEngine | BaseLoader, path: str | Path) -> None:
        self.engine, self.path = engine, Path(path)

    def _call_impl(self) -> Path:
        built: BuiltEngine = resolve(self.engine)
        atomic_write(self.path, lambda tmp: tmp.write_bytes(built.data))
        sc.write_sidecar(self.path, built.sidecar)
        log.info("engine %s (%.1f MiB) and sidecar %s written", self.path, len(built.data) / 2**20,
                 sc.sidecar_path(self.path).name)
        return self.path


def save_engine(engine: BuiltEngine | BaseLoader, path: str | Path) -> Path:
    """Function twin of SaveEngine."""
    return SaveEngine(engine, path)()


class EngineFromPath(BaseLoader[tuple[Any, "sc.Sidecar | None"]]):
    """Deserialize an engine from a path the user gave, after its sidecar matches this TensorRT and GPU.

    ``check_sidecar=False`` (``make_runner(path, no_sidecar_check=True)``) skips the check, for an engine
    built by hand (trtexec) on this machine; the plugin library is loaded from ``plugins`` (found by
    plugin_lib.find_plugin_library), never from a path in the sidecar.
    """

    def __init__(self, path: str | Path, plugins: Sequence[str | Path] = (), check_sidecar: bool = True,
                 gpu: GpuInfo | None = None) -> None:
        self.path, self.plugins, self.check, self.gpu = Path(path), [Path(p) for p in plugins], check_sidecar, gpu

    def _call_impl(self) -> tuple[Any, sc.Sidecar | None]:
        if not self.path.is_file():
            raise ToolkitError(f"{self.path}: engine file not found")
        side = sc.read_sidecar(self.path)
        trt = import_tensorrt()
        if self.check:
            sc.check_sidecar(self.path, side, trt.__version__, self.gpu or current_gpu())
        needs_plugin = side is None or bool(side.plugin_library)  # without a sidecar: load what we were given
        if side is not None and side.plugin_library and not self.plugins:
            raise ToolkitError(f"{self.path} was built with the plugin library {side.plugin_library.get('path')}: "
                               "pass --plugin LIB or set SEGNET_PLUGIN_LIB (build it with `toolkit build-plugin`)")
        for lib in self.plugins if needs_plugin else []:
            if side is not None and side.plugin_library and file_sha256(lib) != side.plugin_library.get("sha256"):
                log.warning("plugin library %s differs from the one the engine was built with (sha256); if the "
                            "engine fails to load, rebuild it", lib)
            load_plugin_library(trt, lib)
        runtime = trt.Runtime(_logger(trt))
        engine = runtime.deserialize_cuda_engine(self.path.read_bytes())
        if engine is None:
            raise EngineMismatchError(f"{self.path}: TensorRT {trt.__version__} could not deserialize it (see its "
                                         f"log above); {sc.REBUILD_HINT}")
        return _EngineHandle(engine, runtime), side


@dataclass
class _EngineHandle:
    """Keeps the IRuntime alive as long as its engine (TensorRT requires it)."""

    engine: Any
    runtime: Any

    def __getattr__(self, name: str) -> Any:
        return getattr(self.engine, name)


def engine_from_path(path: str | Path, plugins: Sequence[str | Path] = (), check_sidecar: bool = True,
                     gpu: GpuInfo | None = None) -> tuple[Any, sc.Sidecar | None]:
    """Function twin of EngineFromPath."""
    return EngineFromPath(path, plugins, check_sidecar, gpu)()
