"""Lazy imports of TensorRT and the CUDA runtime bindings, and the few places where TRT 10 and 11 differ.

TensorRT 10 (what JetPack 6 ships) builds weakly typed networks unless the network is created with
``NetworkDefinitionCreationFlag.STRONGLY_TYPED``; TensorRT 11 builds strongly typed networks only and
deprecates that flag (it is ignored). Precision never comes from builder flags here (``BuilderFlag.FP16``
and ``INT8`` are removed in 11): it comes from the ONNX graph (fp16 tensors, int8 Q/DQ nodes).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from toolkit.errors import TensorRTLibrariesMissingError, TensorRTMissingError, ToolkitError

log = logging.getLogger(__name__)

MIN_TRT_MAJOR = 10
INSTALL_HINT = ("install TensorRT 10.x or 11.x for your CUDA version (JetPack 6 ships TensorRT 10; on x86 "
                "`pip install tensorrt` from NVIDIA's index or the tar/deb packages); see docs/TENSORRT.md")


def import_tensorrt() -> ModuleType:
    """``import tensorrt`` with one clear line when it is absent or too old."""
    try:
        import tensorrt as trt
    except ImportError as e:
        if _missing_library(e):
            raise TensorRTLibrariesMissingError(libraries_missing_message(e), str(e)) from None
        raise TensorRTMissingError(f"TensorRT is not installed in this Python ({e.msg}): {INSTALL_HINT}",
                                   str(e.msg)) from None
    except Exception as e:  # a broken install (missing libnvinfer.so) raises OSError and friends
        if _missing_library(e):
            raise TensorRTLibrariesMissingError(libraries_missing_message(e), str(e)) from None
        raise TensorRTMissingError(f"TensorRT failed to import ({type(e).__name__}: {e}): {INSTALL_HINT}",
                                   f"does not import: {type(e).__name__}: {e}") from None
    major = trt_major(trt.__version__)
    if major < MIN_TRT_MAJOR:
        raise TensorRTMissingError(f"TensorRT {trt.__version__} found; this toolkit needs TensorRT >= "
                                   f"{MIN_TRT_MAJOR} (name-based I/O API, IPluginV3, strongly typed networks)",
                                   f"too old: this toolkit needs TensorRT >= {MIN_TRT_MAJOR}", str(trt.__version__))
    return trt


def _missing_library(e: BaseException) -> bool:
    """The bindings imported but a TensorRT shared library (libnvinfer.so.N, nvinfer_N.dll ...) is not found."""
    if isinstance(e, ModuleNotFoundError):
        return False
    text = str(e)
    return "nvinfer" in text or "nvonnxparser" in text or "cannot open shared object" in text


def libraries_missing_message(e: BaseException) -> str:
    """One line for 'the Python bindings are there, libnvinfer & co. are not'."""
    return (f"TensorRT's Python bindings are present but its libraries are missing ({e}): install the TensorRT "
            "libraries of the same version (`pip install tensorrt-cu12-libs==<bindings version>`, the tar/deb "
            "packages, or JetPack) or put their lib folder on LD_LIBRARY_PATH; see docs/TENSORRT.md")


def import_cudart() -> Any:
    """The CUDA runtime bindings of cuda-python: ``cuda.bindings.runtime`` (>= 12.6, 13.x) or ``cuda.cudart``."""
    try:
        from cuda.bindings import runtime as cudart

        return cudart
    except ImportError:
        pass
    try:
        from cuda import cudart  # cuda-python < 12.6

        return cudart
    except ImportError:
        raise TensorRTMissingError("cuda-python is not installed (device buffers and streams use it): "
                                   "pip install 'cuda-python>=12' matching your CUDA driver, or "
                                   "pip install 'segnet-toolkit[tensorrt]'") from None


def trt_major(version: str) -> int:
    """10 from '10.3.0.30'; 0 when unparsable."""
    try:
        return int(str(version).split(".")[0])
    except ValueError:
        return 0


def network_creation_flags(trt: Any) -> int:
    """Flags for ``builder.create_network``: STRONGLY_TYPED on TensorRT 10, nothing on 11 (always strongly typed)."""
    if trt_major(trt.__version__) >= 11:
        return 0
    flag = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
    if flag is None:
        raise TensorRTMissingError(f"TensorRT {trt.__version__} has no STRONGLY_TYPED network flag; "
                                   "use TensorRT >= 10.0")
    return 1 << int(flag)


def cuda_call(result: Any) -> Any:
    """Unpack a cuda-python ``(err, *values)`` tuple; raise a ToolkitError naming the CUDA error."""
    if not isinstance(result, tuple):
        result = (result,)
    err, values = result[0], result[1:]
    if int(err) != 0:
        name = getattr(err, "name", str(err))
        raise ToolkitError(f"CUDA error {name} ({int(err)}): {_cuda_error_hint(name)}")
    if not values:
        return None
    return values[0] if len(values) == 1 else values


def _cuda_error_hint(name: str) -> str:
    if "InsufficientDriver" in name or "NoDevice" in name:
        return "no usable NVIDIA GPU or driver on this machine; TensorRT engines need one"
    if "MemoryAllocation" in name:
        return "out of GPU memory; use a smaller --shapes max profile or free the GPU"
    return "see the CUDA runtime documentation for this error"


@dataclass(frozen=True)
class GpuInfo:
    """What an engine is tied to: the GPU model and its compute capability ('8.7')."""

    name: str
    compute_capability: str

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "compute_capability": self.compute_capability}


def current_gpu(device: int = 0) -> GpuInfo:
    """Name and compute capability of CUDA device ``device`` (cuda-python; PyTorch's CUDA as a fallback)."""
    try:
        cudart = import_cudart()
    except TensorRTMissingError:
        cudart = None
    if cudart is not None:
        prop = cuda_call(cudart.cudaGetDeviceProperties(device))
        name = prop.name.decode(errors="replace") if isinstance(prop.name, bytes) else str(prop.name)
        return GpuInfo(name.rstrip("\x00").strip(), f"{prop.major}.{prop.minor}")
    import torch

    if not torch.cuda.is_available():
        raise TensorRTMissingError("no CUDA GPU visible (and cuda-python is not installed): TensorRT engines "
                                   "are built and run on an NVIDIA GPU")
    major, minor = torch.cuda.get_device_capability(device)
    return GpuInfo(torch.cuda.get_device_name(device), f"{major}.{minor}")


def tensorrt_status() -> str:
    """One line for ``toolkit info``: the TensorRT version that imports, or why none does.

    "10.13.3.9" | "11.4.0.106 (bindings present, libraries missing: libnvinfer.so.11 ...)" | "not installed".
    """
    try:
        return str(import_tensorrt().__version__)
    except TensorRTMissingError as e:
        missing = e
    from toolkit.sysinfo import package_version

    dists = ("tensorrt", "tensorrt-cu12-bindings", "tensorrt-cu13-bindings", "tensorrt-cu12", "tensorrt-cu13")
    version = missing.version or next((v for v in map(package_version, dists) if v != "not installed"), "")
    if isinstance(missing, TensorRTLibrariesMissingError):
        return f"{version or 'bindings'} (bindings present, libraries missing: {missing.cause})"
    if str(missing).startswith("TensorRT is not installed"):
        return "not installed"
    return f"{version or '?'} ({missing.cause})"
