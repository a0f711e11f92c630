"""The unpooling plugin library: find it, build it (CMake + nvcc against the user's TensorRT), load it.

Search order for the library: ``--plugin PATH``, env ``SEGNET_PLUGIN_LIB``, then the default build
folder ``build/engines/libsegnet_plugins.so`` (of the source checkout, then of the working directory).
A shared library runs code when loaded, so it is only ever taken from these places, never from a path
written in a file (an engine sidecar records the library's hash, not a path to load).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toolkit.core.names import PLUGIN_NAMESPACE, PLUGIN_OP_TYPE, PLUGIN_VERSION
from toolkit.errors import PluginLibraryError

log = logging.getLogger(__name__)

LIBRARY_NAME = "libsegnet_plugins.so"
ENV_PLUGIN_LIB = "SEGNET_PLUGIN_LIB"
REPO_ROOT = Path(__file__).resolve().parents[3]
ENGINES_DIR = REPO_ROOT / "engines"
DEFAULT_BUILD_DIR = REPO_ROOT / "build" / "engines"
# Where TensorRT's headers live when installed from NVIDIA's deb/tar packages or JetPack.
STANDARD_TRT_ROOTS = ("/usr", "/usr/local/TensorRT", "/usr/local/tensorrt", "/opt/tensorrt")
STANDARD_INCLUDE_DIRS = ("/usr/include/x86_64-linux-gnu", "/usr/include/aarch64-linux-gnu")
MIN_CMAKE = (3, 18)


def default_library_candidates() -> list[Path]:
    return [DEFAULT_BUILD_DIR / LIBRARY_NAME, Path.cwd() / "build" / "engines" / LIBRARY_NAME]


def find_plugin_library(explicit: str | Path | None = None, env: dict[str, str] | None = None,
                        candidates: Sequence[Path] | None = None) -> Path | None:
    """The plugin library to use, or None when there is none; an explicit path that is missing is an error."""
    env = os.environ if env is None else env
    if explicit:
        path = Path(explicit).expanduser()
        if path.is_dir():
            path = path / LIBRARY_NAME
        if not path.is_file():
            raise PluginLibraryError(f"--plugin {explicit}: no such file; build it with `toolkit build-plugin`")
        return path.resolve()
    if env.get(ENV_PLUGIN_LIB):
        path = Path(env[ENV_PLUGIN_LIB]).expanduser()
        if not path.is_file():
            raise PluginLibraryError(f"{ENV_PLUGIN_LIB}={env[ENV_PLUGIN_LIB]}: no such file; unset it or build the "
                                     "library with `toolkit build-plugin`")
        return path.resolve()
    for path in default_library_candidates() if candidates is None else candidates:
        if path.is_file():
            return path.resolve()
    return None


# ---- TensorRT headers -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TensorRTHeaders:
    root: Path | None  # what CMake gets as TENSORRT_ROOT (None: found in a standard include folder)
    include_dir: Path
    version: str


def _header_version(include_dir: Path) -> str:
    text = (include_dir / "NvInferVersion.h").read_text(errors="replace") if (
        include_dir / "NvInferVersion.h").is_file() else ""
    parts = []
    for key in ("MAJOR", "MINOR", "PATCH"):
        m = (re.search(rf"#define\s+TRT_{key}_ENTERPRISE\s+(\d+)", text)
             or re.search(rf"#define\s+NV_TENSORRT_{key}\s+(\d+)", text))
        parts.append(m.group(1) if m else "?")
    return ".".join(parts)


def _pip_tensorrt_dirs() -> list[Path]:
    import importlib.util

    out = []
    for pkg in ("tensorrt_libs", "tensorrt"):
        try:
            spec = importlib.util.find_spec(pkg)
        except (ImportError, ValueError):
            spec = None
        if spec is not None and spec.origin:
            out.append(Path(spec.origin).parent)
    return out


def find_tensorrt_headers(tensorrt_root: str | Path | None = None,
                          env: dict[str, str] | None = None) -> TensorRTHeaders:
    """Locate NvInfer.h: --tensorrt-root, env TENSORRT_ROOT, the pip package, then standard install paths."""
    env = os.environ if env is None else env
    if tensorrt_root is not None:
        root = Path(tensorrt_root).expanduser()
        inc = root / "include" if (root / "include" / "NvInfer.h").is_file() else root
        if not (inc / "NvInfer.h").is_file():
            raise PluginLibraryError(f"--tensorrt-root {tensorrt_root}: no include/NvInfer.h there; point it at the "
                                     "TensorRT folder that holds include/ and lib/")
        return TensorRTHeaders(root, inc, _header_version(inc))
    tried: list[str] = []
    roots: list[tuple[str, Path]] = []
    if env.get("TENSORRT_ROOT"):
        roots.append(("TENSORRT_ROOT", Path(env["TENSORRT_ROOT"])))
    roots += [("pip package", d) for d in _pip_tensorrt_dirs()]
    roots += [("standard path", Path(r)) for r in STANDARD_TRT_ROOTS]
    for how, root in roots:
        tried.append(f"{root} ({how})")
        if (root / "include" / "NvInfer.h").is_file():
            return TensorRTHeaders(root, root / "include", _header_version(root / "include"))
    for inc in STANDARD_INCLUDE_DIRS:
        tried.append(inc)
        if (Path(inc) / "NvInfer.h").is_file():
            return TensorRTHeaders(None, Path(inc), _header_version(Path(inc)))
    raise PluginLibraryError("TensorRT headers (NvInfer.h) not found; looked in " + ", ".join(tried) +
                             ". Install the TensorRT dev package (libnvinfer-dev, part of JetPack) or unpack the "
                             "TensorRT tar and pass --tensorrt-root DIR (or set TENSORRT_ROOT); the pip wheels "
                             "ship no headers")


# ---- build ------------------------------------------------------------------------------------------------------


def find_nvcc(env: dict[str, str] | None = None) -> Path | None:
    env = os.environ if env is None else env
    for cand in (env.get("CUDACXX"), shutil.which("nvcc"), "/usr/local/cuda/bin/nvcc"):
        if cand and Path(cand).is_file():
            return Path(cand)
    return None


def cmake_version(cmake: str) -> tuple[int, ...]:
    out = subprocess.run([cmake, "--version"], capture_output=True, text=True, check=False).stdout
    m = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", out)
    return tuple(int(v) for v in m.groups() if v is not None) if m else (0,)


def check_build_tools(env: dict[str, str] | None = None) -> tuple[str, Path]:
    """(cmake, nvcc) or one clear error naming what is missing."""
    cmake = shutil.which("cmake")
    if cmake is None:
        raise PluginLibraryError(f"cmake not found on PATH; install CMake >= {'.'.join(map(str, MIN_CMAKE))} "
                                 "(apt install cmake, or pip install cmake)")
    if cmake_version(cmake) < MIN_CMAKE:
        raise PluginLibraryError(f"{cmake} is CMake {'.'.join(map(str, cmake_version(cmake)))}; the plugin needs "
                                 f">= {'.'.join(map(str, MIN_CMAKE))}")
    nvcc = find_nvcc(env)
    if nvcc is None:
        raise PluginLibraryError("nvcc (the CUDA compiler) not found on PATH, in CUDACXX or /usr/local/cuda/bin; "
                                 "install the CUDA toolkit that matches your driver (JetPack ships it)")
    return cmake, nvcc


def build_plugin(tensorrt_root: str | Path | None = None, build_dir: str | Path | None = None,
                 cuda_archs: str | None = None, jobs: int | None = None, source_dir: str | Path | None = None,
                 run: Callable[..., Any] = subprocess.run) -> Path:
    """Configure and build engines/ with CMake; returns the path of libsegnet_plugins.so."""
    source = Path(source_dir) if source_dir else ENGINES_DIR
    if not (source / "CMakeLists.txt").is_file():
        raise PluginLibraryError(f"plugin sources not found at {source} (engines/CMakeLists.txt); build-plugin runs "
                                 "from a source checkout of the toolkit")
    cmake, nvcc = check_build_tools()
    headers = find_tensorrt_headers(tensorrt_root)
    major = headers.version.split(".")[0]
    if major.isdigit() and int(major) < 10:
        raise PluginLibraryError(f"TensorRT headers at {headers.include_dir} are version {headers.version}; the "
                                 "plugin (IPluginV3) needs TensorRT >= 10")
    out = Path(build_dir) if build_dir else DEFAULT_BUILD_DIR
    args = [cmake, "-S", str(source), "-B", str(out), f"-DCMAKE_CUDA_COMPILER={nvcc}",
            "-DCMAKE_BUILD_TYPE=Release", f"-DPython3_EXECUTABLE={sys.executable}"]
    if headers.root is not None:
        args.append(f"-DTENSORRT_ROOT={headers.root}")
    if cuda_archs:
        archs = cuda_archs.replace(",", ";")
        if not re.fullmatch(r"native|all|all-major|\d+[a-z]?(;\d+[a-z]?)*", archs):
            raise PluginLibraryError(f"--cuda-arch {cuda_archs}: expected compute capabilities without the dot, "
                                     "e.g. 87 (Jetson Orin), 86,89 or native")
        args.append(f"-DCMAKE_CUDA_ARCHITECTURES={archs}")
    log.info("TensorRT %s headers: %s; nvcc: %s; build folder: %s", headers.version, headers.include_dir, nvcc, out)
    for step in (args, [cmake, "--build", str(out), "-j", str(jobs or os.cpu_count() or 2)]):
        log.info("$ %s", " ".join(step))
        result = run(step, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
            raise PluginLibraryError(f"`{' '.join(step[:3])} ...` failed (exit {result.returncode}):\n{tail}")
    lib = out / LIBRARY_NAME
    if not lib.is_file():
        raise PluginLibraryError(f"the build finished but {lib} is missing; see the CMake output above")
    return lib


# ---- loading into TensorRT ---------------------------------------------------------------------------------------

_LOADED: dict[str, Any] = {}  # resolved path -> registry handle; loadLibrary refuses a second load of one library


def load_plugin_library(trt: Any, path: str | Path) -> Any:
    """Register the library's creators with TensorRT's global plugin registry (once per process)."""
    key = str(Path(path).resolve())
    if key in _LOADED:
        return _LOADED[key]
    registry = trt.get_plugin_registry()
    try:
        handle = registry.load_library(key)
    except Exception as e:  # the bindings raise on a library without getCreators or a duplicate creator
        raise PluginLibraryError(f"TensorRT could not load plugin library {key}: {e}") from None
    if handle is None:
        raise PluginLibraryError(f"TensorRT could not load plugin library {key} (see TensorRT's log above); was it "
                                 "built against this TensorRT version?")
    # get_creator (IPluginV3 and V2 creators) is in 10.x and 11.x; get_plugin_creator is gone from 11.4
    if registry.get_creator(PLUGIN_OP_TYPE, PLUGIN_VERSION, PLUGIN_NAMESPACE) is None:
        raise PluginLibraryError(f"{key} loaded but registers no {PLUGIN_OP_TYPE} version {PLUGIN_VERSION}")
    _LOADED[key] = handle
    log.info("loaded TensorRT plugin library %s", key)
    return handle
